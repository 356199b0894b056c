"""tools/ca_refs.py: /ike/certificate ca-issued and /ike/certificate-authority own-ca filled in
from the gateway's CA store (effective config only: running holds no PEM and no key), and
refused at commit with the reason and the leaf's path when the reference cannot be used."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from lxml import etree

from nf import ca_x509
from nf.ca import KeySpec
from nf.ca_store import CaStore
from nf.datastore import Datastores
from nf.errors import RpcError
from nf.schema import Schema
from nf.templates import resolve
from southbound.remote_access import certificate_payload, conn_extras
from tools.backends import backend_checks, dataplane
from tools.ca_refs import CaReferences, own_ca_checks
from tools.ca_wiring import CrlFeed

NS = "urn:ipsec-nf:yang:ipsec-nf"


def config(ref: str, local_id: str = "gw.example.net") -> etree._Element:
    """A road-warrior VPN whose certificate is ``ref`` of the CA, peers checked by it."""
    return etree.fromstring(f"""
<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><ike xmlns="{NS}">
  <ike-policy-template><name>ike</name>
    <ike-proposal><id>1</id><enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha256</auth-alg>
      <prf-alg>hmac-sha256</prf-alg><dh-group>modp2048</dh-group></ike-proposal>
    <local-auth-method>certificate</local-auth-method>
    <remote-auth-method>certificate</remote-auth-method></ike-policy-template>
  <ipsec-policy-template><name>esp</name><esp-proposal><id>1</id>
    <enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha256</auth-alg></esp-proposal>
  </ipsec-policy-template>
  <certificate><name>gw</name><ca-issued>{ref}</ca-issued></certificate>
  <certificate-authority><name>own</name><own-ca/></certificate-authority>
  <vpn><name>rw</name>
    <ike-policy><template>ike</template></ike-policy>
    <ipsec-policy><template>esp</template></ipsec-policy>
    <local-address>192.0.2.1</local-address><local-id>{local_id}</local-id>
    <certificate>gw</certificate>
    <remote-ca-certificate>own</remote-ca-certificate>
    <security-policy><name>lan</name><local-ts><subnet>192.168.0.0/24</subnet></local-ts>
    </security-policy></vpn>
