"""Who a gNMI call comes from: the ``username``/``password`` metadata checked against the
user store NETCONF uses (northbound/users.py), with the same throttling of failures.

A password is an scrypt hash of 128 MiB and about half a second: checking it on every
call would make each Get cost that. A success is remembered as an HMAC of the password under
a key drawn at start (never the password itself): while the caller keeps calling with it at
least every ``IDLE`` seconds, for at most ``LIFETIME`` seconds after the hash was checked
(a poller pays one hash an hour, not one a minute), and it is forgotten at once when the
user store changes (a new password, a removed user, a change of groups).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from northbound import users
from northbound.frontdoor import Limits, Throttle, run_password_check, source_key

log = logging.getLogger(__name__)
IDLE = 300.0  # seconds a remembered success survives without a call using it
LIFETIME = 3600.0  # seconds after the hash was checked, however often it is used
MAX_REMEMBERED = 1000


@dataclass
class _Remembered:
    """A checked password: until when it is used, and the caller's groups then."""

    idle_until: float
    ends: float
    groups: list[str]


class Unauthenticated(Exception):
    """No or wrong credentials (gNMI's UNAUTHENTICATED)."""


@dataclass
class GnmiSession:
    """The session-like view of one gNMI caller that NACM, the commit history and the
    config-change notifications read (``user``, ``groups``, ``session_id``,
    ``source_host``, ``data``)."""

    user: str
    groups: list[str]
    source_host: str | None
    session_id: int = 0
    data: dict[str, Any] = field(default_factory=dict)


def peer_host(peer: str) -> str | None:
    """The address of a gRPC peer string (``ipv4:127.0.0.1:5000``, ``ipv6:[::1]:5000``)."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    return None


class Authenticator:
    """Checks the credentials of a call (in the password threads, never the event loop)."""

    def __init__(self, state_dir: Path, limits: Limits | None = None) -> None:
        self.state_dir = state_dir
        self.throttle = Throttle(limits or Limits())
        self._key = os.urandom(32)
        self._known: dict[tuple[str, bytes], _Remembered] = {}
        self._store_stamp: tuple[int, int, int] | None = None

    def _stamp(self) -> tuple[int, int, int] | None:
        """The user store's identity: it is replaced (a new inode) at every change."""
        try:
            st = users.users_path(self.state_dir).stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    async def check(self, metadata: dict[str, str], peer: str) -> GnmiSession:
        """The caller's session, or Unauthenticated."""
        user, password = metadata.get("username", ""), metadata.get("password", "")
        if not user or not password:
            raise Unauthenticated("username and password metadata are required")
        host = peer_host(peer)
        stamp = self._stamp()
        if stamp != self._store_stamp:
            self._known.clear()
            self._store_stamp = stamp
        mac = hmac.new(self._key, password.encode(), hashlib.sha256).digest()
        now = time.monotonic()
        known = self._known.get((user, mac))
        if known is not None and known.idle_until > now and known.ends > now:
            known.idle_until = min(now + IDLE, known.ends)
            return GnmiSession(user, list(known.groups), host)

        async def verify() -> bool:
            try:
                return await run_password_check(users.authenticate, self.state_dir, user,
                                                password)
            except (OSError, ValueError):
                log.exception("cannot read the user store")
                return False

        ok, src, usr = await self.throttle.attempt(source_key(host), user[:256], verify)
        if not ok:
            log.warning("gNMI: password authentication failed for %r from %s (%d failures "
                        "in a row from there, %d for this user)", user[:64], host, src, usr)
            raise Unauthenticated("authentication failed")
        groups = users.groups_of(self.state_dir, user)
        if len(self._known) >= MAX_REMEMBERED:
            self._known = {k: r for k, r in self._known.items()
                           if r.idle_until > now and r.ends > now}
        if len(self._known) < MAX_REMEMBERED:
            self._known[(user, mac)] = _Remembered(min(now + IDLE, now + LIFETIME),
                                                   now + LIFETIME, list(groups))
        return GnmiSession(user, groups, host)

