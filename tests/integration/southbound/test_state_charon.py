"""The state engine against two real charons (5.9.8, kernel-libipsec) in two namespaces: after a
ping through the tunnel its snapshot holds the established SAs with real values, the traffic
counted, charon's IKE message counters and thread pool, the SPIs swanctl prints, and the SA
events that made it refresh.

Needs root and ``ip netns`` (CI runs as root): fails loudly, never skips, when unusable.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from nf.observed import StateChange, steady
from southbound import charon_state
from southbound.charon import CharonProcess
from southbound.charon_backend import DATAPLANES, CharonBackend
from southbound.charon_conf import RESERVED_THREADS
from southbound.events import SaEventListener
from southbound.sa_state import IkeSaConverter
from southbound.state_engine import StateEngine
from southbound.state_reader import StateReader
from southbound.vici_client import ViciClient
from tests.integration.southbound.test_charon_pair import (  # noqa: F401 - the fixture
    GLOBAL,
    netns_pair,
)
from tests.integration.southbound.test_dataplane_limits import pair, start_and_load
from tests.support import sh

pytestmark = pytest.mark.e2e
PINGS = 5
IP_PACKET = 84  # ping's default: 56 bytes of data + ICMP header (8) + IPv4 header (20)


def child_of(snapshot_tree: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The established IKE SA of the VPN and its installed CHILD SA."""
    for sa in snapshot_tree["ike-sa"]:
        if sa.get("name") == "siteA-siteB" and sa.get("state") == "established":
            for child in sa.get("child-sa", []):
                if child.get("state") == "installed":
                    return sa, child
    raise AssertionError(f"no established SA with an installed CHILD SA: {snapshot_tree}")


def swanctl_spis(socket_path: Path) -> tuple[set[str], set[str]]:
    """(IKE SPIs, ESP SPIs) as `swanctl --list-sas` prints them."""
    out = subprocess.run(["swanctl", "--list-sas", "--uri", f"unix://{socket_path}"],
                         capture_output=True, text=True, check=True, timeout=10).stdout
    ike = set(re.findall(r"\b([0-9a-f]{16})_[ir]\b", out))
    esp = set(re.findall(r"^\s+(?:in|out)\s+([0-9a-f]{8}),", out, re.M))
    assert ike and esp, out
    return ike, esp


def test_state_of_a_real_tunnel(netns_pair: tuple[str, str], tmp_path: Path) -> None:  # noqa: F811
    ns_a, ns_b = netns_pair
    charons = [CharonProcess(tmp_path / side, options=GLOBAL, netns=ns)
               for side, ns in (("a", ns_a), ("b", ns_b))]
    try:
        asyncio.run(_scenario(ns_a, charons))
    except BaseException:
        for c in charons:
            print(c.log_tail(60))
        raise
    finally:
        for c in charons:
            c.stop()


