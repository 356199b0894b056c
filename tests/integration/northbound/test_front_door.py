"""The front door of the NETCONF server: password storage, throttled logins, limits on
unauthenticated connections, login and hello time, sessions per user, silent and slow clients,
and the SSH algorithms offered.

A real server (start_server on its own event loop in a thread, as the gateway runs it) and
real clients (asyncssh, ncclient/paramiko, raw sockets) over TCP on the loopback, each
scenario on the test's own event loop. Other source addresses are 127.0.0.2-127.0.0.20 of the
loopback network. Defaults of Limits are used unless a test says why it needs others.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import shutil
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import paramiko
import pytest
from ncclient import manager

from northbound import users
from northbound.frontdoor import (
    ENCRYPTION_ALGS,
    KEX_ALGS,
    MAC_ALGS,
    SIGNATURE_ALGS,
    FrontDoor,
    Limits,
    front_door,
)
from northbound.session_messages import NC_NS
from tests.integration.northbound.test_transport import (
    EOM,
    HELLO_10,
    RPC_GET,
    Server,
    read_eof,
    read_until,
    serve,
)

ADMIN_PW = "adminpw"
WRONG = "not-the-password-42"


@pytest.fixture(scope="module")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """admin/adminpw (admin) and bob/bobpw, carol, dave; hashed once for the module."""
    state = tmp_path_factory.mktemp("users")
    for user in ("admin", "bob", "carol", "dave"):
        users.set_password(state, user, user[:5] + "pw" if user != "admin" else ADMIN_PW)
    return users.users_path(state)


@pytest.fixture
def state(tmp_path: Path, users_file: Path) -> Path:
    sd = tmp_path / "state"
    sd.mkdir(mode=0o700)
    shutil.copy(users_file, users.users_path(sd))
    return sd


@pytest.fixture
def server(state: Path) -> Iterator[Server]:
    with serve(state) as srv:
        yield srv


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="northbound")
    return caplog


def door(srv: Server) -> FrontDoor:
    d = front_door(srv.registry)
    assert d is not None
    return d


def add_key(srv: Server, user: str) -> asyncssh.SSHKey:
    key = asyncssh.generate_private_key("ssh-ed25519")
    users.add_authorized_key(srv.state_dir, user, key.export_public_key().decode())
    return key


async def connect(srv: Server, user: str = "admin", password: str | None = ADMIN_PW,
                  source: str = "127.0.0.1", **kw: Any) -> asyncssh.SSHClientConnection:
    """An asyncssh client from ``source``: password only, unless client_keys are given."""
    kw.setdefault("client_keys", None)
    return await asyncssh.connect("127.0.0.1", srv.port, username=user, password=password,
                                  known_hosts=None, agent_path=None, local_addr=(source, 0),
                                  **kw)


async def refused(srv: Server, user: str, password: str, source: str = "127.0.0.1") -> str:
    """Try a password; return the error (the test fails if the login succeeds)."""
    try:
        conn = await connect(srv, user, password, source)
    except (asyncssh.Error, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    conn.close()
    raise AssertionError(f"{user}/{password} from {source} was accepted")


async def netconf(conn: asyncssh.SSHClientConnection, **kw: Any) -> tuple[Any, Any]:
    """Open a NETCONF channel, exchange hellos (base:1.0); return (writer, reader)."""
    writer, reader, _ = await conn.open_session(subsystem="netconf", encoding=None, **kw)
    await read_until(reader, EOM)
    writer.write(HELLO_10 + EOM)
    return writer, reader


async def rpc(writer: Any, reader: Any, n: int) -> bytes:
    writer.write(RPC_GET.replace(b'"42"', b'"%d"' % n) + EOM)
    reply = await read_until(reader, EOM)
    assert b'message-id="%d"' % n in reply and b"<ok/>" in reply, reply
    return reply


def failure_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.getMessage().startswith("password authentication failed")]


def old_record(password: str) -> dict[str, Any]:
    """A users.json password record as written before this change (scrypt N=2^14)."""
    salt = b"0123456789abcdef"
    n, r, p = 2**14, 8, 1
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32,
                            maxmem=128 * n * r * 2)
    return {"alg": "scrypt", "n": n, "r": r, "p": p,
            "salt": base64.b64encode(salt).decode(), "hash": base64.b64encode(digest).decode()}


def test_documented_defaults() -> None:
    """The defaults docs/security.md and README.md state (change them together)."""
    lim = Limits()
    assert (lim.max_unauthenticated, lim.max_unauthenticated_per_source) == (64, 10)
    assert (lim.login_grace_time, lim.hello_timeout, lim.send_timeout) == (30, 30, 60)
    assert (lim.max_sessions_per_user, lim.max_auth_tries) == (32, 6)
    assert (lim.keepalive_interval, lim.keepalive_count_max) == (60, 3)
    assert (lim.failure_delay, lim.failure_growth) == (0.1, 1.5)
    assert (lim.max_source_delay, lim.max_user_delay, lim.forget_after) == (30, 10, 900)


# -- password storage ------------------------------------------------------------------------


def test_passwords_hashed_with_scrypt_at_todays_cost(tmp_path: Path) -> None:
    start = time.monotonic()
    users.set_password(tmp_path, "alice", "correct horse")
    elapsed = time.monotonic() - start
    rec = json.loads(users.users_path(tmp_path).read_text())["users"]["alice"]["password"]
    assert rec["alg"] == "scrypt"
    assert rec["n"] >= 2**17 and rec["r"] >= 8 and rec["p"] >= 1  # OWASP: 128 MiB per hash
    assert not users.needs_rehash(rec)
    assert users.needs_rehash(old_record("x"))
    print(f"scrypt N={rec['n']} r={rec['r']} p={rec['p']}: one hash took {elapsed:.2f} s")


def test_old_hash_works_and_is_upgraded_on_login(server: Server) -> None:
    path = users.users_path(server.state_dir)
    data = json.loads(path.read_text())
    data["users"]["bob"]["password"] = old_record("bobpw")
    path.write_text(json.dumps(data))

    async def scenario() -> None:
        await refused(server, "bob", "wrong")  # a failure changes nothing
        assert json.loads(path.read_text())["users"]["bob"]["password"]["n"] == 2**14
        async with await connect(server, "bob", "bobpw"):
            pass
        async with await connect(server, "bob", "bobpw"):  # the new hash works
            pass

    asyncio.run(scenario())
    rec = json.loads(path.read_text())["users"]["bob"]["password"]
    assert not users.needs_rehash(rec) and rec["n"] == 2**17
    assert rec["salt"] != old_record("bobpw")["salt"]
    assert users.verify(server.state_dir, "bob", "bobpw")
    assert users.groups_of(server.state_dir, "bob") == []  # nothing else of the entry changed


def test_authenticate_upgrades_only_after_a_success(state: Path) -> None:
    path = users.users_path(state)
    data = json.loads(path.read_text())
    data["users"]["bob"]["password"] = old_record("bobpw")
    path.write_text(json.dumps(data))
    assert not users.authenticate(state, "bob", "wrong")
    assert users.needs_rehash(json.loads(path.read_text())["users"]["bob"]["password"])
    assert users.authenticate(state, "bob", "bobpw")
    assert not users.needs_rehash(json.loads(path.read_text())["users"]["bob"]["password"])
    assert users.authenticate(state, "bob", "bobpw") and not users.verify(state, "bob", "x")


def test_password_checks_do_not_stall_other_sessions(server: Server) -> None:
    """While four password checks (about a second of scrypt each) are under way, an open
    session's RPCs are all answered before any of those logins ends: hashing runs in
    threads, not in the event loop."""
    key = add_key(server, "admin")
    events: list[str] = []

    async def guess(user: str, source: str) -> None:
        await refused(server, user, WRONG, source)
        events.append(f"login {user} ended")

    async def scenario() -> None:
        async with await connect(server, password=None, client_keys=[key]) as conn:
            writer, reader = await netconf(conn)
            await rpc(writer, reader, 1)
            guesses = [asyncio.create_task(guess(u, a)) for u, a in (
                ("admin", "127.0.0.3"), ("bob", "127.0.0.4"), ("carol", "127.0.0.5"),
                ("dave", "127.0.0.6"))]
            # each attempt is counted (as a failure) right before its hash starts
            while not all(door(server).throttle.failures(a, u) == (1, 1) for u, a in (
                    ("admin", "127.0.0.3"), ("bob", "127.0.0.4"), ("carol", "127.0.0.5"),
                    ("dave", "127.0.0.6"))):
                await asyncio.sleep(0.005)
            for n in range(2, 7):
                await rpc(writer, reader, n)
                events.append(f"rpc {n}")
            await asyncio.gather(*guesses)

    asyncio.run(scenario())
    assert events[:5] == [f"rpc {n}" for n in range(2, 7)], events


# -- throttling of failed logins -------------------------------------------------------------


def test_ten_wrong_passwords_from_one_address_take_over_5_s(
        server: Server, logs: pytest.LogCaptureFixture) -> None:
    """A guesser with ten connections at once from one address: every guess is refused and
    the ten take at least 5 s (before this change: 41 guesses a second)."""

    async def scenario() -> tuple[list[str], float]:
        start = time.monotonic()
        errors = await asyncio.gather(*(refused(server, "admin", f"{WRONG}{i}")
                                        for i in range(10)))
        return errors, time.monotonic() - start

    errors, elapsed = asyncio.run(scenario())
    assert all("PermissionDenied" in e for e in errors), errors
    assert elapsed >= 5.0, elapsed
    print(f"10 wrong passwords from one address: {elapsed:.1f} s "
          f"({10 / elapsed:.2f} guesses a second)")
    lines = failure_lines(logs)
    assert len(lines) == 10
    assert "10 failures in a row from 127.0.0.1, 10 for this user" in lines[-1]
    assert WRONG not in logs.text  # no password in any log line


def test_wrong_passwords_for_one_user_from_many_addresses_take_over_5_s(
        server: Server, logs: pytest.LogCaptureFixture) -> None:
    """Ten addresses guessing one user's password at once are slowed down per user."""

    async def scenario() -> float:
        start = time.monotonic()
        await asyncio.gather(*(refused(server, "admin", WRONG, f"127.0.0.{i}")
                               for i in range(2, 12)))
        return time.monotonic() - start

    elapsed = asyncio.run(scenario())
    assert elapsed >= 5.0, elapsed
    lines = failure_lines(logs)
    assert len(lines) == 10 and "10 for this user" in lines[-1], lines
    assert all("1 failures in a row from 127.0.0." in line for line in lines)
    assert WRONG not in logs.text


