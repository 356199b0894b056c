"""A route-based VPN (the vRouter's svti, issue 15) on the kernel's ESP, inside the guest of
tests/kernel/vm.py: two gateways in network namespaces (tools/lab.py), each running
`ipsec-nf serve --backend kernel-netlink`, configured over NETCONF with an /ike/svti interface
and a VPN whose security policy is bound to it (svti-id-in/out, no subnets: 0.0.0.0/0 and
::/0). The gateway makes the xfrm interface (if_id, MTU, addresses, up); a route to the other
site's protected subnet is added onto it; a ping between the protected subnets passes and is
ESP (the kernel's SAs carry the if_id, their counters rise by the pings sent); an interface
deleted behind the gateway's back is made again; deleting the VPN and the svti removes the
interface, and no SA or policy is left.

The tests run in file order and share one lab with the other guest modules (kernel_lab.py:
under TCG every server start costs seconds); the route into the interface replaces the other
modules' route to the same subnet, and goes with the interface.
"""

from __future__ import annotations

import re
import subprocess

import pytest
from lxml import etree

from tests.kernel.guest.kernel_lab import SLOW, Gateways
from tests.support import wait_for
from tools.lab import Lab, Site

NS = {"i": "urn:ipsec-nf:yang:ipsec-nf"}
pytestmark = pytest.mark.kernel
IFNAME, IF_ID, MTU = "svti1", 100, 1400
TUNNEL = {"A": "192.0.2.1/30", "B": "192.0.2.2/30"}  # the svti's own addresses
TUNNEL6 = {"A": "2001:db8:15::1/64", "B": "2001:db8:15::2/64"}


@pytest.fixture(scope="module")
def gw(kernel_lab: Gateways) -> Gateways:
    """The lab shared with the other guest modules (kernel_lab.py)."""
    return kernel_lab


# ---- helpers ------------------------------------------------------------------------------

def route_based_config(s: Site) -> str:
    """One site's route-based VPN: the svti, and the VPN's policy bound to it (no subnet).

    close-action none: the sites are edited one after the other, so the second one sees its
    peer close the CHILD SA first; with the default close-action trap its trap policies would
    catch the interface's own IPv6 packets (router solicitations from its link-local address)
    and the kernel would keep that acquire's larval state (SPI 0) until acquire-timeout
    (165 s), after the VPN is gone (docs/route-based.md)."""
    return f"""<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">
  <ike xmlns="urn:ipsec-nf:yang:ipsec-nf">
    <ike-policy-template>
      <name>iketemp1</name>
      <ike-proposal><id>1</id><enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha512</auth-alg>
        <prf-alg>hmac-sha512</prf-alg><dh-group>modp2048</dh-group></ike-proposal>
    </ike-policy-template>
    <ipsec-policy-template>
      <name>ipsectemp1</name>
      <esp-proposal><id>1</id><enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha256</auth-alg>
      </esp-proposal>
    </ipsec-policy-template>
    <svti>
      <name>{IFNAME}</name>
      <svti-id>{IF_ID}</svti-id>
      <mtu>{MTU}</mtu>
      <ipv4><address>{TUNNEL[s.name]}</address></ipv4>
      <ipv6><address>{TUNNEL6[s.name]}</address></ipv6>
    </svti>
    <vpn>
      <name>route-based</name>
      <ike-policy><template>iketemp1</template></ike-policy>
      <ipsec-policy><template>ipsectemp1</template><start-action>start</start-action>
        <close-action>none</close-action></ipsec-policy>
      <local-address>{s.wan}</local-address>
      <remote-address>{s.peer_wan}</remote-address>
      <local-id>{s.fqdn}</local-id>
      <remote-id>{s.peer_fqdn}</remote-id>
      <security-policy>
        <name>all</name>
        <svti-id-in>{IF_ID}</svti-id-in>
        <svti-id-out>{IF_ID}</svti-id-out>
      </security-policy>
    </vpn>
    <pre-shared-key>
      <name>site-psk</name>
      <id>{s.peer_fqdn}</id>
      <secret>0seaJ31RfzHNRvUSH0oUYg7znTW0I=</secret>
    </pre-shared-key>
  </ike>
</config>"""


def state(m) -> etree._Element:
    return etree.fromstring(m.get().data_xml.encode())


def ip(lab: Lab, s: Site, *args: str) -> str:
    r = lab.ns(s, "ip", *args)
    assert r.returncode == 0, f"ip {' '.join(args)} in {s.ns}: {r.stderr}"
    return r.stdout


def link(lab: Lab, s: Site) -> str | None:
    """`ip -d link show svti1` in a site, or None when there is no such interface."""
    r = lab.ns(s, "ip", "-d", "link", "show", IFNAME)
    return r.stdout if r.returncode == 0 else None


