"""Client exports (nf/ca_export.py through the store) opened by the tools that read them:
the .p12 by `openssl pkcs12`, the .mobileconfig by plistlib, the .sswan by json; the key in
them is the client's, never the CA's."""

from __future__ import annotations

import base64
import json
import plistlib
import subprocess
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from nf.ca import CaError, Conflict, KeySpec, ProfileOptions
from nf.ca_store import CaStore

PROFILE = ProfileOptions("vpn.example.net")


@pytest.fixture
def store(tmp_path: Path) -> CaStore:
    s = CaStore(tmp_path)
    s.create("Export CA", KeySpec("ecdsa"), 3650)
    s.issue("gateway", "vpn.example.net")
    s.issue("client", "alice")
    return s


def pkcs12_info(data: bytes, tmp_path: Path, password: str, *extra: str
                ) -> subprocess.CompletedProcess[str]:
    f = tmp_path / "x.p12"
    f.write_bytes(data)
    return subprocess.run(["openssl", "pkcs12", "-info", "-nokeys", "-in", str(f), "-passin",
                           f"pass:{password}", *extra], capture_output=True, text=True,
                          timeout=60)


def public_der(key_or_cert: object) -> bytes:
    pub = key_or_cert.public_key()  # type: ignore[attr-defined]
    return pub.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def check_bundle(data: bytes, password: str | None, store: CaStore) -> None:
    """The PKCS#12 holds the client's key and certificate and the CA certificate."""
    key, cert, extra = pkcs12.load_key_and_certificates(
        data, password.encode() if password else None)
    client = x509.load_pem_x509_certificate(store.list()[1].certificate.encode())
    ca = x509.load_pem_x509_certificate(store.info().certificate.encode())
    assert cert == client and extra == [ca]
    assert public_der(key) == public_der(client) != public_der(ca)


def test_p12_opens_with_openssl(store: CaStore, tmp_path: Path) -> None:
    data = store.export("alice", "p12", "s3cret-pw")
    r = pkcs12_info(data, tmp_path, "s3cret-pw")
    assert r.returncode == 0, r.stderr
    assert "subject=CN = alice" in r.stdout and "subject=CN = Export CA" in r.stdout
    assert "AES-256-CBC" in r.stderr  # PBES2 by default
    assert pkcs12_info(data, tmp_path, "wrong").returncode != 0
    check_bundle(data, "s3cret-pw", store)


def test_p12_legacy_and_without_password(store: CaStore, tmp_path: Path) -> None:
    legacy = store.export("alice", "p12", "pw", legacy=True)
    r = pkcs12_info(legacy, tmp_path, "pw")
    assert r.returncode == 0, r.stderr
    assert "3DES" in r.stderr or "pbeWithSHA1And3-KeyTripleDES-CBC" in r.stderr
    bare = store.export("alice", "p12")
    r = pkcs12_info(bare, tmp_path, "")
    assert r.returncode == 0 and "subject=CN = alice" in r.stdout, r.stderr
    check_bundle(bare, None, store)


def test_mobileconfig_is_a_plist_with_the_ikev2_payloads(store: CaStore, tmp_path: Path
                                                         ) -> None:
    data = store.export("alice", "mobileconfig", "pw", ProfileOptions(
        "vpn.example.net", remote_id="gw.example.net", name="Office"))
    profile = plistlib.loads(data)
    assert profile["PayloadType"] == "Configuration"
    assert profile["PayloadDisplayName"] == "Office"
    types = [p["PayloadType"] for p in profile["PayloadContent"]]
    assert types == ["com.apple.vpn.managed", "com.apple.security.pkcs12",
                     "com.apple.security.root"]
    vpn, bundle, root = profile["PayloadContent"]
    ike = vpn["IKEv2"]
    assert vpn["VPNType"] == "IKEv2"
    assert ike["RemoteAddress"] == "vpn.example.net"
    assert ike["RemoteIdentifier"] == "gw.example.net" and ike["LocalIdentifier"] == "alice"
    assert ike["AuthenticationMethod"] == "Certificate"
    assert ike["CertificateType"] == "ECDSA256"
    assert ike["PayloadCertificateUUID"] == bundle["PayloadUUID"]
    assert ike["ServerCertificateIssuerCommonName"] == "Export CA"
    assert "ServerCertificateCommonName" not in ike
    uuids = [p["PayloadUUID"] for p in [profile, *profile["PayloadContent"]]]
    assert len(set(uuids)) == 4 and all(uuid.UUID(u) for u in uuids)
    assert bundle["Password"] == "pw"
    r = pkcs12_info(bundle["PayloadContent"], tmp_path, "pw")
    assert r.returncode == 0, r.stderr
    assert "AES" not in r.stderr  # the legacy algorithms Apple's key store imports
    check_bundle(bundle["PayloadContent"], "pw", store)
    assert x509.load_der_x509_certificate(root["PayloadContent"]) == \
        x509.load_pem_x509_certificate(store.info().certificate.encode())


def test_mobileconfig_without_password_has_no_password_key(store: CaStore) -> None:
    profile = plistlib.loads(store.export("alice", "mobileconfig", None, PROFILE))
    assert "Password" not in profile["PayloadContent"][1]
    assert profile["PayloadContent"][0]["IKEv2"]["RemoteIdentifier"] == "vpn.example.net"


def test_sswan_is_json_of_the_documented_shape(store: CaStore, tmp_path: Path) -> None:
    data = store.export("alice", "sswan", "pw", PROFILE)
    profile = json.loads(data)
    assert set(profile) == {"uuid", "name", "type", "remote", "local"}
    assert uuid.UUID(profile["uuid"]) and profile["type"] == "ikev2-cert"
    assert profile["remote"]["addr"] == "vpn.example.net" and "id" not in profile["remote"]
    ca = x509.load_der_x509_certificate(base64.b64decode(profile["remote"]["cert"]))
    assert ca == x509.load_pem_x509_certificate(store.info().certificate.encode())
    bundle = base64.b64decode(profile["local"]["p12"])
    assert pkcs12_info(bundle, tmp_path, "pw").returncode == 0
    check_bundle(bundle, "pw", store)
    with_id = json.loads(store.export("alice", "sswan", None, ProfileOptions(
        "192.0.2.1", remote_id="vpn.example.net")))
    assert with_id["remote"] == {"addr": "192.0.2.1", "id": "vpn.example.net",
                                 "cert": profile["remote"]["cert"]}


def test_what_is_not_exported(store: CaStore) -> None:
    with pytest.raises(CaError, match="gateway certificate") as e:
        store.export("vpn.example.net", "p12", "pw")
    assert e.value.param == "certificate"
    with pytest.raises(CaError, match="gateway's address"):
        store.export("alice", "sswan", "pw")
    with pytest.raises(CaError, match="format"):
        store.export("alice", "pem", "pw")
    store.revoke("alice")
    with pytest.raises(Conflict, match="revoked"):
        store.export("alice", "p12", "pw")
