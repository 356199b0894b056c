"""The state engine: one cached reading of the operational state, for every front.

:class:`StateEngine` implements :class:`nf.observed.StateSource`. It holds the last reading
of the daemon (``read``: the reconciler's bounded, shared :class:`StateReader` read; for
charon four VICI requests, stats, list-sas and two get-counters, whatever the number of SAs)
and the tree composed from it (``compose``: the app adds the apply status and each VPN's
effective parameters). Cache rules:

* :meth:`snapshot` answers from the cache when the daemon was read at most ``max_age``
  seconds ago and nothing made the cache out of date; otherwise it refreshes first. Concurrent
  callers share one refresh (N gets, one read).
* An SA event (:meth:`sa_event`: ike/child up, down, rekeyed) makes the daemon's part out of
  date: a refresh follows at once (events within ``coalesce`` seconds share one), and another
  ``reread`` seconds after the last event (charon still lists an SA being deleted for a
  moment after its down event).
* An apply-status change (:meth:`apply_status`) or another change of what ``compose`` adds
  (:meth:`invalidate`: a commit, any change of the status table) only recomposes the tree
  from the cached reading: no daemon request. A reader always gets it recomposed; for the
  subscribers, plain invalidations are gathered for ``recompose_delay`` seconds (a bulk load
  changes thousands of statuses: one recompose, not thousands).
* :meth:`run` samples the daemon every ``interval`` seconds while there are subscribers
  (:meth:`changes`); readers alone read on demand.
* Reads are paced: after one that took T seconds, the next starts ``read_pause`` * T after it
  ended at the earliest (during an event storm the engine reads at most half the time).
* A daemon that does not answer within the reader's bound leaves the last tables, ``stale``
  with their ``read_at``; the engine waits ``max_age`` before asking it again.

Versions and changes: ``version`` grows when the content changes, where content leaves out
the leaves that only move with the clock (:data:`CLOCK`: ages, countdowns, the read time) —
they are fresh in every snapshot, but a countdown ticking is not a change. Each refresh that
follows SA events or apply-status changes publishes one :class:`StateChange` per event (reason
``sa-event`` / ``apply-status``, with the new snapshot); any other refresh (a sample, an
on-demand read, a recompose) publishes reason ``refresh`` only when the content changed.

Subscribers (:meth:`changes`) each have a queue of ``queue_size`` changes. A ``refresh``
change replaces the ``refresh`` changes still queued (the newest snapshot supersedes them).
Event changes are kept in order; when a subscriber is so slow that its queue is full, the
queue is replaced by one change of reason ``overflow`` whose ``event`` is ``{"dropped": N}``
(N changes were not delivered) and whose snapshot is the newest: the subscriber knows it
missed events and resynchronizes from that snapshot. Nothing is dropped silently.

The snapshot's ``tree`` is shared by every reader: read it, never change it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from nf.observed import CLOCK, READ_MAX_AGE, StateChange, StateSnapshot, same_content, steady

__all__ = ["CLOCK", "StateEngine", "same_content", "steady"]

log = logging.getLogger(__name__)

Reading = tuple[dict[str, Any], datetime | None, bool]  # (daemon state, read at, stale)
Compose = Callable[[dict[str, Any], datetime | None, bool], dict[str, Any]]

class _Subscriber:
    """One subscriber's bounded queue of changes."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: deque[StateChange] = deque()
        self.ready = asyncio.Event()

    def put(self, change: StateChange) -> None:
        if change.reason == "refresh" and any(c.reason == "refresh" for c in self.items):
            self.items = deque(c for c in self.items if c.reason != "refresh")
        if len(self.items) >= self.size:
            dropped = 1 + sum(c.event["dropped"] if c.reason == "overflow" and c.event else 1
                              for c in self.items)
            self.items.clear()
            change = StateChange("overflow", change.snapshot, {"dropped": dropped})
        self.items.append(change)
        self.ready.set()

    async def get(self) -> StateChange:
        while not self.items:
            self.ready.clear()
            await self.ready.wait()
        return self.items.popleft()


