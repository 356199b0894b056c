"""gNMI Get of the SA table rendered and remembered per entry (northbound/gnmi/entries.py):
the same answer as rendering the whole snapshot, entry by entry, through refreshes that move
only the clock leaves, changes, removals, and for readers that NACM treats differently."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pygnmi.spec.v080 import gnmi_pb2 as pb

from nf.observed import StateSnapshot
from northbound import ops
from northbound.gnmi import data, get, paths
from northbound.gnmi.auth import GnmiSession
from northbound.gnmi.context import GnmiContext
from northbound.rpc import Dispatcher
from southbound.sa_state import ike_sa_state
from tests.unit.northbound.conftest import make_context
from tests.unit.southbound.test_sa_state import LIST_SAS_ENTRY

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS = "urn:ipsec-nf:yang:ipsec-nf"
NACM = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
# operators may not read a CHILD SA's inbound SPI nor its rekey countdown (a clock leaf)
RULES = f"""<config><nacm xmlns="{NACM}"><rule-list><name>ops</name><group>operators</group>
  <rule><name>spi</name><module-name>ipsec-nf</module-name>
    <path xmlns:i="{NS}">/i:ike/i:ike-sa/i:child-sa/i:spi-in</path>
    <access-operations>read</access-operations><action>deny</action></rule>
  <rule><name>rekey</name><module-name>ipsec-nf</module-name>
    <path xmlns:i="{NS}">/i:ike/i:ike-sa/i:child-sa/i:rekey-time</path>
    <access-operations>read</access-operations><action>deny</action></rule>
