"""One SSH connection of the NETCONF server: admission (unauthenticated limits, login grace
time), authentication (authorized keys, throttled passwords) and its NETCONF channels, each
run as a :class:`~northbound.session.NetconfSession` (policy in :mod:`northbound.frontdoor`)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import asyncssh

from northbound import users
from northbound.frontdoor import SIGNATURE_ALGS, FrontDoor, Slot, run_password_check, source_key
from northbound.quick_ack import quick_ack
from northbound.registry import SessionRegistry
from northbound.session import Handler
from northbound.ssh_channel import ChannelWriter, NetconfChannelSession
from northbound.ssh_coalesce import coalesce

# the front door logs as one: northbound.ssh (as frontdoor.py)
log = logging.getLogger("northbound.ssh")


class NetconfSSHServer(asyncssh.SSHServer):
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
        coalesce(conn)  # one send() per reply, not two (northbound/ssh_coalesce.py)
        quick_ack(conn)  # no 40 ms stalls for Nagle clients (northbound/quick_ack.py)
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
        return chan, NetconfChannelSession(self._run_session, lost)

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
        await session.run(stdin, ChannelWriter(stdout))
