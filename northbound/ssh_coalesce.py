"""One socket write per burst of SSH packets.

asyncssh hands each SSH packet to the socket's transport on its own, and precedes every
encrypted packet after the key exchange with an ``SSH_MSG_IGNORE`` (asyncssh 2.24,
``SSHConnection.send_packet``): each NETCONF reply cost two ``send()`` calls, two TCP
segments for the client to take. On loopback a ``send()`` runs the peer's TCP receive path
and wakes it: in a cProfile of the server answering get-config by key at 10 VPNs the two
sends were a quarter of the server's wall time per RPC (docs/benchmarks.md).

:func:`coalesce` puts a :class:`CoalescingTransport` between an asyncssh connection and its
socket transport: what asyncssh writes during one callback of the event loop is joined and
written once, when that callback has returned (``loop.call_soon``). The same bytes in the same
order; a close or ``write_eof`` writes what is pending first; an abort drops it, as the
socket transport's own abort drops its buffer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("northbound.ssh")


class CoalescingTransport:
    """A socket transport whose writes within one event-loop callback go out as one."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._size = 0

    def write(self, data: bytes) -> None:
        """Queue ``data``; the queue is written when the running callback returns."""
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)
        self._size += len(data)

    def writelines(self, lines: Any) -> None:
        """Queue each of ``lines``."""
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        """Write what is queued now (nothing once the socket transport is closing)."""
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending = []
        self._size = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def write_eof(self) -> None:
        """Write what is queued, then half-close."""
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        """Write what is queued, then close."""
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        """Drop what is queued and abort (as the socket transport drops its buffer)."""
        self._pending = []
        self._size = 0
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        """What is queued here and in the socket transport's buffer, in bytes."""
        return self._size + self._transport.get_write_buffer_size()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def coalesce(conn: Any) -> bool:
    """Put a :class:`CoalescingTransport` under asyncssh connection ``conn`` (from its
    ``connection_made``); False, and nothing changed, when this asyncssh does not keep its
    socket transport where 2.24 does (``_transport``)."""
    transport = getattr(conn, "_transport", None)
    if not isinstance(transport, asyncio.Transport):
        log.debug("asyncssh keeps no socket transport in _transport: writes not joined")
        return False
    conn._transport = CoalescingTransport(transport, asyncio.get_running_loop())
    return True
