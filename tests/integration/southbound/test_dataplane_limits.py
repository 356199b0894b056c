"""What a data plane cannot do, proven against real charons: under kernel-libipsec every CHILD
SA with ESN, AH or transport mode fails in charon with its own message, and the backend's
``DataPlane`` declares exactly these (so they are refused at commit, tests/e2e/
test_model_refusals.py), while a plain ESP tunnel works.

Needs root and ``ip netns`` (CI runs as root): fails loudly, never skips, when unusable.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree

from nf.datastore import Datastores
from nf.effective import AhProposal, EffectiveConfig, Vpn
from nf.errors import RpcError
from nf.schema import Schema
from nf.templates import resolve
from southbound.charon import CharonProcess
from southbound.charon_backend import DATAPLANES, refusals
from southbound.convert import conn_for, shared_for
from southbound.vici_client import MAX_MESSAGE, ViciClient, ViciError, request_size
from tests.integration.southbound.test_charon_limits import charon  # noqa: F401 - fixture
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
    esp = tuple(replace(p, esn=(True,)) for p in v.ipsec.esp_proposals)
    return replace(v, ipsec=replace(v.ipsec, esp_proposals=esp))


def ah(v: Vpn) -> Vpn:
    sps = tuple(replace(sp, action="ah") for sp in v.security_policies)
    return replace(v, security_policies=sps, ipsec=replace(
        v.ipsec, ah_proposals=(AhProposal(id=1, auth_alg=("hmac-sha256",)),)))


def transport(v: Vpn) -> Vpn:
    """Transport mode between the two gateways' own addresses."""
    sps = tuple(replace(sp, mode="transport",
                        local_ts=replace(sp.local_ts, subnet=(f"{v.local_address}/32",)),
                        remote_ts=replace(sp.remote_ts, subnet=(f"{v.remote_address}/32",)))
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


def start_and_load(charons: list[CharonProcess], vpns: tuple[Vpn, Vpn]) -> None:
    """Start each charon and load the shared key and its side's VPN into it."""
    for c, v in zip(charons, vpns, strict=True):
        c.start()
        with ViciClient(c.socket_path) as vc:
            vc.load_shared("ab", shared_for(PSK))
            vc.load_conn(v.name, conn_for(v, trap_as_start=False))


def negotiate(tmp_path: Path, ns: tuple[str, str], a: Vpn, b: Vpn) -> tuple[str, str, bool]:
    """Load A and B into two kernel-libipsec charons, initiate from A: (log A, log B, ok)."""
    charons = [CharonProcess(tmp_path / side, netns=n) for side, n in zip("ab", ns, strict=True)]
    try:
        start_and_load(charons, (a, b))
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


# ---- bounds: the biggest VPN the model allows still loads into charon ---------------------

YANG = Path(__file__).resolve().parents[3] / "yang" / "ipsec-nf.yang"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
IPNF = "urn:ipsec-nf:yang:ipsec-nf"


def enums(typedef: str) -> list[str]:
    """Every value of one of the model's enumeration typedefs."""
    m = re.search(rf"typedef {typedef} \{{(.*?)\n  \}}", YANG.read_text(), re.S)
    assert m is not None, typedef
    return re.findall(r"enum ([\w-]+)", m.group(1))


def leaves(name: str, values: list[str]) -> str:
    return "".join(f"<{name}>{v}</{name}>" for v in values)


def biggest(proposals: int = 16, policies: int = 100, id_len: int = 1024) -> str:
    """A config whose VPN has every list at its max-elements and every string at its length."""
    enc, auth, prf, dh = (enums(t) for t in ("enc-alg", "auth-alg", "prf-alg", "dh-group"))
    ike = "".join(f"<ike-proposal><id>{4294967295 - i}</id>{leaves('enc-alg', enc)}"
                  f"{leaves('auth-alg', auth)}{leaves('prf-alg', prf)}{leaves('dh-group', dh)}"
                  "</ike-proposal>" for i in range(proposals))
    esp = "".join(f"<esp-proposal><id>{4294967295 - i}</id>{leaves('enc-alg', enc)}"
                  f"{leaves('auth-alg', auth)}{leaves('dh-group', dh)}<esn>true</esn>"
                  "</esp-proposal>" for i in range(proposals))
    ts = ("<{0}><subnet>ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff{1:02x}/128</subnet>"
          "<protocol>255</protocol><port>65535</port></{0}>")
    sps = "".join(f"<security-policy><name>{f'p{i}'.ljust(64, 'x')}</name>"
                  f"{ts.format('local-ts', i)}{ts.format('remote-ts', i)}</security-policy>"
                  for i in range(policies))
    name = "v" * 64
    return (f'<config xmlns="{NC}"><ike xmlns="{IPNF}">'
            f"<ike-policy-template><name>{'i' * 64}</name>{ike}</ike-policy-template>"
            f"<ipsec-policy-template><name>{'e' * 64}</name>{esp}<start-action>none"
            "</start-action><rekey-bytes>18446744073709551615</rekey-bytes>"
            "</ipsec-policy-template>"
            f"<vpn><name>{name}</name><ike-policy><template>{'i' * 64}</template></ike-policy>"
            f"<ipsec-policy><template>{'e' * 64}</template></ipsec-policy>"
            "<local-address>ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255</local-address>"
            "<remote-address>ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.254</remote-address>"
            f"<local-id>{'l' * id_len}</local-id><remote-id>{'r' * id_len}</remote-id>"
            f"{sps}</vpn></ike></config>")


def test_the_biggest_vpn_the_model_allows_loads_into_charon(
        charon: CharonProcess, tmp_path: Path) -> None:  # noqa: F811
    ds = Datastores(Schema(), tmp_path / "ds")
    ds.edit("running", etree.fromstring(biggest()), sid=1)
    (vpn_,) = resolve(ds.config).vpns.values()
    conn = conn_for(vpn_, trap_as_start=False)
    size = request_size("load-conn", {vpn_.name: conn})
    assert 400_000 < size <= MAX_MESSAGE, size  # near the limit, and under it
    with ViciClient(charon.socket_path) as c:
        c.load_conn(vpn_.name, conn)
        assert c.get_conns() == {vpn_.name}
    # one more of anything is refused by the model
    for more in (dict(proposals=17), dict(policies=101), dict(id_len=1025)):
        with pytest.raises(RpcError) as e:
            ds.edit("candidate", etree.fromstring(biggest(**more)), sid=1)
        assert e.value.errors[0].tag in ("too-many-elements", "invalid-value",
                                         "operation-failed"), (more, e.value.errors[0])
