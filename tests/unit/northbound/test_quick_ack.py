"""northbound/quick_ack.py: every read asks the kernel for its pending ACK, then is handed on
unchanged; the rest of the protocol's calls pass through."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from northbound.quick_ack import QuickAckProtocol, quick_ack


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
        # the ACK was asked for before the data is handled
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


class Transport(asyncio.Transport):
    def __init__(self, protocol: Any, sock: Any) -> None:
        super().__init__()
        self.protocol, self.sock = protocol, sock

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.sock if name == "socket" else default

    def get_protocol(self) -> Any:
        return self.protocol

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol


def test_each_early_read_sets_quickack_first_then_steps_aside() -> None:
    sock = Sock()
    inner = Recorder(sock)
    transport = Transport(None, sock)
    p = QuickAckProtocol(inner, sock, transport, reads=3)
    transport.protocol = p
    for data in (b"one", b"two"):
        p.data_received(data)
    assert transport.protocol is p
    p.data_received(b"three")
    assert transport.protocol is inner  # later reads go straight to the connection
    assert sock.calls == [(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)] * 3
    assert inner.seen == [("data", b"one", 1), ("data", b"two", 2), ("data", b"three", 3)]


def test_failing_setsockopt_still_hands_the_data_on() -> None:
    sock = Sock(fail=True)
    inner = Recorder(sock)
    QuickAckProtocol(inner, sock, Transport(None, sock)).data_received(b"x")
    assert inner.seen == [("data", b"x", 1)]


def test_other_calls_pass_through() -> None:
    inner = Recorder()
    p = QuickAckProtocol(inner, Sock(), Transport(None, None))
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
    conn._transport = Transport(conn, Sock())
    assert quick_ack(conn) and isinstance(conn._transport.protocol, QuickAckProtocol)
    unix = Conn()
    unix._transport = Transport(unix, Sock(family=socket.AF_UNIX))
    assert not quick_ack(unix) and unix._transport.protocol is unix
    other = Conn()
    other._transport = Transport(object(), Sock())
    assert not quick_ack(other)
    assert not quick_ack(Conn())  # no socket transport where asyncssh 2.24 keeps it
