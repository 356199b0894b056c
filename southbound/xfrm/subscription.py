"""XfrmEvents: a subscription to the kernel's XFRM multicast groups, read as XfrmEvent values
(blocking, with a timeout, or as an async iterator in the gateway's loop)."""

from __future__ import annotations

import asyncio
import errno as E
import logging
import select
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Self

from southbound.xfrm import messages
from southbound.xfrm.codec.events import event_from
from southbound.xfrm.constants import NETLINK_ADD_MEMBERSHIP, SOL_NETLINK
from southbound.xfrm.netlink_socket import RECV_SIZE, open_socket
from southbound.xfrm.types import Group, XfrmEvent

log = logging.getLogger(__name__)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class XfrmEvents:
    """A subscription to XFRM multicast groups (:class:`southbound.xfrm.api.XfrmEventStream`).

    A receive buffer overrun (ENOBUFS: events came faster than they were read) is logged and
    reading goes on; the events lost are gone (the kernel does not resend).
    """

    def __init__(self, netns: str | None, groups: Iterable[Group]) -> None:
        self._sock = open_socket(netns)
        for group in groups:
            self._sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, int(group))
        self._sock.setblocking(False)
        self._marshal = messages.MarshalXfrm()
        self.overruns = 0

    def fileno(self) -> int:
        """The socket's descriptor."""
        return self._sock.fileno()

    def _drain(self) -> list[XfrmEvent]:
        out: list[XfrmEvent] = []
        while True:
            try:
                data = self._sock.recv(RECV_SIZE)
            except BlockingIOError:
                return out
            except OSError as exc:
                if exc.errno == E.ENOBUFS:
                    self.overruns += 1
                    log.warning("xfrm events: receive buffer overrun, events lost")
                    continue
                raise
            for msg in self._marshal.parse(data):
                try:
                    event = event_from(msg)
                except (ValueError, KeyError) as exc:  # a message we cannot read: say so
                    log.warning("xfrm events: unreadable message type %s: %s",
                                msg["header"]["type"], exc)
                    continue
                if event is not None:
                    out.append(event)

    def read(self, timeout: float | None = None) -> list[XfrmEvent]:
        """The events that arrived; waits up to TIMEOUT seconds for the first (None: until
        one arrives) and returns [] when none did."""
        while True:
            ready, _, _ = select.select([self._sock], [], [], timeout)
            if not ready:
                return []
            events = self._drain()
            if events or timeout is not None:
                return events

    def __iter__(self) -> Iterator[XfrmEvent]:
        while self._sock.fileno() >= 0:
            yield from self.read(None)

    async def __aiter__(self) -> AsyncIterator[XfrmEvent]:
        loop = asyncio.get_running_loop()
        while self._sock.fileno() >= 0:
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(self.fileno(), _wake, ready)
            try:
                await ready
            finally:
                loop.remove_reader(self.fileno())
            for event in self._drain():
                yield event

    def close(self) -> None:
        """Leave the groups and close the socket."""
        self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
