"""End to end, issue 14: a VPN concentrator and three road warriors.

The gateway is `ipsec-nf serve` in its own network namespace, configured over NETCONF
(ncclient). Its CA is made with the `ipsec-nf ca` tool: the CA and the gateway's certificate
with the command line (as an operator sets a gateway up), the client certificate, its export
and its revocation with the NETCONF RPCs. The three clients are plain strongSwan (a charon and
swanctl of their own, not our code), each in its own namespace, configured as a user would:

* client 1: a pre-shared key and a user-FQDN identity, proposing AES-128-CBC;
* client 2: the certificate of the ``.p12`` our CA exported (certificate, key and CA taken
  out with ``openssl pkcs12`` into its swanctl folders), proposing AES-256-GCM;
* client 3: EAP-MSCHAPv2, checked by Debian's FreeRADIUS (started here, own namespace and
  config folder), trusting the gateway by the CA certificate ``ca-list`` gives.

Each gets its own virtual IP from the pool and the pool's DNS server, pings the protected
subnet with ESP on the wire (UDP-encapsulated: kernel-libipsec), and shows in ``<get>`` with
its identity and virtual IP. Then the refusals: a certificate revoked with ``ca-revoke`` (the
CRL is in charon at once), one of another CA, a wrong EAP password, a wrong pre-shared key;
the state (``/ike/refused-peer``), the server's log and charon's say who and why, and nothing
secret is in them.

Needs root and ``ip netns`` (CI runs as root): fails loudly, never skips.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from ncclient.xml_ import to_ele

from tests.integration.southbound.ra_net import (
    GW,
    RADIUS,
    Bench,
    ClientCharon,
    FreeRadius,
    bench,
    client_conf,
)
from tests.integration.tools.gateway import ROOT, Server, add_user, connect

pytestmark = pytest.mark.e2e

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS = "urn:ipsec-nf:yang:ipsec-nf"
P = {"i": NS}
PSK = "alice-Psk-secret-31"
WRONG_PSK = "alice-old-Psk-17"
ERIN_PW = "Erin-Passw0rd-7"
WRONG_PW = "Not-Erins-passw0rd"
RADIUS_SECRET = "radius-Secret-58"
P12_PW = "p12-Export-pw-4"
GW_ID = "gw.example.net"


@pytest.fixture
def net() -> Iterator[Bench]:
    yield from bench(3, f"w{os.getpid() % 100000}")


# ------------------------------------------------------------------------------ the CA tool

def ca_cli(state: Path, *args: str, stdin: str = "") -> str:
    """``ipsec-nf ca CMD --state-dir STATE ARGS``; its output (the test fails on an error)."""
    cmd, *rest = args
    r = subprocess.run([sys.executable, "-m", "tools.cli", "ca", cmd, "--state-dir",
                        str(state), *rest], input=stdin, text=True, capture_output=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, f"ipsec-nf ca {cmd}: {r.stderr}"
    return r.stdout


def rpc(m: Any, name: str, **leaves: object) -> etree._Element:
    """A ca-* RPC; its reply."""
    inner = "".join(f"<{k.replace('_', '-')}>{v}</{k.replace('_', '-')}>"
                    for k, v in leaves.items())
    reply = m.dispatch(to_ele(f'<{name} xmlns="{NS}">{inner}</{name}>'))
    return etree.fromstring(reply.xml.encode())


def unpack_p12(p12: Path, password: str, c: ClientCharon) -> None:
    """What a user does with a .p12 for swanctl: certificate, key and CA out with
    ``openssl pkcs12`` into the client's ``x509``, ``private`` and ``x509ca`` folders."""
    for folder, name, what in (("x509", "me.pem", ["-clcerts", "-nokeys"]),
                               ("private", "me.key", ["-nocerts", "-noenc"]),
                               ("x509ca", "ca.pem", ["-cacerts", "-nokeys"])):
        out = c.swanctl_dir / folder / name
        out.parent.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["openssl", "pkcs12", "-in", str(p12), "-passin",
                            f"pass:{password}", *what, "-out", str(out)],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, f"openssl pkcs12 {what}: {r.stderr}"
        out.chmod(0o600)


# ------------------------------------------------------------------------------ the gateway