def test_a_success_resets_its_own_failures_only(
        server: Server, logs: pytest.LogCaptureFixture) -> None:
    key = add_key(server, "carol")

    async def scenario() -> None:
        for _ in range(2):
            await refused(server, "bob", WRONG)
        await refused(server, "admin", WRONG)
        async with await connect(server):  # admin's own failure is forgotten...
            pass
        await refused(server, "admin", WRONG)
        async with await connect(server, "bob", "bobpw", source="127.0.0.2"):
            pass
        await refused(server, "carol", WRONG)
        async with await connect(server, "carol", None, client_keys=[key]):
            pass  # a key login resets as a password login does
        await refused(server, "carol", WRONG)

    asyncio.run(scenario())
    lines = failure_lines(logs)
    assert len(lines) == 6, lines
    assert "2 failures in a row from 127.0.0.1, 2 for this user" in lines[1]
    assert "3 failures in a row from 127.0.0.1, 1 for this user" in lines[2]
    # ...but not the two made for bob from the same address (an attacker with an account of
    # its own cannot wipe its record by logging in)
    assert "'admin' from 127.0.0.1" in lines[3]
    assert "3 failures in a row from 127.0.0.1, 1 for this user" in lines[3]
    # bob's success from another address clears bob's own count, not what 127.0.0.1 did
    assert "4 failures in a row from 127.0.0.1, 1 for this user" in lines[4]
    assert "'carol'" in lines[5]
    assert "4 failures in a row from 127.0.0.1, 1 for this user" in lines[5]
    assert WRONG not in logs.text and "bobpw" not in logs.text


