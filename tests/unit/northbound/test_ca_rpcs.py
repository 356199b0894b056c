"""The ca-* RPCs through the dispatcher onto a real CA store: input, replies (base64 exports
opened by openssl, plistlib and json), rpc-errors, NACM (default-deny-all), and that no reply
holds the CA's private key."""

from __future__ import annotations

import asyncio
import base64
import json
import plistlib
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from nf.ca_store import CaStore
from nf.nacm import DENY_ALL_RPCS
from nf.schema import Schema
from northbound import ops, ops_ca
from northbound.rpc import Dispatcher

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS = "urn:ipsec-nf:yang:ipsec-nf"
NACM = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
P = {"nc": NC, "i": NS}
RPCS = ("ca-create", "ca-issue", "ca-list", "ca-revoke", "ca-delete", "ca-export")


@pytest.fixture(scope="module")
def schema() -> Schema:
    return Schema()


@pytest.fixture
def store(tmp_path: Path) -> CaStore:
    return CaStore(tmp_path / "state")


@pytest.fixture
def rpc(store: CaStore, new_context: Any, schema: Schema):
    d = Dispatcher(new_context(schema=schema, ca=store), ops.TABLE)
    replies: list[bytes] = []

    def run(body: str, user: str = "root", groups: tuple[str, ...] = ("admin",)
            ) -> etree._Element:
        s = SimpleNamespace(session_id=3, closing=False, data={}, user=user,
                            groups=list(groups))
        out = asyncio.run(d.handle(s, f'<rpc xmlns="{NC}" message-id="1">{body}</rpc>'
                                   .encode()))
        replies.append(out)
        return etree.fromstring(out)

    run.replies = replies
    return run


def op(rpc_name: str, /, *children: str, **leaves: Any) -> str:
    inner = "".join(f"<{k.replace('_', '-')}>{v}</{k.replace('_', '-')}>"
                    for k, v in leaves.items())
    return f'<{rpc_name} xmlns="{NS}">{inner}{"".join(children)}</{rpc_name}>'


def error(r: etree._Element) -> dict[str, str | None]:
    e = r.find("nc:rpc-error", P)
    assert e is not None, etree.tostring(r)
    return {k: e.findtext(f"nc:error-{k}", namespaces=P)
            for k in ("tag", "path", "message", "app-tag")}


def leaf(r: etree._Element, name: str) -> str:
    found = r.findtext(f"i:{name}", namespaces=P)
    assert found is not None, etree.tostring(r)
    return found


def ca_key_forms(store: CaStore) -> list[bytes]:
    """The CA private key as PEM, as DER, and its DER in base64."""
    pem = (store.dir / "ca.key").read_bytes()
    der = serialization.load_pem_private_key(pem, None).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    body = b"".join(pem.splitlines()[1:-1])
    return [pem, der, body, base64.b64encode(der)]


def test_create_issue_list_revoke_delete(rpc, store: CaStore) -> None:
    r = rpc(op("ca-create", name="NETCONF CA", key_type="rsa", rsa_bits=2048, days=100))
    assert leaf(r, "name") == "NETCONF CA" and leaf(r, "key-type") == "rsa"
    assert "BEGIN CERTIFICATE" in leaf(r, "certificate")
    assert error(rpc(op("ca-create", name="Again")))["app-tag"] == "ca-conflict"

    r = rpc(op("ca-issue", "<san-ip>192.0.2.1</san-ip>", kind="gateway",
               common_name="vpn.example.net"))
    gw = x509.load_pem_x509_certificate(leaf(r, "certificate").encode())
    san = gw.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["vpn.example.net"]
    assert r.find("i:pkcs12", P) is None  # never unless asked
    r = rpc(op("ca-issue", kind="client", common_name="alice", return_pkcs12="true",
               pkcs12_password="pw-1"))
    assert leaf(r, "serial") == "2"
    p12 = base64.b64decode(leaf(r, "pkcs12"))
    out = subprocess.run(["openssl", "pkcs12", "-info", "-nokeys", "-passin", "pass:pw-1"],
                         input=p12, capture_output=True)
    assert out.returncode == 0 and b"subject=CN = alice" in out.stdout, out.stderr

    r = rpc(op("ca-list"))
    assert leaf(r.find("i:ca", P), "name") == "NETCONF CA"
    certs = r.findall("i:certificate", P)
    assert [(leaf(c, "serial"), leaf(c, "kind"), leaf(c, "status")) for c in certs] == [
        ("1", "gateway", "valid"), ("2", "client", "valid")]
    assert certs[0].findtext("i:san-ip", namespaces=P) == "192.0.2.1"

    seen: list[bytes] = []
    store.on_crl(seen.append)
    r = rpc(op("ca-revoke", certificate="alice", reason="key-compromise"))
    assert leaf(r, "serial") == "2" and leaf(r, "crl-number") == "2"
    assert x509.load_der_x509_crl(seen[0]).get_revoked_certificate_by_serial_number(2)
    e = error(rpc(op("ca-delete", certificate="1")))
    assert e["tag"] == "operation-failed" and e["app-tag"] == "ca-conflict"
    assert e["path"] == "/ipsec-nf:ca-delete/ipsec-nf:certificate"
    assert leaf(rpc(op("ca-delete", certificate="2")), "serial") == "2"
    assert len(rpc(op("ca-list")).findall("i:certificate", P)) == 1
    assert len(rpc(op("ca-list", include_deleted="true")).findall("i:certificate", P)) == 2

    # nothing any reply carried was the CA's key, in any encoding
    for form in ca_key_forms(store):
        assert all(form not in reply for reply in rpc.replies)


