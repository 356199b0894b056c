"""northbound/quick_ack.py: a read asks the kernel for its pending ACK during a connection's
first reads and right after a large reply, and is handed on unchanged either way; the rest of
the protocol's calls pass through, and the connection's writes are counted."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from northbound.quick_ack import (
    AFTER_LARGE_REPLY,
    LARGE_REPLY,
    CountingTransport,
    QuickAckProtocol,
    quick_ack,
)

QUICKACK = (socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


class Sock:
    def __init__(self, fail: bool = False, family: int = socket.AF_INET) -> None:
        self.calls: list[tuple[int, int, int]] = []
        self.fail = fail
        self.family = family

    def setsockopt(self, level: int, opt: int, value: int) -> None:
        self.calls.append((level, opt, value))
        if self.fail:
            raise OSError("gone")


class Recorder(asyncio.Protocol):
    def __init__(self, sock: Sock | None = None) -> None:
        self.seen: list[Any] = []
        self.sock = sock

    def data_received(self, data: bytes) -> None:
        # how many ACKs were asked for when the data is handled
        self.seen.append(("data", data, len(self.sock.calls) if self.sock else None))

    def eof_received(self) -> bool:
        self.seen.append("eof")
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.seen.append(("lost", exc))

    def pause_writing(self) -> None:
        self.seen.append("pause")

    def resume_writing(self) -> None:
        self.seen.append("resume")


class Transport:
    def __init__(self, protocol: Any, sock: Any) -> None:
        self.protocol, self.sock = protocol, sock
        self.written: list[bytes] = []

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.sock if name == "socket" else default

    def get_protocol(self) -> Any:
        return self.protocol

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return False


def test_the_first_reads_are_acknowledged_at_once_then_not() -> None:
    sock = Sock()
    inner = Recorder(sock)
    p = QuickAckProtocol(inner, sock, first_reads=2)
    for data in (b"one", b"two", b"three"):
        p.data_received(data)
    assert sock.calls == [QUICKACK] * 2
    assert inner.seen == [("data", b"one", 1), ("data", b"two", 2), ("data", b"three", 2)]


def test_the_reads_after_a_large_reply_are_acknowledged_at_once() -> None:
    sock = Sock()
    inner = Recorder(sock)
    p = QuickAckProtocol(inner, sock, first_reads=0)
    writer = CountingTransport(Transport(p, sock), p)
    writer.write(b"x" * (LARGE_REPLY - 1))
    p.data_received(b"after a small reply")
    assert sock.calls == []
    writer.writelines([b"x" * (LARGE_REPLY // 2), b"x" * (LARGE_REPLY // 2)])
    for _ in range(AFTER_LARGE_REPLY + 2):
        p.data_received(b"after a large reply")
    assert sock.calls == [QUICKACK] * AFTER_LARGE_REPLY
    assert len(inner.seen) == AFTER_LARGE_REPLY + 3


def test_failing_setsockopt_still_hands_the_data_on() -> None:
    sock = Sock(fail=True)
    inner = Recorder(sock)
    QuickAckProtocol(inner, sock).data_received(b"x")
    assert inner.seen == [("data", b"x", 1)]


def test_other_calls_pass_through() -> None:
    inner = Recorder()
    p = QuickAckProtocol(inner, Sock())
    err = ConnectionResetError()
    p.pause_writing()
    p.resume_writing()
    assert p.eof_received() is True
    p.connection_lost(err)
    assert inner.seen == ["pause", "resume", "eof", ("lost", err)]


class Conn:
    _transport: Any = None


def test_installed_only_on_a_tcp_socket_feeding_the_connection() -> None:
    conn = Conn()
    raw = Transport(conn, Sock())
    conn._transport = raw
    assert quick_ack(conn)
    assert isinstance(raw.protocol, QuickAckProtocol)
    conn._transport.write(b"abc")  # asyncssh writes through the counter to its transport
    assert raw.written == [b"abc"] and raw.protocol.written == 3
    assert conn._transport.is_closing() is False  # the rest is the transport's
    unix = Conn()
    unix._transport = Transport(unix, Sock(family=socket.AF_UNIX))
    assert not quick_ack(unix) and unix._transport.protocol is unix
    other = Conn()
    other._transport = Transport(object(), Sock())
    assert not quick_ack(other)
    assert not quick_ack(Conn())  # no transport where asyncssh 2.24 keeps it