class _Guesser(asyncssh.SSHClient):
    """Tries password after password on one connection."""

    def __init__(self) -> None:
        self.tried = 0

    def password_auth_requested(self) -> str:
        self.tried += 1
        return f"{WRONG}-{self.tried}"

    def kbdint_auth_requested(self) -> None:
        return None


def test_connection_closed_after_6_wrong_passwords(
        server: Server, logs: pytest.LogCaptureFixture) -> None:
    guesser = _Guesser()

    async def scenario() -> str:
        with pytest.raises(asyncssh.Error) as ei:
            await asyncssh.connect("127.0.0.1", server.port, username="admin", known_hosts=None,
                                   agent_path=None, client_keys=None,
                                   client_factory=lambda: guesser, preferred_auth="password")
        return str(ei.value)

    error = asyncio.run(scenario())
    # the client may send a 7th guess before the disconnect reaches it; it is not checked
    assert guesser.tried in (6, 7) and len(failure_lines(logs)) == 6
    assert "too many authentication failures (6)" in error
    assert "too many authentication failures (6)" in logs.text


# -- limits on connections, time and sessions ------------------------------------------------


def test_unauthenticated_connections_limited_per_source(server: Server) -> None:
    """Ten silent connections from one address (the default limit): the eleventh from there
    is refused with the reason, another address still logs in."""
    silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(10)]
    try:
        for s in silent:
            assert s.recv(64).startswith(b"SSH-2.0-")

        async def scenario() -> str:
            async with await connect(server, source="127.0.0.2") as conn:
                writer, reader = await netconf(conn)
                await rpc(writer, reader, 1)
            return await refused(server, "admin", ADMIN_PW)

        error = asyncio.run(scenario())
    finally:
        for s in silent:
            s.close()
    assert "too many unauthenticated connections from 127.0.0.1 (limit 10)" in error


