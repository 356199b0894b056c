"""gNMI path translation and the ON_CHANGE diff (pure: the schema, no server)."""

from __future__ import annotations

import pytest
from pygnmi.create_gnmi_path import gnmi_path_generator
from pygnmi.spec.v080 import gnmi_pb2 as pb

from nf.paths import Step
from nf.schema import Schema
from northbound.gnmi import data, paths
from northbound.gnmi.subscribe import diff


@pytest.fixture(scope="module")
def top() -> dict:
    return Schema().state_top


def steps(text: str, top: dict, prefix: str | None = None) -> tuple[Step, ...]:
    return paths.parse(gnmi_path_generator(prefix) if prefix else None,
                       gnmi_path_generator(text), top)


@pytest.mark.parametrize(("text", "xpath"), [
    ("/", "/"),
    ("/ike", "/ipsec-nf:ike"),
    ("/ipsec-nf:ike/vpn[name=a]/local-address", "/ipsec-nf:ike/vpn[name='a']/local-address"),
    ("/ike/vpn[name=*]/local-address", "/ipsec-nf:ike/vpn/local-address"),
    ("/ike/vpn/security-policy[name=it's]", "/ipsec-nf:ike/vpn/security-policy[name=\"it's\"]"),
    ("/ike/*/name", "/ipsec-nf:ike/*/name"),
    ("/ike/.../bytes-in", "/ipsec-nf:ike//bytes-in"),
    ("/ike/...", "/ipsec-nf:ike"),
    ("/nacm/rule-list[name=r]", "/ietf-netconf-acm:nacm/rule-list[name='r']"),
    ("/ike/ike-sa[unique-id=3]/child-sa", "/ipsec-nf:ike/ike-sa[unique-id='3']/child-sa"),
])
def test_paths_become_libyang_xpaths(text: str, xpath: str, top: dict) -> None:
    assert paths.xpath(steps(text, top)) == xpath


def test_origin_prefix_and_module_names(top: dict) -> None:
    # pygnmi sends "ipsec-nf:ike/..." as origin ipsec-nf + elem ike
    assert gnmi_path_generator("ipsec-nf:ike/vpn").origin == "ipsec-nf"
    assert steps("ipsec-nf:ike/vpn", top) == (Step("ipsec-nf", "ike"), Step("ipsec-nf", "vpn"))
    assert steps("vpn[name=a]", top, prefix="/ike") == (
        Step("ipsec-nf", "ike"), Step("ipsec-nf", "vpn", (("name", "a"),)))
    p = pb.Path(elem=[pb.PathElem(name="ike")], origin="rfc7951")
    assert paths.parse(None, p, top) == (Step("ipsec-nf", "ike"),)


@pytest.mark.parametrize("text", [
    "/ike/no-such-node", "/ike/vpn[colour=red]", "/nosuch:ike", "/ike/*[name=a]",
])
def test_paths_outside_the_schema_are_refused(text: str, top: dict) -> None:
    with pytest.raises(paths.PathError):
        steps(text, top)
    with pytest.raises(paths.PathError):
        paths.parse(None, pb.Path(elem=[pb.PathElem(name="ike")], origin="openconfig"), top)
    with pytest.raises(paths.PathError):
        paths.parse(None, pb.Path(element=["ike"]), top)


def test_wildcards_are_told_apart_from_single_nodes(top: dict) -> None:
    assert paths.has_wildcards(steps("/ike/vpn", top), top)
    assert paths.has_wildcards(steps("/ike/vpn[name=*]/local-id", top), top)
    assert paths.has_wildcards(steps("/ike/.../name", top), top)
    assert not paths.has_wildcards(steps("/ike/vpn[name=a]/local-id", top), top)
    assert not paths.has_wildcards(steps("/ike/global-options", top), top)


def test_data_paths_go_back_to_gnmi_paths() -> None:
    s = paths.from_data_path("/ipsec-nf:ike/vpn[name='a']/security-policy[name='p']/local-ts")
    g = paths.to_gnmi(s)
    assert [e.name for e in g.elem] == ["ipsec-nf:ike", "vpn", "security-policy", "local-ts"]
    assert dict(g.elem[1].key) == {"name": "a"}
    assert paths.to_gnmi(s, "ipsec-nf").elem[0].name == "ike"  # the origin names the module
    leaf_list = paths.from_data_path("/ipsec-nf:ike/pre-shared-key[name='k']/id[.='x']")
    assert leaf_list[-1] == Step("ipsec-nf", "id")
    assert paths.text(g) == "/ipsec-nf:ike/vpn[name=a]/security-policy[name=p]/local-ts"


def test_leaves_carry_list_keys_and_leaf_lists_whole(top: dict) -> None:
    val = {"ipsec-nf:ike": {"ike-sa": [{"unique-id": 1, "state": "established",
                                        "child-sa": [{"unique-id": 10, "bytes-in": "5"}]}],
                            "pre-shared-key": [{"name": "k", "id": ["a", "b"]}]}}
    out = data.leaves((), val, top)
    ike = Step("ipsec-nf", "ike")
    sa = Step("ipsec-nf", "ike-sa", (("unique-id", "1"),))
    child = Step("ipsec-nf", "child-sa", (("unique-id", "10"),))
    psk = Step("ipsec-nf", "pre-shared-key", (("name", "k"),))
    assert out[(ike, sa, Step("ipsec-nf", "state"))] == "established"
    assert out[(ike, sa, child, Step("ipsec-nf", "bytes-in"))] == "5"
    assert out[(ike, psk, Step("ipsec-nf", "id"))] == ["a", "b"]
    assert len(out) == 6


def test_diff_sends_what_changed_and_deletes_the_highest_node_gone() -> None:
    ike, sa1, sa2 = (Step("m", "ike"), Step("m", "ike-sa", (("unique-id", "1"),)),
                     Step("m", "ike-sa", (("unique-id", "2"),)))
    st, uid = Step("m", "state"), Step("m", "unique-id")
    old = {(ike, sa1, uid): 1, (ike, sa1, st): "established"}
    new = {(ike, sa2, uid): 2, (ike, sa2, st): "established"}
    updates, deletes = diff(old, new, floor=2)
    assert updates == new and deletes == [(ike, sa1)]
    # only the changed leaf; nothing at all when nothing changed
    changed = {**new, (ike, sa2, st): "rekeying"}
    assert diff(new, changed, 2) == ({(ike, sa2, st): "rekeying"}, [])
    assert diff(changed, changed, 2) == ({}, [])
    # a leaf gone from an entry that stays: the leaf; never above the subscribed depth
    assert diff(changed, {(ike, sa2, uid): 2}, 2) == ({}, [(ike, sa2, st)])
    assert diff(old, {}, floor=2)[1] == [(ike, sa1)]
    assert diff(old, {}, floor=1)[1] == [(ike,)]


def test_a_subscription_that_is_not_read_holds_a_bounded_backlog() -> None:
    import asyncio

    from northbound.gnmi.context import EVENT_CAP, put_coalesced
    q: asyncio.Queue = asyncio.Queue()
    for i in range(10 * EVENT_CAP):
        put_coalesced(q, ("state", i))
        if i % 7 == 0:
            put_coalesced(q, ("config", None))
    assert q.qsize() <= EVENT_CAP + 1
    items = [q.get_nowait() for _ in range(q.qsize())]
    assert ("config", None) in items  # a config change is never folded away
    assert items[-1] == ("state", 10 * EVENT_CAP - 1)  # the newest state is kept, last
