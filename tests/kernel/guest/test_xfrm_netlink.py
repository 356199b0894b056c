"""Our netlink XFRM driver (southbound/xfrm/) on a kernel with ESP, inside the guest of
tests/kernel/vm.py; `ip xfrm` (iproute2) is the independent reader everything is compared with.

Two namespaces joined by a veth (tools/lab.py's topology, 198.51.100.1 <-> .2):

- SAs with AES-GCM and with AES-CBC + HMAC-SHA256 (keys chosen here), ESP-in-UDP, if_id,
  lifetimes, a 64-packet replay window: added, dumped, compared with `ip -s xfrm state`,
  deleted; policies with templates likewise against `ip xfrm policy`;
- traffic through transport-mode SAs installed by the driver on both sides: the counters
  the driver reads equal `ip -s xfrm state`'s, and so do those of /ike/kernel/sa in a
  NETCONF <get> of `ipsec-nf serve --backend kernel-netlink` running in that namespace
  (the last test: in the namespaces of the lab shared by the guest modules, kernel_lab.py,
  whose servers run there);
- events: a soft then a hard expire from short lifetimes, an acquire from traffic hitting a
  policy without an SA.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from lxml import etree

from southbound.kernel_state import KernelStateReader
from southbound.xfrm.api import XfrmNotFound
from southbound.xfrm.netlink import XfrmNetlink
from southbound.xfrm.types import (
    AcquireEvent,
    Action,
    AeadAlgorithm,
    Algorithm,
    AuthAlgorithm,
    Direction,
    Encap,
    ExpireEvent,
    Group,
    Lifetime,
    Mode,
    PolicyId,
    Selector,
    Template,
    XfrmPolicy,
    XfrmState,
)
from tests.kernel.guest.kernel_lab import Gateways as KernelLab
from tests.support import wait_for
from tools.lab import Lab, Site

pytestmark = pytest.mark.kernel
NS = {"i": "urn:ipsec-nf:yang:ipsec-nf"}
SLOW = 90  # seconds: TCG
RESULTS = Path("/ipsec-nf-results")  # the guest's read-write share (tests/kernel/vm.py)

A = ipaddress.ip_address("198.51.100.1")
B = ipaddress.ip_address("198.51.100.2")
GCM_KEY = bytes(range(1, 21))  # 16-byte AES key + 4-byte salt
CBC_KEY = bytes(range(0x20, 0x30))
HMAC_KEY = bytes(range(0x40, 0x60))


def host(addr: ipaddress.IPv4Address) -> ipaddress.IPv4Network:
    return ipaddress.ip_network(f"{addr}/32")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("xfrm"))
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


@contextmanager
def _drivers_in(lab: Lab) -> Iterator[tuple[XfrmNetlink, XfrmNetlink]]:
    a, b = XfrmNetlink(lab.a.ns), XfrmNetlink(lab.b.ns)
    try:
        yield a, b
    finally:
        for d in (a, b):  # each test leaves both namespaces' SAD/SPD empty
            d.flush([s.id for s in d.dump_states()], [p.id for p in d.dump_policies()])
            d.close()


@pytest.fixture
def drivers(lab: Lab) -> Iterator[tuple[XfrmNetlink, XfrmNetlink]]:
    with _drivers_in(lab) as pair:
        yield pair


@pytest.fixture
def served(kernel_lab: KernelLab) -> Iterator[tuple[KernelLab, XfrmNetlink, XfrmNetlink]]:
    """The drivers in the namespaces of the lab shared by the guest modules (kernel_lab.py),
    whose servers run there (`serve --backend kernel-netlink`, no VPN left by the modules
    before): no server start of this module's own, a minute under TCG. (The other tests keep
    their own lab: charon's per-socket policies would be in their `ip xfrm policy`.)"""
    with _drivers_in(kernel_lab.lab) as (a, b):
        yield kernel_lab, a, b


def ip(lab: Lab, s: Site, *args: str) -> str:
    r = lab.ns(s, "ip", *args)
    assert r.returncode == 0, f"ip {' '.join(args)}: {r.stderr}"
    return r.stdout


def ip_states(lab: Lab, s: Site) -> dict[int, str]:
    """`ip -s xfrm state` of S's namespace: each entry's text by SPI."""
    out = {}
    for block in re.split(r"\n(?=src )", ip(lab, s, "-s", "xfrm", "state").strip()):
        m = re.search(r"proto \S+ spi 0x([0-9a-f]+)", block)
        if m:
            out[int(m[1], 16)] = block
    return out


