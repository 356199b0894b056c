"""tools/ca_wiring.py: the CA store's CRL in the effective config's authority entries that are
this CA (and only those, and only when newer), the CRL re-signed before it goes stale, and a
commit using a certificate the CA revoked refused."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

import nf.effective
from nf.ca import KeySpec
from nf.ca_store import CaStore
from nf.datastore import Datastores
from nf.errors import RpcError
from nf.schema import Schema
from tools.backends import backend_checks, dataplane
from tools.ca_wiring import CrlFeed, keep_crl_fresh, own_ca_revocations

Authority = nf.effective.CertificateAuthority


def store_at(path: Path, name: str) -> CaStore:
    s = CaStore(path)
    s.create(name, KeySpec("ecdsa"), 365)
    return s


def crl_number(pem: str) -> int:
    crl = x509.load_pem_x509_crl(pem.encode())
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def test_the_crl_goes_to_this_cas_entries_only(tmp_path: Path) -> None:
    ours, other = store_at(tmp_path / "a", "Ours"), store_at(tmp_path / "b", "Other")
    eff = nf.effective.EffectiveConfig(authorities={
        "own": Authority(name="own", certificate=ours.info().certificate),
        "own-too": Authority(name="own-too", certificate=ours.info().certificate),
        "theirs": Authority(name="theirs", certificate=other.info().certificate)})
    feed = CrlFeed(ours)
    eff, names = feed.overlay(eff)
    assert names == {"own", "own-too"} and eff.authorities["theirs"].crl is None
    assert crl_number(eff.authorities["own"].crl) == 1
    assert feed.overlay(eff) == (eff, set())  # nothing newer: nothing changes
    ours.issue("client", "alice")
    ours.revoke("alice")
    eff, names = feed.overlay(eff)
    assert names == {"own", "own-too"}
    crl = x509.load_pem_x509_crl(eff.authorities["own"].crl.encode())
    assert crl.get_revoked_certificate_by_serial_number(1) is not None


def test_a_newer_configured_crl_is_kept(tmp_path: Path) -> None:
    ours = store_at(tmp_path, "Ours")
    for _ in range(2):
        ours.refresh_crl()
    newer = x509.load_der_x509_crl(ours.crl()).public_bytes(Encoding.PEM).decode()
    eff = nf.effective.EffectiveConfig(authorities={
        "own": Authority(name="own", certificate=ours.info().certificate, crl=newer)})
    assert CrlFeed(ours).overlay(eff) == (eff, set())
    without_ca = CrlFeed(CaStore(tmp_path / "none"))
    assert without_ca.overlay(eff) == (eff, set())


def test_the_crl_is_re_signed_before_it_is_stale(tmp_path: Path) -> None:
    ours = store_at(tmp_path, "Ours")
    seen: list[bytes] = []
    ours.on_crl(seen.append)
    assert not ours.refresh_crl_if_due()  # 30 days left: nothing to do
    assert ours.refresh_crl_if_due(margin=dt.timedelta(days=31))
    assert len(seen) == 1 and ours.info().crl_number == 2

    async def one_round() -> None:
        task = asyncio.create_task(keep_crl_fresh(ours, every=3600))
        await asyncio.sleep(0.5)
        task.cancel()

    asyncio.run(one_round())
    assert ours.info().crl_number == 2  # checked, not due


def test_a_commit_using_a_certificate_our_ca_revoked_is_refused(tmp_path: Path) -> None:
    ours = store_at(tmp_path / "ca", "Ours")
    gw = ours.issue("gateway", "gw.example.net")
    pem = (ours.dir / "issued" / f"{gw.serial}.pem").read_text()
    key = (ours.dir / "issued" / f"{gw.serial}.key").read_text()
    ds = Datastores(Schema(), tmp_path / "ds")
    ds.checks.extend(backend_checks(dataplane("kernel-libipsec")))
    ds.checks.append(own_ca_revocations(CrlFeed(ours)))

    def commit(description: str) -> None:
        ds.edit("running", etree.fromstring(f"""
<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><ike xmlns="urn:ipsec-nf:yang:ipsec-nf">
  <ike-policy-template><name>ike</name>
    <ike-proposal><id>1</id><enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha256</auth-alg>
      <prf-alg>hmac-sha256</prf-alg><dh-group>modp2048</dh-group></ike-proposal>
    <local-auth-method>certificate</local-auth-method>
    <remote-auth-method>certificate</remote-auth-method></ike-policy-template>
  <ipsec-policy-template><name>esp</name><esp-proposal><id>1</id>
    <enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha256</auth-alg></esp-proposal>
  </ipsec-policy-template>
  <certificate><name>gw</name><certificate>{pem}</certificate>
    <private-key>{key}</private-key></certificate>
  <certificate-authority><name>own</name><certificate>{ours.info().certificate}</certificate>
  </certificate-authority>
  <vpn><name>rw</name><description>{description}</description>
    <ike-policy><template>ike</template></ike-policy>
    <ipsec-policy><template>esp</template></ipsec-policy>
    <local-address>192.0.2.1</local-address><local-id>gw.example.net</local-id>
    <certificate>gw</certificate>
    <security-policy><name>lan</name><local-ts><subnet>192.168.0.0/24</subnet></local-ts>
    </security-policy></vpn>
</ike></config>"""), sid=1, default_op="replace")

    commit("first")
    ours.revoke("gw.example.net")
    try:
        commit("second")
    except RpcError as e:
        messages = [err.message for err in e.errors]
    else:
        raise AssertionError("a certificate our CA revoked was committed")
    assert len(messages) == 1 and messages[0].startswith("certificate gw is revoked (since ")
    assert "PRIVATE KEY" not in messages[0]
