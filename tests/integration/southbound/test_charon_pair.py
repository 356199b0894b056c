"""Two real charons in two network namespaces, driven by our Reconcilers over VICI.

Needs root and ``ip netns`` (CI runs as root): fails loudly, never skips, when unusable.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from nf.effective import (
    DosProtection,
    EffectiveConfig,
    EspProposal,
    GlobalOptions,
    IkePolicy,
    IkeProposal,
    IpsecPolicy,
    PreSharedKey,
    SecurityPolicy,
    TrafficSelector,
    Vpn,
)
from southbound.charon import CharonProcess
from southbound.charon_backend import DATAPLANES, VPN, CharonBackend
from southbound.charon_backend import PSK as PSK_KIND
from southbound.charon_supervisor import CharonSupervisor
from southbound.reconciler import Reconciler
from tests.support import sh

pytestmark = pytest.mark.e2e

PSK = PreSharedKey(name="ab", ids=("secgwa.example.net", "secgwb.example.net"),
                   secret="0seaJ31RfzHNRvUSH0oUYg7znTW0I=")
GLOBAL = GlobalOptions(retransmit_tries=3, retransmit_timeout=2.0, retransmit_base=1.8,
                       acquire_timeout=30, threads=16,
                       dos_protection=DosProtection(cookie_threshold=10, block_threshold=5,
                                                    init_limit_half_open=0))


def vpn(local: str, remote: str, lid: str, rid: str, lnet: str, rnet: str) -> Vpn:
    """The site-to-site example VPN, seen from one side."""
    return Vpn(
        name="siteA-siteB", local_address=local, remote_address=remote,
        local_id=lid, remote_id=rid,
        ike=IkePolicy(ike_proposals=(IkeProposal(id=1, enc_alg=("aes128-cbc",),
                                                 auth_alg=("hmac-sha512",),
                                                 dh_group=("modp2048",)),),
                      local_auth_method="pre-shared-key", remote_auth_method="pre-shared-key",
                      version=2, keying_tries=1, unique_sa="no", reauth_time="0s",
                      rekey_time="4h", dpd_delay="0s", aggressive=False, udp_encap=False,
                      mobike=False),
        ipsec=IpsecPolicy(esp_proposals=(EspProposal(id=1, enc_alg=("aes128-cbc",),
                                                     auth_alg=("hmac-sha256",), esn=(False,)),),
                          start_action="trap", close_action="trap", dpd_action="restart",
                          replay_window=32, rekey_time="1h", rekey_bytes=0, rekey_packets=0,
                          encap_copy_dscp=True, decap_copy_dscp=False, encap_copy_df=True),
        security_policies=(SecurityPolicy(name="trunk", local_ts=TrafficSelector(subnet=(lnet,)),
                                          remote_ts=TrafficSelector(subnet=(rnet,)),
                                          mode="tunnel", action="esp"),),
    )


def effective(v: Vpn | None) -> EffectiveConfig:
    """An effective config with the shared PSK and optionally one VPN."""
    return EffectiveConfig(enabled=True, global_options=GLOBAL, psks={"ab": PSK},
                           vpns={v.name: v} if v else {})


def with_esp_enc(eff: EffectiveConfig, enc: str) -> EffectiveConfig:
    """``eff`` with the ESP encryption algorithm of its VPN changed to ``enc``."""
    v = eff.vpns["siteA-siteB"]
    esp = replace(v.ipsec.esp_proposals[0], enc_alg=(enc,))
    v = replace(v, ipsec=replace(v.ipsec, esp_proposals=(esp,)))
    return replace(eff, vpns={**eff.vpns, v.name: v})


EFF_A = effective(vpn("198.51.100.1", "198.51.100.2", "secgwa.example.net",
                      "secgwb.example.net", "192.168.0.0/24", "192.168.99.0/24"))
EFF_B = effective(vpn("198.51.100.2", "198.51.100.1", "secgwb.example.net",
                      "secgwa.example.net", "192.168.99.0/24", "192.168.0.0/24"))


@pytest.fixture
def netns_pair() -> Iterator[tuple[str, str]]:
    """Namespaces A and B joined by a veth, with the protected addresses on lo."""
    if os.geteuid() != 0:
        pytest.fail("this test needs root (ip netns, veth, charon); run it as root")
    tag = f"{os.getpid() % 100000}"
    ns_a, ns_b = f"sbA{tag}", f"sbB{tag}"
    created: list[str] = []
    try:
        for ns in (ns_a, ns_b):
            res = sh("ip", "netns", "add", ns, check=False)
            if res.returncode != 0:
                pytest.fail(f"`ip netns add` is not usable here: {res.stderr.strip()}")
            created.append(ns)
        sh("ip", "link", "add", f"sva{tag}", "netns", ns_a, "type", "veth",
           "peer", "name", f"svb{tag}", "netns", ns_b)
        for ns, dev, addr, sub in ((ns_a, f"sva{tag}", "198.51.100.1/24", "192.168.0.1/32"),
                                   (ns_b, f"svb{tag}", "198.51.100.2/24", "192.168.99.1/32")):
            sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "addr", "add", sub, "dev", "lo")
        yield ns_a, ns_b
    finally:
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def ping(ns: str, tries: int = 8) -> subprocess.CompletedProcess[str]:
    """Ping B's protected address from A's; trap policies drop the first packets."""
    res = None
    for _ in range(tries):
        res = sh("ip", "netns", "exec", ns, "ping", "-c", "3", "-i", "0.2", "-W", "1",
                 "-I", "192.168.0.1", "192.168.99.1", check=False)
        if res.returncode == 0:
            return res
        time.sleep(0.5)
    assert res is not None
    return res


async def wait_for(pred: Any, timeout: float, what: str) -> Any:
    """Poll the async predicate ``pred`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await pred()
        if last:
            return last
        await asyncio.sleep(0.2)
    pytest.fail(f"timed out waiting for {what() if callable(what) else what}; last: {last!r}")


def established(state: dict[str, Any]) -> dict[str, Any] | None:
    """The established IKE SA whose installed child sent the most packets, if any.

    Both sides start the VPN, so there may be two IKE SAs; only one carries the traffic.
    """
    best, best_out = None, -1
    for sa in state["ike-sa"]:
        if sa.get("state") != "established":
            continue
        for child in sa.get("child-sa", []):
            if child.get("state") == "installed" and child.get("packets-out", 0) > best_out:
                best, best_out = {**sa, "child-sa": [child]}, child.get("packets-out", 0)
    return best


def test_site_to_site_pair(netns_pair: tuple[str, str], tmp_path: Path) -> None:
    """Two charons, reconciled from effective configs, carry a ping through ESP."""
    ns_a, ns_b = netns_pair
    charon_a = CharonProcess(tmp_path / "a", options=GLOBAL, netns=ns_a)
    charon_b = CharonProcess(tmp_path / "b", options=GLOBAL, netns=ns_b)
    try:
        asyncio.run(_scenario(ns_a, charon_a, charon_b))
    except BaseException:
        print(charon_a.log_tail(60))
        print(charon_b.log_tail(60))
        raise
    finally:
        charon_a.stop()
        charon_b.stop()
    assert not charon_a.alive() and not charon_b.alive()


async def _scenario(ns_a: str, charon_a: CharonProcess, charon_b: CharonProcess) -> None:
    # kernel-libipsec never raises acquires: trap must be emulated by starting at once. Only A
    # starts; B stays a responder, so there are no duplicate IKE SAs (which, without DPD,
    # may outlive their peer when both sides re-negotiate at the same time).
    rec_a = Reconciler(CharonBackend(charon_a.socket_path, DATAPLANES["kernel-libipsec"]))
    # B's data plane cannot trap either, but it must stay a responder: declare one that can
    # (its trap policies then simply never fire).
    rec_b = Reconciler(CharonBackend(charon_b.socket_path, DATAPLANES["kernel-netlink"]))
    sup_a = CharonSupervisor(charon_a, on_restart=rec_a.resync, interval=0.2)
    await asyncio.to_thread(charon_a.start)
    await asyncio.to_thread(charon_b.start)
    tasks = [asyncio.create_task(t) for t in (rec_a.run(), rec_b.run(), sup_a.run())]
    try:
        # the responder first: A negotiates as soon as it is loaded, and a CHILD SA refused by
        # a B that does not know the connection yet is not retried
        rec_b.set_desired(EFF_B)
        assert await rec_b.wait_converged(10), rec_b.status.entries()
        rec_a.set_desired(EFF_A)
        assert await rec_a.wait_converged(10), rec_a.status.entries()
        assert rec_a.status.counts == {"applied": 2, "pending": 0, "failed": 0}
        assert set(rec_a.observed[VPN]) == {"siteA-siteB"}
        assert set(rec_a.observed[PSK_KIND]) == {"ab"}

        res = await asyncio.to_thread(ping, ns_a)
        assert res.returncode == 0, f"ping through the tunnel failed:\n{res.stdout}{res.stderr}"

        state, _, stale = await rec_a.read_state()
        assert not stale
        sa = established(state)
        assert sa is not None, state
        assert state["ike-sas"]["total"] >= 1
        assert sa["name"] == "siteA-siteB" and sa["version"] == 2
        assert sa["enc-alg"] == "aes128-cbc" and sa["auth-alg"] == "hmac-sha512"
        assert sa["prf-alg"] == "hmac-sha512" and sa["dh-group"] == "modp2048"
        assert sa["local-id"] == "secgwa.example.net"
        assert sa["remote-address"] == "198.51.100.2"
        child = sa["child-sa"][0]
        assert child["name"] == "trunk" and child["protocol"] == "esp"
        assert child["enc-alg"] == "aes128-cbc" and child["auth-alg"] == "hmac-sha256"
        assert child["packets-out"] > 0, child
        assert child["local-ts"] == {"subnet": ["192.168.0.0/24"]}
        assert child["remote-ts"] == {"subnet": ["192.168.99.0/24"]}

        # Kill the daemon: the supervisor restarts it, the reconciler puts the world back.
        old_pid = charon_a.pid
        assert old_pid is not None
        os.kill(old_pid, signal.SIGKILL)

        async def restarted() -> bool:
            return charon_a.pid != old_pid and charon_a.alive() and sup_a.restarts == 1
        await wait_for(restarted, 15, "charon A to be restarted")
        await wait_for(lambda: _converged(rec_a), 15, "reconciler A to resync")
        assert set(rec_a.observed[VPN]) == {"siteA-siteB"}
        res = await asyncio.to_thread(ping, ns_a)
        assert res.returncode == 0, f"no tunnel after charon restart:\n{res.stdout}"

        # Change the ESP algorithm on both sides: the SAs are re-negotiated with it.
        eff_a, eff_b = with_esp_enc(EFF_A, "aes256-cbc"), with_esp_enc(EFF_B, "aes256-cbc")
        # One side after the other, as two operators' commits would be. (Both peers
        # re-negotiating in the same instant can leave crossed SAs with user-space ESP.)
        rec_b.set_desired(eff_b)
        assert await rec_b.wait_converged(10)
        log_from = charon_a.log_path.stat().st_size
        rec_a.set_desired(eff_a)
        assert await rec_a.wait_converged(10)

        async def rekeyed() -> bool:
            sa = established((await rec_a.read_state())[0])
            return sa is not None and sa["child-sa"][0]["enc-alg"] == "aes256-cbc"
        await wait_for(rekeyed, 15, "a CHILD SA with aes256-cbc")
        # charon's load-conn closed and initiated the changed `start` child itself, once; a
        # terminate and initiate of ours on top destroyed its IKE SA while connecting, and
        # the peer kept it (tests/kernel, test_aes_gcm)
        with open(charon_a.log_path, "rb") as f:
            f.seek(log_from)
            since = f.read().decode(errors="replace")
        assert since.count("initiating IKE_SA") == 1, since
        assert "vici terminate" not in since, since
        res = await asyncio.to_thread(ping, ns_a)
        assert res.returncode == 0, f"no tunnel after the algorithm change:\n{res.stdout}"
        sa = established((await rec_a.read_state())[0])
        assert sa is not None and sa["child-sa"][0]["enc-alg"] == "aes256-cbc", sa

        # Remove the VPN on A: config unloaded and SAs gone on both sides.
        rec_a.set_desired(effective(None))
        assert await rec_a.wait_converged(10)
        assert rec_a.observed[VPN] == {} and len(rec_a.status) == 1  # the key stays

        left: list[Any] = []

        async def gone() -> bool:
            # (B may retry once, leaving an unnamed half-open responder SA on A for a while.
            # And when both sides re-negotiated the algorithm change at the same instant, B
            # can keep a responder IKE SA whose CHILD SA it refused (NO_PROPOSAL_CHOSEN,
            # "keeping IKE_SA"); A never had it, and without DPD it lingers: no tunnel, so
            # only tunnels count on B.)
            sa_a = [s for s in (await rec_a.read_state())[0]["ike-sa"]
                    if s.get("name") == "siteA-siteB"]
            sa_b = [s for s in (await rec_b.read_state())[0]["ike-sa"]
                    if s.get("state") == "established" and s.get("child-sa")]
            left[:] = [sa_a, sa_b]
            return not sa_a and not sa_b
        await wait_for(gone, 15, lambda: f"the SAs to go away (left: {left})")
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _converged(rec: Reconciler) -> bool:
    return rec.syncs >= 2 and await rec.wait_converged(0.5)
