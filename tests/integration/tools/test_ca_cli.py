"""`ipsec-nf ca` run as a command: init, issue, list, revoke, delete, export; exit statuses,
messages, file modes, and exports opened by openssl, plistlib and json. The server's start
check narrows the CA's files like the other secrets."""

from __future__ import annotations

import base64
import json
import os
import plistlib
import stat
import subprocess
import sys
import uuid
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from nf.persist import secure_state_dir

ROOT = Path(__file__).resolve().parents[3]


def ca(*args: str, state: Path, stdin: str = "", cwd: Path = ROOT
       ) -> subprocess.CompletedProcess[str]:
    cmd, *rest = args
    return subprocess.run([sys.executable, "-m", "tools.cli", "ca", cmd, "--state-dir",
                           str(state), *rest], input=stdin, text=True, capture_output=True,
                          cwd=cwd, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def openssl_p12(data: bytes, password: str) -> str:
    """``openssl pkcs12 -info -nokeys`` of a PKCS#12; its output (the test fails if it
    cannot open it)."""
    r = subprocess.run(["openssl", "pkcs12", "-info", "-nokeys", "-passin",
                        f"pass:{password}"], input=data, capture_output=True)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode()


def ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_the_whole_cycle(tmp_path: Path) -> None:
    state = tmp_path / "state"
    out = ok(ca("init", "Example VPN CA", "--key-type", "rsa", "--bits", "2048",
                "--days", "365", state=state))
    assert "CA 'Example VPN CA' created (rsa)" in out and "SHA-256 fingerprint" in out
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "ca" / "ca.key").stat().st_mode) == 0o600
    ok(ca("issue", "gateway", "vpn.example.net", "--ip", "192.0.2.1", state=state))
    out = ok(ca("issue", "client", "alice", "--days", "30", state=state))
    assert "client certificate 2 issued for 'alice'" in out
    listing = json.loads(ok(ca("list", "--format", "json", state=state)))
    assert listing["ca"]["name"] == "Example VPN CA" and "certificate" not in listing["ca"]
    assert [(c["serial"], c["kind"], c["common_name"], c["status"])
            for c in listing["certificates"]] == [(1, "gateway", "vpn.example.net", "valid"),
                                                  (2, "client", "alice", "valid")]
    assert listing["certificates"][0]["ip"] == ["192.0.2.1"]
    text = ok(ca("list", state=state))
    assert "vpn.example.net,192.0.2.1" in text and "alice" in text

    work = tmp_path / "out"
    work.mkdir()
    out = ok(ca("export", "alice", "--format", "p12", "--password-stdin", state=state,
                stdin="pkcs-pw\n", cwd=work))
    p12 = work / "alice.p12"
    assert "written to alice.p12" in out and "pkcs-pw" not in out
    assert stat.S_IMODE(p12.stat().st_mode) == 0o600
    r = subprocess.run(["openssl", "pkcs12", "-info", "-nokeys", "-in", str(p12),
                        "-passin", "pass:pkcs-pw"], capture_output=True, text=True)
    assert r.returncode == 0 and "subject=CN = alice" in r.stdout, r.stderr

    out = ok(ca("export", "2", "--format", "mobileconfig", "--random-password",
                "--remote-address", "vpn.example.net", "--out", str(work / "a.mobileconfig"),
                state=state))
    password = out.split("password: ")[1].strip()
    profile = plistlib.loads((work / "a.mobileconfig").read_bytes())
    assert [p["PayloadType"] for p in profile["PayloadContent"]] == [
        "com.apple.vpn.managed", "com.apple.security.pkcs12", "com.apple.security.root"]
    assert profile["PayloadContent"][1]["Password"] == password
    assert stat.S_IMODE((work / "a.mobileconfig").stat().st_mode) == 0o600
    ca_der = x509.load_pem_x509_certificate((state / "ca" / "ca.pem").read_bytes()) \
        .public_bytes(serialization.Encoding.DER)
    vpn, bundle, root = profile["PayloadContent"]
    assert vpn["VPNType"] == "IKEv2" and vpn["IKEv2"]["RemoteAddress"] == "vpn.example.net"
    assert vpn["IKEv2"]["PayloadCertificateUUID"] == bundle["PayloadUUID"]
    assert root["PayloadContent"] == ca_der
    # the PKCS#12 inside (legacy algorithms) opens with openssl and its password
    assert "subject=CN = alice" in openssl_p12(bundle["PayloadContent"], password)

    ok(ca("export", "alice", "--format", "sswan", "--remote-address", "192.0.2.1",
          "--remote-id", "vpn.example.net", "--out", str(work / "a.sswan"), state=state))
    sswan = json.loads((work / "a.sswan").read_text())
    assert sswan["type"] == "ikev2-cert" and sswan["remote"]["id"] == "vpn.example.net"
    # the documented shape (README, docs.strongswan.org "Android VPN Client Profiles")
    assert str(uuid.UUID(sswan["uuid"])) == sswan["uuid"] and sswan["name"]
    assert sswan["remote"]["addr"] == "192.0.2.1"
    assert base64.b64decode(sswan["remote"]["cert"]) == ca_der
    assert "subject=CN = alice" in openssl_p12(base64.b64decode(sswan["local"]["p12"]), "")

    out = ok(ca("revoke", "alice", "--reason", "superseded", state=state))
    assert "certificate 2 ('alice') revoked; CRL number 2" in out
    crl = x509.load_pem_x509_crl((state / "ca" / "crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(2) is not None
    ok(ca("delete", "2", state=state))
    assert not (state / "ca" / "issued" / "2.key").exists()
    assert "alice" not in ok(ca("list", state=state))
    assert "alice" in ok(ca("list", "--all", state=state))
    # every key and export stays private; the server's start check finds nothing to fix
    assert secure_state_dir(state) == []


def test_refusals_and_usage_errors(tmp_path: Path) -> None:
    state = tmp_path / "s"
    r = ca("list", state=state)
    assert r.returncode == 1 and "no certificate authority yet" in r.stderr
    ok(ca("init", "CA", "--permit-dns", "example.net", state=state))
    r = ca("init", "CA2", state=state)
    assert r.returncode == 1 and "exists already" in r.stderr
    r = ca("issue", "client", "x.example.org", state=state)
    assert r.returncode == 1 and "outside the CA's name constraints" in r.stderr
    ok(ca("issue", "gateway", "gw.example.net", state=state))
    r = ca("delete", "gw.example.net", state=state)
    assert r.returncode == 1 and "revoke it first" in r.stderr
    r = ca("export", "gw.example.net", "--format", "p12", state=state)
    assert r.returncode == 1 and "gateway certificate" in r.stderr
    r = ca("export", "gw.example.net", "--format", "sswan", state=state)
    assert r.returncode == 2 and "--remote-address" in r.stderr
    r = ca("revoke", "nobody", state=state)
    assert r.returncode == 1 and "no certificate 'nobody'" in r.stderr
    r = ca("issue", "router", "x", state=state)
    assert r.returncode == 2 and "invalid choice" in r.stderr
    r = ca("export", "1", "--format", "p12", "--password-stdin", state=state, stdin="\n")
    assert r.returncode == 2 and "no password" in r.stderr


def test_the_start_check_narrows_the_ca_files(tmp_path: Path) -> None:
    state = tmp_path / "s"
    ok(ca("init", "CA", state=state))
    ok(ca("issue", "client", "bob", state=state))
    key = state / "ca" / "issued" / "1.key"
    os.chmod(key, 0o644)
    os.chmod(state / "ca", 0o755)
    fixed = secure_state_dir(state)
    assert set(fixed) == {key, state / "ca"}
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
