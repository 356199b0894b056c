"""A commit moves the candidate's changed entries into running (nf.promote): running, its index,
the images and touched entries given to observers, and running's files are those a replay of
the pending edits on running gives, byte for byte and in the same order."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

import nf.datastore
from nf.datastore import Datastores
from nf.edit import edit_tree
from nf.errors import RpcError
from nf.schema import Schema
from nf.tree import Tree
from tests.support import DATA, NC, NS

NACM = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
YANG = "urn:ietf:params:xml:ns:yang:1"
XMLNS = f'xmlns:nc="{NC}" xmlns:yang="{YANG}" xmlns:n="{NACM}"'


def ike(body: str) -> etree._Element:
    return etree.fromstring(f'<config xmlns="{NC}" {XMLNS}><ike xmlns="{NS}">{body}</ike>'
                            "</config>")


def nacm(body: str) -> etree._Element:
    return etree.fromstring(f'<config xmlns="{NC}" {XMLNS}><nacm xmlns="{NACM}">{body}</nacm>'
                            "</config>")


def vpn(name: str, attrs: str = "", tries: int = 1) -> str:
    return (f"<vpn {attrs}><name>{name}</name><ike-policy><template>iketemp1</template>"
            f"<keying-tries>{tries}</keying-tries></ike-policy><ipsec-policy><template>"
            f"ipsectemp1</template></ipsec-policy><local-id>{name}.example.net</local-id></vpn>")


def rule_list(name: str, attrs: str = "") -> str:
    return (f"<rule-list {attrs}><name>{name}</name><group>g-{name}</group><rule><name>r</name>"
            "<path>/n:nacm/n:groups</path><access-operations>read</access-operations>"
            "<action>permit</action></rule></rule-list>")


def dump(images: dict) -> list[tuple[Any, bytes | None]]:
    return [(k, None if v is None else etree.tostring(v)) for k, v in images.items()]


def expected(ds: Datastores) -> tuple[bytes, list, list, set]:
    """running, the images and the touched entries a replay of the pending edits gives."""
    t = Tree(copy.deepcopy(ds.running.root), ds.schema.top)
    txn = t.begin()
    for config, op in ds._pending:
        edit_tree(txn, config, op, trusted=True)
    return (etree.tostring(t.root), dump(txn.before),
            dump({k: t.lookup(k) for k in txn.before}), set(txn.before))


def commit_matches_replay(ds: Datastores, tmp: Path) -> None:
    want = expected(ds)
    seen: dict[str, Any] = {}
    ds.on_change.append(lambda sid, edits, before, after: seen.update(
        before=dump(before), after=dump(after)))
    ds.on_commit.append(lambda config, touched: seen.update(touched=touched))

    def replayed(*_: Any, **__: Any) -> None:
        raise AssertionError("the commit ran the editor again")
    with pytest.MonkeyPatch.context() as m:
        m.setattr(nf.datastore, "edit_tree", replayed)
        ds.commit(sid=1)
    assert etree.tostring(ds.running.root) == want[0]
    assert seen["before"] == want[1] and seen["after"] == want[2]
    assert seen["touched"] in (want[3], None)
    assert etree.tostring(ds.candidate.root) == want[0]
    fresh = Tree(copy.deepcopy(ds.running.root), ds.schema.top)  # the index is running's
    assert {k: sorted(v) for k, v in fresh.index.items() if v} \
        == {k: sorted(v) for k, v in ds.running.index.items() if v}
    again = Datastores(ds.schema, tmp)  # running's journal replayed (prefixes may differ)
    assert again.config == ds.config


@pytest.fixture
def ds(schema: Schema, tmp_path: Path) -> Datastores:
    d = Datastores(schema, tmp_path)
    d.edit("running", etree.parse(str(DATA / "site_a.xml")).getroot(), sid=1)
    d.edit("running", ike(vpn("a") + vpn("b") + vpn("c")), sid=1)
    d.edit("running", nacm(rule_list("x") + rule_list("y")), sid=1)
    return d


SEQUENCES = {
    "new entries merged into /ike, one changed, one deleted": [
        ike(vpn("d") + vpn("e") + vpn("b", tries=4)),
        ike("<vpn nc:operation='delete'><name>c</name></vpn>")],
    "deleted and made again (to the end), made and deleted, made twice": [
        ike("<vpn nc:operation='delete'><name>a</name></vpn>" + vpn("f")),
        ike(vpn("a", tries=3) + vpn("g")),
        ike("<vpn nc:operation='remove'><name>g</name></vpn>" + vpn("f", "nc:operation='replace'")),
        ike("<vpn nc:operation='delete'><name>f</name></vpn>"), ike(vpn("f"))],
    "entries, then /ike replaced whole, then an entry of it": [
        ike(vpn("h")),
        etree.fromstring(f'<config xmlns="{NC}" {XMLNS}><ike xmlns="{NS}" '
                         f'nc:operation="replace">{vpn("a")}'
                         "<ike-policy-template><name>iketemp1</name></ike-policy-template>"
                         "<ipsec-policy-template><name>ipsectemp1</name>"
                         "</ipsec-policy-template></ike></config>"),
        ike(vpn("i"))],
    "ordered-by user entries moved and inserted, a rule-list appended": [
        nacm(rule_list("z", "yang:insert='before' yang:key=\"[n:name='x']\"")),
        nacm(rule_list("w")),
        nacm("<rule-list yang:insert='last'><name>x</name></rule-list>")],
    "a top container made, a container of /ike changed": [
        etree.fromstring(f'<config xmlns="{NC}"><ipsec-ikeless xmlns="urn:ietf:params:xml:'
                         'ns:yang:ietf-i2nsf-ikeless"/></config>'),
        ike("<global-options><make-before-break>true</make-before-break></global-options>")],
}


@pytest.mark.parametrize("edits", SEQUENCES.values(), ids=list(SEQUENCES))
def test_the_commit_gives_what_a_replay_gives(ds: Datastores, tmp_path: Path,
                                              edits: list[etree._Element]) -> None:
    for e in edits:
        ds.edit("candidate", e, sid=1)
    commit_matches_replay(ds, tmp_path)


def test_unchecked_and_continue_on_error_edits(ds: Datastores, tmp_path: Path) -> None:
    ds.edit("candidate", ike(vpn("j")), sid=1, test_option="set")
    with pytest.raises(RpcError):  # the second entry is refused, the first kept
        ds.edit("candidate", ike(vpn("k") + "<vpn><name>l</name><bogus/></vpn>"), sid=1,
                error_option="continue-on-error")
    commit_matches_replay(ds, tmp_path)
    assert {"j", "k"} <= set(ds.config["ike"]["vpn"]) and "l" not in ds.config["ike"]["vpn"]


def test_pending_edits_kept_over_a_restart(ds: Datastores, tmp_path: Path) -> None:
    ds.edit("candidate", ike(vpn("m") + "<vpn nc:operation='delete'><name>a</name></vpn>"),
            sid=1)
    ds.edit("candidate", ike(vpn("a")), sid=1)
    restarted = Datastores(ds.schema, tmp_path)
    commit_matches_replay(restarted, tmp_path)
    names = restarted.running.root.findall(f"{{{NS}}}ike/{{{NS}}}vpn/{{{NS}}}name")
    assert [n.text for n in names][-2:] == ["m", "a"]  # deleted and made again: at the end


def test_a_refused_commit_leaves_running_as_it_was(ds: Datastores) -> None:
    before = etree.tostring(ds.running.root)
    index = {k: dict(v) for k, v in ds.running.index.items()}
    ds.edit("candidate", ike(vpn("n") + vpn("b", tries=9)), sid=1)
    ds.edit("candidate", ike("<vpn nc:operation='delete'><name>a</name></vpn>"
                             "<vpn nc:operation='delete'><name>c</name></vpn>"), sid=1)
    ds.edit("candidate", ike(vpn("a")), sid=1)  # removed and put at the end: undone in place
    ds.edit("candidate", ike("<vpn><name>o</name><ike-policy><template>nope</template>"
                             "</ike-policy></vpn>"), sid=1, test_option="set")
    with pytest.raises(RpcError):
        ds.commit(sid=1)
    assert etree.tostring(ds.running.root) == before
    assert {k: dict(v) for k, v in ds.running.index.items()} == index
