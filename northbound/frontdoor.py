"""The policy of the SSH front door (docs/security.md): the algorithms offered, the limits,
and the throttling of failed passwords, shared by every address a gateway listens on.
northbound/ssh.py applies it to connections."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import asyncssh

from northbound.registry import SessionRegistry
from northbound.session import HELLO_TIMEOUT, SEND_TIMEOUT

log = logging.getLogger("northbound.ssh")

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


class Slot:
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


doors: weakref.WeakKeyDictionary[SessionRegistry, FrontDoor] = weakref.WeakKeyDictionary()
"""The front door of each registry: every address a gateway listens on shares it."""


def front_door(registry: SessionRegistry) -> FrontDoor | None:
    """The limits, counters and throttle of the servers started with ``registry``."""
    return doors.get(registry)