</rule-list></nacm></config>"""
ADMIN = GnmiSession(user="root", groups=["admin"], source_host=None)
OPERATOR = GnmiSession(user="olga", groups=["operators"], source_host=None)


def sas(n: int, tick: int = 0, bytes_in: int = 252) -> list[dict[str, Any]]:
    """n converted list-sas entries; ``tick`` moves the clock fields only."""
    out = []
    for i in range(n):
        e = copy.deepcopy(LIST_SAS_ENTRY["siteA-siteB"])
        e["uniqueid"] = str(i + 1).encode()
        e["established"] = str(12 + tick).encode()
        e["rekey-time"] = str(13000 - tick).encode()
        c = e["child-sas"]["trunk-1"]
        c["uniqueid"] = c["reqid"] = str(i + 1).encode()
        c["rekey-time"] = str(3000 - tick).encode()
        c["bytes-in"] = str(bytes_in).encode()
        out.append(ike_sa_state({f"vpn{i}": e}))
    return out


class State:
    def __init__(self) -> None:
        self.snap = StateSnapshot({}, None, False, 0)

    async def snapshot(self, max_age: float = 1.0, max_stale: float = 0.0) -> StateSnapshot:
        return self.snap

    def set(self, table: list[dict[str, Any]]) -> None:
        self.snap = StateSnapshot({"ike-sa": table}, datetime.now(UTC), False,
                                  self.snap.version + 1)


@pytest.fixture(scope="module")
def gnmi(tmp_path_factory: pytest.TempPathFactory) -> tuple[GnmiContext, State]:
    ctx = make_context(Path(tmp_path_factory.mktemp("entries")))
    s = SimpleNamespace(session_id=1, closing=False, data={}, user="root", groups=["admin"])
    reply = asyncio.run(Dispatcher(ctx, ops.TABLE).handle(s, (
        f'<rpc xmlns="{NC}" message-id="1"><edit-config><target><running/></target>'
        f"{RULES}</edit-config></rpc>").encode()))
    assert b"<ok/>" in reply
    state = State()
    return GnmiContext(ctx=ctx, state=state, auth=None), state  # type: ignore[arg-type]


def request(key: str | None = None) -> pb.GetRequest:
    sa = pb.PathElem(name="ike-sa", key={"unique-id": key} if key else {})
    return pb.GetRequest(path=[pb.Path(elem=[pb.PathElem(name="ike"), sa])],
                         type=pb.GetRequest.DataType.STATE, encoding=pb.Encoding.JSON_IETF)


def updates(notifications: Any) -> list[tuple[str, Any]]:
    return [(paths.text(u.path), json.loads(u.val.json_ietf_val))
            for n in notifications for u in n.update]


def by_entries(g: GnmiContext, who: GnmiSession, req: pb.GetRequest) -> list[tuple[str, Any]]:
    get._ANSWERS.clear()  # the whole-answer memory would hide the per-entry one
    return updates(asyncio.run(get.get(g, who, req)).notification)


def whole(g: GnmiContext, who: GnmiSession, req: pb.GetRequest) -> list[tuple[str, Any]]:
    """The answer of the general path: the whole snapshot rendered through libyang."""
    wanted = [(p, paths.parse(None, p, g.ctx.schema.state_top)) for p in req.path]
    tops = asyncio.run(get.read(g, who, data.STATE, None, [s for _, s in wanted]))
    return updates(get._answer(g.ctx.schema, tops, wanted, None, req.encoding))


def test_entries_match_whole_rendering_through_refreshes(gnmi) -> None:
    g, state = gnmi
    g.entries.clear()
    state.set(sas(6))
    first = by_entries(g, ADMIN, request())
    assert first == whole(g, ADMIN, request()) and len(first) == 6
    assert first[0][0] == "/ipsec-nf:ike/ike-sa[unique-id=1]"
    rendered = g.entries.rendered
    # a refresh: new dicts, countdowns moved: the moved clock values are written into the
    # remembered values (as libyang printed them: uint64 as text), nothing rendered
    state.set(sas(6, tick=5))
    clocked, patched = g.entries.clocked, g.entries.patched
    after = by_entries(g, ADMIN, request())
    assert after == whole(g, ADMIN, request()) and after != first
    assert after[0][1]["established-time"] == "17"
    assert after[0][1]["child-sa"][0]["rekey-time"] == "2995"
    assert (g.entries.rendered, g.entries.clocked, g.entries.patched) == (
        rendered, clocked, patched + 6)
    assert first[0][1]["established-time"] == "12"  # the value sent before is not changed
    # one entry's content changed, one gone: that one rendered again, the other forgotten
    table = sas(6, tick=5)
    table[2] = sas(3, tick=5, bytes_in=999)[2]
    del table[4]
    state.set(table)
    changed = by_entries(g, ADMIN, request())
    assert changed == whole(g, ADMIN, request())
    assert g.entries.rendered == rendered + 1
    assert changed[2][1]["child-sa"][0]["bytes-in"] == "999"
    assert [p for p, _ in changed][-2:] == ["/ipsec-nf:ike/ike-sa[unique-id=4]",
                                            "/ipsec-nf:ike/ike-sa[unique-id=6]"]
    # the same snapshot again: nothing rendered
    before = (g.entries.rendered, g.entries.clocked)
    assert by_entries(g, ADMIN, request()) == changed
    assert (g.entries.rendered, g.entries.clocked) == before
    # one entry by key; a key not there is the general path's NOT_FOUND
    assert by_entries(g, ADMIN, request("3")) == [changed[2]]
    with pytest.raises(Exception, match="no data"):
        by_entries(g, ADMIN, request("5"))


def test_each_reader_gets_its_own_pruned_entries(gnmi) -> None:
    g, state = gnmi
    g.entries.clear()
    state.set(sas(3))
    admin = by_entries(g, ADMIN, request())
    ops_view = by_entries(g, OPERATOR, request())
    assert ops_view == whole(g, OPERATOR, request())
    child = ops_view[0][1]["child-sa"][0]
    assert "spi-in" not in child and "rekey-time" not in child and "spi-out" in child
    assert admin[0][1]["child-sa"][0]["spi-in"] == "c1d2e3f4"
    # after a clock-only refresh the hidden clock leaf stays hidden, the others move (a
    # leaf hidden from this reader: its clock skeleton is rendered, pruned alike)
    state.set(sas(3, tick=7))
    clocked = g.entries.clocked
    ops_view = by_entries(g, OPERATOR, request())
    assert g.entries.clocked == clocked + 3
    assert ops_view == whole(g, OPERATOR, request())
    assert "rekey-time" not in ops_view[0][1]["child-sa"][0]
    assert ops_view[0][1]["rekey-time"] == "12993"
    assert by_entries(g, ADMIN, request())[0][1]["child-sa"][0]["rekey-time"] == "2993"


def test_clock_values_are_written_only_as_libyang_printed_the_old_ones() -> None:
    """_patched: a moved clock leaf is written into a copy the way libyang printed its old
    value there; anything else (a counter, a key that does not match, a printing that is
    not the old value's text, a leaf absent from the remembered value) is None: rendered."""
    from northbound.gnmi.entries import _patched

    old = sas(1)[0]
    new = sas(1, tick=3)[0]
    value = json.loads(json.dumps(old, default=str))  # the shape libyang prints
    value = {k: (str(v) if k.endswith("-time") else v) for k, v in value.items()}
    value["child-sa"] = [{k: (str(v) if k in ("rekey-time", "life-time", "installed-time")
                              else v) for k, v in c.items()} for c in old["child-sa"]]
    got = _patched(value, old, new)
    assert got is not None and got is not value
    assert got["established-time"] == str(new["established-time"])
    assert got["child-sa"][0]["rekey-time"] == str(new["child-sa"][0]["rekey-time"])
    assert value["established-time"] == str(old["established-time"])  # not changed
    assert _patched(value, old, old) is value
    # a counter moved too: not a clock-only change
    assert _patched(value, old, sas(1, tick=3, bytes_in=999)[0]) is None
    # the remembered printing is not the old value's text: not written by hand
    odd = {**value, "established-time": f"{old['established-time']}.0"}
    assert _patched(odd, old, new) is None
    # the child entries' printing in another order (matched by key, not position)
    swapped = {**value, "child-sa": [{**value["child-sa"][0], "unique-id": 99}]}
    assert _patched(swapped, old, new) is None
    # a clock leaf absent from the remembered value (NACM hid it): the skeleton decides
    hidden = {k: v for k, v in value.items() if k != "rekey-time"}
    assert _patched(hidden, old, new) is None


def test_an_entry_is_encoded_from_its_template_as_json_would() -> None:
    """An entry's text is cut at its clock values once; the text of a patched value made
    from that template is the value's own encoding. A value of the data that looks like a
    slot (a peer's identity can hold anything) leaves the entry without a template."""
    from northbound.gnmi.entry_text import encoded, filled

    value = {"unique-id": "1", "local-id": "gw \"1\" é", "established-time": "12",
             "child-sa": [{"unique-id": "2", "rekey-time": "2990", "use-in": 3,
                           "bytes-in": "84"}]}
    text, template = encoded(value)
    assert text == data.encode(value) and template is not None
    assert len(template.slots) == 3
    moved = {**value, "established-time": "13",
             "child-sa": [{**value["child-sa"][0], "rekey-time": "2989", "use-in": 4}]}
    assert filled(template, moved) == data.encode(moved)
    # a slot holding anything but a clock value: not written from the template
    assert filled(template, {**value, "established-time": "1\",\"x\":\"2"}) is None
    forged = {**value, "local-id": "\ufdd00"}
    text, template = encoded(forged)
    assert text == data.encode(forged) and template is None
