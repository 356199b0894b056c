"""The site-to-site scenario of tests/e2e/test_site_to_site.py on the kernel's ESP
(`serve --backend kernel-netlink`), inside the guest of tests/kernel/vm.py.

Two gateways in network namespaces (tools/lab.py), configured over NETCONF: plain ESP (the
kernel's SAs have protocol esp and no UDP encapsulation, unlike kernel-libipsec's), the SAs in
`ip xfrm state`,
the CHILD SA counters of our <get> equal to the kernel's, AES-GCM (the kernel has it,
libipsec has not), nothing left in the kernel's SAD/SPD once the VPN is deleted, and a
`start-action trap` VPN brought up by the kernel's acquire on the first packet.

The tests run in file order and share one lab with the other guest modules (kernel_lab.py:
under TCG every server start costs seconds).
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

from southbound.kernel_esp import esp_sources, kernel_esp_missing
from tests.kernel.guest.kernel_lab import SLOW, Gateways
from tests.support import wait_for
from tools.lab import Lab, Site, site_config

NS = {"i": "urn:ipsec-nf:yang:ipsec-nf"}
pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def gw(kernel_lab: Gateways) -> Iterator[Gateways]:
    """The shared lab (kernel_lab.py), with a route towards the other site in each namespace
    (its default route, in real life): policy-based ESP needs one, and the model's
    install-routes defaults to false."""
    lab = kernel_lab.lab
    for s in lab.sites:
        r = lab.ns(s, "ip", "route", "replace", s.peer_subnet, "via", s.peer_wan)
        assert r.returncode == 0, r.stderr
    yield kernel_lab


# ---- helpers ------------------------------------------------------------------------------

def state(m) -> etree._Element:
    return etree.fromstring(m.get().data_xml.encode())


def child_sas(m) -> list[etree._Element]:
    return [c for c in state(m).xpath("//i:ike-sa/i:child-sa", namespaces=NS)
            if c.findtext("i:state", namespaces=NS) == "installed"]


def ip(lab: Lab, s: Site, *args: str) -> str:
    r = lab.ns(s, "ip", *args)
    assert r.returncode == 0, f"ip {' '.join(args)} in {s.ns}: {r.stderr}"
    return r.stdout


@dataclass
class KernelSa:
    src: str
    dst: str
    proto: str
    spi: int
    mode: str
    text: str
    bytes: int
    packets: int


def spd(lab: Lab, s: Site) -> list[str]:
    """`ip xfrm policy` of a site's namespace without the per-socket policies charon sets on
    its own IKE sockets (``socket in``/``socket out``)."""
    blocks = re.split(r"\n(?=src )", ip(lab, s, "xfrm", "policy").strip())
    return [b for b in blocks if b.strip() and "\tsocket " not in b and "\n\tsocket" not in b]


def kernel_sas(lab: Lab, s: Site) -> dict[int, KernelSa]:
    """`ip -s xfrm state` of a site's namespace, by SPI."""
    out: dict[int, KernelSa] = {}
    for block in re.split(r"\n(?=src )", ip(lab, s, "-s", "xfrm", "state").strip()):
        if not block.startswith("src "):
            continue
        head = re.match(r"src (\S+) dst (\S+)\s+proto (\S+) spi 0x([0-9a-f]+).*?mode (\S+)",
                        block, re.S)
        cur = re.search(r"lifetime current:\s+(\d+)\(bytes\), (\d+)\(packets\)", block)
        assert head and cur, f"cannot read this `ip -s xfrm state` entry:\n{block}"
        sa = KernelSa(head[1], head[2], head[3], int(head[4], 16), head[5], block,
                      int(cur[1]), int(cur[2]))
        out[sa.spi] = sa
    return out


def configure(gw: Gateways, enc: str = "aes128-cbc", start_action: str | None = None,
              replace: bool = False) -> None:
    for s in (gw.lab.b, gw.lab.a):
        m = gw.m(s)
        m.edit_config(target="candidate", config=site_config(s, enc, start_action),
                      default_operation="replace" if replace else None)
        m.commit()


def edit_both(gw: Gateways, ike_body: str) -> None:
    cfg = ('<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" '
           'xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0">'
           f'<ike xmlns="urn:ipsec-nf:yang:ipsec-nf">{ike_body}</ike></config>')
    for s in (gw.lab.b, gw.lab.a):
        gw.m(s).edit_config(target="candidate", config=cfg)
        gw.m(s).commit()


def ping_ok(gw: Gateways) -> bool:
    return wait_for(lambda: gw.lab.ping(gw.lab.a, 1).returncode == 0, timeout=SLOW, every=0.5)


