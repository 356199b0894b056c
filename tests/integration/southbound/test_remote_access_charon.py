"""Remote access against real parts: our gateway charon (configured from the model through
the datastores' checks, the templates and the reconciler) and road warriors that are plain
strongSwan charons loaded with ``swanctl --load-all --file``, each in its own network
namespace; a real FreeRADIUS for eap-radius. Data plane: kernel-libipsec on every side (a
TUN device each), so the pings really cross ESP.

Needs root and ``ip netns`` (CI runs as root): fails loudly, never skips.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from lxml import etree

from nf.datastore import Datastores
from nf.effective import EffectiveConfig
from nf.errors import RpcError
from nf.schema import Schema
from nf.templates import resolve
from southbound.charon import CharonProcess
from southbound.charon_backend import DATAPLANES, CharonBackend
from southbound.charon_conf import apply_method
from southbound.reconciler import Reconciler
from southbound.vici_client import ViciClient
from tests.integration.southbound.ra_net import (
    GW,
    RADIUS,
    Bench,
    ClientCharon,
    FreeRadius,
    Issued,
    bench,
    client_conf,
    crl,
    issue,
    make_ca,
)
from tools.backends import backend_checks, dataplane

pytestmark = pytest.mark.e2e

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS = "urn:ipsec-nf:yang:ipsec-nf"
RADIUS_SECRET = "radsecret42"

TEMPLATES = """
  <ike-policy-template><name>ike</name>
    <ike-proposal><id>1</id><enc-alg>aes256-cbc</enc-alg><auth-alg>hmac-sha256</auth-alg>
      <prf-alg>hmac-sha256</prf-alg><dh-group>modp2048</dh-group></ike-proposal>
    <local-auth-method>pre-shared-key</local-auth-method>
    <remote-auth-method>pre-shared-key</remote-auth-method>
    <version>2</version>
  </ike-policy-template>
  <ipsec-policy-template><name>esp</name>
    <esp-proposal><id>1</id><enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha256</auth-alg>
    </esp-proposal>
  </ipsec-policy-template>