def test_unauthenticated_connections_limited_in_all(state: Path) -> None:
    """The total limit (64 by default; 3 here, to need only four addresses)."""
    with serve(state, Limits(max_unauthenticated=3)) as srv:
        silent = []
        for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
            s = socket.create_connection(("127.0.0.1", srv.port), source_address=(source, 0))
            assert s.recv(64).startswith(b"SSH-2.0-")
            silent.append(s)
        try:
            error = asyncio.run(refused(srv, "admin", ADMIN_PW, "127.0.0.5"))
            assert "too many unauthenticated connections (limit 3)" in error
            silent.pop().close()  # a place is free again
            time.sleep(0.2)

            async def ok() -> None:
                async with await connect(srv, source="127.0.0.5"):
                    pass

            asyncio.run(ok())
        finally:
            for s in silent:
                s.close()


def test_login_grace_time(state: Path, logs: pytest.LogCaptureFixture) -> None:
    """A client that does not authenticate in time is told why and disconnected (30 s by
    default; 1 s here)."""
    with serve(state, Limits(login_grace_time=1)) as srv:
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        elapsed = time.monotonic() - start
    assert elapsed >= 1.0
    assert b"not authenticated within the login grace time of 1 s" in data  # SSH disconnect
    assert "closed: not authenticated within the login grace time of 1 s" in logs.text


def test_hello_timeout(state: Path, logs: pytest.LogCaptureFixture) -> None:
    """An authenticated client must open its NETCONF channel and send <hello> in time (30 s
    by default; 1 s here); then the channel, or the connection, is closed."""

    async def scenario(srv: Server) -> tuple[bytes, float]:
        async with await connect(srv) as conn:
            writer, reader, _ = await conn.open_session(subsystem="netconf", encoding=None)
            start = time.monotonic()
            hello = await read_until(reader, EOM)
            rest = await read_eof(reader, timeout=10)
            elapsed = time.monotonic() - start
            assert rest == b""
        async with await connect(srv) as idle:  # no channel at all
            await asyncio.wait_for(idle.wait_closed(), 10)
        return hello, elapsed

    with serve(state, Limits(hello_timeout=1)) as srv:
        hello, elapsed = asyncio.run(scenario(srv))
        srv.wait_sessions(0)
    assert b"<session-id>" in hello and elapsed >= 1.0
    assert "no <hello> within 1 s; closed" in logs.text
    assert "closed: no NETCONF session opened within 1 s" in logs.text