def ip_counters(text: str) -> tuple[int, int]:
    m = re.search(r"lifetime current:\s+(\d+)\(bytes\), (\d+)\(packets\)", text)
    assert m, text
    return int(m[1]), int(m[2])


def gcm_sa(spi: int, **kw) -> XfrmState:
    return XfrmState(A, B, spi, mode=Mode.TUNNEL, reqid=11,
                     aead=AeadAlgorithm("rfc4106(gcm(aes))", GCM_KEY, 128), **kw)


def cbc_sa(spi: int, **kw) -> XfrmState:
    return XfrmState(A, B, spi, mode=Mode.TUNNEL, reqid=12,
                     enc=Algorithm("cbc(aes)", CBC_KEY),
                     auth=AuthAlgorithm("hmac(sha256)", HMAC_KEY, 128), **kw)


def test_sa_round_trip_gcm_and_cbc(lab: Lab, drivers) -> None:
    d, _ = drivers
    gcm = gcm_sa(0xC0DE0001, replay_window=64, if_id=7,
                 lifetime=Lifetime(soft_bytes=1 << 30, hard_bytes=2 << 30,
                                   soft_add_seconds=3000, hard_add_seconds=3600))
    cbc = cbc_sa(0xC0DE0002, encap=Encap(4500, 4500), replay_window=32)
    d.add_state(gcm)
    d.add_state(cbc)
    got = {s.spi: s for s in d.dump_states()}
    assert set(got) == {gcm.spi, cbc.spi}
    g, c = got[gcm.spi], got[cbc.spi]
    # what was written is what is read (keys included: the driver sees them, the tree not)
    assert (g.src, g.dst, g.proto, g.mode, g.reqid, g.aead, g.enc, g.auth) == (
        A, B, gcm.proto, Mode.TUNNEL, 11, gcm.aead, None, None)
    assert (g.replay_window, g.if_id, g.lifetime) == (64, 7, gcm.lifetime)
    assert (c.enc, c.auth, c.aead, c.encap, c.replay_window) == (
        cbc.enc, cbc.auth, None, cbc.encap, 32)
    assert g.current is not None and g.current.bytes == 0 and g.current.add_time > 0
    # the independent reader
    text = ip_states(lab, lab.a)
    tg, tc = text[gcm.spi], text[cbc.spi]
    # (iproute2 prints key sizes "(160 bits)" in some versions only)
    assert re.search(r"reqid 11\b.*mode tunnel", tg) and "if_id 0x7" in tg, tg
    assert re.search(rf"aead rfc4106\(gcm\(aes\)\) 0x{GCM_KEY.hex()}( \(160 bits\))? 128",
                     tg), tg
    assert "replay_window 64" in tg, tg  # the ESN replay state carries windows over 32
    assert re.search(r"soft 1073741824\(bytes\)", tg) and re.search(r"hard 3600\(sec\)", tg)
    assert re.search(rf"enc cbc\(aes\) 0x{CBC_KEY.hex()}", tc), tc
    assert re.search(rf"auth-trunc hmac\(sha256\) 0x{HMAC_KEY.hex()}( \(256 bits\))? 128",
                     tc), tc
    assert "encap type espinudp sport 4500 dport 4500" in tc, tc
    # get by key, update, delete
    assert d.get_state(gcm.id) == g
    d.update_state(cbc_sa(0xC0DE0002, encap=Encap(4500, 4501), replay_window=32))
    assert d.get_state(cbc.id).encap == Encap(4500, 4501)
    d.delete_state(gcm.id)
    d.delete_state(cbc.id)
    with pytest.raises(XfrmNotFound):
        d.delete_state(gcm.id)
    assert d.dump_states() == [] and ip_states(lab, lab.a) == {}


