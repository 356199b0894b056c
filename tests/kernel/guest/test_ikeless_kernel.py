"""RFC 9061's IKE-less case on the kernel's ESP, inside the guest of tests/kernel/vm.py.

Two gateways in network namespaces (tools/lab.py), each `ipsec-nf serve --backend
kernel-netlink`; a test controller (ncclient) pushes the RFC's IKE-less gateway-to-gateway
example (tests/ikeless_example.py; the keys are chosen here, at random) over NETCONF:

- with the SPD entries only, a packet toward the outbound policy gets no SA: the kernel's
  acquire becomes a ``sadb-acquire`` naming the SPD entry;
- with the SAD entries too, ping passes, encrypted: plain ESP SAs with the configured SPIs,
  keys and algorithms in `ip xfrm state`, whose counters rise with the pings;
- `ip -s xfrm state` counters equal our state tree's ``ipsec-sa-state``;
- an SA with a short soft and hard lifetime produces ``sadb-expire`` soft, then hard, with the
  SA's configured name; the kernel removed it and it is not installed again (apply status);
- an ESP packet with an SPI the kernel has no SA for produces ``sadb-bad-spi``;
- an outbound SA whose sequence number reaches its end (set next to it with XFRM_MSG_NEWAE)
  produces ``sadb-seq-overflow`` with its name;
- deleting the entries leaves nothing in the kernel.

The tests run in file order, on the lab shared with the other guest modules (kernel_lab.py:
under TCG every server start costs a minute).
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from lxml import etree

from southbound.kernel_esp import kernel_esp_missing
from tests.ikeless_example import NS, SaKeys, gateway, hexstr, sad_entry
from tests.kernel.guest.kernel_lab import Gateways as KernelLab
from tests.kernel.guest.kernel_lab import connect
from tests.support import wait_for
from tools.lab import Lab, Site

pytestmark = pytest.mark.kernel
SLOW = 90  # seconds: everything is 3-10x slower under TCG
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
N = {"l": NS}
NOTIF = "urn:ietf:params:xml:ns:netconf:notification:1.0"


def keys(spi: int) -> SaKeys:
    """An SA's SPI with fresh random keys (AES-128-CBC, HMAC-SHA2-256)."""
    return SaKeys(spi, hexstr(os.urandom(16)), hexstr(os.urandom(32)))


@dataclass
class Gateways:
    lab: Lab
    managers: dict  # site name -> ncclient Manager
    # SA keys of the example: A -> B and B -> A
    ab: SaKeys = field(default_factory=lambda: keys(0x1001))
    ba: SaKeys = field(default_factory=lambda: keys(0x2002))
    notifications: list = field(default_factory=list)  # site A's, in arrival order

    def m(self, s: Site):  # noqa: ANN201 - ncclient Manager
        return self.managers[s.name]


@pytest.fixture(scope="module")
def gw(kernel_lab: KernelLab) -> Iterator[Gateways]:
    """The two gateways shared by the guest modules (kernel_lab.py: `serve --backend
    kernel-netlink`, as this case needs), with a route towards the other site in each
    namespace and a NETCONF session of this module's own on site A, subscribed to the
    NETCONF stream for the RFC's notifications; the routes and the session end with it."""
    lab = kernel_lab.lab
    added = []
    for s in lab.sites:
        if s.peer_subnet not in ip(lab, s, "route", "show", s.peer_subnet):
            ip(lab, s, "route", "add", s.peer_subnet, "via", s.peer_wan)
            added.append(s)
    a = connect(lab.a, kernel_lab.key)
    try:
        a.create_subscription()  # the NETCONF stream: the RFC's notifications
        yield Gateways(lab, {"A": a, "B": kernel_lab.m(lab.b)})
    finally:
        try:
            a.close_session()
        except Exception:  # noqa: BLE001 - best effort
            pass
        for s in added:
            lab.ns(s, "ip", "route", "del", s.peer_subnet, "via", s.peer_wan)


# ---- helpers ------------------------------------------------------------------------------

def ip(lab: Lab, s: Site, *args: str) -> str:
    r = lab.ns(s, "ip", *args)
    assert r.returncode == 0, f"ip {' '.join(args)} in {s.ns}: {r.stderr}"
    return r.stdout


@dataclass
class KernelSa:
    src: str
    dst: str
    spi: int
    text: str
    bytes: int
    packets: int


def kernel_sas(lab: Lab, s: Site) -> dict[int, KernelSa]:
    """`ip -s xfrm state` of a site, by SPI (larval acquire states, SPI 0, left out)."""
    out: dict[int, KernelSa] = {}
    for block in re.split(r"^(?=src )", ip(lab, s, "-s", "xfrm", "state"), flags=re.M):
        m = re.match(r"src (\S+) dst (\S+)\s+proto (\S+) spi (0x[0-9a-f]+)", block)
        if not m or int(m.group(4), 16) == 0:
            continue
        cur = re.search(r"lifetime current:\s+(\d+)\(bytes\), (\d+)\(packets\)", block)
        out[int(m.group(4), 16)] = KernelSa(m.group(1), m.group(2), int(m.group(4), 16),
                                            block, int(cur.group(1)) if cur else -1,
                                            int(cur.group(2)) if cur else -1)
    return out


