"""End to end: the operational state over NETCONF <get> on the two-site lab, after traffic went
through the tunnel: the SA tables with real values, counters, task processing, each VPN's
effective parameters, and the SPIs swanctl prints for the same charon.

Needs root and `ip netns` (CI runs as root); it fails, never skips, when they are missing.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest
from lxml import etree

from southbound.charon import CharonProcess
from tests.support import wait_for
from tools.lab import Lab, configure, running

IPNF = "urn:ipsec-nf:yang:ipsec-nf"
NS = {"i": IPNF}
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running(tmp_path_factory.mktemp("state-lab")) as lab:
        configure(lab, lab.b, lab.a)
        assert wait_for(lambda: lab.ping(lab.a, 2).returncode == 0, timeout=40, every=0.2)
        yield lab


def get(lab: Lab, subtree: str | None = None) -> etree._Element:
    with lab.connect(lab.a) as m:
        reply = m.get(filter=("subtree", subtree)) if subtree else m.get()
    return etree.fromstring(reply.data_xml.encode())


def num(el: etree._Element, path: str) -> int:
    return int(el.findtext(path, namespaces=NS))


def installed(data: etree._Element) -> list[etree._Element]:
    return data.xpath("//i:ike-sa[i:state='established']/i:child-sa[i:state='installed']",
                      namespaces=NS)


def test_get_shows_the_tunnel_its_traffic_and_the_daemon(lab: Lab) -> None:
    before = {c.findtext("i:spi-out", namespaces=NS): num(c, "i:packets-out")
              for c in installed(get(lab))}
    bytes_before = sum(num(c, "i:bytes-out") for c in installed(get(lab)))
    assert lab.ping(lab.a, 5).returncode == 0
    data = get(lab)
    ike = data.find("i:ike", NS)
    children = installed(data)
    assert children, etree.tostring(data).decode()
    # both sides may initiate: the traffic is on one of the CHILD SAs, counted all together
    sent = sum(num(c, "i:packets-out") - before.get(c.findtext("i:spi-out", namespaces=NS), 0)
               for c in children)
    assert sent >= 5
    assert sum(num(c, "i:bytes-out") for c in children) - bytes_before >= 5 * 84
    sa = children[0].getparent()
    assert sa.findtext("i:name", namespaces=NS) == "siteA-siteB"
    assert sa.findtext("i:enc-alg", namespaces=NS) == "aes128-cbc"
    assert sa.findtext("i:prf-alg", namespaces=NS) == "hmac-sha512"
    assert sa.findtext("i:initiator", namespaces=NS) in ("true", "false")
    assert re.fullmatch(r"[0-9a-f]{16}", sa.findtext("i:initiator-spi", namespaces=NS))
    child = children[0]
    assert child.findtext("i:auth-alg", namespaces=NS) == "hmac-sha256"
    assert child.find("i:local-ts/i:subnet", NS) is not None
    # the daemon: IKE message counters, the thread pool it runs, the SA totals
    assert num(ike, "i:counters/i:ike-init-out-req") + num(
        ike, "i:counters/i:ike-init-in-req") >= 1
    assert ike.find("i:vpn-counters[i:name='siteA-siteB']", NS) is not None
    conf = CharonProcess(lab.a.state_dir / "charon").conf_path.read_text()
    threads = int(re.search(r"^\s*threads\s*=\s*(\d+)", conf, re.M)[1])
    assert num(ike, "i:task-processing/i:worker-threads/i:total") == threads
    assert num(ike, "i:ike-sas/i:total") >= 1
    # the VPN's effective parameters, templates resolved, inside the configured entry
    vpn = ike.find("i:vpn[i:name='siteA-siteB']", NS)
    assert vpn.findtext("i:effective/i:ike-policy/i:template", namespaces=NS) == "iketemp1"
    assert vpn.findtext("i:effective/i:ike-policy/i:ike-proposal/i:dh-group",
                        namespaces=NS) == "modp2048"
    assert vpn.findtext("i:effective/i:ipsec-policy/i:esp-proposal/i:enc-alg",
                        namespaces=NS) == "aes128-cbc"
    # the SPIs are those swanctl lists for this gateway's charon
    socket = CharonProcess(lab.a.state_dir / "charon").socket_path
    out = subprocess.run(["swanctl", "--list-sas", "--uri", f"unix://{socket}"],
                         capture_output=True, text=True, check=True, timeout=10).stdout
    esp = set(re.findall(r"^\s+(?:in|out)\s+([0-9a-f]{8}),", out, re.M))
    ours = {c.findtext(f"i:{k}", namespaces=NS) for c in installed(get(lab))
            for k in ("spi-in", "spi-out")}
    assert ours and ours <= esp, (ours, out)


def test_a_subtree_filter_picks_state_leaves(lab: Lab) -> None:
    data = get(lab, f'<ike xmlns="{IPNF}"><counters/><task-processing/>'
                    "<vpn><name>siteA-siteB</name><effective><remote-address/></effective>"
                    "</vpn></ike>")
    ike = data.find("i:ike", NS)
    assert sorted(etree.QName(e).localname for e in ike) == ["counters", "task-processing",
                                                              "vpn"]
    assert ike.find("i:ike-sa", NS) is None
    assert ike.findtext("i:vpn/i:effective/i:remote-address", namespaces=NS)
    assert ike.find("i:vpn/i:effective/i:ike-policy", NS) is None
