"""The gateway's certificate by reference to its own CA, through the whole gateway: the CA
created and the gateway and client certificates issued with the CA tool (``ipsec-nf ca``),
`ipsec-nf serve` configured over NETCONF with ``ca-issued`` and ``own-ca`` (no PEM, no key
over NETCONF), a plain swanctl road warrior with the client certificate of the CA's .p12
connecting and pinging the protected subnet. Then the CA revokes the gateway certificate
over NETCONF: its entry is failed in the apply status with the reason, the next commit is
refused; a certificate re-issued under the same name is applied again at once.

Needs root and ``ip netns`` (CI runs as root): fails loudly, never skips.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree
from ncclient.operations.rpc import RPCError
from ncclient.xml_ import to_ele

from tests.e2e.test_road_warriors import ca_cli, unpack_p12
from tests.integration.southbound.ra_net import GW, Bench, ClientCharon, bench, client_conf
from tests.integration.tools.gateway import Server, add_user, connect

pytestmark = pytest.mark.e2e

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS = "urn:ipsec-nf:yang:ipsec-nf"
P = {"i": NS}
P12_PW = "p12-Ref-pw-9"
GW_ID = "gw.example.net"


@pytest.fixture
def net() -> Iterator[Bench]:
    yield from bench(1, f"c{os.getpid() % 100000}")


def config(description: str = "road warriors") -> str:
    """A certificate road-warrior VPN whose certificate and authority are references."""
    return f"""<config xmlns="{NC}"><ike xmlns="{NS}">
  <ike-policy-template><name>ike</name>
    <ike-proposal><id>1</id><aead-alg>aes256-gcm-128</aead-alg>
      <prf-alg>hmac-sha256</prf-alg><dh-group>modp2048</dh-group></ike-proposal>
    <local-auth-method>certificate</local-auth-method>
    <remote-auth-method>certificate</remote-auth-method>
  </ike-policy-template>
  <ipsec-policy-template><name>esp</name>
    <esp-proposal><id>1</id><aead-alg>aes256-gcm-128</aead-alg></esp-proposal>
  </ipsec-policy-template>
  <pool><name>users</name><address>10.4.0.0/28</address></pool>
  <certificate><name>gw</name><ca-issued>{GW_ID}</ca-issued></certificate>
  <certificate-authority><name>own</name><own-ca/></certificate-authority>
  <vpn><name>rw</name><description>{description}</description>
    <ike-policy><template>ike</template></ike-policy>
    <ipsec-policy><template>esp</template></ipsec-policy>
    <local-address>{GW}</local-address><local-id>{GW_ID}</local-id>
    <remote-id>*@cert.example.net</remote-id><vip-pool>users</vip-pool>
    <certificate>gw</certificate><remote-ca-certificate>own</remote-ca-certificate>
    <security-policy><name>lan</name><local-ts><subnet>192.168.0.0/24</subnet></local-ts>
    </security-policy>
  </vpn>
</ike></config>"""


def plain(xml: str) -> str:
    return xml.replace(f' xmlns="{NS}"', "")


def certificate_status(m: object, timeout: float = 15) -> tuple[str, str]:
    """(status, message) of the apply-status entry of certificate gw, once it is not
    pending (or at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        data = etree.fromstring(m.get(filter=(  # type: ignore[attr-defined]
            "subtree", f'<ike xmlns="{NS}"><apply-status/></ike>')).data_xml.encode())
        found = data.xpath("//i:apply-status/i:entry[i:kind='certificate'][i:name='gw']",
                           namespaces=P)
        status = found[0].findtext("i:status", namespaces=P) if found else None
        message = (found[0].findtext("i:message", namespaces=P) or "") if found else ""
        if status not in (None, "pending") or time.monotonic() > deadline:
            return status or "absent", message
        time.sleep(0.3)


def test_gateway_certificate_by_reference(tmp_path: Path, net: Bench) -> None:
    state = tmp_path / "state"
    ca_cli(state, "init", "Gateway CA")
    ca_cli(state, "issue", "gateway", GW_ID)
    ca_cli(state, "issue", "client", "alice@cert.example.net")
    p12 = tmp_path / "alice.p12"
    ca_cli(state, "export", "alice@cert.example.net", "--format", "p12", "--out", str(p12),
           "--password-stdin", stdin=P12_PW + "\n")
    gw_key = (state / "ca" / "issued" / "1.key").read_text()
    add_user(state)
    client = ClientCharon(tmp_path / "client", netns=net.clients[0])
    with Server(net.gw, tmp_path / "s", ["--state-dir", str(state), "--listen",
                                         "127.0.0.1:8830", "--sync-interval", "5"]) as server:
        server.wait_listening()
        try:
            with connect(net.gw) as m:
                m.edit_config(target="candidate", config=config())
                m.commit()
                reply = plain(m.dispatch(to_ele(
                    f'<wait-applied xmlns="{NS}"><timeout>20</timeout></wait-applied>')).xml)
                assert "<result>applied</result>" in reply, reply
                for kind in ("certificate", "certificate-authority", "vpn"):
                    assert f"<kind>{kind}</kind>" in reply, reply

                client.start()
                unpack_p12(p12, P12_PW, client)
                client.load_all(client_conf(
                    "rw", "auth = pubkey\n      id = alice@cert.example.net\n"
                    "      certs = me.pem",
                    f"auth = pubkey\n      id = {GW_ID}\n      cacerts = ca.pem",
                    proposals="aes256gcm16-prfsha256-modp2048", esp="aes256gcm16"))
                res = client.initiate("rw")
                assert res.returncode == 0, res.stdout + client.log_tail(40)
                (vip,) = client.vips()
                assert client.ping(vip).returncode == 0

                # running holds the references only: no PEM, no key, over NETCONF or on disk
                running = m.get_config(source="running").data_xml
                assert f"<ca-issued>{GW_ID}</ca-issued>" in plain(running), running
                assert "BEGIN CERTIFICATE" not in running and "PRIVATE KEY" not in running
                assert all("PRIVATE KEY" not in f.read_text(errors="replace")
                           for f in state.glob("running*") if f.is_file())

                # the CA revokes the gateway certificate: the entry fails, with the reason
                m.dispatch(to_ele(f'<ca-revoke xmlns="{NS}"><certificate>{GW_ID}'
                                  "</certificate></ca-revoke>"))
                status, message = certificate_status(m)
                assert status == "failed" and "was revoked on" in message, (status, message)
                with pytest.raises(RPCError) as e:
                    m.edit_config(target="running", config=config("changed"))
                assert "certificate gw: certificate 1 ('gw.example.net') of the gateway's CA " \
                       "was revoked on" in str(e.value), e.value

                # re-issued under the same name: filled in and loaded again at once
                m.dispatch(to_ele(f'<ca-issue xmlns="{NS}"><kind>gateway</kind>'
                                  f"<common-name>{GW_ID}</common-name></ca-issue>"))
                status, message = certificate_status(m)
                assert status == "applied", (status, message)
                m.edit_config(target="running", config=config("changed"))
            log = server.log()
            assert "PRIVATE KEY" not in log and gw_key.splitlines()[1] not in log
            assert "certificate 1 ('gw.example.net') of the gateway's CA was revoked" in log
        finally:
            client.stop()
