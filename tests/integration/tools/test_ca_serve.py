"""The ca-* RPCs against a real `ipsec-nf serve` (and its charon) in a network namespace, over
NETCONF/SSH with ncclient: the whole cycle by an administrator, access-denied for a user
without an exec rule, no reply ever holding the CA's key, and a revocation whose CRL is in
charon at once (swanctl --list-certs on the server's VICI socket)."""

from __future__ import annotations

import base64
import json
import plistlib
import re
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from lxml import etree
from ncclient.operations import RPCError
from ncclient.xml_ import to_ele

from tests.integration.tools.gateway import Server, add_user, connect, netns

NS = "urn:ipsec-nf:yang:ipsec-nf"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
P = {"i": NS}


@pytest.fixture
def ns() -> Iterator[str]:
    with netns() as name:
        yield name


@pytest.fixture
def gateway(tmp_path: Path, ns: str) -> Iterator[tuple[Path, Server]]:
    state = tmp_path / "state"
    add_user(state)  # admin
    add_user(state, user="rita", password="rita-pw-1")  # no group: NACM's defaults
    with Server(ns, tmp_path / "s", ["--state-dir", str(state), "--listen",
                                     "127.0.0.1:8830"]) as server:
        server.wait_listening()
        yield state, server


def call(m: object, rpc: str, /, *children: str, **leaves: object
         ) -> tuple[etree._Element, str]:
    inner = "".join(f"<{k.replace('_', '-')}>{v}</{k.replace('_', '-')}>"
                    for k, v in leaves.items())
    reply = m.dispatch(to_ele(f'<{rpc} xmlns="{NS}">{inner}{"".join(children)}</{rpc}>'))
    return etree.fromstring(reply.xml.encode()), reply.xml


def text(r: etree._Element, path: str) -> str:
    found = r.findtext(path, namespaces=P)
    assert found is not None, etree.tostring(r)
    return found


def key_forms(state: Path) -> list[str]:
    pem = (state / "ca" / "ca.key").read_bytes()
    der = serialization.load_pem_private_key(pem, None).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    return [pem.decode(), "".join(pem.decode().splitlines()[1:-1]),
            base64.b64encode(der).decode()]


def test_ca_over_netconf(gateway: tuple[Path, Server], ns: str, tmp_path: Path) -> None:
    state, server = gateway
    replies: list[str] = []
    with connect(ns) as m:
        r, x = call(m, "ca-create", name="Gateway CA", key_type="ecdsa", curve="p384")
        replies.append(x)
        assert text(r, "i:name") == "Gateway CA" and "BEGIN CERTIFICATE" in x
        r, x = call(m, "ca-issue", "<san-ip>192.0.2.1</san-ip>", kind="gateway",
                    common_name="vpn.example.net")
        replies.append(x)
        r, x = call(m, "ca-issue", kind="client", common_name="alice", return_pkcs12="true",
                    pkcs12_password="p12-pw")
        replies.append(x)
        p12 = base64.b64decode(text(r, "i:pkcs12"))
        out = subprocess.run(["openssl", "pkcs12", "-info", "-nokeys", "-passin",
                              "pass:p12-pw"], input=p12, capture_output=True)
        assert out.returncode == 0 and b"subject=CN = alice" in out.stdout, out.stderr
        exports = {}
        for fmt in ("p12", "mobileconfig", "sswan"):
            r, x = call(m, "ca-export", certificate="alice", format=fmt, password="pw",
                        remote_address="vpn.example.net")
            replies.append(x)
            exports[fmt] = base64.b64decode(text(r, "i:data"))
        r, x = call(m, "ca-list")
        replies.append(x)
        assert [c.findtext("i:common-name", namespaces=P)
                for c in r.findall("i:certificate", P)] == ["vpn.example.net", "alice"]
        r, x = call(m, "ca-revoke", certificate="alice", reason="key-compromise")
        replies.append(x)
        assert text(r, "i:crl-number") == "2"
    f = tmp_path / "alice.p12"
    f.write_bytes(exports["p12"])
    out = subprocess.run(["openssl", "pkcs12", "-info", "-nokeys", "-in", str(f),
                          "-passin", "pass:pw"], capture_output=True, text=True)
    assert out.returncode == 0 and "subject=CN = alice" in out.stdout, out.stderr
    profile = plistlib.loads(exports["mobileconfig"])
    assert profile["PayloadContent"][0]["PayloadType"] == "com.apple.vpn.managed"
    assert json.loads(exports["sswan"])["type"] == "ikev2-cert"
    for form in key_forms(state):
        assert all(form not in x for x in replies)
    ca = state / "ca"
    assert stat.S_IMODE(ca.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in ca.rglob("*") if p.is_file())
    assert "p12-pw" not in server.log() and "BEGIN PRIVATE KEY" not in server.log()
    assert "certificate 2 ('alice') revoked" in server.log()