def gateway_config(gw_cert: str, gw_key: str, ca_pem: str) -> str:
    """One IKE and one ESP template (AES-128-CBC and AES-256-GCM proposals), a pool with a
    DNS server, and three VPNs told apart by the clients' identities."""
    def vpn(name: str, remote_id: str, local: str, remote: str, extra: str = "") -> str:
        return f"""<vpn><name>{name}</name>
    <ike-policy><template>ike</template><local-auth-method>{local}</local-auth-method>
      <remote-auth-method>{remote}</remote-auth-method></ike-policy>
    <ipsec-policy><template>esp</template></ipsec-policy>
    <local-address>{GW}</local-address><local-id>{GW_ID}</local-id>
    <remote-id>{remote_id}</remote-id><vip-pool>users</vip-pool>{extra}
    <security-policy><name>lan</name><local-ts><subnet>192.168.0.0/24</subnet></local-ts>
    </security-policy></vpn>"""
    return f"""<config xmlns="{NC}"><ike xmlns="{NS}">
  <ike-policy-template><name>ike</name>
    <ike-proposal><id>1</id><enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha256</auth-alg>
      <prf-alg>hmac-sha256</prf-alg><dh-group>modp2048</dh-group></ike-proposal>
    <ike-proposal><id>2</id><aead-alg>aes256-gcm-128</aead-alg>
      <prf-alg>hmac-sha256</prf-alg><dh-group>modp2048</dh-group></ike-proposal>
  </ike-policy-template>
  <ipsec-policy-template><name>esp</name>
    <esp-proposal><id>1</id><enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha256</auth-alg>
    </esp-proposal>
    <esp-proposal><id>2</id><aead-alg>aes256-gcm-128</aead-alg></esp-proposal>
  </ipsec-policy-template>
  <pool><name>users</name><address>10.3.0.0/28</address><dns>10.1.1.53</dns></pool>
  <pre-shared-key><name>alice</name><id>alice@psk.example.net</id><secret>{PSK}</secret>
  </pre-shared-key>
  <certificate><name>gw</name><certificate>{gw_cert}</certificate>
    <private-key>{gw_key}</private-key></certificate>
  <certificate-authority><name>own</name><certificate>{ca_pem}</certificate>
  </certificate-authority>
  <eap-radius><nas-identifier>ipsec-nf-gw</nas-identifier>
    <retransmit-tries>2</retransmit-tries><retransmit-timeout>1</retransmit-timeout>
    <server><name>r1</name><address>{RADIUS}</address><secret>{RADIUS_SECRET}</secret>
    </server></eap-radius>
  {vpn("rw-psk", "*@psk.example.net", "pre-shared-key", "pre-shared-key")}
  {vpn("rw-cert", "*@cert.example.net", "certificate", "certificate",
       "<certificate>gw</certificate><remote-ca-certificate>own</remote-ca-certificate>")}
  {vpn("rw-eap", "*@eap.example.net", "certificate", "eap-radius",
       "<certificate>gw</certificate><remote-eap-id>%any</remote-eap-id>")}
</ike></config>"""


def wait_applied(m: Any) -> str:
    """The wait-applied RPC's reply (namespace declarations left out)."""
    return m.dispatch(to_ele(f'<wait-applied xmlns="{NS}"><timeout>30</timeout>'
                             "</wait-applied>")).xml.replace(f' xmlns="{NS}"', "")


def road_warriors(m: Any) -> dict[str, etree._Element]:
    """The established IKE SAs in <get>, by VPN name."""
    data = m.get(filter=("subtree", f'<ike xmlns="{NS}"><ike-sa/></ike>')).data_ele
    return {sa.findtext("i:name", namespaces=P): sa
            for sa in data.xpath("//i:ike-sa[i:state='established']", namespaces=P)}


def wait_road_warriors(m: Any, names: set[str], timeout: float = 15
                       ) -> dict[str, etree._Element]:
    """<get> until the IKE SAs of ``names`` (exactly) are there (the state engine samples)."""
    deadline = time.monotonic() + timeout
    while True:
        sas = road_warriors(m)
        if set(sas) == names or time.monotonic() > deadline:
            return sas
        time.sleep(0.3)


def wait_refused(m: Any, count: int, timeout: float = 10) -> list[dict[str, str]]:
    """<get> /ike/refused-peer until it has ``count`` entries; the entries' leaves."""
    deadline = time.monotonic() + timeout
    while True:
        data = m.get(filter=("subtree", f'<ike xmlns="{NS}"><refused-peer/></ike>')).data_ele
        entries = [{etree.QName(leaf).localname: leaf.text for leaf in entry}
                   for entry in data.xpath("//i:refused-peer", namespaces=P)]
        if len(entries) >= count or time.monotonic() > deadline:
            return entries
        time.sleep(0.3)


