"""Remote access, pure parts: the model's lists resolved into the effective config, the VICI
payloads (pools, certificates, authorities, EAP secrets, the load-conn additions), the
eap-radius settings, the pool usage state, and the certificate checks before commit."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from nf.effective import EapRadius, GlobalOptions, IkePolicy, RadiusServer
from nf.pki import identity_matches, pki_refusals
from nf.templates import resolve, update
from southbound.charon_conf import apply_method, render_conf, settings
from southbound.convert import SecretBytes, conn_for
from southbound.ra_session import pool_usage
from southbound.remote_access import (
    authority_payload,
    certificate_payload,
    charon_pools,
    eap_shared,
    key_id,
    pool_of,
    pool_payload,
)
from tests.support_pki import crl, issue, make_ca

HQ = make_ca("HQ")
GWC = issue(HQ, "gw", x509.DNSName("gw.example.net"))


def config(**vpn: object) -> dict:
    return {"ike": {
        "pool": [{"name": "p", "address": ["10.3.0.0/28", "10.3.1.7", "2001:db8::/120"],
                  "dns": ["10.1.1.53"], "nbns": ["10.1.1.54"]}],
        "certificate": [{"name": "gw", "certificate": GWC.cert_pem,
                         "private-key": GWC.key_pem}],
        "certificate-authority": [{"name": "hq", "certificate": HQ.cert_pem}],
        "eap-key": [{"name": "dave", "id": ["dave"], "secret": "0x0102"}],
        "vpn": [{"name": "v", "vip-pool": ["p"], "local-id": "gw.example.net", **vpn}],
    }}


def test_the_lists_resolve_and_survive_an_update_of_vpns_only() -> None:
    eff = resolve(config())
    assert eff.pools["p"].addresses == ("10.3.0.0/28", "10.3.1.7", "2001:db8::/120")
    assert eff.eap_keys["dave"].ids == ("dave",)
    assert set(eff.certificates) == {"gw"} and set(eff.authorities) == {"hq"}
    assert "BEGIN" not in repr(eff.certificates) + repr(eff.eap_keys) + repr(eff.vpns)
    again = update(eff, config(**{"local-eap-id": "me"}), ["v"], [])
    assert again.pools == eff.pools and again.certificates == eff.certificates
    assert again.vpns["v"].local_eap_id == "me"


def test_a_pool_is_one_charon_pool_per_address_with_its_attributes() -> None:
    pools = pool_payload(resolve(config()).pools["p"])
    assert list(pools) == ["p", "p#2", "p#3"] == charon_pools("p", ["a", "b", "c"])
    assert pools["p#2"] == {"addrs": "10.3.1.7-10.3.1.7", "dns": ["10.1.1.53"],
                            "nbns": ["10.1.1.54"]}
    assert pools["p#3"]["addrs"] == "2001:db8::/120"
    assert pool_of("p#3") == "p" == pool_of("p")


def test_conn_carries_pools_eap_ids_certificates_and_authorities() -> None:
    eff = resolve(config(**{"certificate": ["gw"], "remote-ca-certificate": ["hq"],
                            "remote-eap-id": "%any"}))
    vpn = eff.vpns["v"]
    vpn = replace(vpn, ike=IkePolicy(local_auth_method="certificate",
                                     remote_auth_method="eap-mschapv2"))
    conn = conn_for(vpn)
    assert conn["pools"] == ["p", "p#2", "p#3"]
    assert conn["local"] == {"auth": "pubkey", "id": "gw.example.net",
                             "certs": [GWC.cert_pem]}
    assert conn["remote"] == {"auth": "eap-mschapv2", "eap_id": "%any"}  # no cacerts
    conn = conn_for(replace(vpn, ike=IkePolicy(local_auth_method="eap-md5",
                                               remote_auth_method="certificate"),
                            local_eap_id="me"))
    assert conn["local"] == {"auth": "eap-md5", "id": "gw.example.net", "eap_id": "me"}
    assert conn["remote"] == {"auth": "pubkey", "cacerts": [HQ.cert_pem]}


def test_credential_payloads_hide_their_secrets() -> None:
    eff = resolve(config())
    p = certificate_payload(eff.certificates["gw"])
    assert isinstance(p["key"], SecretBytes) and "PRIVATE" not in repr(p)
    from southbound.batch import withhold_secret
    quoted = f"cannot parse {GWC.key_pem}"
    assert "PRIVATE" not in withhold_secret(quoted, p)
    assert p["cert"] == {"type": "x509", "flag": "none", "data": GWC.cert_pem}
    # charon's key id is the SHA-1 of the subjectPublicKey: RFC 5280's key identifier
    ski = x509.SubjectKeyIdentifier.from_public_key(GWC.cert.public_key()).digest.hex()
    assert p["key-id"] == key_id(GWC.cert_pem) == ski
    e = eap_shared(eff.eap_keys["dave"])
    assert e["type"] == "EAP" and bytes(e["data"]) == b"\x01\x02" and e["owners"] == ["dave"]
    a = authority_payload(replace(eff.authorities["hq"], crl="CRL", ocsp_uris=("http://o",)))
    assert a == {"authority": {"cacert": HQ.cert_pem, "ocsp_uris": ["http://o"]},
                 "crl": {"type": "x509crl", "flag": "none", "data": "CRL"}}


RADIUS = EapRadius(nas_identifier="gw1", accounting=True, auth_port=1812, sockets=2,
                   servers=(RadiusServer(name="r1", address="192.0.2.100", secret="s3cr3t"),
                            RadiusServer(name="r2", address="radius.example.net",
                                         secret="other", auth_port=11812, preference=5)))


def test_eap_radius_settings_are_rendered_and_reloaded() -> None:
    s = settings(GlobalOptions(eap_radius=RADIUS))
    assert s["plugins.eap-radius.nas_identifier"] == "gw1"
    assert s["plugins.eap-radius.servers.r2.auth_port"] == 11812
    assert s["plugins.eap-radius.servers.r1.acct_port"] == 1813
    text = render_conf(Path("/x"), options=GlobalOptions(eap_radius=RADIUS))
    block = text[text.index("    eap-radius {"):]
    assert "      accounting = yes\n" in block and "      sockets = 2\n" in block
    assert "        r2 {\n          address = radius.example.net\n" in block
    assert "          secret = s3cr3t\n" in block
    assert "s3cr3t" not in repr(RADIUS)
    assert "eap-radius {" not in render_conf(Path("/x"))  # no server, no section
    changed = replace(RADIUS, servers=(replace(RADIUS.servers[0], secret="new"),))
    assert apply_method(GlobalOptions(eap_radius=RADIUS),
                        GlobalOptions(eap_radius=changed)) == "reload"
    # accounting is registered at start only: restart
    assert apply_method(GlobalOptions(eap_radius=RADIUS), GlobalOptions(
        eap_radius=replace(RADIUS, accounting=False))) == "restart"
    # the first server (no settings before: nothing to account for yet) is a reload
    assert apply_method(GlobalOptions(), GlobalOptions(eap_radius=replace(
        RADIUS, accounting=None))) == "reload"


def test_pool_usage_adds_up_a_pools_charon_pools() -> None:
    raw = {"p": {"base": b"10.3.0.0", "size": b"14", "online": b"1", "offline": b"1",
                 "leases": {"0": {"address": b"10.3.0.1", "identity": b"a@x",
                                  "status": b"online"},
                            "1": {"address": b"10.3.0.2", "identity": b"b@x",
                                  "status": b"offline"}}},
           "p#2": {"size": b"1", "online": b"0", "offline": b"0"},
           "q": {"size": b"254", "online": b"0", "offline": b"0"}}
    assert pool_usage(raw) == [
        {"name": "p", "usage": {"size": 15, "online": 1, "offline": 1, "lease": [
            {"address": "10.3.0.1", "identity": "a@x", "status": "online"},
            {"address": "10.3.0.2", "identity": "b@x", "status": "offline"}]}},
        {"name": "q", "usage": {"size": 254, "online": 0, "offline": 0}}]


@pytest.mark.parametrize(("ident", "san", "ok"), [
    ("gw.example.net", x509.DNSName("gw.example.net"), True),
    ("@gw.example.net", x509.DNSName("GW.example.net"), True),
    ("other.example.net", x509.DNSName("gw.example.net"), False),
    ("carol@x.net", x509.RFC822Name("carol@x.net"), True),
    ("carol@x.net", x509.DNSName("x.net"), False),
    ("192.0.2.1", x509.IPAddress(__import__("ipaddress").ip_address("192.0.2.1")), True),
    ("O=ipsec-nf tests, CN=c", x509.DNSName("x"), True),
    ("CN=c, O=ipsec-nf tests", x509.DNSName("x"), True),
    ("O=ipsec-nf tests, CN=d", x509.DNSName("x"), False),
])
def test_identity_matches_like_charon(ident: str, san: x509.GeneralName, ok: bool) -> None:
    assert identity_matches(issue(HQ, "c", san).cert, ident) is ok


def _refusals(body: dict, now: dt.datetime | None = None) -> list[str]:
    return [r.message for r in pki_refusals(resolve(body), now)]


def test_certificates_are_checked_before_commit() -> None:
    cert_vpn = {"certificate": ["gw"], "ike-policy": {"local-auth-method": "certificate"}}
    assert _refusals(config(**cert_vpn)) == []
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    assert any("expired on" in m for m in _refusals(config(**cert_vpn), later))
    early = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    assert any("not valid before" in m for m in _refusals(config(**cert_vpn), early))
    body = config(**{**cert_vpn, "local-id": "x.example.net"})
    assert any("local-id x.example.net is neither" in m for m in _refusals(body))
    body = config(**cert_vpn)
    body["ike"]["certificate"][0]["private-key"] = make_ca("x").key_pem
    assert _refusals(body) == ["certificate gw: the private key does not match the "
                               "certificate's public key"]
    body["ike"]["certificate"][0]["private-key"] = "garbage"
    body["ike"]["certificate-authority"][0]["crl"] = crl(make_ca("other"), [])
    msgs = _refusals(body)
    assert any("not an unencrypted PEM private key" in m for m in msgs)
    assert any("CRL is not issued by this authority" in m for m in msgs)
    body = config(**cert_vpn)
    body["ike"]["certificate-authority"][0]["crl"] = crl(HQ, [GWC.cert])
    assert any("certificate gw is revoked" in m for m in _refusals(body))
    body = config(**{"ike-policy": {"local-auth-method": "certificate"}})
    assert any("needs a certificate" in m for m in _refusals(body))
    for m in _refusals(body) + msgs:
        assert "BEGIN" not in m


def test_ipsec_nf_check_shows_what_is_loaded_without_secrets() -> None:
    from tools import check as chk
    xml = f"""<ike xmlns="urn:ipsec-nf:yang:ipsec-nf">
      <pool><name>p</name><address>10.3.0.0/28</address><dns>10.1.1.53</dns></pool>
      <certificate><name>gw</name><certificate>{GWC.cert_pem}</certificate>
        <private-key>{GWC.key_pem}</private-key></certificate>
      <eap-key><name>dave</name><id>dave</id><secret>Eap-Secret-9</secret></eap-key>
    </ike>""".encode()
    result = chk.check(xml)
    assert not result.errors, result.errors
    assert result.loads["certificate"]["gw"]["key"] == chk.HIDDEN
    assert result.loads["eap-key"]["dave"]["data"] == chk.HIDDEN
    assert result.loads["pool"]["p"] == {"pools": {"p": {"addrs": "10.3.0.0/28",
                                                         "dns": ["10.1.1.53"]}}}
    text = "\n".join(chk.as_text(result, "f.xml"))
    assert "PRIVATE KEY" not in text and "Eap-Secret-9" not in text
    bad = xml.replace(GWC.key_pem.encode(), make_ca("x").key_pem.encode())
    errors = chk.check(bad).errors
    assert [(e.message, e.app_tag, e.line) for e in errors] == [
        ("certificate gw: the private key does not match the certificate's public key",
         "invalid-certificate", bad[:bad.index(b"<private-key>")].count(b"\n") + 1)]
    assert errors[0].path == "/ipsec-nf:ike/ipsec-nf:certificate[ipsec-nf:name='gw']" \
                             "/ipsec-nf:private-key"


def test_a_key_name_in_the_eap_namespace_is_refused() -> None:
    from southbound.charon_backend import DATAPLANES, refusals
    eff = resolve({"ike": {"pre-shared-key": [{"name": "eap-key/x", "secret": "s"}]}})
    (r,) = refusals(DATAPLANES["kernel-libipsec"], eff)
    assert r.path == "/ipsec-nf:ike/ipsec-nf:pre-shared-key[ipsec-nf:name='eap-key/x']"
    assert "may not begin with" in r.message


def test_a_crl_charon_would_never_use_is_refused() -> None:
    """charon 5.9.8 looks loaded CRLs up by authorityKeyIdentifier: one without is refused
    (the integration test proves a CRL with it revokes a peer's certificate in charon)."""
    now = dt.datetime.now(dt.UTC)
    bare = (x509.CertificateRevocationListBuilder().issuer_name(HQ.cert.subject)
            .last_update(now).next_update(now + dt.timedelta(days=1))
            .sign(HQ.key, hashes.SHA256()).public_bytes(Encoding.PEM).decode())
    body = config()
    body["ike"]["certificate-authority"][0]["crl"] = bare
    assert any("no authorityKeyIdentifier" in m for m in _refusals(body))
    body["ike"]["certificate-authority"][0]["crl"] = crl(HQ, [])
    assert _refusals(body) == []