def spd(lab: Lab, s: Site) -> list[str]:
    """`ip xfrm policy` without charon's per-socket policies on its IKE sockets."""
    blocks = re.split(r"\n(?=src )", ip(lab, s, "xfrm", "policy").strip())
    return [b for b in blocks if b.strip() and "\tsocket " not in b and "\n\tsocket" not in b]


def esp_packets_out(lab: Lab, s: Site, other: Site) -> tuple[int, list[str]]:
    """Packets of the kernel's ESP SAs from ``s`` to ``other`` that carry the svti's if_id,
    and those SAs as `ip -s xfrm state` prints them."""
    total, blocks = 0, []
    for block in re.split(r"\n(?=src )", ip(lab, s, "-s", "xfrm", "state").strip()):
        if not block.startswith(f"src {s.wan} dst {other.wan}"):
            continue
        blocks.append(block)
        cur = re.search(r"lifetime current:\s+\d+\(bytes\), (\d+)\(packets\)", block)
        assert cur, f"cannot read this `ip -s xfrm state` entry:\n{block}"
        if re.search(rf"if_id {IF_ID:#x}\b", block) and "proto esp" in block:
            total += int(cur[1])
    return total, blocks


def tx_packets(lab: Lab, s: Site) -> int:
    """Packets the xfrm interface of ``s`` sent (`ip -s link`)."""
    stats = ip(lab, s, "-s", "link", "show", IFNAME)
    tx = re.search(r"TX:.*\n\s+(\d+)\s+(\d+)", stats)
    assert tx, stats
    return int(tx[2])


def ping(lab: Lab, count: int = 1) -> subprocess.CompletedProcess:
    a, b = lab.a, lab.b
    return lab.ns(a, "ping", "-c", str(count), "-W", "2", "-I", a.host, b.host)


def diagnose(gw: Gateways) -> str:
    lab = gw.lab
    out = []
    for s in lab.sites:
        for args in (("-d", "link", "show", IFNAME), ("addr", "show", IFNAME),
                     ("xfrm", "policy"), ("-s", "xfrm", "state"), ("route",)):
            r = lab.ns(s, "ip", *args)
            out.append(f"[{s.name}] $ ip {' '.join(args)}\n{r.stdout}{r.stderr}")
    for s in lab.sites:
        log = s.state_dir / "charon" / "charon.log"
        if log.exists():
            out.append(f"--- site {s.name} charon.log (tail) ---\n"
                       + log.read_text(errors="replace")[-3000:])
        out.append(f"--- site {s.name} serve.log (tail) ---\n" + lab.log(s)[-3000:])
    return "\n".join(out)


def apply_status(m, kind: str, name: str) -> str | None:
    entry = state(m).xpath(f"//i:apply-status/i:entry[i:kind='{kind}'][i:name='{name}']",
                           namespaces=NS)
    return entry[0].findtext("i:status", namespaces=NS) if entry else None


# ---- the tests, in order ------------------------------------------------------------------

def test_the_gateway_makes_the_xfrm_interface(gw: Gateways) -> None:
    lab = gw.lab
    for s in (lab.b, lab.a):
        gw.m(s).edit_config(target="candidate", config=route_based_config(s))
        gw.m(s).commit()
    for s in lab.sites:
        assert wait_for(lambda s=s: link(lab, s), timeout=SLOW, every=1), \
            f"no {IFNAME} in site {s.name}\n{diagnose(gw)}"
        # what the gateway says applied is in force: the interface exists a moment before
        # the reconciler has set it up (its MTU, addresses, then up), so it is read after
        assert wait_for(lambda s=s: apply_status(gw.m(s), "svti", IFNAME) == "applied",
                        timeout=SLOW, every=1), etree.tostring(state(gw.m(s))).decode()
        text = link(lab, s)
        assert text is not None
        assert "xfrm" in text and f"if_id {IF_ID:#x}" in text, text
        assert f"mtu {MTU}" in text and ",UP" in text, text
        addrs = ip(lab, s, "addr", "show", IFNAME)
        assert f"inet {TUNNEL[s.name]}" in addrs and f"inet6 {TUNNEL6[s.name]}" in addrs, addrs
        # the route to the other site's protected subnet goes into the xfrm interface
        ip(lab, s, "route", "replace", s.peer_subnet, "dev", IFNAME)


def test_policies_carry_the_if_id_and_select_everything(gw: Gateways) -> None:
    lab = gw.lab
    assert wait_for(lambda: esp_packets_out(lab, lab.a, lab.b)[1], timeout=2 * SLOW,
                    every=1), f"no CHILD SA in the kernel\n{diagnose(gw)}"
    pols = spd(lab, lab.a)
    for sel in ("src 0.0.0.0/0 dst 0.0.0.0/0", "src ::/0 dst ::/0"):
        bound = [p for p in pols if p.startswith(sel) and f"if_id {IF_ID:#x}" in p]
        assert {d for p in bound for d in ("in", "out", "fwd") if f"dir {d}" in p} \
            == {"in", "out", "fwd"}, "\n".join(pols)


