"""Acknowledge a client's segments at once where its Nagle algorithm would wait on us.

A client whose socket keeps Nagle's algorithm on (ncclient over paramiko does: neither sets
``TCP_NODELAY``) holds back a small segment while its previous one is unacknowledged, and
Linux delays the ACK of a segment that carries no reply by up to 40 ms. So whenever the client
writes twice before our answer, the second write waits 40 ms. tcpdump showed where
(docs/benchmarks.md):

- the SSH handshake (three times) and the session's first RPC;
- the request after a large reply: the client first returns the SSH channel window the reply
  used (``SSH_MSG_CHANNEL_WINDOW_ADJUST``), then sends its request, which waits. A whole-list
  read of 1,000 VPNs (450 KB) took 48 ms instead of 8.

:func:`quick_ack` puts a :class:`QuickAckProtocol` between the socket transport and the
asyncssh connection, and counts what the connection writes: after a read it sets
``TCP_QUICKACK`` (which sends an ACK the kernel was holding back at once) during the
connection's first :data:`FIRST_READS` reads and for :data:`AFTER_LARGE_REPLY` reads after the
connection has written :data:`LARGE_REPLY` bytes or more since the last read. Otherwise reads
are handed on as they are: an ACK per read cost a one-entry change ~0.2 ms. The bytes and their
order are unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

log = logging.getLogger("northbound.ssh")

FIRST_READS = 64  # the SSH handshake, authentication, the channel, hello and the first RPCs
LARGE_REPLY = 32 * 1024  # paramiko returns the channel window once it has taken ~1/16 of it
AFTER_LARGE_REPLY = 4  # the window adjust and the request after it, with room to spare


class QuickAckProtocol(asyncio.Protocol):
    """Hands everything to ``protocol``; after a read has the kernel ACK it now while the
    connection is new or has just written a large reply."""

    def __init__(self, protocol: asyncio.Protocol, sock: Any,
                 first_reads: int = FIRST_READS) -> None:
        self._protocol = protocol
        self._sock = sock
        self._left = first_reads
        self.written = 0  # bytes written since the last read

    def data_received(self, data: bytes) -> None:
        """Ask for the pending ACK if it is wanted, then hand ``data`` on."""
        if self.written >= LARGE_REPLY:
            self._left = max(self._left, AFTER_LARGE_REPLY)
        self.written = 0
        if self._left > 0:
            self._left -= 1
            try:
                self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            except OSError:  # the socket is going away; the data is still handed on
                pass
        self._protocol.data_received(data)

    def eof_received(self) -> bool | None:
        """Hand the end of input on."""
        return self._protocol.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        """Hand the loss on."""
        self._protocol.connection_lost(exc)

    def pause_writing(self) -> None:
        """Hand flow control on."""
        self._protocol.pause_writing()

    def resume_writing(self) -> None:
        """Hand flow control on."""
        self._protocol.resume_writing()


class CountingTransport:
    """A transport that adds the size of each write to ``acks.written``."""

    def __init__(self, transport: Any, acks: QuickAckProtocol) -> None:
        self._transport = transport
        self._acks = acks

    def write(self, data: bytes) -> None:
        """Count ``data``, then write it."""
        self._acks.written += len(data)
        self._transport.write(data)

    def writelines(self, lines: Any) -> None:
        """Count and write each of ``lines``."""
        for data in lines:
            self.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def quick_ack(conn: Any) -> bool:
    """Have the socket transport of asyncssh connection ``conn`` (from its
    ``connection_made``) hand its reads to ``conn`` through a :class:`QuickAckProtocol`, and
    ``conn`` write through a :class:`CountingTransport`; False, and nothing changed, where the
    socket has no ``TCP_QUICKACK`` (not TCP, not Linux) or asyncssh keeps its transport
    elsewhere than 2.24 does (``_transport``)."""
    transport = getattr(conn, "_transport", None)
    if transport is None:
        return False
    sock = transport.get_extra_info("socket")
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if sock is None or quickack is None or sock.family not in (socket.AF_INET,
                                                                 socket.AF_INET6):
        return False
    if transport.get_protocol() is not conn:
        log.debug("the socket transport does not feed the SSH connection: ACKs left as they are")
        return False
    acks = QuickAckProtocol(conn, sock)
    transport.set_protocol(acks)
    conn._transport = CountingTransport(transport, acks)
    return True
