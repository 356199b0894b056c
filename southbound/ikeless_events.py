"""The kernel's events about the IKE-less SAs and policies, as RFC 9061's notifications.

- ``sadb-expire``: the kernel's XFRM_MSG_EXPIRE of an SA we installed, soft or hard, with the
  SAD entry's name and the SA's current lifetime (a hard expiry also tells the backend's
  ledger, so the SA is not installed again with the same keys);
- ``sadb-acquire``: XFRM_MSG_ACQUIRE of a policy we installed (a packet matched an SPD entry
  whose SA is missing), with the SPD entry's name and traffic selector;
- ``sadb-seq-overflow``: the kernel sends no message when an outbound SA's sequence number
  reaches its end (it stops sending on it and counts XfrmOutStateSeqError): the SAs' counters
  read by the state reader are watched instead (:meth:`IkelessEvents.watch_sequence_numbers`);
- ``sadb-bad-spi``: the kernel sends no message for an inbound ESP packet with an SPI it has
  no SA for (it counts XfrmInNoStates): a raw ESP socket gets a copy of every ESP packet
  delivered to this host (before ESP processing), and a packet whose SPI and destination have
  no SA in the kernel is reported, once per SPI every :data:`BAD_SPI_HOLD` seconds. IPv4 and
  IPv6 ESP are watched (IPv6 through a raw socket with ``IPV6_RECVPKTINFO``, which gives the
  packet's destination); ESP in UDP is not (the kernel hands it to the socket bound to port
  4500, charon's, and no copy reaches a raw socket).

Events about SAs and policies that are not ours (charon's) are ignored. Notifications carry no
keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

from lxml import etree

from nf.effective_ikeless import SpdEntry
from southbound.ikeless_backend import IkelessBackend
from southbound.xfrm.api import XfrmError
from southbound.xfrm.types import (
    AcquireEvent,
    ExpireEvent,
    Group,
    LifetimeCurrent,
    SaId,
    XfrmState,
)

log = logging.getLogger(__name__)
NS = "urn:ietf:params:xml:ns:yang:ietf-i2nsf-ikeless"
BAD_SPI_HOLD = 10.0  # seconds between two sadb-bad-spi of one SPI
KNOWN_HOLD = 1.0  # seconds an SA found in the kernel is not asked for again (every ESP packet
# is seen: without this, each would cost a netlink request)
SEQ_END = {False: 0xFFFFFFFF, True: 0xFFFFFFFFFFFFFFFF}  # the last sequence number (ESN?)


def _el(parent: etree._Element | None, name: str, text: Any = None) -> etree._Element:
    tag = f"{{{NS}}}{name}"
    el = etree.Element(tag, nsmap={None: NS}) if parent is None else etree.SubElement(parent,
                                                                                    tag)
    if text is not None:
        el.text = str(text).lower() if isinstance(text, bool) else str(text)
    return el


def sadb_expire(name: str, soft: bool, current: LifetimeCurrent | None,
                now: float | None = None) -> etree._Element:
    """RFC 9061's sadb-expire of SAD entry ``name``."""
    now = time.time() if now is None else now
    el = _el(None, "sadb-expire")
    _el(el, "ipsec-sa-name", name)
    _el(el, "soft-lifetime-expire", soft)
    cur = _el(el, "lifetime-current")
    c = current or LifetimeCurrent()
    _el(cur, "time", max(0, int(now) - c.add_time) if c.add_time else 0)
    _el(cur, "bytes", c.bytes)
    _el(cur, "packets", c.packets)
    _el(cur, "idle", max(0, int(now) - c.use_time) if c.use_time else 0)
    return el


