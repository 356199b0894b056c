"""Make a backend hold what the effective config says, and say truthfully whether it does.

One asyncio worker per backend (blocking backend calls run in threads):

* :meth:`Reconciler.set_desired` takes a new effective config, marks the entries whose payload
  changed dirty and ``pending`` (work proportional to the change) and wakes the worker;
* the worker plans (:func:`southbound.plan.plan`, pure) the loads and unloads of the dirty
  entries against what the backend was *observed* to hold, and applies them; an entry the
  daemon refuses is marked ``failed`` with its message and retried with backoff
  (:mod:`southbound.status`), the others go on; only a broken session means reconnect;
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
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nf.effective import EffectiveConfig
from southbound.backend import (
    Backend,
    BackendSession,
    BackendUnavailable,
    EntryRefused,
    Health,
)
from southbound.desired import DesiredSet
from southbound.plan import Op, plan
from southbound.status import ApplyStatus, EntryStatus, utc_now

log = logging.getLogger(__name__)

PARALLEL = 4  # sessions for bulk loads of a parallel kind
PARALLEL_MIN = 64  # below this many loads, one session is as fast
STRIKES = 2  # sessions an entry may break (in flight when it broke) before it is failed
DEEP_BATCH = 2000  # entries whose content is read back per sync; larger tables take turns


@dataclass
class _Loaded:
    """What we know the backend holds of one entry: the digest it acknowledged and the
    daemon's own fingerprint of it once read back (None until then, or if it shows none)."""

    digest: str
    fingerprint: str | None = None