def wait_text(read: Any, text: str, timeout: float = 10) -> bool:
    """Until ``text`` is in what ``read()`` returns."""
    deadline = time.monotonic() + timeout
    while text not in read():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


class Capture:
    """tcpdump on the gateway's bridge, ESP or UDP-encapsulated ESP only (a non-zero first
    word after the UDP header: not IKE's non-ESP marker); stopped with SIGINT."""

    def __init__(self, ns: str, out: Path) -> None:
        self.out = out
        with open(out, "wb") as f:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, "tcpdump", "-l", "-n", "-i", "br0",
                 "esp or (udp port 4500 and udp[8:4] != 0)"],
                stdout=f, stderr=subprocess.PIPE)

    def wait_listening(self) -> None:
        assert self.proc.stderr is not None
        seen = ""
        for _ in range(5):  # "listening on br0, ..." after a line or two of notes
            line = self.proc.stderr.readline().decode()
            seen += line
            if "listening on" in line or not line:
                break
        assert "listening on" in seen, f"tcpdump did not start: {seen}"

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return self.out.read_text(errors="replace")


def test_three_road_warriors_with_our_ca(tmp_path: Path, net: Bench) -> None:
    state, other = tmp_path / "state", tmp_path / "other-ca"
    add_user(state)
    # the operator's setup: the gateway's CA and certificate (CLI) ...
    ca_cli(state, "init", "Road Warrior CA")
    out = ca_cli(state, "issue", "gateway", GW_ID, "--ip", GW)
    gw_pem_path = Path(re.search(r"certificate: (\S+)", out).group(1))  # type: ignore[union-attr]
    gw_key_path = gw_pem_path.with_suffix(".key")  # the gateway's key stays on the gateway
    # ... and, elsewhere, another CA with a client of its own (exported as a user gets it),
    # made meanwhile
    def other_ca() -> None:
        ca_cli(other, "init", "Other CA")
        ca_cli(other, "issue", "client", "mallory@cert.example.net")
        ca_cli(other, "export", "mallory@cert.example.net", "--format", "p12", "--out",
               str(tmp_path / "mallory.p12"), "--password-stdin", stdin=P12_PW + "\n")
    pool = ThreadPoolExecutor(1)
    made = pool.submit(other_ca)
    pool.shutdown(wait=False)

    radius = FreeRadius(tmp_path / "raddb", net.radius, RADIUS_SECRET, {"erin": ERIN_PW})
    clients = [ClientCharon(tmp_path / f"client{i}", netns=ns)
               for i, ns in enumerate(net.clients)]
    capture: Capture | None = None
    server = Server(net.gw, tmp_path / "s", ["--state-dir", str(state), "--listen",
                                             "127.0.0.1:8830", "--sync-interval", "5"])
    charon_log = state / "charon" / "charon.log"
    try:
        radius.start()
        server.wait_listening()
        with connect(net.gw) as m:
            # the client certificate, issued and exported over NETCONF
            r = rpc(m, "ca-issue", kind="client", common_name="carol@cert.example.net")
            carol_serial = r.findtext("i:serial", namespaces=P)
            r = rpc(m, "ca-export", certificate="carol@cert.example.net", format="p12",
                    password=P12_PW)
            p12 = tmp_path / r.findtext("i:file-name", namespaces=P)
            p12.write_bytes(base64.b64decode(r.findtext("i:data", namespaces=P) or ""))
            ca_pem = rpc(m, "ca-list").findtext("i:ca/i:certificate", namespaces=P)
            assert ca_pem and "BEGIN CERTIFICATE" in ca_pem

            m.edit_config(target="candidate", config=gateway_config(
                gw_pem_path.read_text(), gw_key_path.read_text(), ca_pem))
            m.commit()
            reply = wait_applied(m)
            assert "<result>applied</result>" in reply, reply

            # the three clients, as their users configure them
            for c in clients:
                c.start()
            alice, carol, erin = clients
            alice.load_all(client_conf(
                "vpn", "auth = psk\n      id = alice@psk.example.net",
                f"auth = psk\n      id = {GW_ID}",
                f"  ike-gw {{\n    id = {GW_ID}\n    secret = {PSK}\n  }}",
                "aes128-sha256-modp2048", "aes128-sha256"))
            unpack_p12(p12, P12_PW, carol)
            carol.load_all(client_conf(
                "vpn", "auth = pubkey\n      id = carol@cert.example.net\n"
                "      certs = me.pem",
                f"auth = pubkey\n      id = {GW_ID}\n      cacerts = ca.pem",
                "", "aes256gcm16-prfsha256-modp2048", "aes256gcm16"))
            erin.add_credential("x509ca", "ca.pem", ca_pem)

            def erin_conf(password: str) -> str:
                return client_conf(
                    "vpn", "auth = eap-mschapv2\n      id = erin@eap.example.net\n"
                    "      eap_id = erin",
                    f"auth = pubkey\n      id = {GW_ID}\n      cacerts = ca.pem",
                    f"  eap-erin {{\n    id = erin\n    secret = {password}\n  }}",
                    "aes128-sha256-modp2048", "aes128-sha256")
            erin.load_all(erin_conf(ERIN_PW))

            capture = Capture(net.gw, tmp_path / "esp.txt")
            capture.wait_listening()
            vips = {}
            for name, c in zip(("alice", "carol", "erin"), clients, strict=True):
                res = c.initiate("vpn")
                assert res.returncode == 0, f"{name}: {res.stdout}{c.log_tail(40)}"
                (vips[name],) = c.vips()
            assert len(set(vips.values())) == 3, vips
            assert set(vips.values()) <= {f"10.3.0.{i}" for i in range(1, 15)}, vips
            for name, c in zip(("alice", "carol", "erin"), clients, strict=True):
                ping = c.ping(vips[name])
                assert ping.returncode == 0, f"{name}: {ping.stdout}{ping.stderr}"
                resolv = (c.run_dir / "resolv.conf").read_text()
                assert "nameserver 10.1.1.53" in resolv, (name, resolv)
            wire = capture.stop()
            for i in range(3):  # each client's ESP (encapsulated in UDP 4500) to the gateway
                assert re.search(rf"IP 192\.0\.2\.{10 + i}\.\d+ > {GW}\.\d+: "
                                 r"(UDP-encap: )?ESP\(spi=", wire), wire[-3000:]

            # the state tree: each road warrior, its identities, virtual IP and algorithms
            sas = wait_road_warriors(m, {"rw-psk", "rw-cert", "rw-eap"})
            assert set(sas) == {"rw-psk", "rw-cert", "rw-eap"}, list(sas)

            def leaf(vpn: str, path: str) -> list[str]:
                return sas[vpn].xpath(f"{path}/text()", namespaces=P)
            assert leaf("rw-psk", "i:remote-id") == ["alice@psk.example.net"]
            assert leaf("rw-cert", "i:remote-id") == ["carol@cert.example.net"]
            assert leaf("rw-eap", "i:remote-id") == ["erin@eap.example.net"]
            assert leaf("rw-eap", "i:remote-eap-id") == ["erin"]
            for vpn, who in (("rw-psk", "alice"), ("rw-cert", "carol"), ("rw-eap", "erin")):
                assert leaf(vpn, "i:remote-vips") == [vips[who]], vpn
            assert leaf("rw-psk", "i:enc-alg") == ["aes128-cbc"]
            assert leaf("rw-psk", "i:child-sa/i:enc-alg") == ["aes128-cbc"]
            assert leaf("rw-cert", "i:aead-alg") == ["aes256-gcm-128"]
            assert leaf("rw-cert", "i:child-sa/i:aead-alg") == ["aes256-gcm-128"]
            assert leaf("rw-eap", "i:remote-address") == ["192.0.2.12"]
            assert "Access-Accept" in radius.log()

            # refused: carol's certificate revoked through the CA tool; the CRL is in charon
            # at once, so her next attempt fails
            r = rpc(m, "ca-revoke", certificate="carol@cert.example.net",
                    reason="key-compromise")
            assert r.findtext("i:serial", namespaces=P) == carol_serial
            assert "<result>applied</result>" in wait_applied(m)  # the new CRL is in charon
            carol.swanctl("--terminate", "--ike", "vpn")
            res = carol.initiate("vpn")
            assert res.returncode != 0, res.stdout
            assert not carol.vips()
            assert wait_text(charon_log.read_text, "certificate was revoked"), \
                charon_log.read_text()[-3000:]

            # refused: a certificate of another CA (exported by it, unpacked the same way);
            # sent always, so that the gateway sees the chain it cannot verify (a client that
            # keeps its certificate back is refused as authentication-failed, rightly)
            made.result(timeout=120)
            unpack_p12(tmp_path / "mallory.p12", P12_PW, carol)
            carol.add_credential("x509ca", "ca.pem", ca_pem)  # who trusts our gateway
            carol.load_all(client_conf(
                "vpn", "auth = pubkey\n      id = mallory@cert.example.net\n"
                "      certs = me.pem",
                f"auth = pubkey\n      id = {GW_ID}\n      cacerts = ca.pem",
                "", "aes256gcm16-prfsha256-modp2048", "aes256gcm16", send_cert="always"))
            res = carol.initiate("vpn")
            assert res.returncode != 0, res.stdout
            assert not carol.vips()
            assert wait_text(charon_log.read_text,
                             'no trusted ECDSA public key found for '
                             "'mallory@cert.example.net'"), charon_log.read_text()[-3000:]

            # refused: a wrong EAP password (FreeRADIUS rejects it)
            erin.swanctl("--terminate", "--ike", "vpn")
            erin.load_all(erin_conf(WRONG_PW))
            res = erin.initiate("vpn")
            assert res.returncode != 0, res.stdout
            assert not erin.vips()
            assert "Access-Reject" in radius.log()
            assert wait_text(charon_log.read_text, "RADIUS authentication of 'erin' failed"), \
                charon_log.read_text()[-3000:]

            # the state: only alice is still connected
            sas = wait_road_warriors(m, {"rw-psk"})
            assert set(sas) == {"rw-psk"}, list(sas)

            # refused: a wrong pre-shared key
            alice.swanctl("--terminate", "--ike", "vpn")
            alice.load_all(client_conf(
                "vpn", "auth = psk\n      id = alice@psk.example.net",
                f"auth = psk\n      id = {GW_ID}",
                f"  ike-gw {{\n    id = {GW_ID}\n    secret = {WRONG_PSK}\n  }}",
                "aes128-sha256-modp2048", "aes128-sha256"))
            res = alice.initiate("vpn")
            assert res.returncode != 0, res.stdout
            assert not alice.vips()

            # the state says who was refused, from where, and why
            refused = wait_refused(m, 4)
            assert [(r["reason"], r["vpn"], r["remote-id"], r["remote-address"])
                    for r in refused] == [
                ("certificate-revoked", "rw-cert", "carol@cert.example.net", "192.0.2.11"),
                ("certificate-untrusted", "rw-cert", "mallory@cert.example.net",
                 "192.0.2.11"),
                ("radius-reject", "rw-eap", "erin@eap.example.net", "192.0.2.12"),
                ("pre-shared-key-mismatch", "rw-psk", "alice@psk.example.net",
                 "192.0.2.10")], refused
            assert refused[0]["message"].startswith("certificate was revoked on ")
            assert "reason: key compromise" in refused[0]["message"]
            assert refused[1]["message"] == ('no issuer certificate found for '
                                             '"CN=mallory@cert.example.net"; issuer is '
                                             '"CN=Other CA"; no trusted ECDSA public key '
                                             "found for 'mallory@cert.example.net'")
            assert refused[2]["remote-eap-id"] == "erin"
            assert "but MAC mismatched" in refused[3]["message"]
            assert [r["id"] for r in refused] == ["1", "2", "3", "4"]
            text = m.get(filter=("subtree", f'<ike xmlns="{NS}"><refused-peer/></ike>')
                         ).data_xml
            assert all(s not in text for s in (PSK, WRONG_PSK, ERIN_PW, WRONG_PW)), text
        # and so does the server's log, one line each
        for line in ("peer refused (certificate-revoked): vpn rw-cert peer 192.0.2.11 id "
                     "carol@cert.example.net: certificate was revoked on ",
                     "peer refused (certificate-untrusted): vpn rw-cert peer 192.0.2.11 id "
                     "mallory@cert.example.net: no issuer certificate found for ",
                     "peer refused (radius-reject): vpn rw-eap peer 192.0.2.12 id "
                     "erin@eap.example.net eap-id erin: RADIUS authentication of 'erin' failed",
                     "peer refused (pre-shared-key-mismatch): vpn rw-psk peer 192.0.2.10 id "
                     "alice@psk.example.net: tried 1 shared key for"):
            assert line in server.log(), server.log()[-3000:]

        # no secret in the gateway's logs (charon's and the server's)
        logs = charon_log.read_text() + server.log()
        for secret in (PSK, WRONG_PSK, ERIN_PW, WRONG_PW, RADIUS_SECRET, P12_PW, "PRIVATE KEY",
                       "".join(gw_key_path.read_text().splitlines()[1:3])):
            assert secret not in logs, f"a secret is in the gateway's log: {secret[:4]}..."
    except BaseException:
        print(server.log()[-3000:])
        if charon_log.exists():
            print(charon_log.read_text()[-5000:])
        raise
    finally:
        if capture is not None:
            capture.stop()
        for c in clients:
            c.stop()
        server.stop()
        radius.stop()
