"""The CA store (nf/ca_store.py) on disk, checked with openssl and cryptography's parsers:
file modes, RSA and ECDSA CAs, EKUs and SANs, name constraints, the CRL after a revocation,
deletion, and that no CA key ever leaves the store."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from nf.ca import CaError, Conflict, KeySpec, NameConstraints, NoCa, NotFound
from nf.ca_store import CaStore

IKE_INTERMEDIATE = ObjectIdentifier("1.3.6.1.5.5.8.2.2")
RSA = KeySpec("rsa", bits=2048)  # 2048: fast enough for tests; the default is 3072


def openssl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        pytest.fail(f"openssl {' '.join(args)}: {r.stderr}{r.stdout}")
    return r


@pytest.fixture
def store(tmp_path: Path) -> CaStore:
    s = CaStore(tmp_path)
    s.create("Test VPN CA", KeySpec("ecdsa", curve="p256"), 3650)
    return s


def cert_of(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def test_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        s = CaStore(tmp_path)
        s.create("CA", KeySpec("ecdsa"), 30)
        s.issue("client", "alice")
        s.revoke("alice")
    finally:
        os.umask(old)
    ca = tmp_path / "ca"
    assert stat.S_IMODE(ca.stat().st_mode) == 0o700
    assert stat.S_IMODE((ca / "issued").stat().st_mode) == 0o700
    files = [p for p in ca.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"ca.key", "ca.pem", "index.json", "crl.pem", "1.key",
                                       "1.pem"}
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == \
        {p.name: 0o600 for p in files}


def test_rsa_ca_and_issued_keys_follow_it(tmp_path: Path) -> None:
    s = CaStore(tmp_path)
    info = s.create("RSA CA", RSA, 365)
    ca = cert_of(info.certificate)
    assert info.key_type == "rsa" and isinstance(ca.public_key(), rsa.RSAPublicKey)
    assert ca.public_key().key_size == 2048
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign and not ku.digital_signature
    client = cert_of(s.issue("client", "bob").certificate)
    assert isinstance(client.public_key(), rsa.RSAPublicKey)
    ku = client.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_encipherment  # RSA: key encipherment too
    assert "-----BEGIN" in (tmp_path / "ca" / "ca.key").read_text()
    assert (tmp_path / "ca" / "ca.key").read_text() not in info.certificate


def test_ecdsa_ca_curves(tmp_path: Path) -> None:
    s = CaStore(tmp_path)
    info = s.create("EC CA", KeySpec("ecdsa", curve="p384"), 365)
    ca = cert_of(info.certificate)
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert ca.public_key().curve.name == "secp384r1"
    assert ca.signature_hash_algorithm.name == "sha384"
    gw = cert_of(s.issue("gateway", "vpn.example.net").certificate)
    assert gw.public_key().curve.name == "secp384r1"
    assert not gw.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment


def test_gateway_certificate_ekus_sans_and_chain(store: CaStore, tmp_path: Path) -> None:
    issued = store.issue("gateway", "vpn.example.net", dns=("VPN2.example.net",),
                         ip=("192.0.2.1", "2001:db8::1"), days=90)
    cert = cert_of(issued.certificate)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, IKE_INTERMEDIATE]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["vpn.example.net", "vpn2.example.net"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["192.0.2.1",
                                                                          "2001:db8::1"]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 90
    assert issued.serial == 1 and issued.kind == "gateway" and issued.status == "valid"
    leaf = tmp_path / "gw.pem"
    leaf.write_text(issued.certificate)
    out = openssl("verify", "-CAfile", str(tmp_path / "ca" / "ca.pem"), "-purpose",
                  "sslserver", str(leaf))
    assert "OK" in out.stdout


def test_client_certificate_eku_and_cn_as_san(store: CaStore) -> None:
    by_mail = cert_of(store.issue("client", "alice@example.net").certificate)
    eku = by_mail.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    san = by_mail.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["alice@example.net"]
    by_ip = cert_of(store.issue("client", "198.51.100.7").certificate)
    san = by_ip.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["198.51.100.7"]
    spaced = cert_of(store.issue("client", "Alice Smith").certificate)  # no SAN fits
    with pytest.raises(x509.ExtensionNotFound):
        spaced.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert spaced.subject.rfc4514_string() == "CN=Alice Smith"


def test_bad_input_is_refused_with_the_parameter(store: CaStore) -> None:
    cases = [(lambda: store.issue("router", "x"), "kind"),
             (lambda: store.issue("client", ""), "common-name"),
             (lambda: store.issue("client", "a" * 65), "common-name"),
             (lambda: store.issue("client", "x", dns=("bad_name!",)), "dns"),
             (lambda: store.issue("client", "x", ip=("300.1.1.1",)), "ip"),
             (lambda: store.issue("client", "x", email=("nobody",)), "email"),
             (lambda: store.issue("client", "x", days=0), "days"),
             (lambda: store.revoke("x", "because"), "reason")]
    for call, param in cases:
        with pytest.raises(CaError) as e:
            call()
        assert e.value.param == param
    assert store.list() == []


def test_name_constraints(tmp_path: Path) -> None:
    s = CaStore(tmp_path)
    info = s.create("Constrained", KeySpec("ecdsa"), 365, NameConstraints(
        permitted_dns=("example.net",), permitted_ip=("192.0.2.0/24",),
        excluded_dns=("bad.example.net",)))
    nc = cert_of(info.certificate).extensions.get_extension_for_class(x509.NameConstraints)
    assert nc.critical
    assert nc.value.permitted_subtrees[0] == x509.DNSName("example.net")
    assert info.constraints.permitted_ip == ("192.0.2.0/24",)
    ok = s.issue("gateway", "vpn.example.net", ip=("192.0.2.9",))
    for bad in (lambda: s.issue("gateway", "vpn.example.org"),
                lambda: s.issue("gateway", "x.bad.example.net"),
                lambda: s.issue("gateway", "vpn2.example.net", ip=("198.51.100.1",))):
        with pytest.raises(CaError, match="outside the CA's name constraints"):
            bad()
    assert [c.serial for c in s.list()] == [ok.serial]
    leaf = tmp_path / "leaf.pem"
    leaf.write_text(ok.certificate)
    openssl("verify", "-CAfile", str(tmp_path / "ca" / "ca.pem"), str(leaf))


def test_revoke_regenerates_the_crl_and_tells_observers(store: CaStore, tmp_path: Path
                                                        ) -> None:
    seen: list[bytes] = []
    store.on_crl(seen.append)
    keep = store.issue("client", "carol")
    gone = store.issue("client", "dave")
    before = store.info().crl_number
    revoked = store.revoke("dave", "key-compromise")
    assert revoked.status == "revoked" and revoked.reason == "key-compromise"
    assert seen == [store.crl()]
    crl = x509.load_der_x509_crl(seen[0])
    assert crl.get_revoked_certificate_by_serial_number(gone.serial) is not None
    assert crl.get_revoked_certificate_by_serial_number(keep.serial) is None
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == \
        before + 1 == store.info().crl_number
    assert crl.is_signature_valid(cert_of(store.info().certificate).public_key())
    text = openssl("crl", "-in", str(tmp_path / "ca" / "crl.pem"), "-noout", "-text").stdout
    assert "Key Compromise" in text
    for serial, want in ((gone.serial, "certificate revoked"), (keep.serial, "OK")):
        leaf = tmp_path / f"{serial}.pem"
        leaf.write_text(store.list()[serial - 1].certificate)
        r = openssl("verify", "-crl_check", "-CAfile", str(tmp_path / "ca" / "ca.pem"),
                    "-CRLfile", str(tmp_path / "ca" / "crl.pem"), str(leaf), check=False)
        assert want in r.stdout + r.stderr
    with pytest.raises(Conflict, match="revoked already"):
        store.revoke(str(gone.serial))


def test_a_failing_observer_does_not_undo_the_revocation(store: CaStore) -> None:
    store.on_crl(lambda der: 1 / 0)
    store.issue("client", "erin")
    assert store.revoke("erin").status == "revoked"


def test_delete_needs_revocation_or_force_and_keeps_the_serial_on_the_crl(
        store: CaStore, tmp_path: Path) -> None:
    a = store.issue("client", "frank")
    with pytest.raises(Conflict, match="revoke it first"):
        store.delete("frank")
    store.revoke("frank")
    store.delete(str(a.serial))
    assert not (tmp_path / "ca" / "issued" / f"{a.serial}.key").exists()
    assert not (tmp_path / "ca" / "issued" / f"{a.serial}.pem").exists()
    assert store.list() == [] and [c.serial for c in store.list(include_deleted=True)] == [1]
    b = store.issue("client", "frank")  # a new one for the same name: a new serial
    assert b.serial == a.serial + 1
    store.delete("frank", force=True)
    c = store.issue("client", "grace")
    store.revoke("grace")  # the CRL is regenerated: the deleted, revoked one stays on it
    crl = x509.load_der_x509_crl(store.crl())
    assert crl.get_revoked_certificate_by_serial_number(a.serial) is not None
    assert crl.get_revoked_certificate_by_serial_number(c.serial) is not None
    assert crl.get_revoked_certificate_by_serial_number(b.serial) is None


def test_names_serials_and_duplicates(store: CaStore) -> None:
    first = store.issue("client", "heidi")
    with pytest.raises(Conflict, match="still valid"):
        store.issue("client", "heidi")
    store.revoke("heidi")
    second = store.issue("client", "heidi")
    assert store.revoke("heidi").serial == second.serial  # the valid one of the two
    with pytest.raises(NotFound, match="several certificates"):
        store.delete("heidi")
    assert store.delete(hex(first.serial)).serial == first.serial
    with pytest.raises(NotFound):
        store.revoke("nobody")


def test_no_ca_and_a_second_ca(tmp_path: Path) -> None:
    s = CaStore(tmp_path)
    for call in (s.info, s.list, s.crl, lambda: s.issue("client", "x")):
        with pytest.raises(NoCa):
            call()
    s.create("One", KeySpec("ecdsa"), 10)
    key = (tmp_path / "ca" / "ca.key").read_bytes()
    with pytest.raises(Conflict, match="exists already"):
        s.create("Two", KeySpec("ecdsa"), 10)
    assert (tmp_path / "ca" / "ca.key").read_bytes() == key
    assert serialization.load_pem_private_key(key, None) is not None