def test_policy_round_trip(lab: Lab, drivers) -> None:
    d, _ = drivers
    sel = Selector(ipaddress.ip_network("10.1.0.0/16"), ipaddress.ip_network("10.2.0.0/24"),
                   proto=6, dport=443)
    pol = XfrmPolicy(sel, Direction.OUT, priority=375423, if_id=9,
                     templates=(Template(dst=B, src=A, reqid=11),))
    block = XfrmPolicy(Selector(host(A), host(ipaddress.ip_address("198.51.100.99"))),
                       Direction.FWD, action=Action.BLOCK, priority=10)
    got = d.add_policy(pol)
    assert got.index and got.selector == sel and got.templates == pol.templates
    assert (got.if_id, got.priority, got.direction) == (9, 375423, Direction.OUT)
    d.add_policy(block)
    text = ip(lab, lab.a, "xfrm", "policy")
    # iproute2 names the protocol only with netbase's /etc/protocols
    assert re.search(r"src 10.1.0.0/16 dst 10.2.0.0/24 proto (tcp|6) dport 443", text), text
    assert "dir out priority 375423" in text and "if_id 0x9" in text, text
    assert f"tmpl src {A} dst {B}" in text and "proto esp reqid 11 mode tunnel" in text, text
    assert "dir fwd action block priority 10" in text, text
    assert {p.index for p in d.dump_policies()} == {got.index, d.get_policy(block.id).index}
    assert d.flush(policies=[pol.id, block.id, PolicyId(sel, Direction.IN)]) == 2
    assert d.dump_policies() == [] and ip(lab, lab.a, "xfrm", "policy").strip() == ""


def transport_pair(da: XfrmNetlink, db: XfrmNetlink, spi_ab: int, spi_ba: int) -> None:
    """Transport-mode ESP between A and B, installed on both sides by the driver."""
    for d, me, peer, out_spi, in_spi in ((da, A, B, spi_ab, spi_ba),
                                         (db, B, A, spi_ba, spi_ab)):
        for src, dst, spi in ((me, peer, out_spi), (peer, me, in_spi)):
            d.add_state(XfrmState(src, dst, spi, mode=Mode.TRANSPORT, reqid=spi,
                                  aead=AeadAlgorithm("rfc4106(gcm(aes))", GCM_KEY, 128),
                                  replay_window=32))
        for direction, src, dst, spi in ((Direction.OUT, me, peer, out_spi),
                                         (Direction.IN, peer, me, in_spi)):
            d.add_policy(XfrmPolicy(Selector(host(src), host(dst)), direction,
                                    templates=(Template(dst=dst, src=src, reqid=spi,
                                                        mode=Mode.TRANSPORT),)))


def test_traffic_counters_equal_the_kernels(lab: Lab, drivers) -> None:
    da, db = drivers
    transport_pair(da, db, 0xA0B0, 0xB0A0)
    r = lab.ns(lab.a, "ping", "-c", "4", "-i", "0.2", "-W", "5", str(B))
    assert r.returncode == 0, r.stdout + r.stderr
    ours = {s.spi: s for s in da.dump_states()}
    text = ip_states(lab, lab.a)
    assert set(ours) == set(text) == {0xA0B0, 0xB0A0}
    for spi, st in ours.items():
        assert (st.current.bytes, st.current.packets) == ip_counters(text[spi]), text[spi]
    assert ours[0xA0B0].current.packets >= 4 and ours[0xB0A0].current.packets >= 4
    assert ours[0xA0B0].stats.oseq == ours[0xA0B0].current.packets
    # the state tree's reader (what /ike/kernel/sa shows), keys left out
    tree = KernelStateReader(netns=lab.a.ns).read()["kernel"]
    sas = {e["spi"]: e for e in tree["sa"]}
    for spi in ours:
        assert (sas[spi]["current-bytes"], sas[spi]["current-packets"]) == ip_counters(
            text[spi])
        assert sas[spi]["aead-algorithm"] == "rfc4106(gcm(aes))"
        assert sas[spi]["aead-key-size"] == 160
    assert GCM_KEY.hex() not in repr(tree)
    assert {p["direction"] for p in tree["policy"]} == {"in", "out"}


