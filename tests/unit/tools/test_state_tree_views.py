"""Each VPN's effective view in the state tree (tools/state_tree.py): equal to its own
rendering, with the policy parts that VPNs of one template share rendered once."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from nf.effective import EffectiveConfig
from nf.schema import Schema
from nf.templates import resolve
from nf.validate import validate
from southbound.charon_backend import DATAPLANES, CharonBackend
from southbound.peer_refusals import RefusedPeers
from southbound.reconciler import Reconciler
from tools.check_output import vpn_view
from tools.state_tree import StateTree

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS = "urn:ipsec-nf:yang:ipsec-nf"


def config(n: int, own_ike_rekey: int | None = None) -> dict:
    vpns = "".join(
        f"<vpn><name>vpn{i}</name><ike-policy><template>t</template>"
        + (f"<rekey-time>{own_ike_rekey}</rekey-time>" if own_ike_rekey and i == 0 else "")
        + "</ike-policy><ipsec-policy><template>p</template></ipsec-policy>"
        f"<local-address>198.51.100.1</local-address><remote-address>203.0.113.{i + 1}"
        "</remote-address><security-policy><name>sp</name><local-ts><subnet>192.168.0.0/24"
        f"</subnet></local-ts><remote-ts><subnet>10.0.{i}.0/24</subnet></remote-ts>"
        "</security-policy></vpn>" for i in range(n))
    xml = (f'<ike xmlns="{NS}"><ike-policy-template><name>t</name><ike-proposal><id>1</id>'
           "<enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha256</auth-alg><dh-group>modp2048"
           "</dh-group></ike-proposal></ike-policy-template><ipsec-policy-template><name>p"
           "</name><esp-proposal><id>1</id><enc-alg>aes128-cbc</enc-alg><auth-alg>"
           "hmac-sha256</auth-alg></esp-proposal></ipsec-policy-template>"
           f"<pre-shared-key><name>k</name><secret>0123456789abcdef</secret></pre-shared-key>"
           f"{vpns}</ike>")
    return validate(Schema(), [etree.fromstring(xml)])


def tree_of(eff: EffectiveConfig, tmp_path: Path) -> tuple[StateTree, dict]:
    rec = Reconciler(CharonBackend(tmp_path / "none.vici", DATAPLANES["kernel-libipsec"]))
    st = StateTree(rec, RefusedPeers(), lambda: {}, lambda: eff)
    return st, st({}, None, True)


def test_views_equal_their_own_rendering_and_share_policy_parts(tmp_path: Path) -> None:
    eff = resolve(config(3, own_ike_rekey=3600))
    _, tree = tree_of(eff, tmp_path)
    views = {v["name"]: v["effective"] for v in tree["vpn"]}
    for name, vpn in eff.vpns.items():
        own = vpn_view(vpn)
        own.pop("name")
        assert views[name] == own
    # vpn1 and vpn2 use the templates as they are: one rendering of each policy
    assert views["vpn1"]["ike-policy"] is views["vpn2"]["ike-policy"]
    assert views["vpn1"]["ipsec-policy"] is views["vpn2"]["ipsec-policy"]
    # vpn0 overrides a leaf of its IKE policy: its own part, the IPsec one shared
    assert views["vpn0"]["ike-policy"] is not views["vpn1"]["ike-policy"]
    assert views["vpn0"]["ike-policy"]["rekey-time"] != views["vpn1"]["ike-policy"]["rekey-time"]
    assert views["vpn0"]["ipsec-policy"] is views["vpn1"]["ipsec-policy"]