def sadb_acquire(entry: SpdEntry) -> etree._Element:
    """RFC 9061's sadb-acquire of SPD entry ``entry`` (its configured traffic selector)."""
    el = _el(None, "sadb-acquire")
    _el(el, "ipsec-policy-name", entry.name)
    ts = _el(el, "traffic-selector")
    s = entry.selector
    _el(ts, "local-prefix", s.src)
    _el(ts, "remote-prefix", s.dst)
    _el(ts, "inner-protocol", "any" if s.proto is None else s.proto)
    for side, port in (("local-ports", s.sport), ("remote-ports", s.dport)):
        if port is not None:
            p = _el(ts, side)
            _el(p, "start", port)
            _el(p, "end", port)
    return el


def sadb_seq_overflow(name: str) -> etree._Element:
    """RFC 9061's sadb-seq-overflow of SAD entry ``name``."""
    el = _el(None, "sadb-seq-overflow")
    _el(el, "ipsec-sa-name", name)
    return el


def sadb_bad_spi(spi: int) -> etree._Element:
    """RFC 9061's sadb-bad-spi."""
    el = _el(None, "sadb-bad-spi")
    _el(el, "spi", spi)
    return el


class IkelessEvents:
    """Turns the kernel's XFRM events and counters into the RFC's notifications.

    ``publish`` takes a notification body; ``spd`` gives the SPD entries now configured (for
    an acquire's traffic selector)."""

    def __init__(self, backend: IkelessBackend, publish: Callable[[etree._Element], None],
                 spd: Callable[[], Mapping[str, SpdEntry]]) -> None:
        self.backend = backend
        self.publish = publish
        self.spd = spd
        self._overflowed: set[tuple[str, int]] = set()
        self._bad_spi: dict[int, float] = {}
        self._known: dict[tuple[str, int], float] = {}
        self.counts: dict[str, int] = {}

    def _send(self, body: etree._Element) -> None:
        q = etree.QName(body).localname
        self.counts[q] = self.counts.get(q, 0) + 1
        self.publish(body)

    def handle(self, ev: Any) -> None:
        """One kernel event (others' SAs and policies are ignored)."""
        ledger = self.backend.ledger
        if isinstance(ev, ExpireEvent):
            name = ledger.hard_expired(ev.sa) if ev.hard else ledger.sa_name(ev.sa)
            if name is None:
                return
            log.info("IKE-less SA %s: %s lifetime expired", name, "hard" if ev.hard else "soft")
            self._send(sadb_expire(name, not ev.hard, ev.state.current))
        elif isinstance(ev, AcquireEvent):
            name = ledger.policy_name(ev.policy.id)
            entry = self.spd().get(name) if name is not None else None
            if entry is None:
                return
            log.info("IKE-less policy %s: acquire (no SA for %s -> %s)", name, ev.src, ev.dst)
            self._send(sadb_acquire(entry))

    def watch_sequence_numbers(self, states: Mapping[str, XfrmState]) -> None:
        """sadb-seq-overflow for an SA of ours whose outbound sequence number reached its end
        (once per SA)."""
        for name, st in states.items():
            if st.stats is not None and st.stats.oseq >= SEQ_END[st.esn]:
                key = (name, st.spi)
                if key not in self._overflowed:
                    self._overflowed.add(key)
                    log.warning("IKE-less SA %s: sequence number overflow", name)
                    self._send(sadb_seq_overflow(name))

    def bad_spi(self, dst: str, spi: int, known: Callable[[SaId], bool],
                now: float | None = None) -> None:
        """An inbound ESP packet to ``dst`` with ``spi``: sadb-bad-spi when the kernel has no
        such SA (``known``), at most once per SPI every BAD_SPI_HOLD seconds."""
        now = time.monotonic() if now is None else now
        if now - self._bad_spi.get(spi, -BAD_SPI_HOLD) < BAD_SPI_HOLD:
            return
        if self._known.get((dst, spi), -1.0) > now:
            return
        if known(SaId(ipaddress.ip_address(dst), spi)):
            if len(self._known) > 65536:
                self._known.clear()
            self._known[(dst, spi)] = now + KNOWN_HOLD
            return
        self._bad_spi[spi] = now
        log.info("ESP packet to %s with unknown SPI %#x", dst, spi)
        self._send(sadb_bad_spi(spi))

    async def run(self, sample: float = 1.0) -> None:
        """Listen to the kernel's acquire and expire groups and watch ESP packets and
        sequence numbers, until cancelled."""
        driver = self.backend.driver_factory()
        stream = driver.events([Group.ACQUIRE, Group.EXPIRE])
        lookup = self.backend.driver_factory()
        raw4, raw6 = _raw_esp(socket.AF_INET), _raw_esp(socket.AF_INET6)
        loop = asyncio.get_running_loop()

        def known(sa: SaId) -> bool:
            try:
                return lookup.get_state(sa) is not None
            except XfrmError:
                return True  # cannot tell: say nothing

        if raw4 is not None:
            loop.add_reader(raw4.fileno(), self._read_raw, raw4, known)
        if raw6 is not None:
            loop.add_reader(raw6.fileno(), self._read_raw6, raw6, known)
        watch = asyncio.ensure_future(self._watch(sample))
        try:
            async for ev in stream:
                try:
                    self.handle(ev)
                except Exception:  # one bad event never stops the listener
                    log.exception("IKE-less event %r", type(ev).__name__)
        finally:
            watch.cancel()
            for raw in (raw4, raw6):
                if raw is not None:
                    loop.remove_reader(raw.fileno())
                    raw.close()
            stream.close()
            driver.close()
            lookup.close()

    def _read_raw(self, raw: socket.socket, known: Callable[[SaId], bool]) -> None:
        for _ in range(64):
            try:
                data = raw.recv(2048)
            except BlockingIOError:
                return
            ihl = (data[0] & 0x0F) * 4 if data else 0
            if len(data) < ihl + 8:
                continue
            dst = socket.inet_ntoa(data[16:20])
            self.bad_spi(dst, int.from_bytes(data[ihl:ihl + 4], "big"), known)

    def _read_raw6(self, raw: socket.socket, known: Callable[[SaId], bool]) -> None:
        # an IPv6 raw socket gets the payload without the IPv6 header: the destination
        # comes from the IPV6_PKTINFO ancillary data
        for _ in range(64):
            try:
                data, anc, _flags, _addr = raw.recvmsg(2048, socket.CMSG_SPACE(20))
            except BlockingIOError:
                return
            dst = esp6_destination(anc)
            if dst is None or len(data) < 8:
                continue
            self.bad_spi(dst, int.from_bytes(data[:4], "big"), known)

    async def _watch(self, sample: float) -> None:
        while True:
            await asyncio.sleep(sample)
            try:
                states = await asyncio.to_thread(self.backend.states_by_name)
            except (XfrmError, OSError) as e:
                log.warning("IKE-less: reading the SAs' sequence numbers failed: %s", e)
                continue
            self.watch_sequence_numbers(states)


def esp6_destination(ancillary: list[tuple[int, int, bytes]]) -> str | None:
    """The destination address of an IPv6 packet, from its IPV6_PKTINFO ancillary data
    (``struct in6_pktinfo``: the 16-byte address, then the interface index)."""
    for level, kind, data in ancillary:
        if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO and len(data) >= 16:
            return str(ipaddress.IPv6Address(data[:16]))
    return None


def _raw_esp(family: socket.AddressFamily) -> socket.socket | None:
    """A raw socket of ``family`` receiving a copy of every ESP packet delivered here (None
    when the process may not open one: no sadb-bad-spi for that family then, said in the
    log)."""
    try:
        s = socket.socket(family, socket.SOCK_RAW, 50)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    except OSError as e:
        log.warning("no sadb-bad-spi notifications for %s: cannot open a raw ESP socket (%s)",
                    family.name, e)
        return None
    s.setblocking(False)
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
    return s
