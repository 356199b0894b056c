"""Make a backend hold what the effective config says, and say truthfully whether it does.

One asyncio worker per backend (blocking backend calls run in threads):

* :meth:`Reconciler.set_desired` takes a new effective config, marks the entries whose payload
  changed dirty and ``pending`` (work proportional to the change) and wakes the worker;
* the worker plans (:func:`southbound.plan.plan`, pure) the loads and unloads of the dirty
  entries against what the backend was *observed* to hold, and applies them
  (:mod:`southbound.batch`); an entry the daemon refuses is marked ``failed`` with its message
  and retried with backoff (:mod:`southbound.status`), the others go on; only a broken session
  means reconnect;
* every ``sync_interval`` seconds, and after every reconnect, it reads back what the daemon
  holds (:meth:`BackendSession.observe`) and repairs drift: an entry removed, added or changed
  behind our back is loaded or unloaded again; then the backend's :meth:`maintain` runs
  (re-initiating tunnels that should be up).

What the reconciler believes the backend holds (``observed``) is always the last observation
plus the operations the daemon acknowledged since, never merely what was sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

from nf.effective import EffectiveConfig
from southbound.backend import Backend, BackendSession, BackendUnavailable, Health
from southbound.batch import Batch, run_batch
from southbound.batch_outcome import BatchOutcome
from southbound.breakers import SessionBreakers
from southbound.desired import DesiredSet
from southbound.holdings import Holdings
from southbound.plan import plan
from southbound.state_reader import StateReader
from southbound.status import ApplyStatus, EntryStatus, utc_now

log = logging.getLogger(__name__)

DEEP_BATCH = 2000  # entries whose content is read back per sync; larger tables take turns
ALL = None  # wait_applied(changes=ALL): every entry
Key = tuple[str, str]  # (kind, name)


class Reconciler:
    """Drive one backend towards the desired effective config; keep the apply status."""

    def __init__(self, backend: Backend, sync_interval: float = 30.0,
                 backoff_max: float = 5.0, state_timeout: float = 2.0) -> None:
        self.backend = backend
        self.sync_interval = sync_interval
        self.backoff_max = backoff_max
        self.state_timeout = state_timeout
        self.kinds = {k.name: k for k in backend.kinds}
        self.ranks = {k.name: k.rank for k in backend.kinds}
        self.desired = DesiredSet(backend.kinds, backend.dataplane)
        self.status = ApplyStatus()
        self.holdings = Holdings(self.kinds)
        self.observed = self.holdings.observed  # kind -> name -> digest held (None: unknown)
        self.dirty: dict[str, set[str]] = {k: set() for k in self.kinds}
        self.connected = False
        self.last_error: str | None = None
        self.sync_error: str | None = None  # why the last read-back or upkeep failed
        self.last_full_sync: datetime | None = None
        self.drift_repairs = 0
        self.syncs = 0
        self.last_change: dict[str, set[str]] = {}
        self.breakers = SessionBreakers()  # entries that made the daemon drop the session
        self.outcome = BatchOutcome(self.kinds, self.desired, self.holdings, self.status,
                                    self.breakers)
        self._session: BackendSession | None = None
        self._observe_due = True
        self._next_sync = 0.0
        self._wake: asyncio.Event | None = None
        self._progress: asyncio.Event | None = None
        self.state = StateReader(backend.read_state, state_timeout,
                                 getattr(backend, "read_sas", None))  # charon's: targeted reads

    def __repr__(self) -> str:
        return f"Reconciler({self.backend!r}, {self.status!r})"

    # -- public API ------------------------------------------------------------------------

    def set_desired(self, effective: EffectiveConfig,
                    changed: Mapping[str, Iterable[str]] | None = None) -> dict[str, set[str]]:
        """Take a new effective config; mark the entries whose payload changed dirty and
        ``pending``; wake the worker. ``changed`` optionally names, per kind, the only
        entries to look at. Returns the changed names per kind (also kept as
        :attr:`last_change`, what :meth:`wait_applied` waits for); an entry whose request
        cannot be built is ``failed`` at once (and part of the change)."""
        changes = self.desired.update(effective, changed)
        self.status.new_generation()
        for kind, names in changes.items():
            digests, invalid = self.desired.digests[kind], self.desired.invalid[kind]
            for name in names:
                self.breakers.changed((kind, name))
                removing = name not in digests and name not in invalid
                if removing and name not in self.observed[kind] \
                        and self.status.get(kind, name) is None:
                    continue
                self.status.pending(kind, name, removing=removing)
            self.dirty[kind] |= names
        for kind, invalid in self.desired.invalid.items():
            scope = invalid.keys() if changed is None else set(changed.get(kind, ())) & set(
                invalid)
            for name in scope:
                self.status.failed_with(kind, name, invalid[name], retry=False)
                changes.setdefault(kind, set()).add(name)
        self.last_change = {k: set(v) for k, v in changes.items() if v}
        self._kick()
        self._pulse()
        return changes

    def resync(self) -> None:
        """Read back everything the daemon holds soon (e.g. charon was restarted)."""
        self._observe_due = True
        self._kick()

    def health(self) -> Health:
        """The backend's health: process problems first, then reachability, then answers."""
        process = self.backend.health()
        if process.status != "up":
            return process
        if not self.connected:
            return Health("down", self.last_error)
        if self.state.unresponsive is not None:
            return Health("unresponsive", self.state.unresponsive)
        return Health("up")

    def settled(self, changes: Mapping[str, Iterable[str]] | None = ALL) -> bool:
        """True when no entry (or none of ``changes``) is pending any more."""
        if changes is ALL:
            return self.status.counts["pending"] == 0 and not any(self.dirty.values())
        for kind, names in changes.items():
            for name in names:
                st = self.status.get(kind, name)
                if st is not None and st.status == "pending":
                    return False
        return True

    async def wait_applied(self, timeout: float,
                           changes: Mapping[str, Iterable[str]] | None = ALL) -> bool:
        """Wait until ``changes`` (default: every entry) are no longer pending (each applied,
        failed or removed); False on timeout."""
        return await self._wait(lambda: self.settled(changes), timeout)

    async def wait_converged(self, timeout: float) -> bool:
        """Wait until every entry is applied (none pending or failed); False on timeout."""
        return await self._wait(
            lambda: self.settled() and self.status.counts["failed"] == 0, timeout)

    async def _wait(self, done: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        _, progress = self._events()
        while True:
            progress.clear()  # before the check: a pulse after it is not missed
            if done():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(progress.wait(), left)
            except TimeoutError:
                pass

    async def read_state(self) -> tuple[dict[str, Any], datetime | None, bool]:
        """Operational state from the daemon: ``(state, read at, stale)``, bounded by
        ``state_timeout`` (see :class:`southbound.state_reader.StateReader`); a daemon that
        does not answer makes :meth:`health` report it unresponsive."""
        return await self.state.read()

    async def read_sas(self, unique_ids: Collection[int], vpns: Collection[str]
                       ) -> dict[str, Any] | None:
        """A targeted read of the IKE SAs ``unique_ids`` and the ``vpns``' counters, bounded
        like :meth:`read_state` (:meth:`southbound.state_reader.StateReader.read_sas`); None
        when it failed or the backend has none."""
        return await self.state.read_sas(unique_ids, vpns)

    def summary(self) -> dict[str, Any]:
        """Counts, health and sync facts for the state tree."""
        h = self.health()
        return {"backend": self.backend.name, "dataplane": self.backend.dataplane.name,
                "health": h.status, "health-message": h.message,
                "applied": self.status.counts["applied"],
                "pending": self.status.counts["pending"],
                "failed": self.status.counts["failed"],
                "last-full-sync": self.last_full_sync, "drift-repairs": self.drift_repairs}

    def entries(self) -> list[EntryStatus]:
        """Every entry's apply status."""
        return self.status.entries()

    # -- worker ----------------------------------------------------------------------------

    def _events(self) -> tuple[asyncio.Event, asyncio.Event]:
        if self._wake is None or self._progress is None:
            self._wake, self._progress = asyncio.Event(), asyncio.Event()
        return self._wake, self._progress

    def _kick(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _pulse(self) -> None:
        if self._progress is not None:
            self._progress.set()

    async def run(self) -> None:
        """Worker loop; cancel the task to stop it."""
        wake, _ = self._events()
        backoff = 0.1
        wake.set()
        try:
            while True:
                await self._sleep(wake)
                try:
                    await self._pass()
                    backoff = 0.1
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the worker must outlive any failure
                    if not isinstance(exc, BackendUnavailable):
                        log.exception("reconciler pass failed")
                    self._disconnect(str(exc))
                    log.warning("%s unreachable (%s); retrying in %.1fs", self.backend.name,
                                exc, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.backoff_max)
                    wake.set()
                finally:
                    self._pulse()
        finally:
            self._disconnect(None)

    async def _sleep(self, wake: asyncio.Event) -> None:
        """Until kicked, a failed entry's retry time, or the next sync."""
        times = [self._next_sync]
        retry = self.status.next_retry_at()
        if retry is not None:
            times.append(retry)
        delay = min(times) - time.monotonic()
        if delay > 0 and not wake.is_set():
            try:
                await asyncio.wait_for(wake.wait(), delay)
            except TimeoutError:
                pass
        wake.clear()

    async def _pass(self) -> None:
        if self._session is None:
            self._session = await asyncio.to_thread(self.backend.open)
            self.connected = True
            self.last_error = None
            self._observe_due = True
            self._fail_strikers()
        now = time.monotonic()
        sync_due = now >= self._next_sync
        if self._observe_due or sync_due:
            await self._observe_all()
        for st in self.status.due_retries(now):
            self.dirty[st.kind].add(st.name)
        while any(self.dirty.values()):
            await self._apply_dirty()
        if sync_due:
            await self._maintain()
            self._next_sync = time.monotonic() + self.sync_interval

    def _disconnect(self, error: str | None) -> None:
        session, self._session = self._session, None
        if session is not None:
            try:
                session.close()
            except Exception:  # closing a broken session may fail too
                log.debug("closing a broken session", exc_info=True)
        self.connected = False
        self._observe_due = True
        if error is not None:
            self.last_error = error

    def _fail_strikers(self) -> None:
        """Entries alone in flight when sessions broke ``STRIKES`` times are failed, so the
        others go on (southbound/breakers.py)."""
        for key, strikes in self.breakers.to_fail():
            self.dirty[key[0]].discard(key[1])
            self.status.failed_with(*key, f"the daemon dropped the session while handling "
                                    f"this entry ({strikes} times); not retried until "
                                    "the entry changes", retry=False)

    # -- reading back ----------------------------------------------------------------------

    async def _observe_all(self) -> None:
        session = self._session
        assert session is not None
        # Reading content back costs ~0.2 ms an entry: every sync up to DEEP_BATCH entries,
        # every k-th sync above (names, so removals and additions, are read every time).
        entries = sum(len(d) for d in self.desired.digests.values())
        deep = self._observe_due or self.syncs % max(1, -(-entries // DEEP_BATCH)) == 0
        errors = []
        for kind in self.kinds:
            try:
                seen = await asyncio.to_thread(session.observe, kind, deep)
            except BackendUnavailable:
                raise
            except Exception as exc:  # a refused or unreadable read-back: not a lost session
                errors.append(f"reading back {kind}: {exc}")
                continue
            repairs = self._take_observation(kind, seen)
            if repairs:
                self.drift_repairs += repairs
                log.warning("drift: %d %s entries differ from what %s was known to hold; "
                            "repairing", repairs, kind, self.backend.name)
        self.breakers.uncertain.clear()
        self._observe_due = False
        self.syncs += 1
        self._sync_failed("; ".join(errors) if errors else None)
        if not errors:
            self.last_full_sync = utc_now()

    def _sync_failed(self, error: str | None) -> None:
        if error is not None and error != self.sync_error:
            log.error("%s: %s", self.backend.name, error)
        self.sync_error = error

    def _take_observation(self, kind: str, seen: Mapping[str, str | None]) -> int:
        """Replace what we believe the backend holds of ``kind`` by what it reports; mark the
        differences with intent dirty. Returns how many beliefs were wrong (drift)."""
        drift = self.holdings.take(kind, seen, self.breakers.uncertain_of(kind))
        observed = self.observed[kind]
        want = self.desired.digests[kind]
        for name in want.keys() | observed.keys():
            st = self.status.get(kind, name)
            if (observed.get(name, "?") != want[name]) if name in want else True:
                if st is not None and st.status == "failed":
                    continue  # retried on its own schedule
                self.dirty[kind].add(name)
                if st is None or st.status == "applied":
                    self.status.pending(kind, name, removing=name not in want)
            elif st is None or st.status == "pending":
                self.status.applied(kind, name)
        return drift

    async def _maintain(self) -> None:
        session = self._session
        assert session is not None
        # a snapshot taken in the loop thread: commits may change the desired set meanwhile;
        # only entries in force are maintained (a failed VPN is not initiated)
        snapshot = {kind: {name: upkeep for name, upkeep in views.items()
                           if (st := self.status.get(kind, name)) is not None
                           and st.status == "applied"}
                    for kind, views in self.desired.upkeep.items()}
        try:
            done = await asyncio.to_thread(self.backend.maintain, session, snapshot)
        except BackendUnavailable:
            raise
        except Exception as exc:
            self._sync_failed(f"upkeep: {exc}")
            return
        for line in done:
            log.info("%s: %s", self.backend.name, line)

    # -- applying --------------------------------------------------------------------------

    async def _apply_dirty(self) -> None:
        scope, self.dirty = self.dirty, {k: set() for k in self.kinds}
        ops = plan(self.desired.digests, self.observed, self.ranks, scope)
        planned = {(op.kind, op.name) for op in ops}
        for kind, names in scope.items():  # nothing to do: the backend already agrees
            for name in names:
                if (kind, name) not in planned:
                    self.outcome.settle(kind, name)
        if not ops:
            return
        batch = self.outcome.make_batch(ops)
        session = self._session
        assert session is not None
        try:
            await asyncio.to_thread(run_batch, session, self.backend.open, batch,
                                    lambda op: self.kinds[op.kind].parallel)
        except BaseException:
            for op in batch.not_run():
                self.dirty[op.kind].add(op.name)
            raise
        self._record(batch)
        self._pulse()
        if batch.error is not None:
            raise batch.error

    def _record(self, batch: Batch) -> None:
        self.outcome.record(batch)
        for op in batch.not_run():
            self.dirty[op.kind].add(op.name)