def test_soft_then_hard_expire(lab: Lab, drivers) -> None:
    # packet limits, not seconds: the kernel checks them on each packet sent, in order; a
    # time limit depends on the kernel's timer, which under TCG on a loaded host may fire
    # past both limits at once (then only the hard expire is sent: seen here)
    d, _ = drivers
    out = XfrmState(A, B, 0xE0E0, mode=Mode.TRANSPORT, reqid=0xE0E0,
                    aead=AeadAlgorithm("rfc4106(gcm(aes))", GCM_KEY, 128),
                    lifetime=Lifetime(soft_packets=2, hard_packets=4))
    d.add_policy(XfrmPolicy(Selector(host(A), host(B), proto=17), Direction.OUT,
                            templates=(Template(dst=B, src=A, reqid=0xE0E0,
                                                mode=Mode.TRANSPORT),)))
    with d.events([Group.EXPIRE]) as events:
        d.add_state(out)
        seen: list[ExpireEvent] = []
        for _ in range(6):  # the SA expires at its 4th packet
            lab.ns(lab.a, "bash", "-c", f"echo x > /dev/udp/{B}/9 || true")
            seen += [e for e in events.read(0.2) if isinstance(e, ExpireEvent)]
        deadline = time.monotonic() + SLOW
        while len(seen) < 2 and time.monotonic() < deadline:
            seen += [e for e in events.read(1.0) if isinstance(e, ExpireEvent)]
    assert [(e.sa.spi, e.hard) for e in seen] == [(0xE0E0, False), (0xE0E0, True)], seen
    # an expire carries the SA's usersa_info (addresses, reqid, lifetimes, counters), not
    # its algorithms
    assert (seen[0].state.reqid, seen[0].state.lifetime.hard_packets) == (0xE0E0, 4)
    assert seen[0].state.current.packets >= 2
    assert d.get_state(out.id) is None  # a hard expire removes the SA


def test_acquire_from_traffic_without_sa(lab: Lab, drivers) -> None:
    d, _ = drivers
    tmpl = Template(dst=B, src=A, reqid=77, mode=Mode.TRANSPORT)
    pol = d.add_policy(XfrmPolicy(Selector(host(A), host(B), proto=17), Direction.OUT,
                                  templates=(tmpl,)))
    with d.events([Group.ACQUIRE]) as events:
        lab.ns(lab.a, "bash", "-c", f"echo x > /dev/udp/{B}/9 || true")
        got: list[AcquireEvent] = []
        deadline = time.monotonic() + SLOW
        while not got and time.monotonic() < deadline:
            got = [e for e in events.read(1.0) if isinstance(e, AcquireEvent)]
    assert got, "no acquire"
    acq = got[0]
    assert (acq.src, acq.dst, acq.template.reqid, acq.template.proto) == (A, B, 77, tmpl.proto)
    assert acq.policy.index == pol.index and acq.policy.direction == Direction.OUT
    assert acq.selector.proto == 17 and acq.selector.dport == 9


# ---- the state tree over NETCONF --------------------------------------------------------


def test_kernel_sad_spd_and_xfrm_stat_in_get(served) -> None:
    kernel_lab, da, db = served
    lab = kernel_lab.lab
    transport_pair(da, db, 0xA1B1, 0xB1A1)
    r = lab.ns(lab.a, "ping", "-c", "3", "-i", "0.2", "-W", "5", str(B))
    assert r.returncode == 0, r.stdout + r.stderr
    m = kernel_lab.m(lab.a)
    flt = '<ike xmlns="urn:ipsec-nf:yang:ipsec-nf"><kernel/></ike>'
    ok = wait_for(lambda: len(etree.fromstring(m.get(filter=("subtree", flt)).data_xml.encode())
                              .xpath("//i:kernel/i:sa", namespaces=NS)) == 2,
                  timeout=SLOW, every=1)
    assert ok, m.get(filter=("subtree", flt)).data_xml
    # counters are still: the kernel's and ours must be equal now
    data = etree.fromstring(m.get(filter=("subtree", flt)).data_xml.encode())
    stat = lab.ns(lab.a, "cat", "/proc/net/xfrm_stat").stdout
    text = ip_states(lab, lab.a)
    for sa in data.xpath("//i:kernel/i:sa", namespaces=NS):
        spi = int(sa.findtext("i:spi", namespaces=NS))
        assert (int(sa.findtext("i:current-bytes", namespaces=NS)),
                int(sa.findtext("i:current-packets", namespaces=NS))) == ip_counters(text[spi])
        assert sa.findtext("i:mode", namespaces=NS) == "transport"
        assert sa.find("i:aead-algorithm", NS) is not None
    pols = data.xpath("//i:kernel/i:policy", namespaces=NS)
    assert {p.findtext("i:direction", namespaces=NS) for p in pols} >= {"in", "out"}
    assert GCM_KEY.hex() not in etree.tostring(data).decode()
    stats = data.find(".//i:kernel/i:statistics", NS)
    assert stats is not None
    assert int(stats.findtext("i:in-no-states", namespaces=NS)) == int(
        re.search(r"XfrmInNoStates\s+(\d+)", stat)[1])