def edit(gw: Gateways, s: Site, xml: str) -> None:
    """edit-config on the candidate and commit (the controller's push)."""
    m = gw.m(s)
    m.edit_config(target="candidate", config=f'<config xmlns="{NC}">{xml}</config>')
    m.commit()


def push(gw: Gateways, sad: bool, **life: dict) -> None:
    """The RFC's example on both gateways (``sad``: with the SAD entries)."""
    lab = gw.lab
    for s, out, inb in ((lab.a, gw.ab, gw.ba), (lab.b, gw.ba, gw.ab)):
        edit(gw, s, gateway(s.wan, s.peer_wan, s.subnet, s.peer_subnet, out, inb, sad=sad,
                            **life))


def ikeless_state(gw: Gateways, s: Site) -> etree._Element:
    reply = gw.m(s).get(filter=("subtree", f'<ipsec-ikeless xmlns="{NS}"/>'))
    return etree.fromstring(reply.data_xml.encode())


def sad_state(gw: Gateways, s: Site) -> dict[str, etree._Element]:
    """sad-entry name -> its ipsec-sa-state, from our <get>."""
    return {e.findtext("l:name", namespaces=N): st
            for e in ikeless_state(gw, s).xpath("//l:sad-entry", namespaces=N)
            if (st := e.find("l:ipsec-sa-state", N)) is not None}


def take(gw: Gateways, name: str, timeout: float) -> list[etree._Element]:
    """Site A's notifications named ``name`` received so far (those waiting are read first),
    waiting up to ``timeout`` seconds for a first one."""
    m = gw.m(gw.lab.a)
    deadline = time.monotonic() + timeout
    while True:
        n = m.take_notification(timeout=0.2)
        while n is not None:
            root = etree.fromstring(n.notification_xml.encode())
            body = next(c for c in root if etree.QName(c).localname != "eventTime")
            gw.notifications.append(body)
            n = m.take_notification(timeout=0.2)
        found = [n for n in gw.notifications if etree.QName(n).localname == name]
        if found or time.monotonic() > deadline:
            return found


def diagnose(gw: Gateways) -> str:
    lab = gw.lab
    out = []
    for s in lab.sites:
        for args in (("xfrm", "policy"), ("-s", "xfrm", "state")):
            r = lab.ns(s, "ip", *args)
            out.append(f"$ ip {' '.join(args)} ({s.name})\n{r.stdout}{r.stderr}")
        out.append(f"--- site {s.name} serve.log ---\n{lab.log(s)}")
    return "\n".join(out)


def ours_in_kernel(lab: Lab, s: Site) -> str:
    """The SAs and the policies with the lab's selectors still in the kernel."""
    pols = [b for b in re.split(r"^(?=src )", ip(lab, s, "xfrm", "policy"), flags=re.M)
            if "192.168." in b]
    return ip(lab, s, "xfrm", "state").strip() + "".join(pols)


# ---- the tests, in order ------------------------------------------------------------------

def test_serve_runs_on_kernel_esp(gw: Gateways) -> None:
    assert kernel_esp_missing() is None, kernel_esp_missing()
    for s in gw.lab.sites:
        assert s.proc is not None and s.proc.poll() is None, gw.lab.log(s)


def test_a_policy_without_sa_raises_sadb_acquire(gw: Gateways) -> None:
    lab = gw.lab
    push(gw, sad=False)
    assert wait_for(lambda: "dir out" in ip(lab, lab.a, "xfrm", "policy"), timeout=SLOW,
                    every=1), diagnose(gw)
    pols = ip(lab, lab.a, "xfrm", "policy")
    assert "src 192.168.0.0/24 dst 192.168.99.0/24" in pols and "dir fwd" in pols, pols
    assert lab.ping(lab.a, 1).returncode != 0  # no SA: the kernel holds the packet
    (acq, *_) = take(gw, "sadb-acquire", SLOW) or [None]
    assert acq is not None, "no sadb-acquire\n" + diagnose(gw)
    assert acq.findtext("l:ipsec-policy-name", namespaces=N) == \
        f"out/{lab.a.subnet}/{lab.a.peer_subnet}"
    assert acq.findtext("l:traffic-selector/l:local-prefix", namespaces=N) == lab.a.subnet
    assert acq.findtext("l:traffic-selector/l:remote-prefix", namespaces=N) == \
        lab.a.peer_subnet


