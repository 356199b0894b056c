"""The state of /ike/svti (southbound/svti_state.py): the mapping from a real rtnetlink link
message (a veth pair in namespaces of the test's own: the host kernel makes no xfrm
interfaces, the kernel VM's route-based test reads a real one), what the reader reports of
interfaces that are not the gateway's, and the served tree checked by libyang through the
gateway's own state engine."""

from __future__ import annotations

import asyncio
import copy
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from nf.schema import Schema
from nf.state import merge_state
from southbound.charon_backend import DATAPLANES, CharonBackend
from southbound.svti_state import COUNTERS, MODULE_TOP, link_state, read
from southbound.xfrm_interfaces import ALIAS
from tests.fakes.vici_server import FakeCharon
from tests.support import libyang_printed
from tools.app import App

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS = "urn:ipsec-nf:yang:ipsec-nf"
N = {"n": NS}
A, B = f"svs{os.getpid()}a", f"svs{os.getpid()}b"  # namespaces
IF = "sv0"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def veth() -> Iterator[None]:
    """``sv0`` in namespace A (192.0.2.1/24, with the gateway's alias), its peer in B
    (192.0.2.2/24), both up."""
    ip("netns", "add", A)
    ip("netns", "add", B)
    try:
        ip("-n", A, "link", "add", IF, "type", "veth", "peer", "name", "peer0",
           "netns", B)
        ip("-n", A, "link", "set", IF, "alias", ALIAS)
        ip("-n", A, "addr", "add", "192.0.2.1/24", "dev", IF)
        ip("-n", B, "addr", "add", "192.0.2.2/24", "dev", "peer0")
        ip("-n", A, "link", "set", IF, "up")
        ip("-n", B, "link", "set", "peer0", "up")
        yield
    finally:
        ip("netns", "del", A)
        ip("netns", "del", B)


def _link(name: str) -> object:
    from pyroute2 import IPRoute

    with IPRoute(netns=A) as ipr:
        return ipr.link("get", ifname=name)[0]


def _status(name: str, want: str) -> str:
    """The interface's oper-status once it is ``want`` (the kernel's link watch sets the
    operational state a moment after the change: up to 5 s), else the last one read."""
    deadline = time.monotonic() + 5
    while (got := link_state(_link(name))["oper-status"]) != want \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    return got


def test_state_of_a_real_link_message_follows_up_down_and_counts(veth: None) -> None:
    subprocess.run(["ip", "netns", "exec", A, "ping", "-c", "2", "-i", "0.2", "-W", "2",
                    "192.0.2.2"], check=True, capture_output=True)
    st = link_state(_link(IF))
    assert st["oper-status"] == "up"
    assert st["mtu"] == 1500
    assert isinstance(st["if-index"], int) and st["if-index"] > 1
    assert set(st["counters"]) == set(COUNTERS)
    assert all(isinstance(v, int) for v in st["counters"].values())
    # the two echo requests and replies (and ARP) went through it
    assert st["counters"]["in-packets"] >= 2 and st["counters"]["out-packets"] >= 2
    assert st["counters"]["in-octets"] >= 2 * 84 and st["counters"]["out-octets"] >= 2 * 84
    assert st["counters"]["in-errors"] == st["counters"]["out-errors"] == 0

    ip("-n", A, "link", "set", IF, "down")
    assert _status(IF, "down") == "down"
    ip("-n", A, "link", "set", IF, "up")
    assert _status(IF, "up") == "up"
    # up, but no traffic can pass: the peer is down (no IFF_RUNNING)
    ip("-n", B, "link", "set", "peer0", "down")
    assert _status(IF, "down") == "down"


def test_an_interface_not_made_by_the_gateway_is_absent(veth: None) -> None:
    # sv0 carries the alias but is no xfrm interface; lo is not the gateway's at all
    assert read([IF, "lo", "nothere"], netns=A) == {MODULE_TOP: {"svti": [
        {"name": "lo", "state": {"oper-status": "absent"}},
        {"name": "nothere", "state": {"oper-status": "absent"}},
        {"name": IF, "state": {"oper-status": "absent"}}]}}
    assert read([], netns=A) == {}



def test_the_served_tree_is_valid(tmp_path: Path, veth: None) -> None:
    name = f"nosv{os.getpid() % 100000}"  # not in the test's namespace: absent
    app = App(tmp_path / "gw", backend="kernel-netlink")
    app.ds.edit("running", etree.fromstring(
        f'<config xmlns="{NC}"><ike xmlns="{NS}"><svti><name>{name}</name>'
        f"<svti-id>7</svti-id></svti><svti><name>{IF}</name><svti-id>8</svti-id></svti>"
        "</ike></config>"), sid=1)
    with FakeCharon() as fake:
        fake.stats = {"ikesas": {"total": "0", "half-open": "0"}}
        backend = CharonBackend(fake.path, DATAPLANES["kernel-netlink"])
        app.reconciler.state.read_fn = backend.read_state
        state = asyncio.run(app.read_state())  # the gateway's own state engine and reader
    assert state[MODULE_TOP] == {"svti": [
        {"name": name, "state": {"oper-status": "absent"}},
        {"name": IF, "state": {"oper-status": "absent"}}]}
    # what an xfrm interface of ours reads as: the real link message's state
    state[MODULE_TOP]["svti"][1]["state"] = link_state(_link(IF))
    schema = Schema()
    doc = libyang_printed(schema, merge_state([copy.deepcopy(r) for r in app.ds.tree("running")],
                                     state))
    up = doc.find(f"n:ike/n:svti[n:name='{IF}']/n:state", N)
    assert up.findtext("n:oper-status", namespaces=N) == "up"
    assert up.findtext("n:mtu", namespaces=N) == "1500"
    assert int(up.findtext("n:counters/n:out-packets", namespaces=N)) >= 0
    assert doc.findtext(f"n:ike/n:svti[n:name='{name}']/n:state/n:oper-status",
                        namespaces=N) == "absent"
    assert doc.find(f"n:ike/n:svti[n:name='{name}']/n:state/n:if-index", N) is None
