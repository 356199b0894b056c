"""YANG-Push on-change entry by entry (northbound/push_on_change.py): the subscription engine
with the server's view (ops_push.View: merge_state, NACM, secrets, filters, real schema) over
SA tables built by the real converters (CharonBackend.read_state over the VICI fake). A
countdown alone is no update; an SA gone or new is one edit, without reading the whole view;
filters and NACM still apply; a config change is still reported."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from lxml import etree

from nf.nacm import Access, parse_policy
from nf.observed import StateChange, StateSnapshot
from nf.schema import Schema
from northbound import push
from northbound.notifications import Notifications
from northbound.ops_push import View
from northbound.push_on_change import Tracker, per_entry
from northbound.subscriptions import Spec, Subscription, Subscriptions
from southbound.charon_backend import DATAPLANES, CharonBackend
from tests.fakes.vici_server import FakeCharon

NS = "urn:ipsec-nf:yang:ipsec-nf"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
ACM = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
YP = push.YP
N = 40
SA = {"uniqueid": "1", "version": "2", "state": "ESTABLISHED", "local-host": "198.51.100.1",
      "remote-host": "198.51.100.2", "established": "5", "rekey-time": "1000",
      "child-sas": {"trunk-1": {"name": "trunk", "uniqueid": "1", "state": "INSTALLED",
                                "protocol": "ESP", "spi-in": "c0000001",
                                "spi-out": "d0000001", "bytes-in": "84",
                                "packets-in": "1", "install-time": "5"}}}  # list-sas, as VICI


@pytest.fixture(scope="module")
def schema() -> Schema:
    return Schema()


@pytest.fixture(scope="module")
def table() -> dict[str, Any]:
    """The state tree of N IKE SAs (vpn-0 .. vpn-N-1, unique-ids 0 .. N-1)."""
    with FakeCharon() as f:
        f.sas = [{f"vpn-{i}": {**copy.deepcopy(SA), "uniqueid": str(i)}} for i in range(N)]
        tree = CharonBackend(f.path, DATAPLANES["kernel-libipsec"]).read_state(2.0)
    tree["apply-status"] = {"state-read-time": "2026-11-30T07:00:00Z"}
    return tree


def later(tree: dict[str, Any], seconds: int) -> dict[str, Any]:
    """``tree`` read ``seconds`` later: only the ages and countdowns moved."""
    out = copy.deepcopy(tree)
    for sa in out["ike-sa"]:
        sa["established-time"] += seconds
        sa["rekey-time"] -= seconds
        for child in sa["child-sa"]:
            child["installed-time"] += seconds
    out["apply-status"] = {"state-read-time": f"2026-11-30T07:00:{seconds:02d}Z"}
    return out


class Source:
    """A state source publishing the trees it is given (the StateSource seam)."""

    def __init__(self, tree: dict[str, Any]) -> None:
        self.snap = StateSnapshot(tree=tree, read_at=None, stale=False, version=1)
        self.queues: list[asyncio.Queue[StateChange]] = []

    async def snapshot(self, max_age: float = 1.0) -> StateSnapshot:
        return self.snap

    def expire(self) -> None:
        pass

    async def changes(self) -> AsyncIterator[StateChange]:
        q: asyncio.Queue[StateChange] = asyncio.Queue()
        self.queues.append(q)
        while True:
            yield await q.get()

    def publish(self, tree: dict[str, Any], changed: bool = True) -> None:
        self.snap = StateSnapshot(tree=tree, read_at=None, stale=False,
                                  version=self.snap.version + changed)
        for q in self.queues:
            q.put_nowait(StateChange("refresh", self.snap))


class Receiver:
    def __init__(self, sid: int) -> None:
        self.session_id, self.data = sid, {}
        self.got: list[etree._Element] = []

    async def send_notification(self, msg: bytes) -> bool:
        self.got.append(etree.fromstring(msg)[1])
        return True

    def edits(self) -> list[tuple[str, str]]:
        return [(e.findtext(f"{{{YP}}}operation") or "", e.findtext(f"{{{YP}}}target") or "")
                for b in self.got for e in b.iter(f"{{{YP}}}edit")]


def policy(rules: str = "") -> Any:
    return parse_policy(etree.fromstring(
        f'<config xmlns="{NC}"><nacm xmlns="{ACM}"><read-default>permit</read-default>'
        "<groups><group><name>ops</name><user-name>olga</user-name></group></groups>"
        f"{rules}</nacm></config>"))


class Lab:
    """The subscription engine, a context with running, NACM and the state source."""

    def __init__(self, schema: Schema, tree: dict[str, Any], rules: str = "") -> None:
        self.running = etree.fromstring(f'<data xmlns="{NC}"><ike xmlns="{NS}"><vpn>'
                                        "<name>vpn-0</name></vpn></ike></data>")
        self.source = Source(tree)
        self.ctx = SimpleNamespace(
            schema=schema, state=self.source, ds=SimpleNamespace(tree=lambda _: self.running),
            access=lambda _s: Access(policy(rules), "olga", ["ops"]))
        self.subs = Subscriptions(Notifications(), schema.state_top, self.source)

    def subscribe(self, r: Receiver, selection: push.Selection | None = None) -> Subscription:
        spec = Spec(datastore="operational", on_change=True,
                    selection=selection or push.Selection())
        return self.subs.establish(r, spec, View(self.ctx, r, spec), lambda b: b)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0.01)


def wholes(sub: Subscription) -> int:
    assert sub.tracker is not None
    return sub.tracker.wholes


def test_a_countdown_alone_is_no_update(schema: Schema, table: dict[str, Any]) -> None:
    async def main() -> tuple[Receiver, int]:
        lab = Lab(schema, table)
        r = Receiver(1)
        sub = lab.subscribe(r)
        await settle()
        lab.source.publish(later(table, 5), changed=False)  # as the state engine versions it
        await settle()
        lab.source.publish(later(table, 9))  # a new version, and yet only the clock moved
        await settle()
        return r, wholes(sub)

    r, whole = asyncio.run(main())
    assert [etree.QName(b).localname for b in r.got] == ["push-update"]  # sync-on-start
    assert "<established-time>5</established-time>" in etree.tostring(r.got[0], encoding="unicode")
    assert whole == 1


def test_an_sa_gone_is_one_delete_and_one_new_its_entry(schema: Schema,
                                                        table: dict[str, Any]) -> None:
    async def main() -> tuple[Receiver, int]:
        lab = Lab(schema, table)
        r = Receiver(1)
        sub = lab.subscribe(r)
        await settle()
        gone = later(table, 3)
        del gone["ike-sa"][7]
        lab.source.publish(gone)
        await settle()
        back = later(gone, 2)
        sa = {**copy.deepcopy(table["ike-sa"][7]), "unique-id": 99, "established-time": 0}
        back["ike-sa"].append(sa)
        lab.source.publish(back)
        await settle()
        changed = later(back, 1)
        changed["ike-sa"][0]["state"] = "rekeying"
        lab.source.publish(changed)
        await settle()
        return r, wholes(sub)

    r, whole = asyncio.run(main())
    assert r.edits() == [("delete", "/ipsec-nf:ike/ike-sa=7"),
                         ("create", "/ipsec-nf:ike/ike-sa=99"),
                         # the state changed; its countdowns (moved too) are no edits
                         ("replace", "/ipsec-nf:ike/ike-sa=0/state")]
    created = r.got[2].find(f".//{{{YP}}}value/{{{NS}}}ike-sa")
    assert created is not None and created.findtext(f"{{{NS}}}name") == "vpn-7"
    assert created.findtext(f"{{{NS}}}established-time") == "0"  # a new entry has its clock
    assert created.find(f"{{{NS}}}child-sa/{{{NS}}}spi-in") is not None
    assert whole == 1  # each change rendered its entries alone


def test_filters_and_nacm_still_apply(schema: Schema, table: dict[str, Any]) -> None:
    deny = ("<rule-list><name>r</name><group>ops</group><rule><name>children</name>"
            "<module-name>*</module-name><path>/ipsec-nf:ike/ipsec-nf:ike-sa/ipsec-nf:child-sa"
            "</path><access-operations>read</access-operations><action>deny</action></rule>"
            "</rule-list>")
    only = etree.fromstring(f'<f xmlns="{NS}"><ike><ike-sa><unique-id/><state/><child-sa/>'
                            "</ike-sa></ike></f>")
    enabled = etree.fromstring(f'<f xmlns="{NS}"><ike><enabled>true</enabled><ike-sa/></ike>'
                               "</f>")

    async def main() -> tuple[list[Receiver], list[int]]:
        lab = Lab(schema, table, deny)
        a, b = Receiver(1), Receiver(2)
        subs = [lab.subscribe(a, push.Selection(subtree=only)),
                # a content match on /ike itself: never selected (running has no enabled)
                lab.subscribe(b, push.Selection(subtree=enabled))]
        await settle()
        new = later(table, 1)
        new["ike-sa"].append({**copy.deepcopy(table["ike-sa"][3]), "unique-id": 77})
        new["ike-sa"][1]["state"] = "deleting"
        new["ike-sa"][2]["bytes-in"] = 999  # not selected
        lab.source.publish(new)
        await settle()
        return [a, b], [wholes(s) for s in subs]

    (a, b), whole = asyncio.run(main())
    assert a.edits() == [("replace", "/ipsec-nf:ike/ike-sa=1/state"),
                         ("create", "/ipsec-nf:ike/ike-sa=77")]
    value = a.got[1].find(f".//{{{YP}}}value/{{{NS}}}ike-sa")
    assert value is not None
    assert sorted(etree.QName(c).localname for c in value) == ["state", "unique-id"]  # no child-sa
    assert b.edits() == []
    assert whole == [1, 2]  # the filter on /ike itself is applied to the whole view


def test_a_config_change_is_reported_from_the_whole_view(schema: Schema,
                                                         table: dict[str, Any]) -> None:
    async def main() -> tuple[Receiver, int]:
        lab = Lab(schema, table)
        r = Receiver(1)
        sub = lab.subscribe(r)
        await settle()
        etree.SubElement(etree.SubElement(lab.running[0], f"{{{NS}}}vpn"),
                         f"{{{NS}}}name").text = "vpn-1"
        lab.subs.config_changed()
        await settle()
        return r, wholes(sub)

    r, whole = asyncio.run(main())
    assert r.edits() == [("create", "/ipsec-nf:ike/vpn=vpn-1")]  # and no countdown
    assert whole == 2


@pytest.mark.parametrize(("expr", "local"), [
    ("/ipsec-nf:ike/ipsec-nf:ike-sa", True),
    ("/ipsec-nf:ike/ipsec-nf:ike-sa[ipsec-nf:state='established']/ipsec-nf:name", True),
    ("/ipsec-nf:ike/ipsec-nf:counters | /ipsec-nf:ike/ipsec-nf:ike-sa[ipsec-nf:name]", True),
    ("/ipsec-nf:ike/ipsec-nf:ike-sa[1]", False),  # a position among all entries
    ("/ipsec-nf:ike[ipsec-nf:enabled='true']/ipsec-nf:ike-sa", False),
    ("/ipsec-nf:ike/ipsec-nf:ike-sa[ipsec-nf:name=/ipsec-nf:ike/ipsec-nf:vpn/ipsec-nf:name]",
     False),
    ("/ipsec-nf:ike/ipsec-nf:ike-sa[count(ipsec-nf:child-sa) > 1]", False),
    ("//ipsec-nf:ike-sa", False),
    ("/ipsec-nf:ike/ipsec-nf:ike-sa[../ipsec-nf:enabled]", False),
    ("/ipsec-nf:ike/ipsec-nf:ike-sa[ipsec-nf:name='a/b']", True),
])
def test_which_xpath_filters_select_entry_by_entry(expr: str, local: bool) -> None:
    assert per_entry(push.Selection(xpath=expr)) is local


@pytest.mark.parametrize("selection", [
    push.Selection(),
    push.Selection(subtree=etree.fromstring(
        f'<f xmlns="{NS}"><ike><ike-sa><unique-id/><state>established</state><name/></ike-sa>'
        "<ike-sas/></ike></f>")),
    push.Selection(xpath="/i:ike/i:ike-sa[i:state='established']/i:child-sa | /i:ike/i:counters",
                   nsmap=(("i", NS),)),
], ids=["none", "subtree", "xpath"])
def test_entry_by_entry_gives_the_edits_of_the_whole_view(
        schema: Schema, table: dict[str, Any], selection: push.Selection) -> None:
    def steps() -> list[dict[str, Any]]:
        a = later(table, 1)
        a["ike-sa"][4]["state"] = "rekeying"  # leaves the filters' selection
        del a["ike-sa"][9]
        b = later(a, 2)
        b["ike-sa"][4]["state"] = "established"  # back in
        b["ike-sa"].append({**copy.deepcopy(table["ike-sa"][2]), "unique-id": 500})
        b["counters"] = {"ike-rekey-init": 3}
        b["ike-sas"] = {"total": N, "half-open": 1}
        c = later(b, 3)
        c["ike-sa"][0]["child-sa"] = []
        del c["counters"]
        return [a, b, c]

    async def main() -> list[tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]]:
        lab = Lab(schema, table)
        view = View(lab.ctx, Receiver(1), Spec(datastore="operational", on_change=True,
                                               selection=selection))
        tracker = Tracker(view, schema.state_top)
        whole = copy.deepcopy(await tracker.read())  # the tracker's own is spliced in place
        tracker.accept()
        out = []
        for tree in steps():
            lab.source.publish(tree)
            edits = await tracker.changes(False)
            tracker.accept()
            now = await view()
            out.append((described(edits), described(push.diff(whole, now, schema.state_top))))
            whole = now
        assert tracker.wholes == 1
        return out

    results = asyncio.run(main())
    assert sum(len(partial) for partial, _ in results) >= 3
    for partial, whole in results:
        assert sorted(partial) == sorted(whole)


def described(edits: list[push.Edit]) -> list[tuple[str, str, str]]:
    return [(e.operation, e.target, "" if e.value is None
             else etree.tostring(e.value, method="c14n").decode()) for e in edits]
