"""NETCONF over SSH transport: northbound.ssh + northbound.session end to end.

The server runs in a background thread's event loop with a trivial handler
answering every <rpc> with <ok/>; clients are ncclient (base:1.1) and raw
asyncssh clients (base:1.0, malformed hellos, refused channel types).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import stat
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncssh
import ncclient.transport.session as nc_session
import pytest
from lxml import etree
from ncclient import manager
from ncclient.transport.errors import AuthenticationError

from northbound import users
from northbound.frontdoor import Limits
from northbound.quick_ack import AFTER_LARGE_REPLY, FIRST_READS
from northbound.registry import SessionRegistry
from northbound.session import NetconfSession
from northbound.session_messages import NC_NS
from northbound.ssh import start_server

nc_session.TICK = 0.001

T = TypeVar("T")
EOM = b"]]>]]>"
CAPS = [
    "urn:ietf:params:netconf:base:1.0",
    "urn:ietf:params:netconf:base:1.1",
    "urn:ietf:params:netconf:capability:candidate:1.0",
]
HELLO_10 = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities>'
    b"<capability>urn:ietf:params:netconf:base:1.0</capability>"
    b"</capabilities></hello>"
)
HELLO_11 = HELLO_10.replace(b"base:1.0</cap", b"base:1.1</cap")
RPC_GET = b'<rpc message-id="42" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><get/></rpc>'


async def ok_handler(session: NetconfSession, message: bytes) -> bytes | None:
    """Answer every <rpc> with <ok/>; <close-session> also closes the session."""
    try:
        rpc = etree.fromstring(message)
    except etree.XMLSyntaxError:
        return None
    reply = etree.Element(f"{{{NC_NS}}}rpc-reply", nsmap={None: NC_NS})
    for k, v in rpc.attrib.items():
        reply.set(k, v)
    if rpc.find("{urn:example:test}big") is not None:  # a 256 KB answer
        etree.SubElement(reply, f"{{{NC_NS}}}data").text = "x" * 256 * 1024
    else:
        etree.SubElement(reply, f"{{{NC_NS}}}ok")
    if rpc.find(f"{{{NC_NS}}}close-session") is not None:
        session.closing = True
    if rpc.find("{urn:example:test}slow") is not None:
        await asyncio.sleep(0.3)
    return etree.tostring(reply)


@dataclass
class Server:
    loop: asyncio.AbstractEventLoop
    port: int
    state_dir: Path
    host_key: Path
    registry: SessionRegistry
    acceptor: asyncssh.SSHAcceptor
    closed: list[tuple[int, str]] = field(default_factory=list)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        """Run a coroutine on the server loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def wait_sessions(self, n: int, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while len(self.registry) != n:
            assert time.monotonic() < deadline, f"{len(self.registry)} sessions, expected {n}"
            time.sleep(0.01)


@pytest.fixture(scope="session")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """users.json with admin/adminpw (admin) and bob/bobpw, hashed once for all tests."""
    state = tmp_path_factory.mktemp("users")
    users.set_password(state, "admin", "adminpw")
    users.set_password(state, "bob", "bobpw")
    return users.users_path(state)


@contextlib.contextmanager
def serve(state: Path, limits: Limits | None = None, host: str = "127.0.0.1",
          handler: Any = None) -> Iterator[Server]:
    """Run start_server on its own event loop in a thread, as the gateway does."""
    host_key = state / "ssh_host_ed25519_key"
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    registry = SessionRegistry()

    async def start() -> asyncssh.SSHAcceptor:
        return await start_server(host, 0, host_key, state, handler or ok_handler, CAPS,
                                  registry, limits)

    acceptor = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    srv = Server(loop, acceptor.get_port(), state, host_key, registry, acceptor)
    registry.on_close(lambda s: srv.closed.append((s.session_id, s.user)))
    try:
        yield srv
    finally:

        async def stop() -> None:
            acceptor.close()
            await acceptor.wait_closed()
            await registry.close_all()

        srv.call(stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


@pytest.fixture
def server(tmp_path: Path, users_file: Path) -> Iterator[Server]:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    shutil.copy(users_file, users.users_path(state))
    with serve(state) as srv:
        yield srv


def nc_connect(srv: Server, user: str = "admin", password: str = "adminpw") -> Any:
    return manager.connect(
        host="127.0.0.1",
        port=srv.port,
        username=user,
        password=password,
        hostkey_verify=False,
        allow_agent=False,
        look_for_keys=False,
        timeout=10,
    )


async def raw_open(
    srv: Server, user: str = "admin", password: str | None = "adminpw", **kw: Any
) -> tuple[asyncssh.SSHClientConnection, asyncssh.SSHWriter[bytes], asyncssh.SSHReader[bytes]]:
    conn = await asyncssh.connect(
        "127.0.0.1", srv.port, username=user, password=password, known_hosts=None,
        agent_path=None, **kw,
    )
    writer, reader, _ = await conn.open_session(subsystem="netconf", encoding=None)
    return conn, writer, reader


async def read_until(reader: asyncssh.SSHReader[bytes], marker: bytes, timeout: float = 5) -> bytes:
    data = b""
    while marker not in data:
        chunk = await asyncio.wait_for(reader.read(65536), timeout)
        if not chunk:
            raise EOFError(data)
        data += chunk
    return data


async def read_eof(reader: asyncssh.SSHReader[bytes], timeout: float = 5) -> bytes:
    data = b""
    while chunk := await asyncio.wait_for(reader.read(65536), timeout):
        data += chunk
    return data


# -- ncclient (base:1.1) ----------------------------------------------------


def test_ncclient_session_base11_rpc_and_close(server: Server) -> None:
    m = nc_connect(server)
    try:
        assert m.connected
        sid = int(m.session_id)
        assert sid >= 1
        assert m._session._base == nc_session.NetconfBase.BASE_11
        assert "urn:ietf:params:netconf:capability:candidate:1.0" in m.server_capabilities
        session = server.registry.get(sid)
        assert session is not None and session.user == "admin"
        assert session.groups == ["admin"]
        assert session.source_host == "127.0.0.1"
        assert m.lock("running").ok
        assert session.base11  # the client hello was processed before the first rpc
        assert m.unlock("running").ok
        reply = m.dispatch(etree.fromstring('<foo xmlns="urn:example:foo"/>'))
        assert reply.ok
    finally:
        m.close_session()
    server.wait_sessions(0)
    assert server.closed == [(sid, "admin")]


def test_ncclient_two_sessions_distinct_ids_and_groups(server: Server) -> None:
    with nc_connect(server) as m1, nc_connect(server, "bob", "bobpw") as m2:
        ids = {int(m1.session_id), int(m2.session_id)}
        assert ids == {1, 2}
        bob = server.registry.get(int(m2.session_id))
        assert bob is not None and bob.user == "bob" and bob.groups == []
        assert m2.lock("candidate").ok
    server.wait_sessions(0)


@pytest.mark.parametrize(("user", "password"), [("admin", "wrong"), ("mallory", "adminpw")])
def test_ncclient_bad_credentials_refused(server: Server, user: str, password: str) -> None:
    with pytest.raises(AuthenticationError):
        nc_connect(server, user, password)
    assert len(server.registry) == 0


# -- raw clients ------------------------------------------------------------


def test_base10_only_client(server: Server) -> None:
    async def scenario() -> tuple[bytes, bytes]:
        conn, writer, reader = await raw_open(server)
        async with conn:
            hello = await read_until(reader, EOM)
            writer.write(HELLO_10 + EOM + RPC_GET + EOM)
            reply = await read_until(reader, EOM)
            writer.write(b'<rpc message-id="43" xmlns="' + NC_NS.encode() + b'"><close-session/>'
                         b"</rpc>" + EOM)
            rest = await read_eof(reader)
            return hello, reply + rest

    hello, replies = server.call(scenario())
    root = etree.fromstring(hello[: hello.index(EOM)])
    assert root.tag == f"{{{NC_NS}}}hello"
    caps = [c.text for c in root.iter(f"{{{NC_NS}}}capability")]
    assert caps == CAPS
    assert root.findtext(f"{{{NC_NS}}}session-id") == "1"
    first, second, tail = replies.split(EOM)
    assert tail == b""
    assert etree.fromstring(first).get("message-id") == "42"
    assert etree.fromstring(second).get("message-id") == "43"
    server.wait_sessions(0)


def test_base11_hello_and_chunked_rpc_in_one_write(server: Server) -> None:
    async def scenario() -> bytes:
        conn, writer, reader = await raw_open(server)
        async with conn:
            await read_until(reader, EOM)
            writer.write(HELLO_11 + EOM + b"\n#%d\n" % len(RPC_GET) + RPC_GET + b"\n##\n")
            return await read_until(reader, b"\n##\n")

    reply = server.call(scenario())
    assert reply.startswith(b"\n#") and b'message-id="42"' in reply and b"<ok/>" in reply


def test_malformed_xml_rpc_does_not_close_session(server: Server) -> None:
    async def scenario() -> bytes:
        conn, writer, reader = await raw_open(server)
        async with conn:
            await read_until(reader, EOM)
            writer.write(HELLO_10 + EOM + b"<rpc <<not xml" + EOM + RPC_GET + EOM)
            return await read_until(reader, EOM)

    assert b'message-id="42"' in server.call(scenario())


@pytest.mark.parametrize(
    "hello",
    [
        b"this is not XML",
        HELLO_10.replace(b"</capabilities>", b"</capabilities><session-id>4</session-id>"),
        HELLO_10.replace(b"base:1.0</cap", b"base:9.9</cap"),
        RPC_GET,
        b"",
    ],
    ids=["not-xml", "session-id", "no-base", "not-hello", "eof"],
)
def test_bad_client_hello_closes_session(server: Server, hello: bytes) -> None:
    async def scenario() -> bytes:
        conn, writer, reader = await raw_open(server)
        async with conn:
            await read_until(reader, EOM)
            if hello:
                writer.write(hello + EOM + RPC_GET + EOM)
            else:
                writer.write_eof()
            return await read_eof(reader)

    assert server.call(scenario()) == b""
    server.wait_sessions(0)
    assert len(server.closed) == 1


def test_bad_chunk_header_closes_session(server: Server) -> None:
    async def scenario() -> bytes:
        conn, writer, reader = await raw_open(server)
        async with conn:
            await read_until(reader, EOM)
            writer.write(HELLO_11 + EOM + b"\n#abc\n")
            return await read_eof(reader)

    assert server.call(scenario()) == b""
    server.wait_sessions(0)


@pytest.mark.parametrize("kind", ["shell", "exec", "sftp", "other-subsystem"])
def test_only_netconf_subsystem_accepted(server: Server, kind: str) -> None:
    async def scenario() -> None:
        async with asyncssh.connect(
            "127.0.0.1", server.port, username="admin", password="adminpw",
            known_hosts=None, agent_path=None,
        ) as conn:
            if kind == "shell":
                await conn.open_session()
            elif kind == "exec":
                await conn.open_session("ls /")
            elif kind == "sftp":
                await conn.start_sftp_client()
            else:
                await conn.open_session(subsystem="netconf-foo")

    with pytest.raises(asyncssh.ChannelOpenError):
        server.call(scenario())
    assert len(server.registry) == 0


def test_public_key_auth(server: Server) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    users.add_authorized_key(server.state_dir, "carol", key.export_public_key().decode())
    other = asyncssh.generate_private_key("ssh-ed25519")

    async def scenario(k: asyncssh.SSHKey) -> bytes:
        conn, writer, reader = await raw_open(server, "carol", None, client_keys=[k])
        async with conn:
            return await read_until(reader, EOM)

    assert b"<session-id>" in server.call(scenario(key))
    with pytest.raises(asyncssh.PermissionDenied):
        server.call(scenario(other))


def test_kill_session(server: Server) -> None:
    async def scenario() -> tuple[bytes, bool]:
        conn, writer, reader = await raw_open(server)
        async with conn:
            await read_until(reader, EOM)
            writer.write(HELLO_10 + EOM)
            await asyncio.sleep(0.05)
            victim = server.registry.get(1)
            assert victim is not None
            await victim.kill()
            # callbacks ran before kill() returned
            closed_now = (1, "admin") in server.closed
            return await read_eof(reader), closed_now

    rest, closed_now = server.call(scenario())
    assert rest == b"" and closed_now
    assert len(server.registry) == 0


def test_host_key_and_binding(server: Server) -> None:
    assert stat.S_IMODE(server.host_key.stat().st_mode) == 0o600
    assert all(addr[0] == "127.0.0.1" for addr in server.acceptor.get_addresses())
    with socket.create_connection(("127.0.0.1", server.port), timeout=2) as s:
        assert s.recv(64).startswith(b"SSH-2.0-")


def test_kill_waits_for_running_operation_and_drops_reply(server: Server) -> None:
    slow = RPC_GET.replace(b"<get/>", b'<slow xmlns="urn:example:test"/>')

    async def scenario() -> tuple[bytes, float]:
        conn, writer, reader = await raw_open(server)
        async with conn:
            await read_until(reader, EOM)
            writer.write(HELLO_10 + EOM + slow + EOM)
            await asyncio.sleep(0.1)
            victim = server.registry.get(1)
            assert victim is not None
            start = time.monotonic()
            await victim.kill()
            elapsed = time.monotonic() - start
            return await read_eof(reader), elapsed

    rest, elapsed = server.call(scenario())
    assert rest == b""  # the reply of the interrupted session is dropped
    assert 0.1 < elapsed < 2
    assert server.closed == [(1, "admin")]


def test_ipv6_loopback_binds_ipv6_only(tmp_path: Path) -> None:
    assert socket.has_ipv6, "this host has no IPv6: the test needs the ::1 loopback"
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))  # fails loudly without an IPv6 loopback

    async def scenario() -> list[tuple[Any, ...]]:
        acceptor = await start_server(
            "::1", 0, tmp_path / "key", tmp_path, ok_handler, CAPS, SessionRegistry()
        )
        try:
            return list(acceptor.get_addresses())
        finally:
            acceptor.close()
            await acceptor.wait_closed()

    addrs = asyncio.run(scenario())
    assert addrs and all(a[0] == "::1" for a in addrs)