def test_sessions_per_user_limited_to_32(server: Server, logs: pytest.LogCaptureFixture) -> None:
    async def scenario() -> str:
        async with await connect(server) as conn, await connect(server, "bob", "bobpw") as bob:
            channels = [await netconf(conn) for _ in range(32)]
            with pytest.raises(asyncssh.ChannelOpenError) as ei:
                await conn.open_session(subsystem="netconf", encoding=None)
            async with await connect(server) as other:  # per user, over all connections
                with pytest.raises(asyncssh.ChannelOpenError):
                    await other.open_session(subsystem="netconf", encoding=None)
            await rpc(*await netconf(bob), 1)  # other users are not concerned
            await rpc(*channels[0], 2)
            channels[0][0].close()
            await asyncio.sleep(0.2)
            await rpc(*await netconf(conn), 3)  # a place is free again
            return ei.value.reason

    reason = asyncio.run(scenario())
    assert reason == "too many NETCONF sessions for user 'admin' (limit 32)"
    assert "refused: too many NETCONF sessions for user 'admin' (limit 32)" in logs.text


def test_ncclient_sees_why_a_session_is_refused(
        state: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The reason reaches a paramiko-based client too (limit 1 here): paramiko raises
    ChannelException 'Administratively prohibited' and logs the server's reason."""
    caplog.set_level(logging.INFO)
    with serve(state, Limits(max_sessions_per_user=1)) as srv:
        kw = dict(host="127.0.0.1", port=srv.port, username="admin", password=ADMIN_PW,
                  hostkey_verify=False, allow_agent=False, look_for_keys=False, timeout=10)
        with manager.connect(**kw) as m:
            assert m.connected
            with pytest.raises(paramiko.ChannelException, match="Administratively prohibited"):
                manager.connect(**kw)
    client_side = [r.getMessage() for r in caplog.records
                   if not r.name.startswith("northbound")]
    assert any("open FAILED: too many NETCONF sessions for user 'admin' (limit 1)" in m
               for m in client_side), client_side


def test_client_that_reads_nothing_is_dropped(state: Path, logs: pytest.LogCaptureFixture) -> None:
    """A client that sends RPCs but reads none of the replies holds no memory for ever: once
    nothing is taken for send_timeout (60 s by default; 2 s here) its session is dropped.
    Meanwhile another session is served."""

    async def scenario(srv: Server) -> None:
        async with await connect(srv) as stuck, await connect(srv, "bob", "bobpw") as fine:
            writer, reader = await netconf(stuck, window=4096)
            writer.channel.pause_reading()
            writer.write(b"".join(RPC_GET.replace(b'"42"', b'"%d"' % n) + EOM
                                  for n in range(3000)))
            good = await netconf(fine)
            start = time.monotonic()
            n = 0
            while not any("dropped" in r.getMessage() for r in logs.records):
                n += 1
                await rpc(*good, n)
                assert time.monotonic() - start < 30, "the stuck session was not dropped"
                await asyncio.sleep(0.05)
            assert n >= 10  # the other session was answered all along
            await rpc(*good, n + 1)

    with serve(state, Limits(send_timeout=2)) as srv:
        asyncio.run(scenario(srv))
        srv.wait_sessions(0)
    assert "dropped: the client read nothing for 2 s" in logs.text


class _BlackHole:
    """A TCP relay to the server that, once cut, forwards nothing more either way and keeps
    both sockets open: a client whose network went away without a FIN."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cut = asyncio.Event()
        self.listener: asyncio.Server | None = None

    async def start(self) -> int:
        self.listener = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return int(self.listener.sockets[0].getsockname()[1])

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                if not self.cut.is_set():
                    dst.write(data)

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer),
                             return_exceptions=True)


def test_client_gone_without_a_word_is_disconnected(
        state: Path, logs: pytest.LogCaptureFixture) -> None:
    """An authenticated client whose network vanished (no FIN) does not hold its session for
    ever: it answers no keepalive and is disconnected (60 s apart, 3 unanswered by default;
    0.5 s and 2 here), which frees its place among the user's sessions."""

    async def scenario(srv: Server) -> float:
        hole = _BlackHole(srv.port)
        port = await hole.start()
        conn = await asyncssh.connect("127.0.0.1", port, username="admin", password=ADMIN_PW,
                                      known_hosts=None, agent_path=None, client_keys=None)
        await rpc(*await netconf(conn), 1)
        assert len(srv.registry) == 1
        hole.cut.set()
        start = time.monotonic()
        while len(srv.registry):
            assert time.monotonic() - start < 20, "the session of the vanished client lives on"
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - start
        conn.abort()
        assert hole.listener is not None
        hole.listener.close()
        return elapsed

    with serve(state, Limits(keepalive_interval=0.5, keepalive_count_max=2)) as srv:
        elapsed = asyncio.run(scenario(srv))
        assert door(srv).sessions == {}
    assert elapsed >= 1.0
    assert "closed: the client answered none of 2 keepalives (0.5 s apart)" in logs.text


def test_silent_clients_do_not_hold_up_others(server: Server) -> None:
    """Silent clients at every stage (TCP only, authenticated without a channel, channel
    without hello): a new client still logs in and is served while they wait."""
    key = add_key(server, "carol")

    async def scenario() -> None:
        silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(5)]
        no_channel = await connect(server)
        no_hello = await connect(server, "bob", "bobpw")
        await no_hello.open_session(subsystem="netconf", encoding=None)
        try:
            async with await connect(server, "carol", None, "127.0.0.2",
                                     client_keys=[key]) as conn:
                writer, reader = await netconf(conn)
                for n in range(5):
                    await rpc(writer, reader, n)
                assert len(server.registry) == 2  # carol's, and bob's waiting for its hello
            assert not no_hello.is_closed() and not no_channel.is_closed()
        finally:
            no_channel.close()
            no_hello.close()
            for s in silent:
                s.close()

    asyncio.run(scenario())