def test_the_rfc_example_encrypts_the_ping(gw: Gateways) -> None:
    lab = gw.lab
    push(gw, sad=True)

    def installed() -> bool:
        return all({gw.ab.spi, gw.ba.spi} <= kernel_sas(lab, s).keys() for s in lab.sites)
    assert wait_for(installed, timeout=SLOW, every=1), diagnose(gw)
    assert wait_for(lambda: lab.ping(lab.a, 1).returncode == 0, timeout=SLOW, every=1), \
        "ping never passed\n" + diagnose(gw)
    before = kernel_sas(lab, lab.a)[gw.ab.spi].packets
    assert lab.ping(lab.a, 3).returncode == 0
    ksas = kernel_sas(lab, lab.a)
    out, inb = ksas[gw.ab.spi], ksas[gw.ba.spi]
    assert out.packets - before == 3, "the pings did not go through the SA"
    assert (out.src, out.dst, inb.src, inb.dst) == (lab.a.wan, lab.b.wan, lab.b.wan, lab.a.wan)
    for sa, k in ((out, gw.ab), (inb, gw.ba)):
        assert "proto esp" in sa.text and "mode tunnel" in sa.text and "encap" not in sa.text
        assert f"enc cbc(aes) 0x{k.enc.replace(':', '')}" in sa.text, sa.text
        assert f"hmac(sha256) 0x{k.integ.replace(':', '')}" in sa.text, sa.text
        assert "esn" in sa.text, sa.text  # ext-seq-num true (the RFC's default)


def test_counters_equal_the_state_tree(gw: Gateways) -> None:
    lab = gw.lab
    assert lab.ping(lab.a, 4).returncode == 0
    names = {gw.ab.spi: f"out/{lab.a.subnet}/{lab.a.peer_subnet}",
             gw.ba.spi: f"in/{lab.a.peer_subnet}/{lab.a.subnet}"}
    seen: list[str] = []

    def equal() -> bool:
        ours = sad_state(gw, lab.a)
        ksas = kernel_sas(lab, lab.a)
        seen[:] = []
        ok = True
        for spi, name in names.items():
            st = ours.get(name)
            mine = (int(st.findtext("l:sa-lifetime-current/l:bytes", namespaces=N)),
                    int(st.findtext("l:sa-lifetime-current/l:packets", namespaces=N))
                    ) if st is not None else None
            theirs = (ksas[spi].bytes, ksas[spi].packets)
            seen.append(f"{name}: ours {mine}, kernel {theirs}")
            ok = ok and mine == theirs and theirs[1] >= 4
        return ok
    assert wait_for(equal, timeout=SLOW, every=1), "\n".join(seen)
    st = sad_state(gw, lab.a)[names[gw.ab.spi]]
    assert int(st.findtext("l:replay-stats/l:seq-number-counter", namespaces=N)) >= 4
    inb = sad_state(gw, lab.a)[names[gw.ba.spi]]
    assert inb.findtext("l:replay-stats/l:replay-window/l:w", namespaces=N) == "64"
    # no drift: what the kernel reports is what was asked (no SA re-installed)
    assert kernel_sas(lab, lab.a)[gw.ab.spi].packets >= 4


def test_soft_then_hard_lifetime_raise_sadb_expire_in_order(gw: Gateways) -> None:
    lab = gw.lab
    name = "short/expiring"
    k = keys(0x3003)
    edit(gw, lab.a, f'<ipsec-ikeless xmlns="{NS}"><sad>'
         + sad_entry(name, 3, k, "192.0.2.0/28", "192.0.2.16/28", lab.a.wan, lab.b.wan,
                     soft={"time": 4}, hard={"time": 9})
         + "</sad></ipsec-ikeless>")
    assert wait_for(lambda: k.spi in kernel_sas(lab, lab.a), timeout=SLOW, every=0.5), \
        diagnose(gw)

    def both() -> list:
        return [n for n in take(gw, "sadb-expire", 1)
                if n.findtext("l:ipsec-sa-name", namespaces=N) == name]
    assert wait_for(lambda: len(both()) >= 2, timeout=SLOW, every=0.5), \
        f"sadb-expire of {name}: {[etree.tostring(n) for n in both()]}\n{diagnose(gw)}"
    soft, hard = both()[:2]
    assert soft.findtext("l:soft-lifetime-expire", namespaces=N) == "true"
    assert hard.findtext("l:soft-lifetime-expire", namespaces=N) == "false"
    assert soft.find("l:lifetime-current", N) is not None
    assert k.spi not in kernel_sas(lab, lab.a)  # the kernel removed it at the hard limit

    def failed() -> list:  # the reconciler saw it gone: the entry fails, it is not put back
        return [n for n in take(gw, "apply-status-change", 1)
                if n.findtext("{*}name") == name and n.findtext("{*}status") == "failed"]
    assert wait_for(failed, timeout=2 * SLOW, every=1), diagnose(gw)
    assert "hard lifetime" in failed()[0].findtext("{*}message")
    assert k.spi not in kernel_sas(lab, lab.a), "the expired SA was installed again"
    edit(gw, lab.a, f'<ipsec-ikeless xmlns="{NS}"><sad><sad-entry xmlns:nc="{NC}" '
         f'nc:operation="delete"><name>{name}</name></sad-entry></sad></ipsec-ikeless>')