@dataclass
class _Batch:
    """Work handed to the backend threads; payloads may hold secrets, so not in the repr."""

    ops: list[Op]
    payloads: dict[Op, Mapping[str, Any]] = field(repr=False)
    digests: dict[Op, str]
    replaced: set[Op]
    done: list[Op] = field(default_factory=list)
    refused: dict[Op, str] = field(default_factory=dict)
    broke: dict[Op, str] = field(default_factory=dict)  # in flight when a session broke
    error: BackendUnavailable | None = None


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
        self.observed: dict[str, dict[str, str | None]] = {k: {} for k in self.kinds}
        self._loaded: dict[str, dict[str, _Loaded]] = {k: {} for k in self.kinds}
        self.dirty: dict[str, set[str]] = {k: set() for k in self.kinds}
        self.connected = False
        self.last_error: str | None = None
        self.last_full_sync: datetime | None = None
        self.drift_repairs = 0
        self.syncs = 0
        self.last_change: dict[str, set[str]] = {}
        self._strikes: dict[tuple[str, str], int] = {}
        self._session: BackendSession | None = None
        self._observe_due = True
        self._next_sync = 0.0
        self._wake: asyncio.Event | None = None
        self._progress: asyncio.Event | None = None
        self._state: tuple[dict[str, Any], datetime] | None = None
        self._state_task: asyncio.Future[dict[str, Any]] | None = None
        self._unresponsive: str | None = None

    def __repr__(self) -> str:
        return f"Reconciler({self.backend!r}, {self.status!r})"

    # -- public API ------------------------------------------------------------------------

    def set_desired(self, effective: EffectiveConfig,
                    changed: Mapping[str, Iterable[str]] | None = None) -> dict[str, set[str]]:
        """Take a new effective config; mark the entries whose payload changed dirty and
        ``pending``; wake the worker. ``changed`` optionally names, per kind, the only
        entries to look at. Returns the changed names per kind (also kept as
        :attr:`last_change`, what :meth:`wait_applied` waits for)."""
        changes = self.desired.update(effective, changed)
        self.status.new_generation()
        for kind, names in changes.items():
            digests = self.desired.digests[kind]
            for name in names:
                removing = name not in digests
                if removing and name not in self.observed[kind] \
                        and self.status.get(kind, name) is None:
                    continue
                self.status.pending(kind, name, removing=removing)
                self._strikes.pop((kind, name), None)
            self.dirty[kind] |= names
        self.last_change = {k: set(v) for k, v in changes.items() if v}
        self._kick()
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
        if self._unresponsive is not None:
            return Health("unresponsive", self._unresponsive)
        return Health("up")

    def settled(self, changes: Mapping[str, Iterable[str]] | None = None) -> bool:
        """True when no entry (or none of ``changes``) is pending any more."""
        if changes is None:
            return self.status.counts["pending"] == 0 and not any(self.dirty.values())
        for kind, names in changes.items():
            for name in names:
                st = self.status.get(kind, name)
                if st is not None and st.status == "pending":
                    return False
        return True

    async def wait_applied(self, timeout: float,
                           changes: Mapping[str, Iterable[str]] | None = None) -> bool:
        """Wait until ``changes`` (default: what the last :meth:`set_desired` changed) are no
        longer pending (each applied, failed or removed); False on timeout."""
        target = self.last_change if changes is None else changes
        deadline = time.monotonic() + timeout
        _, progress = self._events()
        while True:
            progress.clear()  # before the check: a pulse after it is not missed
            if self.settled(target):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(progress.wait(), left)
            except TimeoutError:
                pass

    async def wait_converged(self, timeout: float) -> bool:
        """Wait until every entry is applied (none pending or failed); False on timeout."""
        deadline = time.monotonic() + timeout
        while not (self.settled() and self.status.counts["failed"] == 0):
            if time.monotonic() >= deadline:
                return False
            await self.wait_applied(max(deadline - time.monotonic(), 0), changes=None)
            if self.status.counts["failed"]:
                await asyncio.sleep(0.05)
        return True

    async def read_state(self) -> tuple[dict[str, Any], datetime | None, bool]:
        """Operational state from the daemon: ``(state, read at, stale)``.

        Bounded by ``state_timeout``: a stopped or wedged daemon yields the last state read
        (``stale`` True) and makes :meth:`health` report it unresponsive. Concurrent readers
        share one request."""
        if self._state_task is None or self._state_task.done():
            self._state_task = asyncio.ensure_future(
                asyncio.to_thread(self.backend.read_state, self.state_timeout))
        try:
            state = await asyncio.shield(self._state_task)
        except BackendUnavailable as exc:
            self._unresponsive = f"state read failed: {exc}"
            if self._state is None:
                return {}, None, True
            return self._state[0], self._state[1], True
        self._unresponsive = None
        self._state = (state, utc_now())
        return state, self._state[1], False

    def summary(self) -> dict[str, Any]:
        """Counts, health and sync facts for the state tree."""
        h = self.health()
        return {"backend": self.backend.name, "dataplane": self.backend.dataplane.name,
                "health": h.status, "health-message": h.message,
                "applied": self.status.counts["applied"],
                "pending": self.status.counts["pending"],
                "failed": self.status.counts["failed"],
                "last-full-sync": self.last_full_sync, "drift-repairs": self.drift_repairs}

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
        """Entries in flight when sessions broke ``STRIKES`` times are failed (the daemon
        drops the session on them: too big, or it crashes on them), so others go on."""
        for (kind, name), strikes in list(self._strikes.items()):
            if strikes >= STRIKES:
                del self._strikes[(kind, name)]
                self.dirty[kind].discard(name)
                self.status.failed_with(kind, name, "the daemon dropped the session "
                                        f"while handling this entry ({strikes} times)")

    async def _observe_all(self) -> None:
        session = self._session
        assert session is not None
        repairs = 0
        # Reading content back costs ~0.2 ms an entry: every sync up to DEEP_BATCH entries,
        # every k-th sync above (names, so removals and additions, are read every time).
        entries = sum(len(d) for d in self.desired.digests.values())
        deep = self._observe_due or self.syncs % max(1, -(-entries // DEEP_BATCH)) == 0
        for kind in self.kinds:
            seen = await asyncio.to_thread(session.observe, kind, deep)
            repairs += self._take_observation(kind, seen)
        self._observe_due = False
        self.last_full_sync = utc_now()
        self.syncs += 1
        if repairs:
            self.drift_repairs += repairs
            log.warning("drift: %d entries differ from what %s was known to hold; repairing",
                        repairs, self.backend.name)

    def _take_observation(self, kind: str, seen: Mapping[str, str | None]) -> int:
        """Replace what we believe the backend holds of ``kind`` by what it reports; mark the
        differences with intent dirty. Returns how many beliefs were wrong (drift)."""
        loaded, believed = self._loaded[kind], self.observed[kind]
        observed: dict[str, str | None] = {}
        for name, fp in seen.items():
            rec = loaded.get(name)
            if rec is None:
                observed[name] = None  # not loaded by us: unknown content
            elif fp is None or rec.fingerprint is None or rec.fingerprint == fp:
                if fp is not None:
                    rec.fingerprint = fp  # the first read-back after our load: adopt it
                observed[name] = rec.digest
            else:
                observed[name] = None  # replaced behind our back
                del loaded[name]
        for name in list(loaded):
            if name not in seen:
                del loaded[name]
        drift = sum(1 for n in believed.keys() | observed.keys()
                    if believed.get(n, "?") != observed.get(n, "?"))
        self.observed[kind] = observed
        want = self.desired.digests[kind]
        for name in want.keys() | observed.keys():
            if (observed.get(name, "?") != want[name]) if name in want else True:
                st = self.status.get(kind, name)
                if st is not None and st.status == "failed":
                    continue  # retried on its own schedule
                self.dirty[kind].add(name)
                if st is None or st.status == "applied":
                    self.status.pending(kind, name, removing=name not in want)
            elif name in want:
                st = self.status.get(kind, name)
                if st is None or st.status == "pending":
                    self.status.applied(kind, name)
        return drift

    async def _maintain(self) -> None:
        session = self._session
        assert session is not None
        done = await asyncio.to_thread(self.backend.maintain, session, self.desired.payloads)
        for line in done:
            log.info("%s: %s", self.backend.name, line)

    # -- applying --------------------------------------------------------------------------

    def _take_dirty(self) -> dict[str, set[str]]:
        dirty = self.dirty
        self.dirty = {k: set() for k in self.kinds}
        return dirty

    async def _apply_dirty(self) -> None:
        scope = self._take_dirty()
        ops = plan(self.desired.digests, self.observed, self.ranks, scope)
        planned = {(op.kind, op.name) for op in ops}
        for kind, names in scope.items():  # nothing to do: the backend already agrees
            for name in names:
                if (kind, name) not in planned:
                    self._settle(kind, name)
        if not ops:
            return
        batch = self._make_batch(ops)
        try:
            await asyncio.to_thread(self._apply, batch)
        except BaseException:
            done = set(batch.done)
            for op in ops:
                if op not in done and op not in batch.refused:
                    self.dirty[op.kind].add(op.name)
            raise
        self._record(batch)
        self._pulse()
        if batch.error is not None:
            raise batch.error

    def _settle(self, kind: str, name: str) -> None:
        st = self.status.get(kind, name)
        if name in self.desired.digests[kind]:
            if st is None or st.status != "applied":
                self.status.applied(kind, name)
        elif st is not None:
            self.status.removed(kind, name)

    def _make_batch(self, ops: list[Op]) -> _Batch:
        payloads: dict[Op, Mapping[str, Any]] = {}
        digests: dict[Op, str] = {}
        replaced: set[Op] = set()
        for op in ops:
            if op.action == "load":
                payloads[op] = self.desired.payloads[op.kind][op.name]
                digests[op] = self.desired.digests[op.kind][op.name]
                if self.observed[op.kind].get(op.name) is not None:
                    replaced.add(op)
        return _Batch(ops, payloads, digests, replaced)

    def _record(self, batch: _Batch) -> None:
        for op in batch.done:
            key = (op.kind, op.name)
            self._strikes.pop(key, None)
            if op.action == "load":
                digest = batch.digests[op]
                self.observed[op.kind][op.name] = digest
                self._loaded[op.kind][op.name] = _Loaded(digest)
                if self.desired.digests[op.kind].get(op.name) == digest:
                    self.status.applied(*key)
            else:
                self.observed[op.kind].pop(op.name, None)
                self._loaded[op.kind].pop(op.name, None)
                if op.name not in self.desired.digests[op.kind]:
                    self.status.removed(*key)
        for op, message in batch.refused.items():
            self._strikes.pop((op.kind, op.name), None)
            self.status.failed_with(op.kind, op.name, self._mask(op, batch, message))
        for op, why in batch.broke.items():
            key = (op.kind, op.name)
            st = self.status.get(*key)
            # an entry that already failed this way fails again at the first break
            self._strikes[key] = STRIKES if st is not None and st.status == "failed" \
                else self._strikes.get(key, 0) + 1
            log.warning("session broke during %s (%s)", op, why)
        done = set(batch.done)
        for op in batch.ops:  # not run (session broke first): still to do
            if op not in done and op not in batch.refused:
                self.dirty[op.kind].add(op.name)

    def _mask(self, op: Op, batch: _Batch, message: str) -> str:
        """The daemon's message with any secret of the entry's payload masked."""
        if not self.kinds[op.kind].secret:
            return message
        for value in (batch.payloads.get(op) or {}).values():
            if isinstance(value, bytes) and value:
                text = value.decode("utf-8", "replace")
                message = message.replace(text, "****")
        return message

    def _apply(self, batch: _Batch) -> None:
        """Run a batch in plan order (threads). Many loads of a parallel kind in a row are
        spread over a few extra sessions, so charon works on several at once (bulk loads)."""
        session = self._session
        assert session is not None
        ops = batch.ops
        bulk = [op for op in ops if op.action == "load" and self.kinds[op.kind].parallel]
        if len(bulk) < PARALLEL_MIN:
            self._run(session, ops, batch)
            return
        first, last = ops.index(bulk[0]), ops.index(bulk[-1])
        self._run(session, ops[:first], batch)
        if batch.error is None:
            chunks = [bulk[i::PARALLEL] for i in range(PARALLEL)]
            with ThreadPoolExecutor(PARALLEL) as pool:
                list(pool.map(lambda chunk: self._run_chunk(chunk, batch), chunks))
            in_bulk = set(bulk)
            rest = [op for op in ops[first:last + 1] if op not in in_bulk]
            self._run(session, rest, batch)
        if batch.error is None:
            self._run(session, ops[last + 1:], batch)

    def _run_chunk(self, ops: list[Op], batch: _Batch) -> None:
        try:
            session = self.backend.open()
        except BackendUnavailable as exc:
            batch.error = exc
            return
        try:
            self._run(session, ops, batch, own_session=False)
        finally:
            session.close()

    def _run(self, session: BackendSession, ops: list[Op], batch: _Batch,
             own_session: bool = True) -> None:
        for op in ops:
            if batch.error is not None:
                return
            try:
                if op.action == "load":
                    session.load(op.kind, op.name, batch.payloads[op], op in batch.replaced)
                else:
                    session.unload(op.kind, op.name)
            except EntryRefused as exc:
                batch.refused[op] = exc.message
                continue
            except BackendUnavailable as exc:
                batch.broke[op] = str(exc)
                batch.error = exc
                return
            except Exception as exc:  # a bug about one entry must not stop the others
                log.exception("%s failed unexpectedly", op)
                batch.refused[op] = f"internal error: {type(exc).__name__}"
                continue
            batch.done.append(op)

    # -- for the state tree ----------------------------------------------------------------

    def entries(self) -> list[EntryStatus]:
        """Every entry's apply status."""
        return self.status.entries()