def test_one_socket_write_per_reply(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """asyncssh precedes each encrypted packet with an SSH_MSG_IGNORE, each its own write
    to the socket; northbound/ssh_coalesce.py joins what one callback writes: one write (one
    send()) per reply, the replies intact."""
    from asyncio import selector_events

    writes: list[int] = []
    real = selector_events._SelectorSocketTransport.write

    def counting(self: Any, data: Any) -> None:
        writes.append(len(data))
        real(self, data)

    m = nc_connect(server)  # paramiko: the only asyncio socket transports are the server's
    try:
        monkeypatch.setattr(selector_events._SelectorSocketTransport, "write", counting)
        for _ in range(20):
            assert m.lock("running").ok and m.unlock("running").ok
        monkeypatch.undo()
    finally:
        m.close_session()
    assert len(writes) == 40, writes  # 40 replies; without joining: 80
    server.wait_sessions(0)


def test_reads_acknowledged_at_once_when_a_nagle_client_would_wait(
        server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """ncclient (paramiko) leaves Nagle's algorithm on, so a request it writes in two pieces
    waited for the kernel's delayed ACK (40 ms; tcpdump: three such stalls in the SSH
    handshake, one in the first RPC, and one in every request after a large reply, whose
    window adjust goes first). northbound/quick_ack.py sets TCP_QUICKACK on the session's
    socket after each of its first 64 reads and after the reads that follow a large reply,
    and not otherwise; the replies are intact."""
    from asyncio import trsock

    quickacks: list[int] = []
    real = trsock.TransportSocket.setsockopt

    def recording(self: Any, level: int, opt: int, value: Any) -> None:
        if (level, opt) == (socket.IPPROTO_TCP, socket.TCP_QUICKACK):
            quickacks.append(self.getpeername()[1])
        real(self, level, opt, value)

    monkeypatch.setattr(trsock.TransportSocket, "setsockopt", recording)
    big = etree.fromstring('<big xmlns="urn:example:test"/>')
    m = nc_connect(server)
    try:
        before = len(quickacks)
        for _ in range(40):
            assert m.lock("running").ok and m.unlock("running").ok
        assert len(quickacks) == FIRST_READS  # the handshake's reads, then the first requests
        assert len(m.dispatch(big).xml) > 256 * 1024
        for _ in range(10):
            assert m.lock("running").ok and m.unlock("running").ok
        after_big = len(quickacks) - FIRST_READS
        for _ in range(10):
            assert m.lock("running").ok and m.unlock("running").ok
        port = m._session._transport.sock.getsockname()[1]
    finally:
        m.close_session()
    assert before > 0
    assert 1 <= after_big <= AFTER_LARGE_REPLY  # the reads right after the large reply
    assert len(quickacks) == FIRST_READS + after_big  # small replies: none any more
    assert set(quickacks) == {port}
    server.wait_sessions(0)