def test_an_esp_packet_with_an_unknown_spi_raises_sadb_bad_spi(gw: Gateways) -> None:
    lab = gw.lab
    send = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 50); "
            f"s.sendto(bytes.fromhex('0000dead') + bytes(24), ('{lab.a.wan}', 0))")
    r = lab.ns(lab.b, "python3", "-c", send)
    assert r.returncode == 0, r.stderr
    bad = take(gw, "sadb-bad-spi", SLOW)
    assert [n.findtext("l:spi", namespaces=N) for n in bad] == [str(0xDEAD)], diagnose(gw)


# run in a site's namespace: XFRM_MSG_NEWAE (NLM_F_REPLACE) setting an ESN SA's outbound
# sequence number next to its end, 2^64 - 2 (argv: src dst spi bitmap-length replay-window).
# Built by hand on purpose: the test must not lean on the driver it checks.
SET_OSEQ = """
import socket, struct, sys
src, dst = sys.argv[1:3]
spi, bmp_len, window = map(int, sys.argv[3:6])
addr = lambda a: socket.inet_aton(a) + bytes(12)
aevent = addr(dst) + struct.pack('>I', spi) + struct.pack('=HBx', socket.AF_INET, 50) \\
    + addr(src) + struct.pack('=II', 0, 0)
esn = struct.pack('=6I', bmp_len, 0xFFFFFFFE, 0, 0xFFFFFFFF, 0, window) + bytes(4 * bmp_len)
attr = struct.pack('=HH', 4 + len(esn), 23) + esn  # XFRMA_REPLAY_ESN_VAL
body = aevent + attr
msg = struct.pack('=IHHII', 16 + len(body), 0x1E, 0x1 | 0x4 | 0x100, 1, 0) + body
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 6)  # NETLINK_XFRM
s.bind((0, 0))
s.send(msg)
ack = s.recv(4096)
err = struct.unpack_from('=i', ack, 16)[0]
sys.exit(f'NEWAE refused: errno {-err}' if err else 0)
"""


def out_seq(sa: KernelSa) -> int:
    """The outbound sequence number of an ESN SA from `ip -s xfrm state`."""
    m = re.search(r"oseq-hi 0x([0-9a-f]+), oseq 0x([0-9a-f]+)", sa.text)
    assert m, f"no ESN replay context in `ip -s xfrm state`:\n{sa.text}"
    return int(m.group(1), 16) << 32 | int(m.group(2), 16)


def test_the_last_sequence_number_raises_sadb_seq_overflow(gw: Gateways) -> None:
    lab = gw.lab
    sa = kernel_sas(lab, lab.a)[gw.ab.spi]
    m = re.search(r"replay_window (\d+), bitmap-length (\d+)", sa.text)
    assert m, f"no ESN replay context in `ip -s xfrm state`:\n{sa.text}"
    r = lab.ns(lab.a, sys.executable, "-c", SET_OSEQ, lab.a.wan, lab.b.wan, str(gw.ab.spi),
               m.group(2), m.group(1))
    assert r.returncode == 0, r.stderr
    assert out_seq(kernel_sas(lab, lab.a)[gw.ab.spi]) == 2**64 - 2
    lab.ping(lab.a, 2)  # the first packet takes the last number; the kernel drops the second
    (ovf, *_) = take(gw, "sadb-seq-overflow", SLOW) or [None]
    assert ovf is not None, "no sadb-seq-overflow\n" + diagnose(gw)
    assert ovf.findtext("l:ipsec-sa-name", namespaces=N) == \
        f"out/{lab.a.subnet}/{lab.a.peer_subnet}"
    assert out_seq(kernel_sas(lab, lab.a)[gw.ab.spi]) == 2**64 - 1  # stopped at the end


def test_deleting_the_entries_leaves_nothing_in_the_kernel(gw: Gateways) -> None:
    lab = gw.lab
    assert kernel_sas(lab, lab.a), "no SA before the delete"
    for s in lab.sites:
        edit(gw, s, f'<ipsec-ikeless xmlns="{NS}" xmlns:nc="{NC}" nc:operation="delete"/>')
    assert wait_for(lambda: all(not ours_in_kernel(lab, s) for s in lab.sites),
                    timeout=SLOW, every=1), diagnose(gw)
    assert lab.ping(lab.a, 1).returncode == 0  # plain again: no policy left