class StateEngine:
    """The cached operational state (see the module docstring); a :class:`StateSource`."""

    def __init__(self, read: Callable[[], Awaitable[Reading]], compose: Compose | None = None,
                 *, interval: float = 5.0, queue_size: int = 256,
                 coalesce: float = 0.02, reread: float = 1.0,
                 recompose_delay: float = 0.25, read_pause: float = 1.0,
                 extra: Sequence[Callable[[], dict[str, Any]]] = ()) -> None:
        self.read_fn = read
        # after a daemon read that took T seconds, the next one starts read_pause * T after it
        # ended at the earliest: a storm of SA events (hundreds of tunnels coming up) would
        # otherwise keep back-to-back list-sas reads running, taking charon's IKE SA
        # manager and a core from the very negotiations being watched (a quiet daemon's
        # event is read within ``coalesce`` as before)
        self.read_pause = read_pause
        self._read_took = 0.0
        # other sources read beside the daemon (the kernel's view: southbound/kernel_state):
        # blocking calls, run in a thread at each daemon read, their keys merged in
        self.extra = tuple(extra)
        self.compose = compose or (lambda state, read_at, stale: state)
        self.interval = interval
        self.queue_size = queue_size
        self.coalesce = coalesce
        self.reread = reread
        self.recompose_delay = recompose_delay
        self.reads = 0  # daemon reads done
        self._reading: Reading = ({}, None, True)
        self._read_mono = float("-inf")  # when the last daemon read ended
        self._content: Any = None  # the tree the last change of version was judged on
        self._snapshot = StateSnapshot(tree={}, read_at=None, stale=True, version=0)
        self._asked = 0  # daemon reads asked for
        self._served = 0  # the asked count the last daemon read started with
        self._recompose = False
        self._pending: list[tuple[str, Mapping[str, Any]]] = []
        self._task: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._reread_timer: asyncio.TimerHandle | None = None
        self._subs: weakref.WeakSet[_Subscriber] = weakref.WeakSet()

    def __repr__(self) -> str:
        return (f"StateEngine(version={self._snapshot.version}, reads={self.reads}, "
                f"subscribers={len(self._subs)})")

    # -- StateSource -----------------------------------------------------------------------

    async def snapshot(self, max_age: float = READ_MAX_AGE) -> StateSnapshot:
        """The state, read again first if older than ``max_age`` seconds or out of date."""
        if time.monotonic() - self._read_mono > max_age:
            self._asked += 1
        await self._settle()
        return self._snapshot

    def changes(self) -> AsyncIterator[StateChange]:
        """Every change from now on, for one subscriber (see the module docstring)."""
        sub = _Subscriber(self.queue_size)
        self._subs.add(sub)
        return self._iterate(sub)

    # -- feeds -----------------------------------------------------------------------------

    def sa_event(self, event: Mapping[str, Any]) -> None:
        """An SA event of the daemon (events.SaEventListener's dict): the SA tables are out of
        date; a refresh follows, and the event is published with its result."""
        self._pending.append(("sa-event", dict(event)))
        self._asked += 1
        self._schedule(self.coalesce)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._reread_timer is not None:
            self._reread_timer.cancel()
        self._reread_timer = loop.call_later(self.reread, self._read_again)

    def expire(self) -> None:
        """The daemon's part is out of date (an action changed its SAs): the next reader, and
        a refresh at once for the subscribers, read it again. No event is published: the SA
        events of the daemon tell what happened."""
        self._asked += 1
        self._schedule(self.coalesce)

    def _read_again(self) -> None:
        self._reread_timer = None
        self._asked += 1
        self._schedule(self.coalesce)

    def apply_status(self, kind: str, name: str, status: str) -> None:
        """An entry's apply status changed: recompose, publish the change with it."""
        self._pending.append(("apply-status", {"kind": kind, "name": name, "status": status}))
        self._recompose = True
        self._schedule(self.coalesce)

    def invalidate(self) -> None:
        """What ``compose`` adds changed (a commit, the status table): recompose (at once for
        a reader, within ``recompose_delay`` for the subscribers)."""
        self._recompose = True
        self._schedule(self.recompose_delay)

    async def run(self) -> None:
        """Sample the daemon every ``interval`` seconds while anyone subscribes to the
        changes (until cancelled)."""
        while True:
            await asyncio.sleep(self.interval)
            # nobody follows the changes: no sample. A reader reads the daemon on demand
            # (``max_age``); a sample then only took the interpreter from it (one list-sas
            # of 1,000 SAs decoded and converted is ~1 s of CPU on a loaded machine)
            if not self._subs:
                continue
            self._asked += 1
            try:
                await self._settle()
            except Exception:  # a sample must never end the sampling
                log.exception("state sample failed")

    @property
    def version(self) -> int:
        """The current snapshot's version."""
        return self._snapshot.version

    # -- internals -------------------------------------------------------------------------

    async def _iterate(self, sub: _Subscriber) -> AsyncIterator[StateChange]:
        try:
            while True:
                yield await sub.get()
        finally:
            self._subs.discard(sub)

    def _schedule(self, delay: float) -> None:
        """A refresh within ``delay`` seconds (an earlier one already scheduled stands)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a test feeding by hand): the next read settles
            return
        when = loop.time() + delay
        if self._timer is not None:
            if self._timer.when() <= when:
                return
            self._timer.cancel()
        self._timer = loop.call_at(when, self._kick)

    def _kick(self) -> None:
        self._timer = None
        task = asyncio.ensure_future(self._settle())
        task.add_done_callback(lambda t: t.cancelled() or t.exception() is None
                               or log.error("state refresh failed", exc_info=t.exception()))

    def _due(self) -> bool:
        return self._served < self._asked or self._recompose or bool(self._pending)

    async def _settle(self) -> None:
        """Refresh until nothing asked for is left (one refresh in flight, shared)."""
        while self._due():
            if self._task is None or self._task.done():
                if self._served < self._asked:
                    rest = (self._read_mono + self.read_pause * self._read_took
                            - time.monotonic())
                    if rest > 0:
                        await asyncio.sleep(rest)
                        if self._task is not None and not self._task.done():
                            await asyncio.shield(self._task)  # another settle started it
                            continue
                self._task = asyncio.ensure_future(self._refresh())
            await asyncio.shield(self._task)

    async def _refresh(self) -> None:
        if self._served < self._asked:
            asked = self._asked
            started = time.monotonic()
            try:
                self._reading = await self.read_fn()
                if self.extra:
                    self._reading = await self._read_extra(self._reading)
            finally:
                self._served = asked
                self._read_mono = time.monotonic()
                self._read_took = self._read_mono - started
            self.reads += 1
        self._recompose = False
        state, read_at, stale = self._reading
        tree = self.compose(state, read_at, stale)
        pending, self._pending = self._pending, []
        changed = self._content is None or not same_content(tree, self._content)
        self._content = tree
        snap = StateSnapshot(tree=tree, read_at=read_at, stale=stale,
                             version=self._snapshot.version + (1 if changed else 0))
        self._snapshot = snap
        for reason, event in pending:
            self._publish(StateChange(reason, snap, event))
        if changed and not pending:
            self._publish(StateChange("refresh", snap))

    async def _read_extra(self, reading: Reading) -> Reading:
        state, read_at, stale = reading
        merged = dict(state)
        for read in self.extra:
            try:
                merged.update(await asyncio.to_thread(read))
            except Exception:  # another source failing must not hide the daemon's state
                log.exception("extra state read failed")
        return merged, read_at, stale

    def _publish(self, change: StateChange) -> None:
        for sub in list(self._subs):
            sub.put(change)
