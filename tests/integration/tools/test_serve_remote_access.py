"""Remote access through the whole gateway: `ipsec-nf serve` configured over NETCONF (a pool,
the gateway's certificate and key, an EAP key, a RADIUS server), a plain swanctl road warrior
connecting with EAP-MSCHAPv2, the state read back with <get> (the pool's lease, the road
warrior's IKE and EAP identities and virtual IP), secrets hidden from a non-admin user and
absent from the log, a commit of an expired certificate refused with the reason.

Needs root and ``ip netns`` (CI runs as root): fails loudly, never skips.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from ncclient.operations.rpc import RPCError
from ncclient.xml_ import to_ele

from tests.integration.southbound.ra_net import (
    GW,
    Bench,
    ClientCharon,
    bench,
    client_conf,
    issue,
    make_ca,
)
from tests.integration.tools.gateway import Server, add_user, connect

pytestmark = pytest.mark.e2e

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS = "urn:ipsec-nf:yang:ipsec-nf"
EAP_SECRET = "Dave-Passw0rd-42"
RADIUS_SECRET = "radius-secret-77"


@pytest.fixture
def net() -> Iterator[Bench]:
    yield from bench(1, f"s{os.getpid() % 1000}")


def config(gw_cert: str, gw_key: str, ca: str) -> str:
    return f"""<config xmlns="{NC}"><ike xmlns="{NS}">
  <ike-policy-template><name>ike</name>
    <ike-proposal><id>1</id><enc-alg>aes256-cbc</enc-alg><auth-alg>hmac-sha256</auth-alg>
      <prf-alg>hmac-sha256</prf-alg><dh-group>modp2048</dh-group></ike-proposal>
    <local-auth-method>certificate</local-auth-method>
    <remote-auth-method>eap-mschapv2</remote-auth-method>
  </ike-policy-template>
  <ipsec-policy-template><name>esp</name>
    <esp-proposal><id>1</id><enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha256</auth-alg>
    </esp-proposal>
  </ipsec-policy-template>
  <pool><name>users</name><address>10.3.0.0/28</address><dns>10.1.1.53</dns></pool>
  <certificate><name>gw</name><certificate>{gw_cert}</certificate>
    <private-key>{gw_key}</private-key></certificate>
  <certificate-authority><name>hq</name><certificate>{ca}</certificate>
  </certificate-authority>
  <eap-key><name>dave</name><id>dave</id><secret>{EAP_SECRET}</secret></eap-key>
  <eap-radius><server><name>r1</name><address>192.0.2.100</address>
    <secret>{RADIUS_SECRET}</secret></server></eap-radius>
  <vpn><name>rw</name>
    <ike-policy><template>ike</template></ike-policy>
    <ipsec-policy><template>esp</template></ipsec-policy>
    <local-address>{GW}</local-address><local-id>gw.example.net</local-id>
    <remote-id>*@eap.example.net</remote-id><remote-eap-id>%any</remote-eap-id>
    <vip-pool>users</vip-pool><certificate>gw</certificate>
    <security-policy><name>lan</name><local-ts><subnet>192.168.0.0/24</subnet></local-ts>
    </security-policy>
  </vpn>
