"""A streamed VICI request (``list-sas``, ``list-conns``...) read and decoded fast.

The ``vici`` package reads each message through a stream object, ``struct.unpack`` per
byte and ``OrderedDict`` per section, and two ``recv`` calls per message: with 1,000 IKE SAs,
``list-sas`` spent most of its time there (profiled: a state refresh was mostly
``Message.deserialize`` and ``Transport._recvall``). Here the socket is read in large
chunks, and messages are decoded by index into plain dicts: the same result (section names
and keys as ``str``, values as ``bytes``, lists of ``bytes``), several times faster.

Requests are encoded by :mod:`southbound.vici_encode` (the package's bytes, faster); an
encoded request packet is sent and answered by :func:`exchange`.

The event registration around the request stays ``vici.Session``'s; nothing is left in our
buffer when the request's answer has come (charon sends nothing unasked after it).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import vici
from vici.exception import CommandException, SessionException
from vici.protocol import Packet

from southbound.vici_encode import request

SECTION_START, SECTION_END, KEY_VALUE, LIST_START, LIST_ITEM, LIST_END = 1, 2, 3, 4, 5, 6
CHUNK = 256 * 1024


class ViciDecodeError(SessionException):
    """A message that is not VICI's encoding."""


def decode(data: bytes | memoryview, start: int = 0) -> dict[str, Any]:
    """One VICI message (from ``start``) as nested dicts."""
    out: dict[str, Any] = {}
    section, stack, i, n = out, [], start, len(data)
    try:
        while i < n:
            kind = data[i]
            if kind == KEY_VALUE:
                end = i + 2 + data[i + 1]
                key = bytes(data[i + 2:end]).decode()
                size = (data[end] << 8) | data[end + 1]
                section[key] = bytes(data[end + 2:end + 2 + size])
                i = end + 2 + size
            elif kind == SECTION_START:
                end = i + 2 + data[i + 1]
                new: dict[str, Any] = {}
                section[bytes(data[i + 2:end]).decode()] = new
                stack.append(section)
                section, i = new, end
            elif kind == SECTION_END:
                section, i = stack.pop(), i + 1
            elif kind == LIST_START:
                end = i + 2 + data[i + 1]
                name, items, i = bytes(data[i + 2:end]).decode(), [], end
                while data[i] == LIST_ITEM:
                    size = (data[i + 1] << 8) | data[i + 2]
                    items.append(bytes(data[i + 3:i + 3 + size]))
                    i += 3 + size
                if data[i] != LIST_END:
                    raise ViciDecodeError(f"expected the end of list {name!r} at {i}")
                section[name], i = items, i + 1
            else:
                raise ViciDecodeError(f"unknown element type {kind} at {i}")
    except IndexError:
        raise ViciDecodeError("truncated message") from None
    if stack:
        raise ViciDecodeError("unterminated section")
    return out


class _Reader:
    """Whole VICI packets from a socket, read in large chunks."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self, need: int) -> None:
        while len(self.buf) < need:
            chunk = self.sock.recv(max(CHUNK, need - len(self.buf)))
            if not chunk:
                raise OSError("connection closed by the daemon")
            self.buf += chunk

    def packet(self) -> bytes:
        self._fill(4)
        size = int.from_bytes(self.buf[:4], "big")
        self._fill(4 + size)
        out = bytes(self.buf[4:4 + size])
        del self.buf[:4 + size]
        return out


def streamed(session: vici.Session, sock: socket.socket, command: str, event: str,
             message: dict[str, Any] | None = None,
             each: Callable[[dict[str, Any]], Any] | None = None,
             raw: bool = False) -> list[Any]:
    """Send ``command`` and collect the ``event`` messages it streams (each passed through
    ``each`` when given; ``raw``: each message's bytes, not decoded), as
    ``vici.Session.streamed_request`` does. Raises
    ``CommandException`` when charon answers failure, ``SessionException``/``OSError`` on a
    broken session."""
    packet = request(command, message or None)
    session._register_unregister(event, True)
    out: list[Any] = []
    try:
        session.transport.send(packet)
        reader = _Reader(sock)
        while True:
            packet = reader.packet()
            kind = packet[0]
            if kind == Packet.EVENT and raw:
                body = packet[2 + packet[1]:]
                out.append(each(body) if each else body)
                continue
            if kind == Packet.EVENT:
                msg = decode(packet, 2 + packet[1])
                out.append(each(msg) if each else msg)
                continue
            if kind != Packet.CMD_RESPONSE:
                raise SessionException(f"unexpected response type {kind} to {command}")
            reply = decode(packet, 1)
            if reader.buf:
                raise SessionException(f"unexpected data after the answer to {command}")
            break
    finally:
        session._register_unregister(event, False)
    if reply.get("success", b"yes") != b"yes":
        raise CommandException(f"Command failed: {reply.get('errmsg', b'').decode()}")
    return out


def requested(session: vici.Session, sock: socket.socket, command: str,
              message: dict[str, Any] | None = None) -> dict[str, Any]:
    """Send ``command`` and decode its answer, as ``vici.Session.request`` does (a big
    answer: ``get-counters all=yes`` is 21 counters per connection). Raises
    ``CommandException`` when charon answers failure, ``SessionException``/``OSError`` on a
    broken session."""
    return checked(answer(session, sock, command, message))


def answer(session: vici.Session, sock: socket.socket, command: str,
           message: dict[str, Any] | None = None) -> bytes:
    """Send ``command`` and read its answer's message, not decoded (:func:`checked` decodes
    it). Raises ``SessionException``/``OSError`` on a broken session."""
    return exchange(session, sock, command, request(command, message or None))


def exchange(session: vici.Session, sock: socket.socket, command: str, packet: bytes) -> bytes:
    """Send ``packet`` (a request packet of ``command`` without its length header, e.g.
    :func:`southbound.vici_encode.request`'s) and read its answer's message, not decoded.
    Raises ``SessionException``/``OSError`` on a broken session."""
    session.transport.send(packet)
    reader = _Reader(sock)
    packet = reader.packet()
    if packet[0] != Packet.CMD_RESPONSE:
        raise SessionException(f"unexpected response type {packet[0]} to {command}")
    if reader.buf:
        raise SessionException(f"unexpected data after the answer to {command}")
    return packet[1:]


def checked(message: bytes) -> dict[str, Any]:
    """An answer's message decoded; ``CommandException`` when charon answered failure."""
    reply = decode(message)
    if reply.get("success", b"yes") != b"yes":
        # decoded as vici_client does its errmsg (a stray byte must not hide the refusal)
        errmsg = reply.get("errmsg", b"").decode("utf-8", "replace")
        raise CommandException(f"Command failed: {errmsg}")
    return reply
