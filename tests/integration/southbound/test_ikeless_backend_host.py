"""The IKE-less backend (southbound/ikeless_backend.py) on this host's kernel, in a network
namespace of its own: what needs no ESP in the kernel (the SAs themselves are installed in
the kernel VM: tests/kernel/guest/test_ikeless_kernel.py).

- the RFC example's SPD entries become kernel policies (outbound: out; inbound: in and fwd),
  read back from a dump with the digest of what was asked (no drift), removed on unload;
- a policy already in the kernel with the same selector and direction that is not ours
  (charon's, here one added with `ip xfrm`) is refused with a message and left alone, and
  unloading our entries never removes it;
- on this kernel without ESP a SAD entry's SA is refused by the kernel, and the entry fails
  with the kernel's reason (never a silent success);
- a packet toward an outbound policy without SA: the kernel's acquire becomes the RFC's
  sadb-acquire naming the SPD entry (southbound/ikeless_events.py);
- an ESP packet to an IPv4 or IPv6 address of the namespace with an SPI the kernel has no SA
  for is seen by the raw ESP sockets and becomes sadb-bad-spi with that SPI;
- the RFC's notifications are valid against ietf-i2nsf-ikeless.

Needs root and `ip netns`; it fails, never skips, when they are missing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import subprocess
import sys
from collections.abc import Iterator
from itertools import count

import pytest
from lxml import etree

from nf.i2nsf_ikeless import IkelessConfig, convert
from nf.schema import Schema
from southbound.backend import EntryRefused
from southbound.ikeless_backend import IkelessBackend
from southbound.ikeless_events import (
    IkelessEvents,
    sadb_acquire,
    sadb_bad_spi,
    sadb_expire,
    sadb_seq_overflow,
)
from southbound.ikeless_kinds import KINDS, SA, SP
from southbound.kernel_esp import kernel_esp_missing
from southbound.xfrm.netlink import XfrmNetlink
from southbound.xfrm.types import LifetimeCurrent
from tests.ikeless_example import SaKeys, gateway, hexstr

_N = count()
OUT = "out/192.0.2.0/28/192.0.2.16/28"
IN = "in/192.0.2.16/28/192.0.2.0/28"


def sh(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


@pytest.fixture
def ns() -> Iterator[str]:
    name = f"ikl{os.getpid()}n{next(_N)}"
    r = sh("ip", "netns", "add", name)
    assert r.returncode == 0, f"ip netns add: {r.stderr}"
    try:
        for cmd in (("link", "set", "lo", "up"),
                    ("link", "add", "x0", "type", "veth", "peer", "name", "x1"),
                    ("addr", "add", "198.51.100.1/24", "dev", "x0"),
                    ("addr", "add", "192.0.2.1/28", "dev", "lo"),
                    ("link", "set", "x0", "up"), ("link", "set", "x1", "up"),
                    ("route", "add", "192.0.2.16/28", "via", "198.51.100.2")):
            r = sh("ip", "-n", name, *cmd)
            assert r.returncode == 0, f"ip {' '.join(cmd)}: {r.stderr}"
        yield name
    finally:
        sh("ip", "netns", "del", name)


def example(sad: bool = True) -> IkelessConfig:
    xml = gateway("198.51.100.1", "198.51.100.2", "192.0.2.0/28", "192.0.2.16/28",
                  SaKeys(0x1001, hexstr(bytes(16)), hexstr(bytes(32))),
                  SaKeys(0x2002, hexstr(bytes(range(16))), hexstr(bytes(range(32)))),
                  sad=sad)
    data = Schema().parse_config(xml)
    try:
        ikl, refused = convert(data.print_dict(with_siblings=True))
    finally:
        data.free()
    assert refused == []
    return ikl


class _Eff:
    def __init__(self, ikl: IkelessConfig) -> None:
        self.ikeless, self.enabled = ikl, True


def load_all(backend: IkelessBackend, ikl: IkelessConfig, kind: str) -> dict[str, str]:
    """Load every entry of ``kind``; the digests asked, by name."""
    k = next(k for k in KINDS if k.name == kind)
    session = backend.open()
    digests = {}
    try:
        for name, entry in k.select(_Eff(ikl)).items():
            payload = k.payload(entry, backend.dataplane)
            session.load(kind, name, payload, False)
            digests[name] = k.digest(entry, payload)
    finally:
        session.close()
    return digests


def test_spd_entries_become_kernel_policies_read_back_without_drift(ns: str) -> None:
    backend = IkelessBackend(lambda: XfrmNetlink(ns))
    asked = load_all(backend, example(), SP)
    pols = sh("ip", "-n", ns, "xfrm", "policy").stdout
    for d in ("dir out", "dir in", "dir fwd"):
        assert d in pols, pols
    assert "src 192.0.2.0/28 dst 192.0.2.16/28" in pols and "reqid 1 mode tunnel" in pols
    assert "tmpl src 198.51.100.1 dst 198.51.100.2" in pols, pols
    session = backend.open()
    try:
        assert session.observe(SP, True) == asked  # what the kernel reports is what we asked
        for name in asked:
            session.unload(SP, name)
        assert session.observe(SP, True) == {}
    finally:
        session.close()
    assert "192.0.2." not in sh("ip", "-n", ns, "xfrm", "policy").stdout


def test_a_policy_not_ours_is_refused_and_left_alone(ns: str) -> None:
    r = sh("ip", "-n", ns, "xfrm", "policy", "add", "src", "192.0.2.0/28", "dst",
           "192.0.2.16/28", "dir", "out", "priority", "1000", "action", "block")
    assert r.returncode == 0, r.stderr
    backend = IkelessBackend(lambda: XfrmNetlink(ns))
    session = backend.open()
    ikl = example()
    k = next(k for k in KINDS if k.name == SP)
    try:
        with pytest.raises(EntryRefused) as e:
            session.load(SP, OUT, k.payload(ikl.spd[OUT], backend.dataplane), False)
        assert "already in the kernel and was not installed by this entry" in e.value.message
        session.unload(SP, OUT)
    finally:
        session.close()
    pols = sh("ip", "-n", ns, "xfrm", "policy").stdout
    assert "action block" in pols, "the other owner's policy was touched:\n" + pols


def test_an_sa_on_a_kernel_without_esp_is_refused_with_the_reason(ns: str) -> None:
    why = kernel_esp_missing()
    assert why is not None, "this host has kernel ESP: the SAs are tested by the guest test"
    backend = IkelessBackend(lambda: XfrmNetlink(ns))
    session = backend.open()
    ikl = example()
    k = next(k for k in KINDS if k.name == SA)
    try:
        with pytest.raises(EntryRefused) as e:
            session.load(SA, OUT, k.payload(ikl.sad[OUT], backend.dataplane), False)
        assert "the kernel refused it" in e.value.message, e.value.message
        assert "0000000000" not in e.value.message  # no key in the message
        assert session.observe(SA, True) == {}
    finally:
        session.close()
    assert not sh("ip", "-n", ns, "xfrm", "state").stdout.strip()


def test_a_packet_without_sa_raises_sadb_acquire(ns: str) -> None:
    backend = IkelessBackend(lambda: XfrmNetlink(ns))
    ikl = example(sad=False)
    load_all(backend, ikl, SP)
    sent: list[etree._Element] = []
    events = IkelessEvents(backend, sent.append, lambda: ikl.spd)

    async def scenario() -> None:
        task = asyncio.ensure_future(events.run(sample=0.2))
        await asyncio.sleep(0.5)  # subscribed
        await asyncio.to_thread(sh, "ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1",
                                "-I", "192.0.2.1", "192.0.2.17")
        for _ in range(50):
            if sent:
                break
            await asyncio.sleep(0.1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    asyncio.run(scenario())
    acq = [n for n in sent if etree.QName(n).localname == "sadb-acquire"]
    assert acq, [etree.tostring(n) for n in sent]
    nsmap = {"l": "urn:ietf:params:xml:ns:yang:ietf-i2nsf-ikeless"}
    assert acq[0].findtext("l:ipsec-policy-name", namespaces=nsmap) == OUT
    assert acq[0].findtext("l:traffic-selector/l:remote-prefix", namespaces=nsmap) == \
        "192.0.2.16/28"
    assert backend.remove_all() == 3
    assert "192.0.2." not in sh("ip", "-n", ns, "xfrm", "policy").stdout


@pytest.mark.parametrize("body", [
    sadb_expire("out/1", True, LifetimeCurrent(bytes=10, packets=1, add_time=1, use_time=2),
                now=5),
    sadb_seq_overflow("out/1"), sadb_bad_spi(4711),
    sadb_acquire(example(sad=False).spd[OUT])])
def test_the_notifications_are_valid_against_the_module(body: etree._Element) -> None:
    """(the ikeless-notification feature is enabled: nf.yang_modules.FEATURES)"""
    Schema().check_notification(etree.tostring(body).decode())


# run inside the namespace: our raw ESP sockets see an ESP packet with an unknown SPI sent to
# an address of the namespace, and the reader turns it into sadb-bad-spi with that SPI
BAD_SPI_PROBE = """
import socket, sys, time
from southbound.ikeless_backend import IkelessBackend
from southbound.ikeless_events import IkelessEvents, _raw_esp
family = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
sent = []
events = IkelessEvents(IkelessBackend(driver_factory=lambda: None), sent.append, dict)
raw = _raw_esp(family)
assert raw is not None, 'no raw ESP socket'
out = socket.socket(family, socket.SOCK_RAW, 50)
out.sendto(bytes.fromhex('0000beef') + bytes(24), (sys.argv[1], 0))
time.sleep(0.2)
read = events._read_raw6 if family == socket.AF_INET6 else events._read_raw
asked = []
read(raw, lambda sa: asked.append(sa) or False)
print(' '.join(n.findtext('{*}spi') for n in sent), *(f'{a.dst}/{a.spi}' for a in asked))
"""


@pytest.mark.parametrize("dst", ["2001:db8::1", "192.0.2.1"])
def test_an_esp_packet_with_an_unknown_spi_raises_sadb_bad_spi(ns: str, dst: str) -> None:
    """(on this kernel without ESP the packet is dropped after the raw sockets' copy, as a
    packet without SA is on a kernel with ESP; the kernel VM test sends one over the wire)"""
    r = sh("ip", "-n", ns, "addr", "add", "2001:db8::1/128", "dev", "lo", "nodad")
    assert r.returncode == 0, r.stderr
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", BAD_SPI_PROBE, dst],
                       capture_output=True, text=True, timeout=30, cwd=root)
    assert r.returncode == 0, r.stderr
    spi, *asked = r.stdout.split()
    assert spi == str(0xBEEF), r.stdout
    assert asked == [f"{ipaddress.ip_address(dst)}/{0xBEEF}"], r.stdout  # looked up by (dst, spi)
