"""Apply status of every reconciled entry: is the intent in force, on its way, or refused?

Each entry (kind, name) is ``pending`` from the moment a commit changes it until the backend
has it, then ``applied``, or ``failed`` with the daemon's own message when the backend refuses
it. A failed entry is retried with a bounded exponential backoff (:data:`RETRY_BASE` doubling
up to :data:`RETRY_MAX` seconds, for as long as it stays failed); a commit that changes the
entry makes it ``pending`` again at once and resets its backoff. Entries being removed are
``pending`` until the backend has dropped them, then they leave the table.

Observers (:meth:`ApplyStatus.observe`) hear about transitions into and out of ``failed``
only, so a bulk load of 10,000 entries does not raise 10,000 notifications; each failure is
logged once, not on every retry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

log = logging.getLogger(__name__)

Status = Literal["applied", "pending", "failed"]
# what observers may also hear: an entry that had failed left the table
Announced = Literal["applied", "pending", "failed", "removed"]
RETRY_BASE = 2.0  # seconds before the first retry of a failed entry
RETRY_MAX = 120.0  # the backoff never waits longer than this


def utc_now() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.now(UTC)


def retry_delay(attempts: int) -> float:
    """Seconds to wait before retrying an entry that failed ``attempts`` times in a row."""
    return min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_MAX)


@dataclass(frozen=True)
class EntryStatus:
    """The apply status of one entry."""

    kind: str
    name: str
    status: Announced  # "removed" only in what observers hear
    since: datetime  # when the status last changed
    message: str | None = None  # the daemon's reason, on failure (secrets masked)
    attempts: int = 0  # failed attempts in a row
    next_retry: float | None = field(default=None, compare=False)  # time.monotonic() deadline
    removing: bool = False  # pending removal rather than pending load
    generation: int = 0  # the change (see ApplyStatus.generation) that last made it pending
    after_failure: bool = False  # pending again after a failure (recovery is then announced)


Observer = Callable[[EntryStatus, EntryStatus | None], None]


class ApplyStatus:
    """The table of entry statuses, with counts kept up to date."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], EntryStatus] = {}
        self._observers: list[Observer] = []
        self._watchers: list[Callable[[EntryStatus], None]] = []
        self.generation = 0  # bumped by every batch of changes (a commit)
        self.changes = 0  # bumped by every change of the table
        self._sorted: tuple[int, list[EntryStatus]] | None = None
        self.counts: dict[Status, int] = {"applied": 0, "pending": 0, "failed": 0}

    def __repr__(self) -> str:
        return f"ApplyStatus({self.counts})"

    def __len__(self) -> int:
        return len(self._entries)

    def observe(self, observer: Observer) -> None:
        """Call ``observer(new, old)`` when an entry fails, fails differently, or recovers."""
        self._observers.append(observer)

    def watch(self, watcher: Callable[[EntryStatus], None]) -> None:
        """Call ``watcher(new)`` on every change of an entry (any status; a removed entry
        as status ``removed``), e.g. to keep a cached state tree up to date."""
        self._watchers.append(watcher)

    def get(self, kind: str, name: str) -> EntryStatus | None:
        """The status of one entry, or None if it is not (or no longer) reconciled."""
        return self._entries.get((kind, name))

    def entries(self) -> list[EntryStatus]:
        """Every entry, sorted by kind and name (one list while the table is unchanged:
        do not modify it)."""
        if self._sorted is None or self._sorted[0] != self.changes:
            self._sorted = (self.changes, [self._entries[k] for k in sorted(self._entries)])
        return self._sorted[1]

    def failed(self) -> list[EntryStatus]:
        """Failed entries."""
        return [e for e in self._entries.values() if e.status == "failed"]

    def due_retries(self, now: float) -> list[EntryStatus]:
        """Failed entries whose retry time has come."""
        return [e for e in self._entries.values()
                if e.status == "failed" and e.next_retry is not None and e.next_retry <= now]

    def next_retry_at(self) -> float | None:
        """The earliest retry deadline (time.monotonic()), if any entry failed."""
        times = [e.next_retry for e in self._entries.values()
                 if e.status == "failed" and e.next_retry is not None]
        return min(times) if times else None

    def new_generation(self) -> int:
        """Start a new change generation (one per commit); returns it."""
        self.generation += 1
        return self.generation

    # -- transitions -----------------------------------------------------------------------

    def pending(self, kind: str, name: str, removing: bool = False) -> None:
        """The entry changed (or is being removed): it waits for the backend."""
        old = self._entries.get((kind, name))
        failing = old is not None and (old.status == "failed" or old.after_failure)
        self._set(EntryStatus(kind, name, "pending", utc_now(), removing=removing,
                              generation=self.generation, after_failure=failing), old)

    def applied(self, kind: str, name: str) -> None:
        """The backend holds the entry as desired."""
        old = self._entries.get((kind, name))
        if old is not None and old.status == "applied":
            return
        self._set(EntryStatus(kind, name, "applied", utc_now(),
                              generation=old.generation if old else self.generation), old)

    def removed(self, kind: str, name: str) -> None:
        """The backend dropped the entry, as desired: it leaves the table (and a failure it
        had is announced as cleared, status ``removed``)."""
        old = self._entries.pop((kind, name), None)
        if old is not None:
            self.counts[old.status] -= 1
            self._changed(replace(old, status="removed", message=None, since=utc_now()))
            if old.status == "failed" or old.after_failure:
                log.info("%s %r removed (it had failed before)", kind, name)
                self._notify(replace(old, status="removed", message=None, since=utc_now()),
                             old)

    def failed_with(self, kind: str, name: str, message: str,
                    retry: bool = True) -> EntryStatus:
        """The backend refused the entry with ``message``; schedule a retry (unless
        ``retry`` is False: only a change of the entry will try it again)."""
        old = self._entries.get((kind, name))
        attempts = (old.attempts if old is not None and old.status == "failed" else 0) + 1
        since = old.since if old is not None and old.status == "failed" else utc_now()
        new = EntryStatus(kind, name, "failed", since, message, attempts,
                          time.monotonic() + retry_delay(attempts) if retry else None,
                          removing=bool(old and old.removing),
                          generation=old.generation if old else self.generation)
        self._set(new, old)
        return new

    def forget(self, kind: str, names: Iterable[str]) -> None:
        """Drop entries without notifying (e.g. the whole kind is no longer reconciled)."""
        for name in names:
            old = self._entries.pop((kind, name), None)
            if old is not None:
                self.counts[old.status] -= 1
                self._changed(replace(old, status="removed", message=None))

    def _set(self, new: EntryStatus, old: EntryStatus | None) -> None:
        self._entries[(new.kind, new.name)] = new
        self._changed(new)
        if old is not None:
            self.counts[old.status] -= 1
        self.counts[new.status] += 1
        was_failed = old is not None and old.status == "failed"
        recovered = old is not None and (was_failed or old.after_failure)
        if new.status == "failed" and (not was_failed or old.message != new.message):
            log.error("%s %r refused by the daemon: %s", new.kind, new.name, new.message)
            self._notify(new, old)
        elif new.status == "failed":
            log.debug("%s %r still refused (attempt %d)", new.kind, new.name, new.attempts)
        elif recovered and new.status == "applied":
            log.info("%s %r applied (it had failed before)", new.kind, new.name)
            self._notify(new, old)

    def _changed(self, new: EntryStatus) -> None:
        self.changes += 1
        for watcher in self._watchers:
            try:
                watcher(new)
            except Exception:  # a watcher must not break the reconciler
                log.exception("apply-status watcher failed")

    def _notify(self, new: EntryStatus, old: EntryStatus | None) -> None:
        for observer in self._observers:
            try:
                observer(new, old)
            except Exception:  # an observer must not break the reconciler
                log.exception("apply-status observer failed")