# -- SSH algorithms --------------------------------------------------------------------------


def _server_kexinit(port: int) -> list[list[str]]:
    """The name-lists of the server's first KEXINIT, read from a raw socket."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"SSH-2.0-probe\r\n")
        data = b""
        while b"\r\n" not in data:
            data += s.recv(4096)
        data = data.split(b"\r\n", 1)[1]
        while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
            data += s.recv(65536)
    length, padding = struct.unpack(">IB", data[:5])
    payload = data[5: 4 + length - padding]
    assert payload[0] == 20  # SSH_MSG_KEXINIT
    pos, lists = 17, []
    for _ in range(10):
        (n,) = struct.unpack(">I", payload[pos: pos + 4])
        lists.append(payload[pos + 4: pos + 4 + n].decode().split(",") if n else [])
        pos += 4 + n
    return lists


def test_only_safe_algorithms_offered(server: Server) -> None:
    kex, host_key, enc, _, mac, _, *_ = _server_kexinit(server.port)
    offered = kex + host_key + enc + mac
    assert not [a for a in offered if "sha1" in a or a in ("ssh-rsa", "ssh-dss")]
    assert not [a for a in offered if "cbc" in a or "arcfour" in a or "3des" in a]
    assert not [a for a in mac if "umac-64" in a or "-96" in a or "md5" in a]
    assert not [a for a in kex if "group-exchange" in a or "group1-" in a]
    assert host_key == ["ssh-ed25519"]
    # what is left is the configured set, plus the strict-kex (Terrapin countermeasure) and
    # ext-info markers asyncssh adds
    assert "kex-strict-s-v00@openssh.com" in kex and "ext-info-s" in kex
    assert [a for a in kex if a not in ("kex-strict-s-v00@openssh.com", "ext-info-s")] \
        == list(KEX_ALGS)
    assert enc == list(ENCRYPTION_ALGS) and mac == list(MAC_ALGS)
    assert "ssh-rsa" not in SIGNATURE_ALGS and "rsa-sha2-256" in SIGNATURE_ALGS
    assert "curve25519-sha256" in kex and "chacha20-poly1305@openssh.com" in enc


REFUSED = [
    ("kex_algs", "diffie-hellman-group14-sha1"),
    ("kex_algs", "diffie-hellman-group1-sha1"),
    ("kex_algs", "diffie-hellman-group-exchange-sha1"),
    ("kex_algs", "diffie-hellman-group-exchange-sha256"),
    ("encryption_algs", "aes128-cbc"),
    ("encryption_algs", "aes256-cbc"),
    ("encryption_algs", "3des-cbc"),
    ("encryption_algs", "arcfour256"),
    ("mac_algs", "hmac-sha1"),
    ("mac_algs", "hmac-sha1-etm@openssh.com"),
    ("mac_algs", "umac-64@openssh.com"),
    ("mac_algs", "umac-64-etm@openssh.com"),
    ("mac_algs", "hmac-sha1-96"),
    ("mac_algs", "hmac-sha2-256-96"),
    ("mac_algs", "hmac-md5"),
    ("server_host_key_algs", "ssh-rsa"),
]


@pytest.mark.parametrize(("option", "alg"), REFUSED, ids=[a for _, a in REFUSED])
def test_client_insisting_on_a_refused_algorithm_cannot_connect(
        server: Server, caplog: pytest.LogCaptureFixture, option: str, alg: str) -> None:
    caplog.set_level(logging.INFO, logger="asyncssh")
    kw: dict[str, Any] = {option: [alg]}
    if option == "mac_algs":  # a MAC is only negotiated with a non-AEAD cipher
        kw["encryption_algs"] = ["aes128-ctr"]

    async def scenario() -> None:
        await connect(server, **kw)

    # the client sees its own verdict or, when the server's comes first, the connection lost
    with pytest.raises((asyncssh.KeyExchangeFailed, asyncssh.ConnectionLost)):
        asyncio.run(scenario())
    # the server's side of the negotiation ("sent <ours> and received <theirs>") refused it
    # (for host keys the message names no algorithm: ours is ssh-ed25519 only)
    messages = [r.getMessage() for r in caplog.records]
    assert [m for m in messages
            if ("No matching" in m and f"and received {alg}" in m)
            or (alg == "ssh-rsa" and "compatible server host key" in m)], messages


def test_client_key_signed_with_sha1_refused(server: Server) -> None:
    """A client that signs with its RSA key only as ssh-rsa (SHA-1) cannot log in with it;
    the same key signing with rsa-sha2-256 can."""
    key = asyncssh.generate_private_key("ssh-rsa", key_size=2048)
    users.add_authorized_key(server.state_dir, "carol", key.export_public_key().decode())

    async def scenario(algs: list[str]) -> None:
        async with await connect(server, "carol", None, client_keys=[key],
                                 signature_algs=algs) as conn:
            await netconf(conn)

    with pytest.raises(asyncssh.PermissionDenied):
        asyncio.run(scenario(["ssh-rsa"]))
    asyncio.run(scenario(["rsa-sha2-256"]))


def test_ncclient_defaults_negotiate(server: Server) -> None:
    """paramiko's default preferences (ncclient) find a common set."""
    with manager.connect(host="127.0.0.1", port=server.port, username="admin",
                         password=ADMIN_PW, hostkey_verify=False, allow_agent=False,
                         look_for_keys=False, timeout=10) as m:
        t = m._session._transport
        # RFC 4253 7.1: the first of the client's algorithms that the server also has
        kex = next(k for k in t.preferred_kex if k in KEX_ALGS)
        negotiated = (kex, t.remote_cipher, t.remote_mac, t.host_key_type)
        assert m.get().ok
    print("ncclient/paramiko negotiated", negotiated)
    assert negotiated[1] in ENCRYPTION_ALGS and negotiated[2] in MAC_ALGS
    assert negotiated[3] == "ssh-ed25519"