def test_a_user_without_an_exec_rule_is_denied(gateway: tuple[Path, Server], ns: str) -> None:
    state, _ = gateway
    with connect(ns) as m:
        call(m, "ca-create", name="Gateway CA")
        call(m, "ca-issue", kind="client", common_name="bob")
    with connect(ns, user="rita", password="rita-pw-1") as m:
        for name, leaves in (("ca-create", {"name": "X"}), ("ca-list", {}),
                             ("ca-issue", {"kind": "client", "common_name": "eve"}),
                             ("ca-export", {"certificate": "bob", "format": "p12"}),
                             ("ca-revoke", {"certificate": "bob"}),
                             ("ca-delete", {"certificate": "bob", "force": "true"})):
            with pytest.raises(RPCError) as e:
                call(m, name, **leaves)
            assert e.value.tag == "access-denied", (name, e.value)
            assert all(form not in str(e.value.xml) for form in key_forms(state))
    assert [c["cn"] for c in json.loads((state / "ca" / "index.json").read_text())[
        "certificates"] if not c.get("deleted") and not c.get("revoked-at")] == ["bob"]


def _crls(state: Path) -> str:
    sock = next(state.rglob("charon.vici"))
    r = subprocess.run(["swanctl", "--list-certs", "--type", "x509crl", "--uri",
                        f"unix://{sock}"], capture_output=True, text=True, timeout=30)
    return r.stdout + r.stderr


def test_a_revocation_is_in_charon_at_once(gateway: tuple[Path, Server], ns: str) -> None:
    state, _ = gateway
    with connect(ns) as m:
        r, _x = call(m, "ca-create", name="Gateway CA")
        pem = text(r, "i:certificate")
        call(m, "ca-issue", kind="client", common_name="carol")
        call(m, "ca-issue", kind="client", common_name="dave")
        m.edit_config(target="candidate", config=(
            f'<config xmlns="{NC}"><ike xmlns="{NS}"><certificate-authority>'
            f"<name>own</name><certificate>{pem}</certificate>"
            "</certificate-authority></ike></config>"))
        m.commit()
        deadline = time.monotonic() + 20
        while "Gateway CA" not in _crls(state) and time.monotonic() < deadline:
            time.sleep(0.2)
        # swanctl shows the CRL number as "serial"
        assert re.search(r"serial:\s+01\s.*0 revoked", _crls(state), re.S), _crls(state)
        call(m, "ca-revoke", certificate="dave")
        start = time.monotonic()
        while "serial:    02" not in _crls(state) and time.monotonic() - start < 10:
            time.sleep(0.1)
        listing = _crls(state)
        assert re.search(r"serial:\s+02\s.*1 revoked certificate", listing, re.S), listing
        assert time.monotonic() - start < 5, "the new CRL took too long to reach charon"
        # running was not changed by the revocation: no crl leaf was written there
        assert "<crl>" not in m.get_config("running").data_xml
