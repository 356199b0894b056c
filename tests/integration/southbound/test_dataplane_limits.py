"""What a data plane cannot do, proven against real charons: under kernel-libipsec every CHILD
SA with ESN, AH or transport mode fails in charon with its own message, and the backend's
``DataPlane`` declares exactly these (so they are refused at commit, tests/e2e/
test_model_refusals.py), while a plain ESP tunnel works.

Needs root and ``ip netns`` (CI runs as root): fails loudly, never skips, when unusable.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from nf.effective import AhProposal, EffectiveConfig, Vpn
from southbound.charon import CharonProcess
from southbound.charon_backend import DATAPLANES, refusals
from southbound.convert import conn_for, shared_for
from southbound.vici_client import ViciClient, ViciError
from tests.integration.southbound.test_charon_pair import (  # noqa: F401 - the fixture
    PSK,
    netns_pair,
    vpn,
)

pytestmark = pytest.mark.e2e
LIBIPSEC = DATAPLANES["kernel-libipsec"]


def pair(lnet: str = "192.168.0.0/24", rnet: str = "192.168.99.0/24") -> tuple[Vpn, Vpn]:
    """The site-to-site VPN seen from A and from B, started by hand (no start action)."""
    a = vpn("198.51.100.1", "198.51.100.2", "secgwa.example.net", "secgwb.example.net",
            lnet, rnet)
    b = vpn("198.51.100.2", "198.51.100.1", "secgwb.example.net", "secgwa.example.net",
            rnet, lnet)
    return tuple(replace(v, ipsec=replace(v.ipsec, start_action="none", close_action="none"))
                 for v in (a, b))  # type: ignore[return-value]


def esn(v: Vpn) -> Vpn:
    esp = tuple(replace(p, esn=True) for p in v.ipsec.esp_proposals)
    return replace(v, ipsec=replace(v.ipsec, esp_proposals=esp))


def ah(v: Vpn) -> Vpn:
    sps = tuple(replace(sp, action="ah") for sp in v.security_policies)
    return replace(v, security_policies=sps, ipsec=replace(
        v.ipsec, ah_proposals=(AhProposal(id=1, auth_alg=("hmac-sha256",)),)))


def transport(v: Vpn) -> Vpn:
    """Transport mode between the two gateways' own addresses."""
    sps = tuple(replace(sp, mode="transport",
                        local_ts=replace(sp.local_ts, subnet=f"{v.local_address}/32"),
                        remote_ts=replace(sp.remote_ts, subnet=f"{v.remote_address}/32"))
                for sp in v.security_policies)
    return replace(v, security_policies=sps)


CASES = {  # what is changed, charon's message, the leaves our check names
    "esn": (esn, "IPsec SA: ESN not supported",
            {("ipsec-policy", "esp-proposal[id='1']", "esn")}),
    "ah": (ah, "IPsec SA: protocol not supported",
           {("security-policy[name='trunk']", "action"), ("ipsec-policy", "ah-proposal[id='1']")}),
    "transport": (transport, "IPsec SA: unsupported mode",
                  {("security-policy[name='trunk']", "mode")}),
}


def negotiate(tmp_path: Path, ns: tuple[str, str], a: Vpn, b: Vpn) -> tuple[str, str, bool]:
    """Load A and B into two kernel-libipsec charons, initiate from A: (log A, log B, ok)."""
    charons = [CharonProcess(tmp_path / side, netns=n) for side, n in zip("ab", ns, strict=True)]
    try:
        for c, v in zip(charons, (a, b), strict=True):
            c.start()
            with ViciClient(c.socket_path) as vc:
                vc.load_shared("ab", shared_for(PSK))
                vc.load_conn(v.name, conn_for(v, trap_as_start=False))
        ok = True
        with ViciClient(charons[0].socket_path, timeout=15) as vc:
            try:
                vc.initiate(child="trunk", ike=a.name)
            except ViciError:
                ok = False
        time.sleep(0.3)  # the responder's log lines
        return charons[0].log_tail(200), charons[1].log_tail(200), ok
    finally:
        for c in charons:
            c.stop()


@pytest.mark.parametrize("case", sorted(CASES))
def test_libipsec_fails_what_its_dataplane_declares(
        netns_pair: tuple[str, str], tmp_path: Path, case: str) -> None:  # noqa: F811
    change, message, leaves = CASES[case]
    a, b = (change(v) for v in pair())
    log_a, log_b, ok = negotiate(tmp_path, netns_pair, a, b)
    assert not ok, "the CHILD SA was established"
    assert message in log_a + log_b, log_a + log_b
    assert "unable to install inbound and outbound IPsec SA (SAD) in kernel" in log_a + log_b
    # the same setting is what the data plane declares it cannot do: refused at commit
    found = refusals(LIBIPSEC, EffectiveConfig(vpns={a.name: a}))
    assert {r.leaf for r in found} == leaves and {r.vpn for r in found} == {a.name}
    assert all("kernel-libipsec" in r.message for r in found)
    assert not refusals(DATAPLANES["kernel-netlink"], EffectiveConfig(vpns={a.name: a}))


def test_libipsec_carries_a_plain_esp_tunnel(netns_pair: tuple[str, str],  # noqa: F811
                                             tmp_path: Path) -> None:
    a, b = pair()
    log_a, log_b, ok = negotiate(tmp_path, netns_pair, a, b)
    assert ok, log_a + log_b
    assert "CHILD_SA trunk{1} established" in log_a
    assert not refusals(LIBIPSEC, EffectiveConfig(vpns={a.name: a}))