def test_pty_accepted_and_channel_raw(server: Server) -> None:
    """A PTY request (as from `ssh -tt`) is granted, and bytes pass unchanged both ways: no
    echo, no line editing, no CR/LF translation."""

    async def scenario() -> tuple[bytes, bytes]:
        async with await connect(server) as conn:
            writer, reader, _ = await conn.open_session(
                subsystem="netconf", encoding=None, term_type="xterm", term_size=(80, 24))
            hello = await read_until(reader, EOM)
            # CR LF, a tab and a DEL inside the messages: a line discipline would mangle them
            writer.write(HELLO_10.replace(b"><capabilities>", b">\r\n<capabilities>") + EOM
                         + RPC_GET.replace(b"<get/>", b"<get/>\r\n\t\x7f") + EOM
                         + b'<rpc message-id="43" xmlns="' + NC_NS.encode()
                         + b'"><close-session/></rpc>' + EOM)
            return hello, await read_eof(reader)

    hello, rest = asyncio.run(scenario())
    assert b"?>\n<hello" in hello and b"\r" not in hello  # \n not turned into \r\n
    replies = rest.split(EOM)
    # no echo of what we sent: only the two replies come back
    assert len(replies) == 3 and replies[2] == b"", rest
    assert b'message-id="42"' in replies[0] and b'message-id="43"' in replies[1]
    assert b"<hello" not in rest and b"<get/>" not in rest
