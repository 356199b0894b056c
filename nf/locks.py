"""Datastore locks (RFC 6241 section 7.5), held by session-id."""

from __future__ import annotations

import time
from collections.abc import Callable

from nf.errors import InUse, LockDenied, OperationFailed


class Locks:
    """The lock table of the datastores; mixed into nf.datastore.Datastores, which provides
    ``tree(name)`` and ``discard_changes(sid)``."""

    locks: dict[str, int]
    # raises lock-denied while another session's confirmed commit is pending (nf.confirmed)
    lock_guard: Callable[[int], None] | None = None
    lock_times: dict[str, str]
    candidate_owner: int | None

    def lock(self, name: str, sid: int) -> None:
        """Lock a datastore for a session (RFC 6241 7.5)."""
        self.tree(name)
        holder = self.locks.get(name)
        if holder is not None:
            raise LockDenied(f"{name} is locked by session {holder}",
                             **{"session-id": str(holder)})
        if name == "candidate" and self.candidate_dirty:
            # RFC 6241 7.5: not while the candidate holds uncommitted changes, whoever made them
            owner = self.candidate_owner or 0
            raise LockDenied("the candidate has uncommitted changes (commit or discard them)",
                             **{"session-id": str(owner)})
        if name == "running" and self.lock_guard is not None:
            self.lock_guard(sid)
        self.locks[name] = sid
        self.lock_times[name] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def unlock(self, name: str, sid: int) -> None:
        """Release a lock held by ``sid``."""
        self.tree(name)
        if self.locks.get(name) != sid:
            raise OperationFailed(f"{name} is not locked by this session", type="protocol")
        del self.locks[name]
        if name == "candidate" and self.candidate_owner == sid:
            self.discard_changes(sid)

    def check_writable(self, name: str, sid: int) -> None:
        """Raise in-use when another session holds the lock of ``name``."""
        holder = self.locks.get(name)
        if holder is not None and holder != sid:
            raise InUse(f"{name} is locked by session {holder}",
                        type="protocol", **{"session-id": str(holder)})

    def release_session(self, sid: int) -> None:
        """A session ended: drop its locks, and its candidate changes if it held the lock."""
        for name in [n for n, s in self.locks.items() if s == sid]:
            del self.locks[name]
            if name == "candidate":
                self.discard_changes(sid)