def test_ping_through_the_interface_is_esp(gw: Gateways) -> None:
    lab = gw.lab
    assert wait_for(lambda: ping(lab).returncode == 0, timeout=SLOW, every=0.5), \
        f"ping between the protected subnets never passed\n{diagnose(gw)}"
    before, _ = esp_packets_out(lab, lab.a, lab.b)
    tx_before = tx_packets(lab, lab.a)
    r = ping(lab, 5)
    assert r.returncode == 0, r.stdout + r.stderr
    after, blocks = esp_packets_out(lab, lab.a, lab.b)
    # at least the 5 pings: the interface's own IPv6 packets (router solicitations from its
    # link-local address) are routed into it and encrypted as well (the policies select ::/0)
    assert after - before >= 5, (f"the kernel's ESP SAs with if_id {IF_ID:#x} counted "
                                 f"{after - before} packets for 5 pings:\n" + "\n".join(blocks))
    for block in blocks:
        assert "encap" not in block, f"the SA is UDP-encapsulated:\n{block}"
    # the pings went into the xfrm interface (its own counters)
    assert tx_packets(lab, lab.a) - tx_before >= 5, ip(lab, lab.a, "-s", "link", "show", IFNAME)


def svti_state(m) -> etree._Element | None:
    """/ike/svti[svti1]/state of a <get>, or None."""
    found = state(m).xpath(f"//i:svti[i:name='{IFNAME}']/i:state", namespaces=NS)
    return found[0] if found else None


def test_the_interface_state_shows_it_up_and_counting(gw: Gateways) -> None:
    lab, m = gw.lab, gw.m(gw.lab.a)

    def counted(leaf: str) -> int:
        st = svti_state(m)
        return int(st.findtext(f"i:counters/i:{leaf}", namespaces=NS) or 0) if st is not None \
            else 0

    # the pings went out through the interface and their replies came in on it
    assert wait_for(lambda: counted("out-packets") > 0 and counted("in-packets") > 0,
                    timeout=SLOW, every=1), etree.tostring(state(m)).decode()
    st = svti_state(m)
    assert st.findtext("i:oper-status", namespaces=NS) == "up"
    assert st.findtext("i:mtu", namespaces=NS) == str(MTU)
    index = ip(lab, lab.a, "-o", "link", "show", IFNAME).split(":", 1)[0]
    assert st.findtext("i:if-index", namespaces=NS) == index.strip()
    assert int(st.findtext("i:counters/i:out-octets", namespaces=NS)) > 0


def test_an_interface_deleted_behind_our_back_comes_back(gw: Gateways) -> None:
    lab = gw.lab
    ip(lab, lab.a, "link", "del", IFNAME)
    # the reconciler's read-back (every 30 s) sees it gone and makes it again
    # (made, then its MTU and addresses set, then up: waited for whole)
    assert wait_for(lambda: ",UP" in (link(lab, lab.a) or "") and f"inet {TUNNEL['A']}" in
                    ip(lab, lab.a, "addr", "show", IFNAME), timeout=2 * SLOW, every=1), \
        f"{IFNAME} was not made again\n{diagnose(gw)}"
    text = link(lab, lab.a) or ""
    assert f"if_id {IF_ID:#x}" in text and f"mtu {MTU}" in text and ",UP" in text, text
    assert f"inet {TUNNEL['A']}" in ip(lab, lab.a, "addr", "show", IFNAME)
    ip(lab, lab.a, "route", "replace", lab.a.peer_subnet, "dev", IFNAME)  # went with it
    assert wait_for(lambda: ping(lab).returncode == 0, timeout=SLOW, every=0.5), diagnose(gw)


def test_removal_deletes_the_interface(gw: Gateways) -> None:
    lab = gw.lab
    body = ('<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" '
            'xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0">'
            '<ike xmlns="urn:ipsec-nf:yang:ipsec-nf">'
            '<vpn nc:operation="delete"><name>route-based</name></vpn>'
            f'<svti nc:operation="delete"><name>{IFNAME}</name></svti></ike></config>')
    for s in (lab.b, lab.a):
        gw.m(s).edit_config(target="candidate", config=body)
        gw.m(s).commit()

    def gone() -> bool:
        return all(link(lab, s) is None and not ip(lab, s, "xfrm", "state").strip()
                   and not spd(lab, s) for s in lab.sites)
    assert wait_for(gone, timeout=SLOW, every=1), f"left behind after the delete\n{diagnose(gw)}"
    for s in lab.sites:
        assert wait_for(lambda s=s: apply_status(gw.m(s), "svti", IFNAME) is None,
                        timeout=SLOW, every=1), etree.tostring(state(gw.m(s))).decode()
