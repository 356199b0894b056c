"""RFC 9061's IKE-less gateway-to-gateway example (its Appendix), as one gateway of
tools/lab.py sees it: an outbound and an inbound SPD entry (protect, tunnel mode, ESP with
AES-CBC and HMAC-SHA2-256) and the two SAD entries they use, with keys chosen by the caller.

As in the RFC's example, ``local``/``remote`` are the source/destination of the packets an
entry applies to: the inbound entries name the peer's network and address as ``local``.
The addresses are the lab's documentation addresses (gateways 198.51.100.1 and .2,
protected networks 192.168.0.0/24 and 192.168.99.0/24), not the RFC's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NS = "urn:ietf:params:xml:ns:yang:ietf-i2nsf-ikeless"


@dataclass(frozen=True)
class SaKeys:
    """One SA's SPI and keys (hex strings, colon-separated as yang:hex-string)."""

    spi: int
    enc: str = field(repr=False)
    integ: str = field(repr=False)


def hexstr(b: bytes) -> str:
    """yang:hex-string of ``b``."""
    return ":".join(f"{x:02x}" for x in b)


def _lifetime(tag: str, life: dict[str, int] | None) -> str:
    if not life:
        return ""
    return f"<{tag}>" + "".join(f"<{k}>{v}</{k}>" for k, v in life.items()) + f"</{tag}>"


def sad_entry(name: str, reqid: int, keys: SaKeys, src_net: str, dst_net: str, src: str,
              dst: str, soft: dict[str, int] | None = None,
              hard: dict[str, int] | None = None) -> str:
    """One sad-entry (tunnel mode, ESP AES-CBC-128 + HMAC-SHA2-256-128)."""
    return f"""<sad-entry><name>{name}</name><reqid>{reqid}</reqid>
  <ipsec-sa-config><spi>{keys.spi}</spi><ext-seq-num>true</ext-seq-num>
    <seq-overflow>false</seq-overflow><anti-replay-window-size>64</anti-replay-window-size>
    <traffic-selector><local-prefix>{src_net}</local-prefix>
      <remote-prefix>{dst_net}</remote-prefix><inner-protocol>any</inner-protocol>
    </traffic-selector>
    <protocol-parameters>esp</protocol-parameters><mode>tunnel</mode>
    <esp-sa>
      <encryption><encryption-algorithm>12</encryption-algorithm><key>{keys.enc}</key>
      </encryption>
      <integrity><integrity-algorithm>12</integrity-algorithm><key>{keys.integ}</key>
      </integrity>
    </esp-sa>
    {_lifetime("sa-lifetime-hard", hard)}{_lifetime("sa-lifetime-soft", soft)}
    <tunnel><local>{src}</local><remote>{dst}</remote></tunnel>
  </ipsec-sa-config></sad-entry>"""


def spd_entry(name: str, direction: str, reqid: int, src_net: str, dst_net: str, src: str,
              dst: str) -> str:
    """One spd-entry protecting src_net -> dst_net through the tunnel src -> dst."""
    return f"""<spd-entry><name>{name}</name><direction>{direction}</direction>
  <reqid>{reqid}</reqid>
  <ipsec-policy-config><anti-replay-window-size>64</anti-replay-window-size>
    <traffic-selector><local-prefix>{src_net}</local-prefix>
      <remote-prefix>{dst_net}</remote-prefix><inner-protocol>any</inner-protocol>
    </traffic-selector>
    <processing-info><action>protect</action>
      <ipsec-sa-cfg><ext-seq-num>true</ext-seq-num><seq-overflow>false</seq-overflow>
        <mode>tunnel</mode><protocol-parameters>esp</protocol-parameters>
        <esp-algorithms><integrity>12</integrity>
          <encryption><id>1</id><algorithm-type>12</algorithm-type>
            <key-length>128</key-length></encryption>
        </esp-algorithms>
        <tunnel><local>{src}</local><remote>{dst}</remote></tunnel>
      </ipsec-sa-cfg>
    </processing-info>
  </ipsec-policy-config></spd-entry>"""


def gateway(wan: str, peer_wan: str, net: str, peer_net: str, out: SaKeys, inbound: SaKeys,
            soft: dict[str, int] | None = None, hard: dict[str, int] | None = None,
            sad: bool = True) -> str:
    """``ipsec-ikeless`` for the gateway at ``wan`` protecting ``net`` <-> ``peer_net``:
    ``out`` keys the SA it sends with, ``inbound`` the one it receives with (the peer's
    ``out``). Without ``sad`` only the policies (an acquire on the first packet)."""
    o = f"out/{net}/{peer_net}"
    i = f"in/{peer_net}/{net}"
    sads = (sad_entry(o, 1, out, net, peer_net, wan, peer_wan, soft, hard)
            + sad_entry(i, 2, inbound, peer_net, net, peer_wan, wan, soft, hard)) if sad else ""
    return (f'<ipsec-ikeless xmlns="{NS}"><spd>'
            + spd_entry(o, "outbound", 1, net, peer_net, wan, peer_wan)
            + spd_entry(i, "inbound", 2, peer_net, net, peer_wan, wan)
            + "</spd>" + (f"<sad>{sads}</sad>" if sads else "") + "</ipsec-ikeless>")
