"""NETCONF over SSH (RFC 6242) server built on asyncssh.

Only the ``netconf`` subsystem is accepted; shells, exec requests, other
subsystems, PTYs and forwarding are refused.  Users authenticate with a
password or a public key from :mod:`northbound.users`; unknown users and bad
credentials are refused by SSH, before any NETCONF message is exchanged.
Each accepted channel becomes a :class:`~northbound.session.NetconfSession`
registered in the given :class:`~northbound.session.SessionRegistry`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from pathlib import Path
from typing import Any

import asyncssh
from asyncssh.stream import SSHServerStreamSession

from northbound import users
from northbound.session import Handler, SessionRegistry

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

    def close(self) -> None:
        chan = self._writer.channel
        if isinstance(chan, asyncssh.SSHServerChannel):
            chan.exit(0)
        else:  # pragma: no cover - server channels always are
            chan.close()


class _NetconfChannelSession(SSHServerStreamSession):  # type: ignore[type-arg]
    """Stream session accepting only the netconf subsystem.

    asyncssh has no public hook to refuse shell/exec per channel when a plain
    coroutine is used as session handler, hence this subclass of its stream
    session (``asyncssh.stream`` is stable since 2.0).
    """

    def pty_requested(self, term_type: str, term_size: Any, term_modes: Any) -> bool:
        return False

    def shell_requested(self) -> bool:
        return False

    def exec_requested(self, command: str) -> bool:
        return False

    def subsystem_requested(self, subsystem: str) -> bool:
        return subsystem == SUBSYSTEM


class _NetconfSSHServer(asyncssh.SSHServer):
    """Per-connection authentication and channel policy."""

    def __init__(
        self,
        state_dir: Path,
        handler: Handler,
        capabilities: list[str],
        registry: SessionRegistry,
    ) -> None:
        self._state_dir = state_dir
        self._handler = handler
        self._capabilities = capabilities
        self._registry = registry
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        log.debug("SSH connection from %s", conn.get_extra_info("peername"))

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            log.debug("SSH connection lost: %s", exc)

    def begin_auth(self, username: str) -> bool:
        keys: list[str] = []
        try:
            keys = users.authorized_keys(self._state_dir, username)
        except (OSError, ValueError):
            log.exception("cannot read the user store")
        if keys and self._conn is not None:
            try:
                self._conn.set_authorized_keys(asyncssh.import_authorized_keys("\n".join(keys)))
            except (ValueError, asyncssh.KeyImportError):
                log.warning("ignoring malformed authorized keys of user %r", username)
        return True  # authentication is always required

    def password_auth_supported(self) -> bool:
        return True

    async def validate_password(self, username: str, password: str) -> bool:
        loop = asyncio.get_running_loop()
        try:
            ok = await loop.run_in_executor(
                None, users.verify, self._state_dir, username, password
            )
        except (OSError, ValueError):
            log.exception("cannot read the user store")
            ok = False
        if not ok:
            log.info("password authentication failed for %r", username)
        return ok

    def session_requested(self) -> Any:
        assert self._conn is not None
        chan = self._conn.create_server_channel(encoding=None)
        return chan, _NetconfChannelSession(self._run_session)

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
        session = self._registry.create(
            username,
            groups,
            self._handler,
            self._capabilities,
            source_host=peer[0] if peer else None,
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
) -> asyncssh.SSHAcceptor:
    """Start the NETCONF SSH server; return the asyncssh acceptor.

    ``host`` is bound exactly (``127.0.0.1``: IPv4 loopback only, ``::``: IPv6
    only); ``port`` 0 picks a free port, read it with ``acceptor.get_port()``.
    The host key at ``host_key_path`` is created (ed25519, mode 0600) when
    missing.  Every message of every session goes to
    ``await handler(session, message)``.  Stop with ``acceptor.close()``,
    ``await acceptor.wait_closed()`` and ``await registry.close_all()``.
    """
    key = load_or_create_host_key(host_key_path)
    state = Path(state_dir)
    caps = list(capabilities)

    def factory() -> _NetconfSSHServer:
        return _NetconfSSHServer(state, handler, caps, registry)

    acceptor = await asyncssh.create_server(
        factory,
        host,
        port,
        server_host_keys=[key],
        agent_forwarding=False,
        x11_forwarding=False,
        allow_scp=False,
        reuse_address=True,
    )
    log.info("NETCONF SSH server listening on %s port %d", host, acceptor.get_port())
    return acceptor