async def _scenario(ns_a: str, charons: list[CharonProcess]) -> None:
    a_vpn, b_vpn = pair()
    await asyncio.to_thread(start_and_load, charons, (a_vpn, b_vpn))
    a = charons[0]
    backend = CharonBackend(a.socket_path, DATAPLANES["kernel-libipsec"])
    engine = StateEngine(StateReader(backend.read_state, 2.5).read, interval=60)
    listener = SaEventListener(a.socket_path, engine.sa_event, asyncio.get_running_loop())
    listener.start()
    try:
        empty = await engine.snapshot()
        assert not empty.stale and empty.tree["ike-sa"] == []
        assert empty.tree["ike-sas"] == {"total": 0, "half-open": 0}
        changes = engine.changes()
        await asyncio.sleep(1)  # the listener registers
        with ViciClient(a.socket_path, timeout=20) as vc:
            await asyncio.to_thread(vc.initiate, child="trunk", ike=a_vpn.name)
        # the SA events reached the engine: each published with a snapshot read after it
        seen: list[StateChange] = []
        while not any(c.reason == "sa-event" and c.event and c.event["kind"] == "child"
                      and c.event["event"] == "up" for c in seen):
            seen.append(await asyncio.wait_for(anext(changes), 10))
        ups = [c for c in seen if c.reason == "sa-event"]
        assert {(c.event["kind"], c.event["event"]) for c in ups if c.event} >= {
            ("ike", "up"), ("child", "up")}
        assert ups[-1].snapshot.tree["ike-sa"], "an SA event published a state without it"

        before = await engine.snapshot(max_age=0)
        _, child0 = child_of(before.tree)
        res = await asyncio.to_thread(
            sh, "ip", "netns", "exec", ns_a, "ping", "-c", str(PINGS), "-i", "0.2", "-W", "2",
            "-I", "192.168.0.1", "192.168.99.1", check=False)
        assert res.returncode == 0, res.stdout + res.stderr

        snap = await engine.snapshot(max_age=0)
        assert not snap.stale and snap.version > before.version
        sa, child = child_of(snap.tree)
        # the IKE SA as charon negotiated it, typed
        assert sa["version"] == 2 and sa["initiator"] is True
        assert sa["local-address"] == "198.51.100.1" and sa["remote-address"] == "198.51.100.2"
        assert sa["local-id"] == "secgwa.example.net" and sa["remote-id"] == "secgwb.example.net"
        assert (sa["enc-alg"], sa["auth-alg"], sa["prf-alg"], sa["dh-group"]) == (
            "aes128-cbc", "hmac-sha512", "hmac-sha512", "modp2048")
        assert 0 <= sa["established-time"] < 60 and sa["rekey-time"] > 0
        assert sa["child-sa-count"] >= 1
        # the CHILD SA: algorithms, selectors, lifetimes, and the traffic the ping sent
        assert child["name"] == "trunk" and child["protocol"] == "esp"
        assert child["mode"] == "tunnel" and child["reqid"] >= 1
        assert (child["enc-alg"], child["auth-alg"]) == ("aes128-cbc", "hmac-sha256")
        assert child["local-ts"] == {"subnet": ["192.168.0.0/24"]}
        assert child["remote-ts"] == {"subnet": ["192.168.99.0/24"]}
        assert 0 < child["rekey-time"] < child["life-time"]
        assert child["packets-out"] - child0.get("packets-out", 0) >= PINGS
        assert child["bytes-out"] - child0.get("bytes-out", 0) >= PINGS * IP_PACKET
        assert child["packets-in"] - child0.get("packets-in", 0) >= PINGS  # the replies
        assert child["bytes-in"] - child0.get("bytes-in", 0) >= PINGS * IP_PACKET
        assert child["use-out"] <= 5 and child["use-in"] <= 5
        assert sa["bytes-out"] >= child["bytes-out"]  # the peer's totals
        # charon's counters plugin: A initiated one IKE SA
        assert snap.tree["counters"]["ike-init-out-req"] >= 1
        assert snap.tree["counters"]["ike-auth-out-req"] >= 1
        assert snap.tree["counters"]["ike-init-in-resp"] >= 1
        (vpn_counters,) = [v for v in snap.tree["vpn-counters"] if v["name"] == a_vpn.name]
        assert vpn_counters["ike-init-out-req"] >= 1 and vpn_counters["ike-auth-in-resp"] >= 1
        # the thread pool charon runs: the model's threads plus the reserved ones we add
        conf = a.conf_path.read_text()
        threads = int(re.search(r"^\s*threads\s*=\s*(\d+)", conf, re.M)[1])
        assert threads == GLOBAL.threads + RESERVED_THREADS
        workers = snap.tree["task-processing"]["worker-threads"]
        assert workers["total"] == threads
        assert workers["idle"] + sum(workers[p] for p in ("critical", "high", "medium", "low")
                                     ) == threads
        assert snap.tree["ike-sas"]["total"] >= 1
        # a full read again: the SA's message, its clocks apart the same, is not decoded
        # (southbound/sa_packets.py); the entry is what a fresh conversion gives
        packets = dict(backend._ike_sas._packets)
        assert len(packets) == len(snap.tree["ike-sa"])  # charon's messages remembered
        again = await engine.snapshot(max_age=0)
        fresh = await asyncio.to_thread(charon_state.read_all, a.socket_path, 2.5,
                                        IkeSaConverter(), False)
        assert steady(again.tree["ike-sa"]) == steady(fresh["ike-sa"])
        assert again.tree["ike-sa"][0]["established-time"] >= sa["established-time"]
        assert abs(again.tree["ike-sa"][0]["rekey-time"] - fresh["ike-sa"][0]["rekey-time"]) <= 2
        # the SPIs are the ones swanctl shows
        ike_spis, esp_spis = await asyncio.to_thread(swanctl_spis, a.socket_path)
        assert {sa["initiator-spi"], sa["responder-spi"]} <= ike_spis
        assert {child["spi-in"], child["spi-out"]} <= esp_spis
    finally:
        await asyncio.to_thread(listener.stop)
