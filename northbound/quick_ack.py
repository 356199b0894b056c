"""Acknowledge what a client sends at once, so its Nagle algorithm never waits on us.

A client whose socket keeps Nagle's algorithm on (ncclient over paramiko does: neither sets
``TCP_NODELAY``) holds back a small segment while its previous one is unacknowledged. Linux
delays the ACK of a segment that carries no reply by up to 40 ms, so a request the client
writes in two pieces stalls for 40 ms: three times in the SSH handshake and in the first RPC
of a session, seen with tcpdump (docs/benchmarks.md).

:func:`quick_ack` puts a :class:`QuickAckProtocol` between the socket transport and the
asyncssh connection: after each of the connection's first :data:`QUICK_READS` reads it sets
``TCP_QUICKACK``, which sends an ACK the kernel was holding back at once, then steps aside.
Later requests did not stall (the client's segments then go out together, or the reply
carries the ACK), and an ACK per read cost a one-entry change ~0.2 ms. The bytes and their
order are unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

log = logging.getLogger("northbound.ssh")

QUICK_READS = 64  # the SSH handshake, authentication, the channel, hello and the first RPCs


class QuickAckProtocol(asyncio.Protocol):
    """Hands everything to ``protocol``; after each of the first ``reads`` reads has the
    kernel ACK it now, then gives ``transport`` back to ``protocol``."""

    def __init__(self, protocol: asyncio.Protocol, sock: Any, transport: Any,
                 reads: int = QUICK_READS) -> None:
        self._protocol = protocol
        self._sock = sock
        self._transport = transport
        self._left = reads

    def data_received(self, data: bytes) -> None:
        """Ask for the pending ACK, then hand ``data`` on."""
        try:
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        except OSError:  # the socket is going away; the data is still handed on
            pass
        self._left -= 1
        if self._left <= 0:
            self._transport.set_protocol(self._protocol)
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


def quick_ack(conn: Any) -> bool:
    """Have the socket transport of asyncssh connection ``conn`` (from its
    ``connection_made``, before :func:`~northbound.ssh_coalesce.coalesce`) hand its reads to
    ``conn`` through a :class:`QuickAckProtocol`; False, and nothing changed, where the socket
    has no ``TCP_QUICKACK`` (not TCP, not Linux) or asyncssh keeps its transport elsewhere."""
    transport = getattr(conn, "_transport", None)
    if not isinstance(transport, asyncio.Transport):
        return False
    sock = transport.get_extra_info("socket")
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if sock is None or quickack is None or sock.family not in (socket.AF_INET,
                                                                 socket.AF_INET6):
        return False
    if transport.get_protocol() is not conn:
        log.debug("the socket transport does not feed the SSH connection: ACKs left as they are")
        return False
    transport.set_protocol(QuickAckProtocol(conn, sock, transport))
    return True