def diagnose(gw: Gateways) -> str:
    """What the kernel and charon of site A hold: the message of a failed wait."""
    lab = gw.lab
    out = []
    for args in (("xfrm", "policy"), ("-s", "xfrm", "state"), ("rule",),
                 ("route", "show", "table", "all")):
        r = lab.ns(lab.a, "ip", *args)
        out.append(f"$ ip {' '.join(args)}\n{r.stdout}{r.stderr}")
    r = lab.ns(lab.a, "ping", "-c", "1", "-W", "1", "-I", lab.a.host, lab.b.host)
    out.append(f"$ ping\n{r.stdout}{r.stderr}")
    log = lab.a.state_dir / "charon" / "charon.log"
    if log.exists():
        out.append("--- site A charon.log (tail) ---\n"
                   + log.read_text(errors="replace")[-4000:])
    return "\n".join(out)


def counters_match(gw: Gateways) -> tuple[bool, str]:
    """Whether every installed CHILD SA of site A in our state tree has the kernel's byte and
    packet counters for its inbound and outbound SA; and what was compared."""
    lab = gw.lab
    children = child_sas(gw.m(lab.a))
    ksas = kernel_sas(lab, lab.a)
    seen = []
    ok = bool(children)
    for c in children:
        for way in ("in", "out"):
            spi = int(c.findtext(f"i:spi-{way}", namespaces=NS), 16)
            ours = (int(c.findtext(f"i:bytes-{way}", namespaces=NS) or 0),
                    int(c.findtext(f"i:packets-{way}", namespaces=NS) or 0))
            k = ksas.get(spi)
            theirs = (k.bytes, k.packets) if k else None
            seen.append(f"spi {spi:#x} {way}: ours {ours}, kernel {theirs}")
            ok = ok and ours == theirs
    return ok, "\n".join(seen)


def outbound_packets(gw: Gateways) -> int:
    """Packets of the kernel's SAs from site A to site B."""
    lab = gw.lab
    return sum(sa.packets for sa in kernel_sas(lab, lab.a).values()
               if sa.src == lab.a.wan and sa.dst == lab.b.wan)


# ---- the tests, in order ------------------------------------------------------------------

def test_serve_accepts_kernel_netlink_here(gw: Gateways) -> None:
    assert kernel_esp_missing() is None, kernel_esp_missing()
    assert any(src.startswith("esp4") for src in esp_sources()), esp_sources()
    for s in gw.lab.sites:
        assert s.proc is not None and s.proc.poll() is None, gw.lab.log(s)
        # the whole log: the lab is shared, the start-up line may be out of lab.log's tail
        log = (s.state_dir / "serve.log").read_text(errors="replace")
        assert "backend kernel-netlink" in log, gw.lab.log(s)


def test_esp_on_the_wire_and_sas_in_kernel(gw: Gateways) -> None:
    lab = gw.lab
    configure(gw, start_action="start")
    assert ping_ok(gw), f"ping between the protected subnets never passed\n{diagnose(gw)}"
    # What goes on the wire is read from the kernel's SAs: protocol esp and no encap
    # (ESP-in-UDP shows "encap type espinudp"). A capture on the WAN veth (tcpdump, and a
    # packet socket) saw no packet at all in the guest, though the SA counters rise: not
    # explained yet, so not asserted (README, "Kernel data plane tests").
    assert lab.ping(lab.a, 3).returncode == 0
    # both sites initiate: the state read may catch the second IKE SA still connecting
    children = wait_for(lambda: child_sas(gw.m(lab.a)), timeout=SLOW, every=1)
    assert children, etree.tostring(state(gw.m(lab.a))).decode()
    ksas = kernel_sas(lab, lab.a)
    for c in children:
        assert c.findtext("i:enc-alg", namespaces=NS) == "aes128-cbc"
        for way in ("in", "out"):
            sa = ksas.get(int(c.findtext(f"i:spi-{way}", namespaces=NS), 16))
            assert sa is not None, f"CHILD SA spi-{way} not in `ip xfrm state`: {ksas}"
            assert sa.proto == "esp" and sa.mode == "tunnel", sa.text
            assert "encap" not in sa.text, f"the kernel SA is UDP-encapsulated:\n{sa.text}"
            assert "enc cbc(aes)" in sa.text and "hmac(sha256)" in sa.text, sa.text
    pols = ip(lab, lab.a, "xfrm", "policy")
    assert "src 192.168.0.0/24 dst 192.168.99.0/24" in pols, pols