</ike></config>""")


@pytest.fixture
def store(tmp_path: Path) -> CaStore:
    s = CaStore(tmp_path / "ca")
    s.create("Ours", KeySpec("ecdsa"), 365)
    return s


def datastores(tmp_path: Path, store: CaStore) -> Datastores:
    ds = Datastores(Schema(), tmp_path / "ds")
    ds.checks.extend(backend_checks(dataplane("kernel-libipsec")))
    ds.checks.append(own_ca_checks(CaReferences(store), CrlFeed(store)))
    return ds


def refusal(ds: Datastores, cfg: etree._Element) -> list[tuple[str, str | None]]:
    """The (message, error-path) of each rpc-error of a refused commit."""
    with pytest.raises(RpcError) as e:
        ds.edit("running", cfg, sid=1, default_op="replace")
    return [(err.message, err.path) for err in e.value.errors]


def test_a_reference_is_filled_in_and_never_in_running(tmp_path: Path, store: CaStore) -> None:
    gw = store.issue("gateway", "gw.example.net")
    ds = datastores(tmp_path, store)
    ds.edit("running", config("gw.example.net"), sid=1, default_op="replace")
    running = etree.tostring(ds.tree("running")).decode()
    assert "PRIVATE KEY" not in running and "BEGIN CERTIFICATE" not in running
    resolved = CaReferences(store).resolve(resolve(ds.config))
    assert resolved.refusals == []
    cert = resolved.effective.certificates["gw"]
    assert cert.certificate == gw.certificate
    assert cert.private_key == (store.dir / "issued" / f"{gw.serial}.key").read_text()
    assert "PRIVATE KEY" not in repr(cert)
    assert resolved.effective.authorities["own"].certificate == store.info().certificate
    vpn = resolved.effective.vpns["rw"]
    assert vpn.certificate_pem == (gw.certificate,)
    assert vpn.remote_ca_pem == (store.info().certificate,)
    assert resolved.changed == {"certificate": {"gw"}, "certificate-authority": {"own"},
                                "vpn": {"rw"}}
    # filling in again what is filled in changes nothing
    again = CaReferences(store).resolve(resolved.effective)
    assert again.changed == {} and again.effective == resolved.effective
    # a VPN resolved again from running alone (a bulk commit) gets its PEM back
    plain_vpn = dataclasses.replace(resolved.effective, vpns={"rw": resolve(ds.config).vpns["rw"]})
    fixed = CaReferences(store).resolve(plain_vpn)
    assert fixed.changed == {"vpn": {"rw"}} and fixed.effective == resolved.effective
    assert CaReferences(store).resolve(plain_vpn, ["rw"]).effective == resolved.effective
    assert CaReferences(store).resolve(plain_vpn, []).changed == {}  # not among the hinted
    # the CA's CRL goes to the own-ca entry like to a PEM entry of this CA
    overlaid, names = CrlFeed(store).overlay(resolved.effective)
    assert names == {"own"} and overlaid.authorities["own"].crl
    # by serial number too (decimal or 0x hex, as ipsec-nf ca list shows it)
    ds.edit("running", config(hex(gw.serial)), sid=1, default_op="replace")


def test_references_that_cannot_be_used_are_refused(tmp_path: Path, store: CaStore) -> None:
    ds = datastores(tmp_path, store)
    errors = refusal(ds, config("nobody.example.net"))
    assert errors == [("certificate gw: no certificate 'nobody.example.net' (by serial number "
                       "or common name)",
                       "/ipsec-nf:ike/ipsec-nf:certificate[ipsec-nf:name='gw']"
                       "/ipsec-nf:ca-issued")]
    store.issue("client", "alice@example.net")
    [(message, path)] = refusal(ds, config("alice@example.net"))
    assert "is a client certificate" in message and path.endswith(":ca-issued")
    gw = store.issue("gateway", "gw.example.net", dns=("vpn.example.net",))
    [(message, path)] = refusal(ds, config("gw.example.net", local_id="other.example.net"))
    assert path.endswith(":local-id") and "neither the subject nor a subjectAltName" in message
    ds.edit("running", config("gw.example.net", local_id="vpn.example.net"), sid=1,
            default_op="replace")  # a SAN of the certificate
    store.revoke(str(gw.serial), "key-compromise")
    [(message, path)] = refusal(ds, config(str(gw.serial)))
    assert message.startswith(f"certificate gw: certificate {gw.serial} ('gw.example.net') of "
                              "the gateway's CA was revoked on ")
    assert "key-compromise" in message and path.endswith(":ca-issued")
    assert all("PRIVATE KEY" not in m for m, _ in refusal(ds, config(str(gw.serial))))


def test_an_expired_reference_is_refused(tmp_path: Path, store: CaStore,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    store.issue("gateway", "gw.example.net", days=30)
    ds = datastores(tmp_path, store)
    later = ca_x509.now() + dt.timedelta(days=31)
    monkeypatch.setattr(ca_x509, "now", lambda: later)
    [(message, path)] = refusal(ds, config("gw.example.net"))
    assert "of the gateway's CA expired on " in message and path.endswith(":ca-issued")


def test_without_a_ca_references_are_refused(tmp_path: Path) -> None:
    ds = datastores(tmp_path, CaStore(tmp_path / "none"))
    errors = refusal(ds, config("gw.example.net"))
    assert sorted(p.rsplit(":", 1)[1] for _, p in errors) == ["ca-issued", "own-ca"]
    assert all("there is no certificate authority on this gateway" in m for m, _ in errors)


def test_a_revocation_fails_the_running_reference_and_a_reissue_restores_it(
        tmp_path: Path, store: CaStore) -> None:
    old = store.issue("gateway", "gw.example.net")
    ds = datastores(tmp_path, store)
    ds.edit("running", config("gw.example.net"), sid=1, default_op="replace")
    refs = CaReferences(store)
    eff = refs.resolve(resolve(ds.config)).effective
    certificate_payload(eff.certificates["gw"])  # loads
    store.revoke("gw.example.net")
    after = refs.resolve(eff)
    assert after.changed == {"certificate": {"gw"}}  # the VPN keeps what charon has
    failed = after.effective.certificates["gw"]
    assert failed.certificate == "" and failed.private_key == "" and "revoked" in failed.problem
    with pytest.raises(ValueError, match="was revoked on"):
        certificate_payload(failed)  # the entry fails in the apply status, with the reason
    assert after.effective.vpns["rw"] == eff.vpns["rw"]
    conn: dict = {"local": {}, "remote": {}}
    conn_extras(conn, after.effective.vpns["rw"])
    assert conn["local"]["certs"] == [old.certificate]
    new = store.issue("gateway", "gw.example.net")  # re-issued under the same name
    back = refs.resolve(after.effective)
    assert back.changed == {"certificate": {"gw"}, "vpn": {"rw"}}
    assert back.effective.certificates["gw"].certificate == new.certificate
    cert = x509.load_pem_x509_certificate(back.effective.vpns["rw"].certificate_pem[0].encode())
    assert cert.serial_number == new.serial != old.serial
