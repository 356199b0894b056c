"""NETCONF over SSH (RFC 6242) server built on asyncssh: the gateway's front door.

Only the ``netconf`` subsystem is accepted; shells, exec requests, other
subsystems and forwarding are refused.  A PTY request is accepted (clients run
``ssh -tt -s netconf``) but the channel stays raw: no echo, no line editing, no
CR/LF translation.  Users authenticate with a password or a public key from
:mod:`northbound.users`; unknown users and bad credentials are refused by SSH,
before any NETCONF message is exchanged.  Each accepted channel becomes a
:class:`~northbound.session.NetconfSession` registered in the given
:class:`~northbound.registry.SessionRegistry`.

Protection (defaults in :class:`Limits`, described in ``docs/security.md``):

- only today's safe SSH algorithms are offered (:data:`KEX_ALGS`,
  :data:`ENCRYPTION_ALGS`, :data:`MAC_ALGS`, :data:`SIGNATURE_ALGS`);
- password checks run in a small thread pool (scrypt, 128 MiB each), never in
  the event loop, and failed ones are throttled per source address and per
  user with a growing delay (:class:`Throttle`);
- unauthenticated connections are limited in number (in all and per source)
  and in time (login grace time); an authenticated connection must open its
  NETCONF channel, and the channel must send ``<hello>``, in time; a user has
  a bounded number of sessions;
- a client that stops answering (keepalives) or stops reading its replies is
  dropped, so it holds neither a session nor memory for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
from asyncssh.stream import SSHServerStreamSession

from northbound import users
from northbound.frontdoor import (
    ENCRYPTION_ALGS,
    KEX_ALGS,
    MAC_ALGS,
    SIGNATURE_ALGS,
    FrontDoor,
    Limits,
    Slot,
    doors,
    run_password_check,
    source_key,
)
from northbound.registry import SessionRegistry
from northbound.session import Handler

log = logging.getLogger(__name__)

SUBSYSTEM = "netconf"
HOST_KEY_ALG = "ssh-ed25519"


def load_or_create_host_key(host_key_path: Path | str) -> asyncssh.SSHKey:
    """Load the server host key, generating an ed25519 key (mode 0600) if absent."""
    path = Path(host_key_path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = asyncssh.generate_private_key(HOST_KEY_ALG)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key.export_private_key())
                f.flush()
                os.fsync(f.fileno())
            os.link(tmp, path)  # fails if another process created it meanwhile
        except FileExistsError:
            pass
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        log.info("generated SSH host key %s", path)
    return asyncssh.read_private_key(path)


class _ChannelWriter:
    """Byte writer over an asyncssh server channel; close() sends exit-status 0."""

    def __init__(self, writer: asyncssh.SSHWriter[bytes]) -> None:
        self._writer = writer

    def write(self, data: bytes) -> None:
        self._writer.write(data)

    async def drain(self) -> None:
        await self._writer.drain()

    def buffered(self) -> int:
        """Bytes written but not yet taken by the client."""
        return int(self._writer.channel.get_write_buffer_size())

    def close(self) -> None:
        chan = self._writer.channel
        if isinstance(chan, asyncssh.SSHServerChannel):
            chan.exit(0)
        else:  # pragma: no cover - server channels always are
            chan.close()

    def abort(self) -> None:
        """Close the channel at once, dropping what the client did not read."""
        self._writer.channel.abort()


class _NetconfChannelSession(SSHServerStreamSession):  # type: ignore[type-arg]
    """Stream session accepting only the netconf subsystem (and a PTY, kept raw).

    asyncssh has no public hook to refuse shell/exec per channel when a plain
    coroutine is used as session handler, hence this subclass of its stream
    session (``asyncssh.stream`` is stable since 2.0).
    """

    def __init__(self, handler: Any, on_lost: Callable[[], None]) -> None:
        super().__init__(handler)
        self._on_lost = on_lost

    def pty_requested(self, term_type: str, term_size: Any, term_modes: Any) -> bool:
        # OpenSSH run as `ssh -tt -s netconf` treats a refused PTY as fatal.  No terminal is
        # allocated and the server is created with line_editor=False: bytes pass unchanged.
        return True

    def shell_requested(self) -> bool:
        return False

    def exec_requested(self, command: str) -> bool:
        return False

    def subsystem_requested(self, subsystem: str) -> bool:
        return subsystem == SUBSYSTEM

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            super().connection_lost(exc)
        finally:
            self._on_lost()


class _NetconfSSHServer(asyncssh.SSHServer):
    """Per-connection authentication, limits and channel policy."""

    def __init__(
        self,
        state_dir: Path,
        handler: Handler,
        capabilities: list[str],
        registry: SessionRegistry,
        door: FrontDoor,
    ) -> None:
        self._state_dir = state_dir
        self._handler = handler
        self._capabilities = capabilities
        self._registry = registry
        self._door = door
        self._conn: asyncssh.SSHServerConnection | None = None
        self._peer = "?"
        self._source = "?"
        self._startup: Slot | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._channels: set[Slot] = set()
        self._auth_failures = 0
        self._closing = False
        self._keys: set[bytes] = set()  # public key blobs the user may log in with

    # -- connection life ------------------------------------------------------

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        peer = conn.get_extra_info("peername")
        self._peer = f"{peer[0]} port {peer[1]}" if peer else "?"
        self._source = source_key(peer[0] if peer else None)
        lim, counts = self._door.limits, self._door.unauthenticated
        if counts.get("*", 0) >= lim.max_unauthenticated:
            self._refuse(asyncssh.DISC_TOO_MANY_CONNECTIONS,
                         f"too many unauthenticated connections (limit "
                         f"{lim.max_unauthenticated}); try again later")
            return
        if counts.get(self._source, 0) >= lim.max_unauthenticated_per_source:
            self._refuse(asyncssh.DISC_TOO_MANY_CONNECTIONS,
                         f"too many unauthenticated connections from {self._source} (limit "
                         f"{lim.max_unauthenticated_per_source}); try again later")
            return
        self._startup = Slot(counts, "*", self._source)
        log.debug("SSH connection from %s", self._peer)  # "session N opened" says it once
        self._arm(lim.login_grace_time, asyncssh.DISC_NO_MORE_AUTH_METHODS_AVAILABLE,
                  f"not authenticated within the login grace time of "
                  f"{lim.login_grace_time:g} s")

    def _refuse(self, code: int, reason: str) -> None:
        """Close a connection just accepted, telling the client why (after our version)."""
        log.warning("SSH connection from %s refused: %s", self._peer, reason)
        self._closing = True
        conn = self._conn
        assert conn is not None
        asyncio.get_running_loop().call_soon(conn.disconnect, code, reason)

    def _arm(self, seconds: float, code: int, reason: str) -> None:
        self._disarm()
        self._timer = asyncio.get_running_loop().call_later(
            seconds, self._expire, code, reason)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self, code: int, reason: str) -> None:
        self._timer = None
        if self._conn is None or self._closing:
            return
        user = self._conn.get_extra_info("username")
        log.warning("SSH connection from %s%s closed: %s", self._peer,
                    f" (user {user!r})" if user else "", reason)
        self._closing = True
        self._conn.disconnect(code, reason)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._disarm()
        if self._startup is not None:
            self._startup.release()
            self._startup = None
        for slot in list(self._channels):
            slot.release()
        self._channels.clear()
        if exc is not None and "not responding to keepalive" in str(exc):
            lim = self._door.limits
            log.warning("SSH connection from %s closed: the client answered none of %d "
                        "keepalives (%g s apart)", self._peer, lim.keepalive_count_max,
                        lim.keepalive_interval)
        elif exc is not None:
            log.debug("SSH connection from %s lost: %s", self._peer, exc)

    # -- authentication -------------------------------------------------------

    def begin_auth(self, username: str) -> bool:
        lines: list[str] = []
        try:
            lines = users.authorized_keys(self._state_dir, username)
        except (OSError, ValueError):
            log.exception("cannot read the user store")
        self._keys = set()
        for line in lines:
            try:
                self._keys.add(asyncssh.import_public_key(line).public_data)
            except (ValueError, asyncssh.KeyImportError):
                log.warning("ignoring a malformed authorized key of user %r", username)
        return True  # authentication is always required

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        """Accept the user's authorized keys, signing only with :data:`SIGNATURE_ALGS`.

        asyncssh checks a client's signature against every algorithm of the key
        type (ssh-rsa, SHA-1, included) whatever ``signature_algs`` says; the key
        object given here is the one that verifies the signature, so its
        algorithms are narrowed to the safe ones.
        """
        if key.public_data not in self._keys:
            return False
        allowed = {a for a in key.all_sig_algorithms if a.decode("ascii") in SIGNATURE_ALGS}
        key.all_sig_algorithms = allowed
        return bool(allowed)

    def password_auth_supported(self) -> bool:
        return True

    async def validate_password(self, username: str, password: str) -> bool:
        door = self._door

        async def check() -> bool:
            try:
                return await run_password_check(
                    users.authenticate, self._state_dir, username, password)
            except (OSError, ValueError):
                log.exception("cannot read the user store")
                return False

        # user names are at most 255 characters (users.py): longer ones cannot exist, and
        # the throttle's table is not filled with megabytes of them
        ok, src, usr = await door.throttle.attempt(self._source, username[:256], check)
        if ok:
            return True
        self._auth_failures += 1
        lim = door.limits
        log.warning(
            "password authentication failed for %r from %s: %d failures in a row from "
            "%s, %d for this user; the next try from there for this user waits %.2f s",
            username[:64], self._peer, src, self._source, usr,
            max(door.throttle.delay(src, lim.max_source_delay),
                door.throttle.delay(usr, lim.max_user_delay)))
        if self._auth_failures >= lim.max_auth_tries and self._conn is not None:
            self._closing = True
            reason = f"too many authentication failures ({lim.max_auth_tries})"
            log.warning("SSH connection from %s closed: %s", self._peer, reason)
            asyncio.get_running_loop().call_soon(
                self._conn.disconnect, asyncssh.DISC_NO_MORE_AUTH_METHODS_AVAILABLE, reason)
        return False

    def auth_completed(self) -> None:
        if self._conn is not None:  # a key login also proves who the user is
            user = self._conn.get_extra_info("username") or ""
            self._door.throttle.succeeded(self._source, user[:256])
        if self._startup is not None:
            self._startup.release()
            self._startup = None
        self._await_channel()

    def _await_channel(self) -> None:
        t = self._door.limits.hello_timeout
        self._arm(t, asyncssh.DISC_BY_APPLICATION,
                  f"no NETCONF session opened within {t:g} s")

    # -- channels -------------------------------------------------------------

    def session_requested(self) -> Any:
        assert self._conn is not None
        user = self._conn.get_extra_info("username") or ""
        limit = self._door.limits.max_sessions_per_user
        if self._door.sessions.get(user, 0) >= limit:
            reason = f"too many NETCONF sessions for user {user!r} (limit {limit})"
            log.warning("SSH channel from %s refused: %s", self._peer, reason)
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, reason)
        slot = Slot(self._door.sessions, user)
        self._channels.add(slot)
        self._disarm()

        def lost() -> None:
            slot.release()
            self._channels.discard(slot)
            if not self._channels and not self._closing:
                self._await_channel()

        chan = self._conn.create_server_channel(encoding=None)
        return chan, _NetconfChannelSession(self._run_session, lost)

    async def _run_session(
        self,
        stdin: asyncssh.SSHReader[bytes],
        stdout: asyncssh.SSHWriter[bytes],
        stderr: asyncssh.SSHWriter[bytes],
    ) -> None:
        assert self._conn is not None
        username = self._conn.get_extra_info("username") or ""
        peer = self._conn.get_extra_info("peername")
        try:
            groups = users.groups_of(self._state_dir, username)
        except (OSError, ValueError):
            log.exception("cannot read the user store")
            groups = []
        lim = self._door.limits
        session = self._registry.create(
            username,
            groups,
            self._handler,
            self._capabilities,
            source_host=peer[0] if peer else None,
            hello_timeout=lim.hello_timeout,
            send_timeout=lim.send_timeout,
        )
        log.info("session %d opened for %r from %s", session.session_id, username,
                 f"{peer[0]} port {peer[1]}" if peer else "?")
        await session.run(stdin, _ChannelWriter(stdout))


async def start_server(
    host: str,
    port: int,
    host_key_path: Path,
    state_dir: Path,
    handler: Handler,
    capabilities: list[str],
    registry: SessionRegistry,
    limits: Limits | None = None,
) -> asyncssh.SSHAcceptor:
    """Start the NETCONF SSH server; return the asyncssh acceptor.

    ``host`` is bound exactly (``127.0.0.1``: IPv4 loopback only, ``::``: IPv6
    only); ``port`` 0 picks a free port, read it with ``acceptor.get_port()``.
    The host key at ``host_key_path`` is created (ed25519, mode 0600) when
    missing.  Every message of every session goes to
    ``await handler(session, message)``.  ``limits`` (default :class:`Limits`
    ()) bounds unauthenticated connections, login and hello time, sessions per
    user and password guessing; servers started with the same ``registry``
    (one per listening address) share these counters.  Stop with ``acceptor.close()``,
    ``await acceptor.wait_closed()`` and ``await registry.close_all()``.
    """
    key = load_or_create_host_key(host_key_path)
    state = Path(state_dir)
    caps = list(capabilities)
    door = doors.get(registry)
    if door is None or (limits is not None and limits != door.limits):
        door = doors[registry] = FrontDoor(limits)

    def factory() -> _NetconfSSHServer:
        return _NetconfSSHServer(state, handler, caps, registry, door)

    acceptor = await asyncssh.create_server(
        factory,
        host,
        port,
        server_host_keys=[key],
        kex_algs=list(KEX_ALGS),
        encryption_algs=list(ENCRYPTION_ALGS),
        mac_algs=list(MAC_ALGS),
        signature_algs=list(SIGNATURE_ALGS),
        # our own timer closes first, with a reason; asyncssh's is a backstop
        login_timeout=door.limits.login_grace_time + 5,
        keepalive_interval=door.limits.keepalive_interval,
        keepalive_count_max=door.limits.keepalive_count_max,
        line_editor=False,
        agent_forwarding=False,
        x11_forwarding=False,
        allow_scp=False,
        reuse_address=True,
    )
    log.info("NETCONF SSH server listening on %s port %d", host, acceptor.get_port())
    return acceptor