def test_exports(rpc, store: CaStore) -> None:
    rpc(op("ca-create", name="Export CA"))
    rpc(op("ca-issue", kind="client", common_name="bob"))
    r = rpc(op("ca-export", certificate="bob", format="mobileconfig", password="pw",
               remote_address="vpn.example.net", profile_name="Office"))
    assert leaf(r, "file-name") == "bob.mobileconfig"
    profile = plistlib.loads(base64.b64decode(leaf(r, "data")))
    assert [p["PayloadType"] for p in profile["PayloadContent"]] == [
        "com.apple.vpn.managed", "com.apple.security.pkcs12", "com.apple.security.root"]
    r = rpc(op("ca-export", certificate="bob", format="sswan",
               remote_address="192.0.2.1", remote_id="vpn.example.net"))
    sswan = json.loads(base64.b64decode(leaf(r, "data")))
    assert sswan["type"] == "ikev2-cert" and sswan["remote"]["addr"] == "192.0.2.1"
    r = rpc(op("ca-export", certificate="bob", format="p12", password="x", legacy="true"))
    out = subprocess.run(["openssl", "pkcs12", "-info", "-nokeys", "-passin", "pass:x"],
                         input=base64.b64decode(leaf(r, "data")), capture_output=True)
    assert out.returncode == 0, out.stderr
    e = error(rpc(op("ca-export", certificate="bob", format="sswan")))
    assert e["tag"] == "invalid-value"
    assert e["path"] == "/ipsec-nf:ca-export/ipsec-nf:remote-address"
    for form in ca_key_forms(store):
        assert all(form not in reply for reply in rpc.replies)


def test_errors(rpc, store: CaStore) -> None:
    e = error(rpc(op("ca-list")))
    assert (e["tag"], e["app-tag"]) == ("operation-failed", "no-certificate-authority")
    rpc(op("ca-create", "<name-constraints><permitted-dns>example.net</permitted-dns>"
                        "</name-constraints>", name="Constrained"))
    e = error(rpc(op("ca-issue", kind="client", common_name="x.example.org")))
    assert e["tag"] == "invalid-value" and "name constraints" in (e["message"] or "")
    assert e["path"] == "/ipsec-nf:ca-issue/ipsec-nf:san-dns"
    e = error(rpc(op("ca-issue", kind="gateway", common_name="gw.example.net",
                     return_pkcs12="true")))
    assert e["path"] == "/ipsec-nf:ca-issue/ipsec-nf:return-pkcs12"
    assert store.list() == []  # refused before anything was issued
    e = error(rpc(op("ca-revoke", certificate="nobody")))
    assert e["tag"] == "invalid-value"
    assert e["path"] == "/ipsec-nf:ca-revoke/ipsec-nf:certificate"
    e = error(rpc(op("ca-issue", kind="router", common_name="x")))  # libyang: the enum
    assert e["tag"] == "invalid-value"
    long_pw = "secret-" + "p" * 1100
    r = rpc(op("ca-issue", kind="client", common_name="c.example.net", return_pkcs12="true",
               pkcs12_password=long_pw))
    assert "1 to 1024 characters" in (error(r)["message"] or "")
    assert b"secret-ppp" not in rpc.replies[-1]


RULES = f"""<config xmlns="{NC}"><nacm xmlns="{NACM}">
  <rule-list><name>pki</name><group>pki</group>
    <rule><name>may-list</name><module-name>ipsec-nf</module-name>
      <rpc-name>ca-list</rpc-name><access-operations>exec</access-operations>
      <action>permit</action></rule>
  </rule-list>
</nacm></config>"""


def test_nacm_default_deny_all(rpc, store: CaStore) -> None:
    assert rpc(f"<edit-config><target><running/></target>{RULES}</edit-config>").find(
        "nc:ok", P) is not None
    bodies = {"ca-create": op("ca-create", name="X"),
              "ca-issue": op("ca-issue", kind="client", common_name="x"),
              "ca-list": op("ca-list"), "ca-revoke": op("ca-revoke", certificate="1"),
              "ca-delete": op("ca-delete", certificate="1"),
              "ca-export": op("ca-export", certificate="1", format="p12")}
    for name, body in bodies.items():  # exec is permitted by default, not for these
        e = error(rpc(body, user="rita", groups=("viewers",)))
        assert e["tag"] == "access-denied", (name, e)
        assert e["path"] == f"/ietf-netconf:rpc/ipsec-nf:{name}"
    assert not store.exists()
    rpc(op("ca-create", name="Y"))
    r = rpc(bodies["ca-list"], user="paul", groups=("pki",))  # an explicit permit
    assert leaf(r.find("i:ca", P), "name") == "Y"
    assert error(rpc(bodies["ca-issue"], user="paul", groups=("pki",)))["tag"] == \
        "access-denied"


def test_the_model_marks_every_ca_rpc_default_deny_all(schema: Schema) -> None:
    for name in RPCS:
        node = next(schema.ctx.find_path(f"/ipsec-nf:{name}"))
        assert any(x.name() == "default-deny-all" for x in node.extensions()), name
        assert ("ipsec-nf", name) in DENY_ALL_RPCS
        assert (NS, name) in ops.TABLE and (NS, name) in ops_ca.TABLE


def test_without_a_store_the_rpcs_are_not_supported(new_context, schema: Schema) -> None:
    d = Dispatcher(new_context(schema=schema), ops.TABLE)
    s = SimpleNamespace(session_id=3, closing=False, data={}, user="root", groups=["admin"])
    out = etree.fromstring(asyncio.run(d.handle(
        s, f'<rpc xmlns="{NC}" message-id="1">{op("ca-list")}</rpc>'.encode())))
    assert error(out)["tag"] == "operation-not-supported"
