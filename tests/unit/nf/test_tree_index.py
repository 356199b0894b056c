"""The entry index of a datastore tree (nf/tree.py) that reads by key now go through
(northbound/narrow.py): after every kind of change it holds exactly the entries of the tree,
each mapped to the live element."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lxml import etree

from nf.confirmed import ConfirmedCommits
from nf.datastore import Datastores
from nf.errors import RpcError
from nf.schema import Schema
from nf.tree import Tree

NS = "urn:ipsec-nf:yang:ipsec-nf"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"

BASE = ('<ike-policy-template><name>t</name><ike-proposal><id>1</id><enc-alg>aes128-cbc'
        "</enc-alg><auth-alg>hmac-sha256</auth-alg><dh-group>modp2048</dh-group>"
        "</ike-proposal></ike-policy-template><ipsec-policy-template><name>p</name>"
        "<esp-proposal><id>1</id><enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha256</auth-alg>"
        "</esp-proposal></ipsec-policy-template>")


def vpn(i: int, op: str = "", local_id: str = "gw.example.net") -> str:
    attr = f' nc:operation="{op}"' if op else ""
    if op in ("delete", "remove"):
        return f"<vpn{attr}><name>vpn{i}</name></vpn>"
    return (f"<vpn{attr}><name>vpn{i}</name><ike-policy><template>t</template></ike-policy>"
            "<ipsec-policy><template>p</template></ipsec-policy>"
            f"<local-address>198.51.100.1</local-address><remote-address>203.0.113.{i + 1}"
            f"</remote-address><local-id>{local_id}</local-id><security-policy><name>sp"
            "</name><local-ts><subnet>192.168.0.0/24</subnet></local-ts><remote-ts><subnet>"
            f"10.0.{i}.0/24</subnet></remote-ts></security-policy></vpn>")


def config(body: str) -> etree._Element:
    return etree.fromstring(f'<config xmlns="{NC}" xmlns:nc="{NC}"><ike xmlns="{NS}">{body}'
                            "</ike></config>")


def assert_index(tree: Tree) -> None:
    """The index equals one built afresh from the tree, element for element."""
    fresh = Tree(tree.root, tree.top, prune=False)

    def ids(index: dict) -> dict:
        return {k: {key: id(el) for key, el in v.items()} for k, v in index.items() if v}

    assert ids(tree.index) == ids(fresh.index)
    for entries in tree.index.values():
        for el in entries.values():
            assert el.getparent() is not None and el.getparent().getparent() is tree.root


def names(tree: Tree) -> set[str]:
    return {k[0] for (_, tag), v in tree.index.items() if tag == f"{{{NS}}}vpn" for k in v}


@pytest.fixture
def ds(schema: Schema, tmp_path: Path) -> Datastores:
    d = Datastores(schema, tmp_path)
    d.edit("running", config(BASE + "".join(vpn(i) for i in range(5))), sid=1)
    return d


def test_index_follows_edits_deletes_and_replaces(ds: Datastores) -> None:
    ds.edit("candidate", config(vpn(5) + vpn(1, "delete") + vpn(2, "replace", "x.example.net")
                                + vpn(3, "remove")), sid=1)
    assert_index(ds.candidate)
    assert names(ds.candidate) == {"vpn0", "vpn2", "vpn4", "vpn5"}
    assert_index(ds.running)
    assert names(ds.running) == {f"vpn{i}" for i in range(5)}
    ds.commit(1)
    assert_index(ds.running)
    assert names(ds.running) == {"vpn0", "vpn2", "vpn4", "vpn5"}
    found = ds.running.find_entry(ds.running.root.find(f"{{{NS}}}ike"), f"{{{NS}}}vpn",
                                  ("vpn2",))
    assert found.findtext(f"{{{NS}}}local-id") == "x.example.net"
    ds.edit("running", config(vpn(6)), sid=1)  # running edited directly
    assert_index(ds.running)
    assert_index(ds.candidate)
    assert "vpn6" in names(ds.running) and "vpn6" in names(ds.candidate)


def test_index_after_a_refused_edit_is_rolled_back(ds: Datastores) -> None:
    bad = vpn(7).replace("198.51.100.1", "300.1.1.1")
    with pytest.raises(RpcError):
        ds.edit("candidate", config(vpn(6) + vpn(0, "delete") + bad), sid=1)
    assert_index(ds.candidate)
    assert names(ds.candidate) == {f"vpn{i}" for i in range(5)}
    with pytest.raises(RpcError):  # refused by validation after the edit was made
        ds.edit("running", config(vpn(8) + vpn(1, "delete")
                                  + vpn(2).replace("<template>t</template>",
                                                   "<template>missing</template>")), sid=1)
    assert_index(ds.running)
    assert names(ds.running) == {f"vpn{i}" for i in range(5)}


def test_index_after_continue_on_error(ds: Datastores) -> None:
    with pytest.raises(RpcError):  # the delete of what is not there fails alone
        ds.edit("candidate", config(vpn(6) + vpn(99, "delete") + vpn(0, "delete")), sid=1,
                error_option="continue-on-error")
    assert_index(ds.candidate)
    assert names(ds.candidate) == {"vpn1", "vpn2", "vpn3", "vpn4", "vpn6"}


def test_index_after_the_whole_container_goes_and_comes_back(ds: Datastores) -> None:
    ds.edit("candidate", etree.fromstring(
        f'<config xmlns="{NC}" xmlns:nc="{NC}"><ike xmlns="{NS}" nc:operation="delete"/>'
        "</config>"), sid=1)
    assert_index(ds.candidate)
    assert names(ds.candidate) == set()
    ds.commit(1)
    assert_index(ds.running)
    ds.edit("candidate", config(BASE + vpn(9)), sid=1)
    ds.commit(1)
    assert_index(ds.running)
    assert names(ds.running) == {"vpn9"}


def test_index_after_discard_and_confirmed_commit_cancel(ds: Datastores) -> None:
    async def run() -> None:
        cc = ConfirmedCommits(ds)
        ds.edit("candidate", config(vpn(5) + vpn(0, "delete")), sid=1)
        ds.discard_changes(1)
        assert_index(ds.candidate)
        assert names(ds.candidate) == {f"vpn{i}" for i in range(5)}
        ds.edit("candidate", config(vpn(5) + vpn(0, "delete")), sid=1)
        cc.commit(1, confirmed=True, timeout=60)
        assert_index(ds.running)
        assert names(ds.running) == {"vpn1", "vpn2", "vpn3", "vpn4", "vpn5"}
        cc.cancel(1, None)
        assert_index(ds.running)
        assert_index(ds.candidate)
        assert names(ds.running) == {f"vpn{i}" for i in range(5)}
        assert names(ds.candidate) == {f"vpn{i}" for i in range(5)}
    asyncio.run(run())


def test_a_finished_transaction_is_freed_at_once(tmp_path: Path) -> None:
    """A transaction's undo records name the tree, not the transaction: no reference cycle
    keeps its before-images and removed entries alive until the cycle collector's next pass
    (10,000 removed VPNs held 150 MiB after their removal that way)."""
    import gc
    import weakref

    ds = Datastores(Schema(), tmp_path)
    ds.edit("running", config(BASE + vpn(1) + vpn(2) + vpn(3)), sid=1)
    tree = ds.running
    top = tree.root.find(f"{{{NS}}}ike")
    one, two, three = (tree.find_entry(top, f"{{{NS}}}vpn", (f"vpn{i}",)) for i in (1, 2, 3))
    txn = tree.begin()
    txn.remove(top, one)  # every kind of undo record
    txn.replace(two, etree.fromstring(etree.tostring(two)))
    txn.set_text(three.find(f"{{{NS}}}local-id"), "other.example.net")
    txn.append(top, etree.fromstring(etree.tostring(one)))
    gone = weakref.ref(txn)
    gc.disable()
    try:
        del txn
        assert gone() is None
    finally:
        gc.enable()
    txn = tree.begin()  # and undoing still puts everything back
    txn.remove(top, tree.find_entry(top, f"{{{NS}}}vpn", ("vpn2",)))
    txn.rollback()
    assert tree.find_entry(top, f"{{{NS}}}vpn", ("vpn2",)) is not None
    assert_index(tree)