</ike></config>"""


def wait_applied(m: object) -> str:
    reply = m.dispatch(to_ele(  # type: ignore[attr-defined]
        f'<wait-applied xmlns="{NS}"><timeout>30</timeout></wait-applied>'))
    return reply.xml


def test_remote_access_over_netconf(tmp_path: Path, net: Bench) -> None:
    hq = make_ca("HQ Authority")
    gwc = issue(hq, "gw", x509.DNSName("gw.example.net"))
    state = tmp_path / "state"
    add_user(state)
    add_user(state, user="reader", password="reader-test-pw")
    client = ClientCharon(tmp_path / "client", netns=net.clients[0])
    with Server(net.gw, tmp_path / "s", ["--state-dir", str(state), "--listen",
                                         "127.0.0.1:8830", "--sync-interval", "5"]) as server:
        server.wait_listening()
        try:
            with connect(net.gw) as m:
                m.edit_config(target="candidate", config=config(gwc.cert_pem, gwc.key_pem,
                                                                hq.cert_pem))
                m.commit()
                reply = wait_applied(m)
                assert "<result>applied</result>" in reply.replace(f' xmlns="{NS}"', ""), reply
                for kind in ("certificate", "certificate-authority", "eap-key", "pool", "vpn"):
                    assert f"<kind>{kind}</kind>" in reply.replace(f' xmlns="{NS}"', ""), reply

                client.start()
                client.add_credential("x509ca", "ca.pem", hq.cert_pem)
                client.load_all(client_conf(
                    "rw", "auth = eap-mschapv2\n      id = dave@eap.example.net\n"
                    "      eap_id = dave",
                    "auth = pubkey\n      id = gw.example.net\n      cacerts = ca.pem",
                    f"  eap-me {{\n    id = dave\n    secret = {EAP_SECRET}\n  }}",
                    "aes256-sha256-prfsha256-modp2048", "aes128-sha256"))
                res = client.initiate("rw")
                assert res.returncode == 0, res.stdout + client.log_tail(40)
                (vip,) = client.vips()
                assert client.ping(vip).returncode == 0

                got = None
                for _ in range(20):  # the state engine samples: the new SA shows in a moment
                    got = m.get(filter=("subtree", f'<ike xmlns="{NS}"><pool/><ike-sa/></ike>'))
                    if "<remote-eap-id>" in got.data_xml:
                        break
                    time.sleep(0.5)
                assert got is not None
                data = got.data_ele
                p = {"i": NS}
                assert data.xpath("//i:ike-sa[i:name='rw']/i:remote-eap-id/text()",
                                  namespaces=p) == ["dave"], got.data_xml
                assert data.xpath("//i:ike-sa[i:name='rw']/i:remote-vips/text()",
                                  namespaces=p) == [vip]
                assert data.xpath("//i:ike-sa[i:name='rw']/i:remote-id/text()",
                                  namespaces=p) == ["dave@eap.example.net"]
                usage = data.xpath("//i:pool[i:name='users']/i:usage", namespaces=p)
                assert len(usage) == 1, got.data_xml
                assert usage[0].findtext(f"{{{NS}}}online") == "1"
                assert usage[0].findtext(f"{{{NS}}}size") == "14"
                assert usage[0].xpath("i:lease/i:address/text()", namespaces=p) == [vip]
                assert len(data.xpath("//i:pool", namespaces=p)) == 1  # merged, not beside

                # disconnect the road warrior by its virtual IP: its IKE SA goes, the lease
                # goes offline
                reply = m.dispatch(to_ele(f'<terminate xmlns="{NS}"><virtual-ip>{vip}'
                                          "</virtual-ip></terminate>")).xml
                assert "<ike-sa>" in reply.replace(f' xmlns="{NS}"', ""), reply
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:
                    got = m.get(filter=("subtree", f'<ike xmlns="{NS}"><pool/><ike-sa/></ike>'))
                    if "<remote-eap-id>" not in got.data_xml and "<online>0<" in got.data_xml:
                        break
                    time.sleep(0.5)
                assert "<remote-eap-id>" not in got.data_xml, got.data_xml
                assert "<online>0<" in got.data_xml.replace(f' xmlns="{NS}"', ""), got.data_xml

                # an expired certificate: the commit is refused with the reason
                old = issue(hq, "gw", x509.DNSName("gw.example.net"), days=(-30, -1))
                m.discard_changes()
                with pytest.raises(RPCError) as e:
                    m.edit_config(target="running", config=(
                        f'<config xmlns="{NC}"><ike xmlns="{NS}"><certificate><name>gw</name>'
                        f"<certificate>{old.cert_pem}</certificate>"
                        f"<private-key>{old.key_pem}</private-key></certificate></ike>"
                        "</config>"))
                assert "certificate gw expired on" in str(e.value), e.value
                assert "PRIVATE KEY" not in str(e.value)

            with connect(net.gw, user="reader", password="reader-test-pw") as r:
                text = r.get_config(source="running").data_xml
                assert "<certificate>-----BEGIN CERTIFICATE" in text.replace(
                    f' xmlns="{NS}"', "")  # the certificate is readable
                for secret in ("PRIVATE KEY", EAP_SECRET, RADIUS_SECRET):
                    assert secret not in text
            log = server.log()
            for secret in ("PRIVATE KEY", EAP_SECRET, RADIUS_SECRET, gwc.key_pem[40:80]):
                assert secret not in log
            conf = state / "charon" / "strongswan.conf"
            assert conf.stat().st_mode & 0o777 == 0o600 and RADIUS_SECRET in conf.read_text()
            stored = list(state.glob("running*"))  # running holds the keys: 0600
            assert stored and all(f.stat().st_mode & 0o077 == 0 for f in stored), stored
        finally:
            client.stop()
