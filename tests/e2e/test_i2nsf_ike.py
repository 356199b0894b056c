"""Through NETCONF, against two real `ipsec-nf serve`: an SDN controller configures the RFC
9061 IKE case (ietf-i2nsf-ike) on both gateways, with edit-config and commit; get-config
returns it; the tunnel comes up and carries traffic. A conn-entry that clashes with a VPN of
our own model, and the IKE-less case, are refused with an rpc-error.

Needs root and `ip netns` (CI runs as root); it fails, never skips, when they are missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree
from ncclient.operations.rpc import RPCError

from tests.support import wait_for
from tools.lab import Lab, running

pytestmark = pytest.mark.e2e
DATA = Path(__file__).resolve().parents[1] / "data" / "rfc9061"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
IKE_NS = "urn:ietf:params:xml:ns:yang:ietf-i2nsf-ike"
CONN = "Security_GW_A-Security_GW_B"


def example(side: str) -> str:
    xml = (DATA / f"ike_g2g_{side}.xml").read_text()
    return f'<config xmlns="{NC}">{xml}</config>'


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running(tmp_path_factory.mktemp("lab")) as lab:
        yield lab


def test_the_rfc_example_over_netconf_brings_the_tunnel_up(lab: Lab) -> None:
    for site, side in ((lab.b, "b"), (lab.a, "a")):
        with lab.connect(site) as m:
            m.edit_config(target="candidate", config=example(side))
            m.validate(source="candidate")
            m.commit()
            got = m.get_config(
                "running", filter=("subtree", f'<ipsec-ike xmlns="{IKE_NS}"/>')).data_ele
            names = got.xpath("//i:conn-entry/i:name/text()", namespaces={"i": IKE_NS})
            assert names == [CONN]
            assert "urn:ietf:params:xml:ns:yang:ietf-i2nsf-ike?module=ietf-i2nsf-ike" \
                   "&revision=2021-07-14" in m.server_capabilities
    res = wait_for(lambda: (r := lab.ping(lab.a)).returncode == 0 and r, timeout=30)
    assert res, f"no traffic through the tunnel:\n{lab.ping(lab.a).stdout}"
    with lab.connect(lab.a) as m:
        # <get> (config and state of every module) is answered with the connection in it
        whole = m.get().data_ele
        assert whole.xpath("//i:conn-entry/i:name/text()", namespaces={"i": IKE_NS}) == [CONN]


def test_a_clash_with_our_model_is_refused(lab: Lab) -> None:
    clash = (f'<config xmlns="{NC}"><ike xmlns="urn:ipsec-nf:yang:ipsec-nf">'
             "<ike-policy-template><name>i</name></ike-policy-template>"
             "<ipsec-policy-template><name>t</name></ipsec-policy-template>"
             f"<vpn><name>{CONN}</name><ike-policy><template>i</template></ike-policy>"
             "<ipsec-policy><template>t</template></ipsec-policy>"
             "<disabled>true</disabled></vpn></ike></config>")
    with lab.connect(lab.a) as m:
        m.discard_changes()
        with pytest.raises(RPCError) as e:
            m.edit_config(target="candidate", config=clash)
            m.commit()
        m.discard_changes()
    assert e.value.tag == "invalid-value" and "name of a vpn of ipsec-nf" in e.value.message
    x = e.value.xml if not isinstance(e.value.xml, str) else etree.fromstring(e.value.xml)
    assert x.findtext(f"{{{NC}}}error-app-tag") == "model-clash"
    assert x.findtext(f"{{{NC}}}error-path").strip() == (
        f"/ietf-i2nsf-ike:ipsec-ike/ietf-i2nsf-ike:conn-entry[ietf-i2nsf-ike:name='{CONN}']"
        "/ietf-i2nsf-ike:name")


def test_the_ikeless_case_is_refused(lab: Lab) -> None:
    sad = (f'<config xmlns="{NC}"><ipsec-ikeless xmlns="urn:ietf:params:xml:ns:yang:'
           'ietf-i2nsf-ikeless"><sad><sad-entry><name>s</name><ipsec-sa-config><spi>4711</spi>'
           "<traffic-selector><local-prefix>192.168.0.0/24</local-prefix>"
           "<remote-prefix>192.168.99.0/24</remote-prefix></traffic-selector><mode>tunnel</mode>"
           f"<esp-sa><encryption><key>{':'.join(['01'] * 16)}</key></encryption>"
           f"<integrity><key>{':'.join(['02'] * 32)}</key></integrity></esp-sa>"
           "<tunnel><local>198.51.100.1</local><remote>198.51.100.2</remote></tunnel>"
           "</ipsec-sa-config></sad-entry></sad></ipsec-ikeless></config>")
    with lab.connect(lab.a) as m:
        with pytest.raises(RPCError) as e:
            m.edit_config(target="candidate", config=sad)
            m.commit()
        m.discard_changes()
    assert "needs kernel ESP" in e.value.message
