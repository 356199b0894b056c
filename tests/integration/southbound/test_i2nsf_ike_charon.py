"""RFC 9061's IKE-case examples (tests/data/rfc9061/) through the datastores into two real
charons: each gateway's XML is validated (libyang, the consistency checks, the backend's),
resolved to the effective config the reconciler loads (nf/i2nsf_ike.py), given to its charon
over VICI, and the tunnel comes up and carries traffic (user-space ESP, kernel-libipsec).

Needs root and ``ip netns`` (CI runs as root): fails loudly, never skips, when unusable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from nf.datastore import Datastores
from nf.effective import EffectiveConfig
from nf.schema import Schema
from nf.templates import resolve
from southbound.charon import CharonProcess
from southbound.charon_backend import DATAPLANES, refusals
from southbound.convert import conn_for, shared_for
from southbound.vici_client import ViciClient
from tests.integration.southbound.test_charon_pair import netns_pair, ping  # noqa: F401

pytestmark = pytest.mark.e2e

DATA = Path(__file__).resolve().parents[2] / "data" / "rfc9061"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"


def effective(tmp_path: Path, example: str) -> EffectiveConfig:
    """The example validated as the server validates it (kernel-libipsec), then resolved."""
    ds = Datastores(Schema(), tmp_path)
    ds.checks.append(lambda eff: refusals(DATAPLANES["kernel-libipsec"], eff))
    xml = (DATA / f"{example}.xml").read_text()
    ds.edit("running", etree.fromstring(f'<config xmlns="{NC}">{xml}</config>'), sid=1)
    return resolve(ds.config)


def load(c: CharonProcess, eff: EffectiveConfig) -> None:
    with ViciClient(c.socket_path) as vc:
        for psk in eff.psks.values():
            vc.load_shared(psk.name, shared_for(psk))
        for v in eff.vpns.values():
            vc.load_conn(v.name, conn_for(v, trap_as_start=True))


def sas(c: CharonProcess) -> list[dict[str, Any]]:
    with ViciClient(c.socket_path) as vc:
        return [sa for entry in vc.list_sas() for sa in entry.values()]


@pytest.mark.parametrize("example,conn,nets", [
    ("ike_g2g", "Security_GW_A-Security_GW_B", ("192.168.0.0/24", "192.168.99.0/24")),
    ("ike_h2h", "Host_A-Host_B", ("192.168.0.1/32", "192.168.99.1/32")),
])
def test_rfc9061_ike_example_brings_the_tunnel_up(
        netns_pair: tuple[str, str], tmp_path: Path,  # noqa: F811
        example: str, conn: str, nets: tuple[str, str]) -> None:
    ns_a, ns_b = netns_pair
    eff_a = effective(tmp_path / "a", f"{example}_a")
    eff_b = effective(tmp_path / "b", f"{example}_b")
    assert set(eff_a.vpns) == set(eff_b.vpns) == {conn}
    a = CharonProcess(tmp_path / "ca", netns=ns_a)
    b = CharonProcess(tmp_path / "cb", netns=ns_b)
    try:
        a.start()
        b.start()
        load(b, eff_b)
        load(a, eff_a)  # autostartup start: both initiate
        res = ping(ns_a)
        assert res.returncode == 0, f"no traffic through the tunnel:\n{res.stdout}"
        established = [sa for sa in sas(a) if sa["state"] == b"ESTABLISHED"]
        assert established, sas(a)
        sa = established[0]
        # the example's IKE algorithms: AES-CBC-128, HMAC-SHA2-512, MODP 2048
        assert (sa["encr-alg"], sa["encr-keysize"], sa["integ-alg"], sa["dh-group"]) == (
            b"AES_CBC", b"128", b"HMAC_SHA2_512_256", b"MODP_2048"), sa
        assert sa["local-id"] == b"198.51.100.1" and sa["remote-id"] == b"198.51.100.2", sa
        children = [c for s in established for c in s.get("child-sas", {}).values()
                    if c.get("state") == b"INSTALLED"]
        assert children, established
        child = children[0]
        # ESP: the first of the example's encryptions (AES-CBC-128) with HMAC-SHA2-256 (the
        # PFS group is used from the first rekey on: the first CHILD SA comes with IKE_AUTH)
        assert (child["encr-alg"], child["encr-keysize"], child["integ-alg"]) == (
            b"AES_CBC", b"128", b"HMAC_SHA2_256_128"), child
        assert [t.decode() for t in child["local-ts"]] == [nets[0]]
        assert [t.decode() for t in child["remote-ts"]] == [nets[1]]
    except BaseException:
        print(a.log_tail(80), b.log_tail(80))
        raise
    finally:
        a.stop()
        b.stop()