def test_child_sa_counters_equal_the_kernels(gw: Gateways) -> None:
    lab = gw.lab
    before = outbound_packets(gw)
    assert lab.ping(lab.a, 5).returncode == 0
    assert outbound_packets(gw) - before == 5, "the kernel did not count the 5 pings sent"
    ok = wait_for(lambda: counters_match(gw)[0], timeout=SLOW, every=1)
    assert ok, "our counters differ from the kernel's:\n" + counters_match(gw)[1]
    total_out = sum(int(c.findtext("i:packets-out", namespaces=NS) or 0)
                    for c in child_sas(gw.m(lab.a)))
    assert total_out >= 5


def test_aes_gcm(gw: Gateways) -> None:
    lab = gw.lab
    edit_both(gw, '<ipsec-policy-template><name>ipsectemp1</name>'
                  '<esp-proposal nc:operation="replace"><id>1</id>'
                  '<aead-alg>aes128-gcm-128</aead-alg></esp-proposal></ipsec-policy-template>')

    def gcm_child() -> bool:  # both sites re-negotiate at once: wait for a working pair
        if lab.ping(lab.a, 1).returncode != 0:
            return False
        return any(c.findtext("i:aead-alg", namespaces=NS) == "aes128-gcm-128"
                   for c in child_sas(gw.m(lab.a)))
    assert wait_for(gcm_child, timeout=2 * SLOW, every=1), \
        "no CHILD SA re-keyed with aes128-gcm-128:\n" + etree.tostring(
            state(gw.m(lab.a))).decode()
    ksas = kernel_sas(lab, lab.a)
    gcm = [c for c in child_sas(gw.m(lab.a))
           if c.findtext("i:aead-alg", namespaces=NS) == "aes128-gcm-128"]
    for c in gcm:
        sa = ksas[int(c.findtext("i:spi-out", namespaces=NS), 16)]
        assert "aead rfc4106(gcm(aes))" in sa.text, sa.text
    assert ping_ok(gw)
    before = outbound_packets(gw)
    assert lab.ping(lab.a, 3).returncode == 0
    assert outbound_packets(gw) - before == 3
    assert wait_for(lambda: counters_match(gw)[0], timeout=SLOW, every=1), \
        counters_match(gw)[1]


def test_deleted_vpn_leaves_nothing_in_the_kernel(gw: Gateways) -> None:
    lab = gw.lab
    assert ip(lab, lab.a, "xfrm", "state").strip(), "no SA before the delete"
    edit_both(gw, '<vpn nc:operation="delete"><name>siteA-siteB</name></vpn>')

    def empty() -> bool:  # charon's per-socket bypass policies (IKE) are not the VPN's
        return all(not ip(lab, s, "xfrm", "state").strip() and not spd(lab, s)
                   for s in lab.sites)
    assert wait_for(empty, timeout=SLOW, every=1), diagnose(gw) + "\n".join(
        f"{s.ns} {what}:\n{ip(lab, s, 'xfrm', what)}"
        for s in lab.sites for what in ("state", "policy"))
    assert wait_for(lambda: not state(gw.m(lab.a)).xpath("//i:ike-sa", namespaces=NS),
                    timeout=SLOW, every=1)


def test_trap_vpn_comes_up_on_the_first_packet(gw: Gateways) -> None:
    lab = gw.lab
    configure(gw, start_action="trap", replace=True)
    # the trap policies are in the kernel, and no SA yet: nothing was sent
    assert wait_for(lambda: "src 192.168.0.0/24 dst 192.168.99.0/24"
                    in ip(lab, lab.a, "xfrm", "policy"), timeout=SLOW, every=1), \
        ip(lab, lab.a, "xfrm", "policy")
    time.sleep(3)
    assert not ip(lab, lab.a, "xfrm", "state").strip(), \
        "an SA was negotiated before any packet:\n" + ip(lab, lab.a, "xfrm", "state")
    assert not child_sas(gw.m(lab.a))
    lab.ping(lab.a, 1)  # the first packet: the kernel sends charon an acquire
    up = wait_for(lambda: kernel_sas(lab, lab.a), timeout=SLOW, every=1)
    assert up, f"no SA after the first packet\n{diagnose(gw)}"
    log = (lab.a.state_dir / "charon" / "charon.log").read_text(errors="replace")
    assert "creating acquire job" in log, "charon logged no acquire from the kernel"
    assert ping_ok(gw)
    assert wait_for(lambda: child_sas(gw.m(lab.a)), timeout=SLOW, every=1)


def test_deleted_trap_vpn_leaves_nothing_in_the_kernel(gw: Gateways) -> None:
    test_deleted_vpn_leaves_nothing_in_the_kernel(gw)


def test_tools_present() -> None:
    assert Path("/usr/lib/ipsec/charon").exists(), "charon missing in the guest (host's root)"
    assert shutil.which("tcpdump"), "tcpdump missing in the guest (the host's root)"
