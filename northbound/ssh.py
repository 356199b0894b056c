"""NETCONF over SSH (RFC 6242) server built on asyncssh: the gateway's front door.

Only the ``netconf`` subsystem is accepted; shells, exec requests, other
subsystems and forwarding are refused.  A PTY request is accepted (clients run
``ssh -tt -s netconf``) but the channel stays raw: no echo, no line editing, no
CR/LF translation.  Users authenticate with a password or a public key from
:mod:`northbound.users`; unknown users and bad credentials are refused by SSH,
before any NETCONF message is exchanged.  Each accepted channel becomes a
:class:`~northbound.session.NetconfSession` registered in the given
:class:`~northbound.session.SessionRegistry`.

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
import ipaddress
import logging
import os
import secrets
import time
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
from asyncssh.stream import SSHServerStreamSession

from northbound import users
from northbound.session import HELLO_TIMEOUT, SEND_TIMEOUT, Handler, SessionRegistry

log = logging.getLogger(__name__)

SUBSYSTEM = "netconf"
HOST_KEY_ALG = "ssh-ed25519"


def _available(wanted: tuple[str, ...], supported: list[bytes]) -> tuple[str, ...]:
    """Keep the wanted algorithms this asyncssh/cryptography build supports, in order."""
    have = {a.decode("ascii") for a in supported}
    return tuple(a for a in wanted if a in have)


# Key exchange: hybrid post-quantum ML-KEM first (when the build has it), then X25519/X448,
# NIST ECDH and the fixed 2048+ bit groups with SHA-2.  Not offered: anything with SHA-1
# (group1/group14-sha1, gex-sha1), diffie-hellman-group-exchange-* (asyncssh hands a client
# that asks for it a 1024-bit group), RSA key exchange, GSS and the @ssh.com variants.
KEX_ALGS = _available((
    "mlkem768x25519-sha256", "mlkem768nistp256-sha256", "mlkem1024nistp384-sha384",
    "curve25519-sha256", "curve25519-sha256@libssh.org", "curve448-sha512",
    "ecdh-sha2-nistp521", "ecdh-sha2-nistp384", "ecdh-sha2-nistp256",
    "diffie-hellman-group18-sha512", "diffie-hellman-group16-sha512",
    "diffie-hellman-group14-sha256",
), asyncssh.kex.get_kex_algs())
# Ciphers: AEAD (ChaCha20-Poly1305, AES-GCM) and AES-CTR; no CBC, 3DES, Blowfish, RC4.
ENCRYPTION_ALGS = _available((
    "chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-gcm@openssh.com",
    "aes256-ctr", "aes192-ctr", "aes128-ctr",
), asyncssh.encryption.get_encryption_algs())
# MACs (used with AES-CTR): SHA-2 HMACs and UMAC-128, encrypt-then-MAC first; no SHA-1, no
# MD5, no 64- or 96-bit tags (umac-64, *-96).
MAC_ALGS = _available((
    "hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com",
    "umac-128-etm@openssh.com", "hmac-sha2-256", "hmac-sha2-512", "umac-128@openssh.com",
), asyncssh.mac.get_mac_algs())
# Signatures (host key and client public keys): Ed25519/Ed448, ECDSA, RSA with SHA-2 and
# FIDO keys; no ssh-rsa (SHA-1), no DSA.
SIGNATURE_ALGS = _available((
    "ssh-ed25519", "ssh-ed448", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256", "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
), asyncssh.public_key.get_public_key_algs())


@dataclass(frozen=True)
class Limits:
    """Limits of the front door; the defaults are those documented in docs/security.md."""

    max_unauthenticated: int = 64
    """Connections not yet authenticated, in all; more are closed at once."""
    max_unauthenticated_per_source: int = 10
    """Connections not yet authenticated from one address (IPv6: one /64)."""
    login_grace_time: float = 30.0
    """Seconds from TCP accept to successful authentication."""
    hello_timeout: float = HELLO_TIMEOUT
    """Seconds for an authenticated connection to open its NETCONF channel, and for the
    channel to send its ``<hello>``."""
    send_timeout: float = SEND_TIMEOUT
    """Seconds a session may wait for a client that reads nothing before it is dropped."""
    max_sessions_per_user: int = 32
    """NETCONF channels one user may have open at once (over all connections)."""
    keepalive_interval: float = 60.0
    """Seconds without traffic from an authenticated client before the server checks that
    it is still there (an SSH keepalive request)..."""
    keepalive_count_max: int = 3
    """...and how many unanswered checks end the connection (its sessions with it)."""
    max_auth_tries: int = 6
    """Failed passwords on one connection before it is closed."""
    failure_delay: float = 0.1
    """Delay before the attempt that follows a failed password; it grows by
    ``failure_growth`` with every further failure in a row."""
    failure_growth: float = 1.5
    max_source_delay: float = 30.0
    """Longest delay for one source address."""
    max_user_delay: float = 10.0
    """Longest delay for one user (lower: an attacker can impose it on the real user)."""
    forget_after: float = 900.0
    """Seconds without a failure after which a source's or user's failures are forgotten."""


HASH_THREADS = 2
"""Password checks computed at once in a process (each scrypt hash takes 128 MiB)."""
_hash_executor: ThreadPoolExecutor | None = None


async def run_password_check(fn: Callable[..., bool], *args: Any) -> bool:
    """Run a blocking password check in the hashing threads, never in the event loop.

    A pool of its own: a burst of logins neither takes the threads other work of
    the server uses (``asyncio.to_thread``) nor more than HASH_THREADS * 128 MiB.
    """
    global _hash_executor
    if _hash_executor is None:
        _hash_executor = ThreadPoolExecutor(HASH_THREADS, thread_name_prefix="password-check")
    return await asyncio.get_running_loop().run_in_executor(_hash_executor, fn, *args)


def source_key(address: str | None) -> str:
    """The throttling key of a peer address: the IPv4 address, or the IPv6 /64."""
    if not address:
        return "?"
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass
class _Failures:
    """Failed password attempts in a row of one source or one user."""

    count: int = 0
    last: float = 0.0
    not_before: float = 0.0
    active: int = 0  # attempts holding or waiting for the lock: not forgotten meanwhile
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    by_user: dict[str, int] = field(default_factory=dict)


class Throttle:
    """Growing delays after failed passwords, per source address and per user.

    Password attempts from one source are checked one at a time, as are those
    for one user; an attempt after ``k`` failures in a row waits
    ``failure_delay * failure_growth ** (k - 1)`` seconds (at most
    ``max_source_delay`` / ``max_user_delay``) after the last failure.  An
    attempt is counted as failed before its hash is computed, so a client that
    hangs up meanwhile gains nothing.  A success clears the user's failures and
    those its source made for that user (not those for other users: an attacker
    with an account cannot wipe its record by logging in).
    """

    MAX_ENTRIES = 10_000

    def __init__(self, limits: Limits) -> None:
        """Create an empty throttle with the delays of ``limits``."""
        self.limits = limits
        self._sources: dict[str, _Failures] = {}
        self._users: dict[str, _Failures] = {}
        self._last_prune = 0.0

    def delay(self, failures: int, cap: float) -> float:
        """Seconds to wait after ``failures`` failures in a row."""
        if failures <= 0:
            return 0.0
        lim = self.limits
        return min(cap, lim.failure_delay * lim.failure_growth ** min(failures - 1, 64))

    def failures(self, source: str, user: str) -> tuple[int, int]:
        """Failures in a row of a source key and of a user (for logs and tests)."""
        s, u = self._sources.get(source), self._users.get(user)
        return (s.count if s else 0, u.count if u else 0)

    async def attempt(self, source: str, user: str,
                      check: Callable[[], Awaitable[bool]]) -> tuple[bool, int, int]:
        """Wait for the source's and the user's turn, then ``await check()``.

        Return its result and the failures in a row of the source and of the
        user after it.
        """
        now = time.monotonic()
        self._prune(now)
        src = self._sources.setdefault(source, _Failures())
        usr = self._users.setdefault(user, _Failures())
        src.active += 1
        usr.active += 1
        try:
            async with src.lock:
                await self._wait(src)
                async with usr.lock:
                    await self._wait(usr)
                    self._failed(src, user, self.limits.max_source_delay)
                    self._failed(usr, None, self.limits.max_user_delay)
                    ok = await check()
                    if ok:
                        self.succeeded(source, user)
                    else:  # the delays run from the answer, not from the start of the hash
                        end = time.monotonic()
                        src.not_before = end + self.delay(src.count, self.limits.max_source_delay)
                        usr.not_before = end + self.delay(usr.count, self.limits.max_user_delay)
                    return ok, src.count, usr.count
        finally:
            src.active -= 1
            usr.active -= 1

    def succeeded(self, source: str, user: str) -> None:
        """``user`` logged in from ``source``: forget its failures (password or key login)."""
        src, usr = self._sources.get(source), self._users.get(user)
        if src is not None:
            src.count -= src.by_user.pop(user, 0)
            if src.count <= 0:
                src.count, src.not_before = 0, 0.0
        if usr is not None:
            usr.count, usr.not_before = 0, 0.0

    @staticmethod
    async def _wait(f: _Failures) -> None:
        pause = f.not_before - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)

    def _failed(self, f: _Failures, user: str | None, cap: float) -> None:
        now = time.monotonic()
        f.count += 1
        f.last = now
        f.not_before = now + self.delay(f.count, cap)
        if user is not None and (user in f.by_user or len(f.by_user) < 100):
            f.by_user[user] = f.by_user.get(user, 0) + 1

    def _prune(self, now: float) -> None:
        """Forget old failures; keep at most MAX_ENTRIES sources and users."""
        for table in (self._sources, self._users):
            if len(table) <= self.MAX_ENTRIES and now - self._last_prune < 60:
                continue
            for key in [k for k, f in table.items()
                        if f.active == 0 and now - f.last > self.limits.forget_after]:
                del table[key]
            idle = [k for k, f in table.items() if f.active == 0]
            for key in idle[: max(0, len(table) - self.MAX_ENTRIES)]:
                del table[key]  # the oldest first (dicts keep insertion order)
        if now - self._last_prune >= 60:
            self._last_prune = now


class _Slot:
    """One counted unit (an unauthenticated connection, a session); released once."""

    def __init__(self, counts: dict[str, int], *keys: str) -> None:
        self._counts = counts
        self._keys = keys
        for k in keys:
            counts[k] = counts.get(k, 0) + 1

    def release(self) -> None:
        for k in self._keys:
            n = self._counts.get(k, 0) - 1
            if n > 0:
                self._counts[k] = n
            else:
                self._counts.pop(k, None)
        self._keys = ()


class FrontDoor:
    """What the connections of one server share: limits, counters and the throttle."""

    def __init__(self, limits: Limits | None = None) -> None:
        """Create the shared state; ``limits`` defaults to :class:`Limits` ()."""
        self.limits = limits or Limits()
        self.throttle = Throttle(self.limits)
        self.unauthenticated: dict[str, int] = {}  # "*" = in all, else per source key
        self.sessions: dict[str, int] = {}  # per user


_doors: weakref.WeakKeyDictionary[SessionRegistry, FrontDoor] = weakref.WeakKeyDictionary()
"""The front door of each registry: every address a gateway listens on shares it."""


def front_door(registry: SessionRegistry) -> FrontDoor | None:
    """The limits, counters and throttle of the servers started with ``registry``."""
    return _doors.get(registry)


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
        self._startup: _Slot | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._channels: set[_Slot] = set()
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
        self._startup = _Slot(counts, "*", self._source)
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
        slot = _Slot(self._door.sessions, user)
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
    door = _doors.get(registry)
    if door is None or (limits is not None and limits != door.limits):
        door = _doors[registry] = FrontDoor(limits)

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