"""
PROPOSALS = "aes256-sha256-prfsha256-modp2048"
ESP = "aes128-sha256"


def vpn_xml(name: str, remote_id: str, auth: str, extra: str = "") -> str:
    """A responder VPN for road warriors ``remote_id`` (a wildcard), the protected subnet on
    the gateway's side and the client's virtual IP (remote-ts unset) on the other."""
    return f"""
  <vpn><name>{name}</name>
    <ike-policy><template>ike</template>{auth}</ike-policy>
    <ipsec-policy><template>esp</template></ipsec-policy>
    <local-address>{GW}</local-address>
    <local-id>gw.example.net</local-id>
    <remote-id>{remote_id}</remote-id>
    {extra}
    <security-policy><name>{name}</name>
      <local-ts><subnet>192.168.0.0/24</subnet></local-ts>
    </security-policy>
  </vpn>"""


def config(body: str) -> etree._Element:
    return etree.fromstring(f'<config xmlns="{NC}"><ike xmlns="{NS}">{TEMPLATES}{body}'
                            "</ike></config>")


def datastores(tmp_path: Path) -> Datastores:
    """Datastores with every check ``ipsec-nf serve`` runs (kernel-libipsec)."""
    ds = Datastores(Schema(), tmp_path / "ds")
    ds.checks.extend(backend_checks(dataplane("kernel-libipsec")))
    return ds


def commit(ds: Datastores, body: str) -> EffectiveConfig:
    """edit-config ``body`` into running (replace of the whole ike container)."""
    ds.edit("running", config(body), sid=1, default_op="replace")
    return resolve(ds.config)


class Gateway:
    """Our charon, in the gateway namespace, reconciled from effective configs (one event
    loop for the reconciler's life: it runs while :meth:`apply` waits)."""

    def __init__(self, folder: Path, ns: str) -> None:
        self.charon = CharonProcess(folder, netns=ns)
        self.backend = CharonBackend(self.charon.socket_path, DATAPLANES["kernel-libipsec"])
        self.rec = Reconciler(self.backend)
        self.loop = asyncio.new_event_loop()
        self.task: asyncio.Task[None] | None = None

    def start(self, eff: EffectiveConfig) -> None:
        self.charon.options = eff.global_options
        self.charon.start()
        self.apply(eff)

    def apply(self, eff: EffectiveConfig) -> dict[tuple[str, str], Any]:
        """Give ``eff`` to the reconciler and wait until no entry is pending (each applied or
        failed); the status entries."""
        async def run() -> None:
            if self.task is None:
                self.task = asyncio.create_task(self.rec.run())
            self.rec.set_desired(eff)
            await self.rec.wait_converged(3)
            for _ in range(100):
                if self.rec.status.counts["pending"] == 0:
                    return
                await asyncio.sleep(0.2)
            pytest.fail(f"entries still pending: {self.rec.status.entries()}")
        self.loop.run_until_complete(run())
        return {(e.kind, e.name): e for e in self.rec.status.entries()}

    def state(self) -> dict[str, Any]:
        return self.backend.read_state(5)

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.loop.run_until_complete(asyncio.gather(self.task, return_exceptions=True))
        self.loop.close()
        self.charon.stop()


@pytest.fixture
def net() -> Iterator[Bench]:
    yield from bench(2, str(os.getpid() % 10000))


def _clients(tmp_path: Path, b: Bench) -> list[ClientCharon]:
    return [ClientCharon(tmp_path / f"client{i}", netns=ns) for i, ns in enumerate(b.clients)]


def _stop(*procs: Any) -> None:
    for p in procs:
        p.stop()


def _ike_sa(state: dict[str, Any], vpn: str) -> list[dict[str, Any]]:
    return [sa for sa in state.get("ike-sa", []) if sa.get("name") == vpn
            and sa.get("state") == "established"]


POOLS = """
  <pool><name>rw4</name><address>10.3.0.0/28</address><address>10.3.1.7</address>
    <dns>10.1.1.53</dns><dns>2001:db8::53</dns><nbns>10.1.1.54</nbns><dhcp>10.1.1.67</dhcp>
  </pool>
"""


POOL6 = "<pool><name>rw6</name><address>2001:db8:3::/120</address></pool>"


def test_psk_road_warriors_get_a_virtual_ip_and_dns(tmp_path: Path, net: Bench) -> None:
    """Two PSK road warriors, one key each selected by their user-FQDN: each gets a lease of
    the pool and its DNS servers, and pings the protected subnet from it; the pool's usage
    shows both leases online, then offline when they leave."""
    ds = datastores(tmp_path)
    rest = vpn_xml("rw", "*@psk.example.net",
                   "<dpd-delay>10s</dpd-delay><udp-encap>true</udp-encap><mobike>true</mobike>",
                   "<vip-pool>rw4</vip-pool><vip-pool>rw6</vip-pool>") + """
  <pre-shared-key><name>alice</name><id>alice@psk.example.net</id><secret>alice-secret-1</secret>
  </pre-shared-key>
  <pre-shared-key><name>bob</name><id>bob@psk.example.net</id><secret>bob-secret-22</secret>
  </pre-shared-key>"""
    eff = commit(ds, POOLS + POOL6 + rest)
    gw = Gateway(tmp_path / "gw", net.gw)
    clients = _clients(tmp_path, net)
    try:
        gw.start(eff)
        assert {s.status for s in gw.rec.status.entries()} == {"applied"}
        for c, (user, secret) in zip(clients, (("alice", "alice-secret-1"),
                                               ("bob", "bob-secret-22")), strict=True):
            c.start()
            c.load_all(client_conf(
                "rw", f"auth = psk\n      id = {user}@psk.example.net",
                "auth = psk\n      id = gw.example.net",
                f"  ike-{user} {{\n    id = {user}@psk.example.net\n    secret = {secret}\n  }}",
                PROPOSALS, ESP, vips="0.0.0.0, ::"))
            res = c.initiate("rw")
            assert res.returncode == 0, res.stdout + c.log_tail(40)
        both = [sorted(c.vips(), key=lambda a: ":" in a) for c in clients]  # IPv4, IPv6
        assert all(len(v) == 2 and ":" in v[1] for v in both), both
        assert all(v[1].startswith("2001:db8:3::") for v in both) and both[0][1] != both[1][1]
        vips = [[v[0]] for v in both]
        assert {v[0] for v in vips} <= {f"10.3.0.{i}" for i in range(1, 15)} | {"10.3.1.7"}
        assert vips[0] != vips[1]
        for c, v in zip(clients, vips, strict=True):
            res = c.ping(v[0])
            assert res.returncode == 0, f"ping from {v[0]} failed:\n{res.stdout}{res.stderr}"
            resolv = (c.run_dir / "resolv.conf").read_text()
            assert "nameserver 10.1.1.53" in resolv, resolv
        # MOBIKE, forced UDP encapsulation and DPD reached charon for this VPN
        with ViciClient(gw.charon.socket_path) as v:
            (conn,) = v.list_conns("rw")
        assert conn["rw"]["dpd_delay"] == b"10", conn  # (list-conns shows no encap/mobike)
        assert re.search(r"generating IKE_AUTH response .*N\(MOBIKE_SUP\)",
                         gw.charon.log_tail(400))  # MOBIKE on: the gateway offers it
        state = gw.state()
        sas = _ike_sa(state, "rw")
        assert all(sa["udp-encap"] and sa["child-sa"][0]["udp-encap"] for sa in sas), sas
        assert all(sa["remote-port"] == 4500 for sa in sas)
        assert sorted(sa["remote-id"] for sa in sas) == ["alice@psk.example.net",
                                                         "bob@psk.example.net"]
        assert sorted(v for sa in sas for v in sa["remote-vips"]) == sorted(
            v for pair in both for v in pair)
        pool, pool6 = sorted(state["pool"], key=lambda p: p["name"])
        assert pool6["name"] == "rw6" and pool6["usage"]["online"] == 2
        assert pool["name"] == "rw4"
        usage = pool["usage"]
        assert usage["size"] == 14 + 1 and usage["online"] == 2 and usage["offline"] == 0
        assert sorted(lease["identity"] for lease in usage["lease"]) == [
            "alice@psk.example.net", "bob@psk.example.net"]

        # the client goes away: its lease stays, offline, for its identity
        clients[0].swanctl("--terminate", "--ike", "rw")
        usage = {p["name"]: p["usage"] for p in gw.state()["pool"]}["rw4"]
        assert usage["online"] == 1 and usage["offline"] == 1, usage

        # a wrong key: refused (and no lease)
        c = clients[0]
        c.load_all(client_conf(
            "rw", "auth = psk\n      id = alice@psk.example.net",
            "auth = psk\n      id = gw.example.net",
            "  ike-alice {\n    id = alice@psk.example.net\n    secret = wrong-secret\n  }",
            PROPOSALS, ESP))
        assert c.initiate("rw").returncode != 0
        assert not c.vips()

        # another range for a pool with a lease online: charon refuses, the entry is failed
        # with its reason (the old range stays in force); once the lease ends, the retry
        # applies it
        eff2 = commit(ds, POOLS.replace("10.3.0.0/28", "10.4.0.0/28") + POOL6 + rest)
        status = gw.apply(eff2)
        failed = {k: e for k, e in status.items() if e.status == "failed"}
        assert list(failed) == [("pool", "rw4")], status
        assert "online leases, unable to replace" in failed[("pool", "rw4")].message, failed
        clients[1].swanctl("--terminate", "--ike", "rw")

        async def pool_applied() -> bool:
            for _ in range(60):
                entry = {(e.kind, e.name): e for e in gw.rec.status.entries()}[("pool", "rw4")]
                if entry.status == "applied":
                    return True
                await asyncio.sleep(0.5)
            return False
        assert gw.loop.run_until_complete(pool_applied()), gw.rec.status.entries()
        usage = {p["name"]: p["usage"] for p in gw.state()["pool"]}["rw4"]
        assert usage["online"] == 0 and usage["size"] == 15, usage
    except BaseException:
        print(gw.charon.log_tail(80))
        raise
    finally:
        _stop(*clients, gw)


# ------------------------------------------------------------------------------ certificates

def pki(tmp_path: Path) -> tuple[Issued, Issued, Issued, Issued]:
    """The HQ CA, the gateway's certificate, a client's (HQ) and one of another CA."""
    hq = make_ca("HQ Authority")
    gw = issue(hq, "gw", x509.DNSName("gw.example.net"))
    carol = issue(hq, "carol", x509.RFC822Name("carol@cert.example.net"))
    other = issue(make_ca("Other Authority"), "mallory",
                  x509.RFC822Name("mallory@cert.example.net"))
    return hq, gw, carol, other


def cert_xml(name: str, c: Issued) -> str:
    return (f"<certificate><name>{name}</name><certificate>{c.cert_pem}</certificate>"
            f"<private-key>{c.key_pem}</private-key></certificate>")


def ca_xml(name: str, c: Issued, crl: str = "") -> str:
    return (f"<certificate-authority><name>{name}</name><certificate>{c.cert_pem}"
            f"</certificate>{f'<crl>{crl}</crl>' if crl else ''}</certificate-authority>")


def write_client_pki(c: ClientCharon, ca: Issued, me: Issued | None) -> tuple[str, str]:
    """The client's CA (x509ca), certificate (x509) and key (private); their names."""
    c.add_credential("x509ca", "ca.pem", ca.cert_pem)
    if me is not None:
        c.add_credential("x509", "me.pem", me.cert_pem)
        c.add_credential("private", "me.key", me.key_pem)
    return "ca.pem", "me.pem"


CERT_VPN = vpn_xml("rwcert", "*@cert.example.net",
                   "<local-auth-method>certificate</local-auth-method>"
                   "<remote-auth-method>certificate</remote-auth-method>",
                   "<vip-pool>rw4</vip-pool><certificate>gw</certificate>"
                   "<remote-ca-certificate>hq</remote-ca-certificate>")


def test_certificate_road_warrior(tmp_path: Path, net: Bench) -> None:
    """A client with a certificate of the HQ CA gets in and pings; one of another CA is
    refused; the gateway's key is loaded (its id is charon's) and unloaded with it."""
    hq, gwc, carol, _ = pki(tmp_path)
    # another authority the gateway trusts too, but not for this VPN (remote-ca-certificate)
    branch = make_ca("Branch Authority")
    other = issue(branch, "mallory", x509.RFC822Name("mallory@cert.example.net"))
    ds = datastores(tmp_path)
    revoked = issue(hq, "trent", x509.RFC822Name("trent@cert.example.net"))
    eff = commit(ds, POOLS + cert_xml("gw", gwc) + ca_xml("hq", hq, crl(hq, [revoked.cert]))
                 + ca_xml("branch", branch) + CERT_VPN)
    gw = Gateway(tmp_path / "gw", net.gw)
    clients = _clients(tmp_path, net)
    try:
        gw.start(eff)
        entries = {(e.kind, e.name): e.status for e in gw.rec.status.entries()}
        assert entries == {("vpn", "rwcert"): "applied", ("pool", "rw4"): "applied",
                           ("certificate", "gw"): "applied",
                           ("certificate-authority", "hq"): "applied",
                           ("certificate-authority", "branch"): "applied"}, entries
        for c, me, ca_of, ok in ((clients[0], carol, hq, True),
                                 (clients[1], other, branch, False)):
            c.start()
            ca, cert = write_client_pki(c, ca_of, me)
            ident = me.cert.extensions.get_extension_for_class(
                x509.SubjectAlternativeName).value.get_values_for_type(x509.RFC822Name)[0]
            c.load_all(client_conf(
                "rw", f"auth = pubkey\n      id = {ident}\n      certs = {cert}",
                f"auth = pubkey\n      id = gw.example.net\n      cacerts = {ca}",
                "", PROPOSALS, ESP))
            res = c.initiate("rw")
            if ok:
                assert res.returncode == 0, res.stdout + c.log_tail(40)
                (vip,) = c.vips()
                ping = c.ping(vip)
                assert ping.returncode == 0, ping.stdout + ping.stderr
            else:
                assert res.returncode != 0, res.stdout
                assert not c.vips()
        assert "constraint check failed: peer not authenticated by CA " \
            "'O=ipsec-nf tests, CN=HQ Authority'" in gw.charon.log_tail(400)
        # a certificate of the HQ CA that its CRL (loaded with the authority) revokes
        c = clients[1]
        write_client_pki(c, hq, None)
        c.add_credential("x509", "me.pem", revoked.cert_pem)
        c.add_credential("private", "me.key", revoked.key_pem)
        c.load_all(client_conf(
            "rw", "auth = pubkey\n      id = trent@cert.example.net\n      certs = me.pem",
            "auth = pubkey\n      id = gw.example.net\n      cacerts = ca.pem",
            "", PROPOSALS, ESP))
        assert c.initiate("rw").returncode != 0
        assert 'certificate was revoked' in gw.charon.log_tail(400)
        sas = _ike_sa(gw.state(), "rwcert")
        assert [sa["remote-id"] for sa in sas] == ["carol@cert.example.net"]

        # a newer CRL revoking carol too, after charon checked her against the old one (which
        # its cache of verified credentials keeps and would use first): her next try fails
        gw.apply(commit(ds, POOLS + cert_xml("gw", gwc) + ca_xml(
            "hq", hq, crl(hq, [revoked.cert, carol.cert], number=2))
            + ca_xml("branch", branch) + CERT_VPN))
        clients[0].swanctl("--terminate", "--ike", "rw")
        assert clients[0].initiate("rw").returncode != 0
        assert gw.charon.log_tail(400).count("certificate was revoked") == 2

        # the certificate removed: its key is unloaded from charon
        from southbound import vici_ra
        from southbound.remote_access import key_id
        with ViciClient(gw.charon.socket_path) as v:
            assert gw.backend._keys["gw"] in vici_ra.get_keys(v)
        assert key_id(gwc.cert_pem) == gw.backend._keys["gw"]  # our id is charon's
        eff2 = commit(ds, POOLS + ca_xml("hq", hq) + ca_xml("branch", branch))
        gw.apply(eff2)
        with ViciClient(gw.charon.socket_path) as v:
            assert vici_ra.get_keys(v) == set()
            assert vici_ra.get_authorities(v) == {"hq", "branch"}
    except BaseException:
        print(gw.charon.log_tail(80))
        raise
    finally:
        _stop(*clients, gw)


def test_expired_revoked_or_mismatched_certificates_are_refused_at_commit(
        tmp_path: Path) -> None:
    """The checks before commit: an expired certificate, one revoked by its CA's CRL, a key
    that is not the certificate's, a local-id the certificate does not hold."""
    hq, gwc, _, _ = pki(tmp_path)
    ds = datastores(tmp_path)
    old = issue(hq, "gw", x509.DNSName("gw.example.net"), days=(-30, -1))
    cases = {
        "expired on": cert_xml("gw", old) + ca_xml("hq", hq),
        "is revoked": cert_xml("gw", gwc) + ca_xml("hq", hq, crl(hq, [gwc.cert])),
        "does not match": (f"<certificate><name>gw</name><certificate>{gwc.cert_pem}"
                           f"</certificate><private-key>{old.key_pem}</private-key>"
                           "</certificate>" + ca_xml("hq", hq)),
    }
    for words, body in cases.items():
        with pytest.raises(RpcError) as e:
            commit(ds, POOLS + body + CERT_VPN)
        messages = [err.message for err in e.value.errors]
        assert any(words in m for m in messages), messages
        assert all("PRIVATE KEY" not in m and "BEGIN" not in m for m in messages)
    with pytest.raises(RpcError) as e:
        commit(ds, POOLS + cert_xml("gw", gwc) + ca_xml("hq", hq)
               + CERT_VPN.replace("gw.example.net", "other.example.net"))
    assert any("local-id other.example.net is neither" in err.message
               for err in e.value.errors), e.value.errors
    commit(ds, POOLS + cert_xml("gw", gwc) + ca_xml("hq", hq) + CERT_VPN)  # all fine


# ------------------------------------------------------------------------------ EAP

EAP_CLIENT_REMOTE = "auth = pubkey\n      id = gw.example.net\n      cacerts = {ca}"


def _eap_client(c: ClientCharon, hq: Issued, ike_id: str, eap_id: str, password: str,
                method: str = "eap-mschapv2") -> None:
    ca, _ = write_client_pki(c, hq, None)
    c.load_all(client_conf(
        "rw", f"auth = {method}\n      id = {ike_id}\n      eap_id = {eap_id}",
        EAP_CLIENT_REMOTE.format(ca=ca),
        f"  eap-me {{\n    id = {eap_id}\n    secret = {password}\n  }}", PROPOSALS, ESP))


@pytest.mark.parametrize("method", ["eap-mschapv2", "eap-md5"])
def test_eap_with_eap_key(tmp_path: Path, net: Bench, method: str) -> None:
    """EAP-MSCHAPv2 / EAP-MD5 against an eap-key (EAP identity asked with EAP-Identity:
    remote-eap-id %any); the gateway authenticates by certificate. A wrong password is
    refused."""
    hq, gwc, _, _ = pki(tmp_path)
    ds = datastores(tmp_path)
    eff = commit(ds, POOLS + cert_xml("gw", gwc) + ca_xml("hq", hq) + vpn_xml(
        "rweap", "*@eap.example.net",
        "<local-auth-method>certificate</local-auth-method>"
        f"<remote-auth-method>{method}</remote-auth-method>",
        "<vip-pool>rw4</vip-pool><remote-eap-id>%any</remote-eap-id>"
        "<certificate>gw</certificate>")
        + "<eap-key><name>dave</name><id>dave</id><secret>Dave-Passw0rd</secret></eap-key>")
    gw = Gateway(tmp_path / "gw", net.gw)
    clients = _clients(tmp_path, net)
    try:
        gw.start(eff)
        assert {s.status for s in gw.rec.status.entries()} == {"applied"}
        good, bad = clients
        good.start()
        bad.start()
        _eap_client(good, hq, "dave@eap.example.net", "dave", "Dave-Passw0rd", method)
        _eap_client(bad, hq, "dave@eap.example.net", "dave", "not-the-password", method)
        res = good.initiate("rw")
        assert res.returncode == 0, res.stdout + good.log_tail(40)
        (vip,) = good.vips()
        assert good.ping(vip).returncode == 0
        assert bad.initiate("rw").returncode != 0
        assert not bad.vips()
        (sa,) = _ike_sa(gw.state(), "rweap")
        assert sa["remote-id"] == "dave@eap.example.net" and sa["remote-eap-id"] == "dave"
        assert sa["remote-vips"] == [vip]
    except BaseException:
        print(gw.charon.log_tail(80))
        raise
    finally:
        _stop(*clients, gw)


def _radius_xml(secret: str, accounting: bool = False) -> str:
    return f"""<eap-radius><nas-identifier>ipsec-nf-gw</nas-identifier>
      <accounting>{str(accounting).lower()}</accounting>
      <retransmit-tries>1</retransmit-tries><retransmit-timeout>0.5</retransmit-timeout>
      <server><name>r1</name><address>{RADIUS}</address>
      <secret>{secret}</secret></server></eap-radius>"""


def test_eap_radius_with_freeradius(tmp_path: Path, net: Bench) -> None:
    """EAP forwarded to a real FreeRADIUS (its own namespace and config folder). First with a
    wrong RADIUS secret: the server drops the requests, the client is refused. The secret
    corrected is taken by a settings reload (same charon process): the right password then
    gets a virtual IP and pings (with RADIUS accounting: a Start is sent), a wrong one is
    refused by the RADIUS server."""
    hq, gwc, _, _ = pki(tmp_path)
    radius = FreeRadius(tmp_path / "raddb", net.radius, RADIUS_SECRET,
                        {"erin": "Erin-Passw0rd"})
    ds = datastores(tmp_path)
    base = POOLS + cert_xml("gw", gwc) + ca_xml("hq", hq) + vpn_xml(
        "rwradius", "*@radius.example.net",
        "<local-auth-method>certificate</local-auth-method>"
        "<remote-auth-method>eap-radius</remote-auth-method>",
        "<vip-pool>rw4</vip-pool><remote-eap-id>%any</remote-eap-id>"
        "<certificate>gw</certificate>")
    eff = commit(ds, base + _radius_xml("not-the-radius-secret", accounting=True))
    gw = Gateway(tmp_path / "gw", net.gw)
    clients = _clients(tmp_path, net)
    try:
        radius.start()
        gw.start(eff)
        conf = gw.charon.conf_path
        assert conf.stat().st_mode & 0o777 == 0o600
        assert "not-the-radius-secret" in conf.read_text()
        assert {s.status for s in gw.rec.status.entries()} == {"applied"}
        good, bad = clients
        good.start()
        bad.start()
        _eap_client(good, hq, "erin@radius.example.net", "erin", "Erin-Passw0rd")
        _eap_client(bad, hq, "erin@radius.example.net", "erin", "wrong-Passw0rd")
        assert good.initiate("rw").returncode != 0  # the gateway's RADIUS secret is wrong
        assert not good.vips()

        fixed = commit(ds, base + _radius_xml(RADIUS_SECRET, accounting=True))
        assert apply_method(eff.global_options, fixed.global_options) == "reload"
        pid = gw.charon.pid
        gw.charon.reload(fixed.global_options)
        assert gw.charon.pid == pid
        res = good.initiate("rw")
        assert res.returncode == 0, res.stdout + good.log_tail(40) + radius.log()[-3000:]
        (vip,) = good.vips()
        assert good.ping(vip).returncode == 0
        assert re.search(r"Access-Accept", radius.log()), radius.log()[-3000:]
        assert "ipsec-nf-gw" in radius.log()  # our NAS-Identifier
        assert re.search(r"Received Accounting-Request.*\n(.*\n){0,30}.*Acct-Status-Type = Start",
                         radius.log()), radius.log()[-4000:]  # accounting on
        assert bad.initiate("rw").returncode != 0
        assert "Access-Reject" in radius.log()
        assert not bad.vips()
        (sa,) = _ike_sa(gw.state(), "rwradius")
        assert sa["remote-eap-id"] == "erin" and sa["remote-vips"] == [vip]
    except BaseException:
        print(gw.charon.log_tail(80))
        raise
    finally:
        _stop(*clients, gw, radius)


# ------------------------------------------------------------------------------ vRouter seed

SEED = Path(__file__).resolve().parents[2] / "data" / "seeds" / "vrouter_concentrator.xml"


def test_vrouter_concentrator_seed_with_two_psk_road_warriors(tmp_path: Path,
                                                               net: Bench) -> None:
    """The vRouter manual's VPN concentrator, as tests/data/seeds/vrouter_concentrator.xml:
    two road warriors with different algorithms (the template's two IKE and ESP proposals),
    each with its own key, get leases of user-vips and reach the hub subnet."""
    ds = datastores(tmp_path)
    ds.edit("running", etree.parse(str(SEED)).getroot(), sid=1)
    eff = resolve(ds.config)
    vpn = eff.vpns["siteA-roadw"]
    assert vpn.vip_pools == ("user-vips",) and vpn.remote_address is None
    assert eff.pools["user-vips"].addresses == ("192.168.99.0/24",)
    gw = Gateway(tmp_path / "gw", net.gw)
    clients = _clients(tmp_path, net)
    users = (("user1@6wind.net", "0seaJ31RfzHNRvUSH0oUYg7znTW0I=",
              "aes256-sha512-prfsha512-modp2048", "aes128-sha256"),
             ("user2@6wind.net", "0s3zpRt+h3g12NSaSKEx2yjY4ctak=",
              "aes128gcm16-prfsha512-modp2048", "aes128gcm16"))
    try:
        gw.start(eff)
        assert {s.status for s in gw.rec.status.entries()} == {"applied"}
        for c, (user, secret, ike, esp) in zip(clients, users, strict=True):
            c.start()
            c.load_all(client_conf(
                "rw", f"auth = psk\n      id = {user}",
                "auth = psk\n      id = user1.roadw.6wind.net",
                f"  ike-1 {{\n    id = {user}\n    secret = {secret}\n  }}", ike, esp))
            res = c.initiate("rw")
            assert res.returncode == 0, res.stdout + c.log_tail(40)
            (vip,) = c.vips()
            assert vip.startswith("192.168.99.")
            assert c.ping(vip).returncode == 0
        sas = {sa["remote-id"]: sa for sa in _ike_sa(gw.state(), "siteA-roadw")}
        assert set(sas) == {"user1@6wind.net", "user2@6wind.net"}
        assert sas["user1@6wind.net"]["enc-alg"] == "aes256-cbc"
        assert sas["user2@6wind.net"]["aead-alg"] == "aes128-gcm-128", sas["user2@6wind.net"]
        assert sas["user2@6wind.net"]["child-sa"][0]["aead-alg"] == "aes128-gcm-128"
    except BaseException:
        print(gw.charon.log_tail(80))
        raise
    finally:
        _stop(*clients, gw)


def test_gateway_authenticates_itself_by_eap(tmp_path: Path, net: Bench) -> None:
    """local-auth-method eap-mschapv2 with local-eap-id and an eap-key: our gateway
    initiates to a plain strongSwan responder that asks it for EAP-MSCHAPv2 (and proves
    itself with a pre-shared key). charon sends its local-eap-id when the server asks the EAP
    identity (EAP-Identity, here eap_id %any on the server); without that request it answers
    as its IKE identity (charon 5.9.8's EAP client)."""
    from tests.support import sh
    server_ns = net.clients[0]
    sh("ip", "-n", server_ns, "addr", "add", "192.168.77.1/32", "dev", "lo")
    ds = datastores(tmp_path)
    eff = commit(ds, """
  <vpn><name>toserver</name>
    <ike-policy><template>ike</template>
      <local-auth-method>eap-mschapv2</local-auth-method></ike-policy>
    <ipsec-policy><template>esp</template></ipsec-policy>
    <local-address>192.0.2.1</local-address><remote-address>192.0.2.10</remote-address>
    <local-id>gw.example.net</local-id><remote-id>srv.example.net</remote-id>
    <local-eap-id>gwuser</local-eap-id>
    <security-policy><name>lan</name>
      <local-ts><subnet>192.168.0.0/24</subnet></local-ts>
      <remote-ts><subnet>192.168.77.0/24</subnet></remote-ts>
    </security-policy>
  </vpn>
  <pre-shared-key><name>srv</name><id>srv.example.net</id><id>gw.example.net</id>
    <secret>server-psk-123</secret></pre-shared-key>
  <eap-key><name>gwuser</name><id>gwuser</id><secret>Gw-Eap-Passw0rd</secret></eap-key>""")
    server = ClientCharon(tmp_path / "server", netns=server_ns)
    gw = Gateway(tmp_path / "gw", net.gw)
    try:
        server.start()
        server.load_all(f"""connections {{
  gw {{
    version = 2
    local_addrs = 192.0.2.10
    remote_addrs = {GW}
    proposals = {PROPOSALS}
    local {{
      auth = psk
      id = srv.example.net
    }}
    remote {{
      auth = eap-mschapv2
      id = gw.example.net
      eap_id = %any
    }}
    children {{
      lan {{
        local_ts = 192.168.77.0/24
        remote_ts = 192.168.0.0/24
        esp_proposals = {ESP}
      }}
    }}
  }}
}}
secrets {{
  ike-gw {{
    id-1 = srv.example.net
    id-2 = gw.example.net
    secret = server-psk-123
  }}
  eap-gw {{
    id = gwuser
    secret = Gw-Eap-Passw0rd
  }}
}}
""")
        gw.start(eff)  # the VPN starts at once (kernel-libipsec: no trap)
        for _ in range(40):
            with ViciClient(server.socket_path) as v:
                sas = [sa for e in v.list_sas() for sa in e.values()
                       if sa.get("state") == b"ESTABLISHED"]
            if sas:
                break
            time.sleep(0.25)
        assert sas, server.log_tail(40)
        assert sas[0]["remote-eap-id"] == b"gwuser" and sas[0]["remote-id"] == b"gw.example.net"
        res = sh("ip", "netns", "exec", server_ns, "ping", "-c", "2", "-W", "1", "-I",
                 "192.168.77.1", "192.168.0.1", check=False)
        assert res.returncode == 0, res.stdout
    except BaseException:
        print(gw.charon.log_tail(60))
        raise
    finally:
        _stop(server, gw)
