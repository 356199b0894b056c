"""End to end: the operational state over NETCONF <get> on the two-site lab, after traffic went
through the tunnel: the SA tables with real values, counters, task processing, each VPN's
effective parameters, and the SPIs swanctl prints for the same charon.

Needs root and `ip netns` (CI runs as root); it fails, never skips, when they are missing.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

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


def get_until(lab: Lab, counted: Callable[[etree._Element], bool]) -> etree._Element:
    """<get> until ``counted`` holds of its answer (the last answer). A <get> may answer with
    counters up to READ_MAX_STALE (5 s) old while the state is read again (stale-while-
    revalidate, docs/state.md; state-read-time says how old): traffic shows within seconds,
    not at the next <get>."""
    last: list[etree._Element] = []

    def poll() -> bool:
        last[:] = [get(lab)]
        return counted(last[0])
    wait_for(poll, timeout=15, every=0.3)
    return last[0]


def test_get_shows_the_tunnel_its_traffic_and_the_daemon(lab: Lab) -> None:
    before = {c.findtext("i:spi-out", namespaces=NS): num(c, "i:packets-out")
              for c in installed(get(lab))}
    bytes_before = sum(num(c, "i:bytes-out") for c in installed(get(lab)))
    assert lab.ping(lab.a, 5).returncode == 0

    def sent(data: etree._Element) -> int:
        # both sides may initiate: the traffic is on one of the CHILD SAs, counted together
        return sum(num(c, "i:packets-out")
                   - before.get(c.findtext("i:spi-out", namespaces=NS), 0)
                   for c in installed(data))
    data = get_until(lab, lambda d: sent(d) >= 5)
    ike = data.find("i:ike", NS)
    children = installed(data)
    assert children, etree.tostring(data).decode()
    assert sent(data) >= 5
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


def wire_spis(pcap: Path, ours: str) -> tuple[Counter[str], Counter[str]]:
    """ESP packets in a capture by SPI (8 hex digits): (sent from ``ours``, received)."""
    out = subprocess.run(["tcpdump", "-n", "-r", str(pcap)], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    sent: Counter[str] = Counter()
    received: Counter[str] = Counter()
    for line in out.splitlines():
        m = re.search(r" IP (\S+) > \S+: .*ESP\(spi=0x([0-9a-f]+),", line)
        if m:  # the source is the address, or the address and the UDP port
            mine = m[1] == ours or m[1].startswith(ours + ".")
            (sent if mine else received)[m[2].zfill(8)] += 1
    return sent, received


def test_spis_and_counters_in_get_are_those_on_the_wire(lab: Lab, tmp_path: Path) -> None:
    """Every SPI ESP packets carry on the wire is a CHILD SA's SPI in <get> (out for the
    packets site A sends, in for those it receives), and each CHILD SA's packet counters rose
    by exactly the packets the capture saw with its SPIs while the test pinged."""
    pcap = tmp_path / "wan.pcap"
    # ESP, or ESP in UDP (kernel-libipsec encapsulates): a non-zero first word after the UDP
    # header (IKE on port 4500 starts with the zero non-ESP marker)
    cap = subprocess.Popen(
        ["ip", "netns", "exec", lab.a.ns, "tcpdump", "-n", "-U", "-i", lab.wan_if, "-w",
         str(pcap), "esp or (udp port 4500 and udp[8:4] != 0)"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert cap.stderr is not None
        line = cap.stderr.readline()
        assert "listening on" in line, f"tcpdump did not start: {line}"
        before = {c.findtext("i:spi-out", namespaces=NS): (num(c, "i:packets-out"),
                                                           num(c, "i:packets-in"))
                  for c in installed(get(lab))}
        assert lab.ping(lab.a, 5).returncode == 0

        def rose(data: etree._Element) -> bool:  # the 5 echo requests and replies counted
            out = in_ = 0
            for c in installed(data):
                was_out, was_in = before.get(c.findtext("i:spi-out", namespaces=NS), (0, 0))
                out += num(c, "i:packets-out") - was_out
                in_ += num(c, "i:packets-in") - was_in
            return out >= 5 and in_ >= 5
        data = get_until(lab, rose)
    finally:
        cap.terminate()
        cap.wait(10)
    sent, received = wire_spis(pcap, lab.a.wan)
    print(f"ESP on the wire by SPI: sent {dict(sent)}, received {dict(received)}")
    assert sum(sent.values()) >= 5 and sum(received.values()) >= 5, (sent, received)
    children = installed(data)
    spi_out = {c.findtext("i:spi-out", namespaces=NS): c for c in children}
    spi_in = {c.findtext("i:spi-in", namespaces=NS): c for c in children}
    assert set(sent) <= set(spi_out), (sent, sorted(spi_out))
    assert set(received) <= set(spi_in), (received, sorted(spi_in))
    # the counters: exactly the packets on the wire with the CHILD SA's SPIs
    for c in children:
        out_spi, in_spi = c.findtext("i:spi-out", namespaces=NS), c.findtext("i:spi-in",
                                                                             namespaces=NS)
        was_out, was_in = before.get(out_spi, (0, 0))
        assert num(c, "i:packets-out") - was_out == sent[out_spi], (out_spi, sent)
        assert num(c, "i:packets-in") - was_in == received[in_spi], (in_spi, received)


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
