"""The state engine: one cached reading of the operational state, for every front.

:class:`StateEngine` implements :class:`nf.observed.StateSource`. It holds the last reading
of the daemon and the tree composed from it (``compose``: the app adds the apply status and
each VPN's effective parameters). It reads the daemon two ways, both through the
reconciler's bounded :class:`StateReader` (a daemon that does not answer never blocks):

* a **full read** (``read``; for charon four VICI requests: stats, list-sas of every SA, two
  get-counters), for readers whose snapshot is too old, the periodic samples, SA events that
  name no IKE SA, actions, and on any doubt;
* a **targeted read** (``read_sas``; for charon stats, ``list-sas ike-id=N`` for each IKE SA
  named, the global counters and the named VPNs' counters) after SA events: each event names
  its IKE SA's unique-id (an ike-rekey the replaced one's too) and the answer is merged into
  the cached reading (:func:`southbound.state_merge.merge`: those SAs replaced or removed,
  everything else kept as the same objects, so per-entry renderings downstream keep hitting).
  When the events name more than ``targeted_share`` of the cached SAs (and more than
  ``targeted_min``), or the cached reading is stale or was never made, a full read is done
  instead; a targeted read that fails leaves the reading stale and asks for a full read.

``read_at`` (``/ike/apply-status/state-read-time``) is when the last full read was made: no
value in the tree is older (what a targeted read replaced is newer). A snapshot's age is
counted from it. The ``extra`` readers (the kernel's view, svti state) are read with the
full reads only.

Cache rules (docs/state.md has them in full, with the figures behind them):

* :meth:`snapshot` answers from the cache when the daemon was fully read at most ``max_age``
  seconds ago and nothing made the cache out of date; otherwise it reads first. Concurrent
  callers share one read.
* **Stale-while-revalidate**: a snapshot at most ``max_stale`` seconds old that nothing made
  out of date is returned at once, and a shared full read starts ``revalidate_after`` seconds
  later (the reader's answer, rendered in a thread, does not share the interpreter with it).
* An SA event (:meth:`sa_event`) makes the SAs it names out of date: while anyone subscribes
  to the changes, a targeted read follows (events within ``coalesce`` seconds share one);
  with no subscriber, the next reader makes it. Either way another read follows ``reread``
  seconds after the last event. A reader after an event waits for the read that covers it,
  never for later ones.
* An action (:meth:`expire`) makes the daemon's part out of date: the next reader waits for a
  full read. An apply-status change or :meth:`invalidate` only recomposes the tree from the
  cached reading (gathered for ``recompose_delay`` seconds for the subscribers).
* :meth:`run` samples the daemon every ``interval`` seconds while there are subscribers.
  Reads are paced (``read_pause`` times the last read's duration between two full reads,
  likewise between targeted reads). A daemon that does not answer leaves the last tables,
  ``stale``; the engine waits ``max_age`` before asking again.

Versions and changes: ``version`` grows when the content changes, where content leaves out
the leaves that only move with the clock (:data:`CLOCK`: ages, countdowns, the read time) —
they are fresh in every snapshot, but a countdown ticking is not a change. Each read that
covers SA events, and each recompose after apply-status changes, publishes one
:class:`StateChange` per event (reason ``sa-event`` / ``apply-status``, with the new
snapshot), in the order they came; any other refresh (a sample, an on-demand read, a
recompose) publishes reason ``refresh`` only when the content changed.

Subscribers (:meth:`changes`) each get the changes in a bounded queue of ``queue_size``
(:class:`southbound.state_changes.ChangeFeed`: a newer ``refresh`` supersedes a queued one,
events are kept in order, an overflow is said, nothing is dropped silently).

The snapshot's ``tree`` is shared by every reader: read it, never change it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from nf.observed import READ_MAX_AGE, StateChange, StateSnapshot, same_content, unwalked
from southbound.state_changes import ChangeFeed
from southbound.state_merge import merge

log = logging.getLogger(__name__)

Reading = tuple[dict[str, Any], datetime | None, bool]  # (daemon state, read at, stale)
Compose = Callable[[dict[str, Any], datetime | None, bool], dict[str, Any]]
#: A targeted read: (IKE SA unique-ids, VPN names) -> the part to merge, None when it failed
ReadSas = Callable[[Collection[int], Collection[str]], Awaitable[dict[str, Any] | None]]
FULL, TARGETED = "full", "targeted"

class StateEngine:
    """The cached operational state (see the module docstring); a :class:`StateSource`."""

    def __init__(self, read: Callable[[], Awaitable[Reading]], compose: Compose | None = None,
                 *, read_sas: ReadSas | None = None, interval: float = 5.0,
                 queue_size: int = 256, coalesce: float = 0.02, reread: float = 1.0,
                 recompose_delay: float = 0.25, read_pause: float = 1.0,
                 targeted_share: float = 0.25, targeted_min: int = 16,
                 revalidate_after: float = 0.2, targets_max: int = 10_000,
                 extra: Sequence[Callable[[], dict[str, Any]]] = ()) -> None:
        self.read_fn = read
        self.read_sas = read_sas
        # after a daemon read that took T seconds, the next one of its kind starts
        # read_pause * T after the last read ended at the earliest: a storm of SA events
        # (hundreds of tunnels coming up) would otherwise keep back-to-back reads running,
        # taking charon's IKE SA manager and a core from the very negotiations being watched
        # (a quiet daemon's event is read within ``coalesce`` as before)
        self.read_pause = read_pause
        self._took = {FULL: 0.0, TARGETED: 0.0}
        self._ended = float("-inf")  # when the last read of either kind ended
        # other sources read beside the daemon (the kernel's view: southbound/kernel_state):
        # blocking calls, run in a thread at each daemon read, their keys merged in
        self.extra = tuple(extra)
        self.compose = compose or (lambda state, read_at, stale: state)
        self.interval = interval
        self.queue_size = queue_size
        self.coalesce = coalesce
        self.reread = reread
        self.recompose_delay = recompose_delay
        self.revalidate_after = revalidate_after
        self.targeted_share = targeted_share
        self.targeted_min = targeted_min
        # IKE SAs named by events kept to read again at most (more: a full read instead)
        self.targets_max = targets_max
        self.reads = 0  # full daemon reads done
        self.targeted_reads = 0  # targeted ones
        self._reading: Reading = ({}, None, True)
        self._read_mono = float("-inf")  # when the last full read ended
        self._content: Any = None  # the tree the last change of version was judged on
        self._snapshot = StateSnapshot(tree={}, read_at=None, stale=True, version=0)
        self._asked = 0  # full reads asked for
        self._served = 0  # the asked count the last full read started with
        self._needed = 0  # the asked count readers wait for (theirs, an action's)
        self._seen = 0  # SA events (and rereads) that made the cache out of date
        self._done = 0  # the seen count the last read (of either kind) started with
        self._targets: dict[int, str | None] = {}  # IKE SA unique-id -> VPN, to read again
        self._later: dict[int, str | None] = {}  # to read again ``reread`` s after
        self._recompose = False
        self._pending: list[tuple[str, Mapping[str, Any], int]] = []  # (reason, event, seen)
        self._poke: asyncio.Event | None = None  # set when there is more to read
        self._task: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._reread_timer: asyncio.TimerHandle | None = None
        self._feed = ChangeFeed(queue_size)

    def __repr__(self) -> str:
        return (f"StateEngine(version={self._snapshot.version}, reads={self.reads}, "
                f"targeted={self.targeted_reads}, subscribers={len(self._feed)})")

    # -- StateSource -----------------------------------------------------------------------

    async def snapshot(self, max_age: float = READ_MAX_AGE,
                       max_stale: float = 0.0) -> StateSnapshot:
        """The state, read again first if older than ``max_age`` seconds or out of date;
        served at once, and read again in the background, when at most ``max_stale`` old."""
        age = time.monotonic() - self._read_mono
        revalidate = False
        if age > max(max_age, max_stale):  # too old: wait for a read that starts after this
            self._asked += 1
            self._needed = self._asked
        elif age > max_age and self._asked <= self._served:
            self._asked += 1  # revalidate in the background (unless a full read is coming)
            revalidate = True
        await self._settle(self._seen, self._needed)
        if self._recompose:
            self._publish_tree()  # the apply status as it is now: no daemon read
        if self._due():
            # a revalidation once this reader is served (or what came meanwhile), in the
            # background
            self._schedule(self.revalidate_after if revalidate else 0)
        return self._snapshot

    def changes(self) -> AsyncIterator[StateChange]:
        """Every change from now on, for one subscriber (see the module docstring)."""
        return self._feed.changes()

    # -- feeds -----------------------------------------------------------------------------

    def sa_event(self, event: Mapping[str, Any]) -> None:
        """An SA event of the daemon (events.SaEventListener's dict): the IKE SAs it names
        (``unique-id``, ``old-unique-id``) are out of date; read at once and published with
        the result while anyone subscribes, else read by the next reader or the reread."""
        ev = dict(event)
        self._seen += 1
        if followed := bool(self._feed):  # (nobody to publish it to otherwise)
            self._pending.append(("sa-event", ev, self._seen))
        ids = [u for u in (ev.get("unique-id"), ev.get("old-unique-id"))
               if isinstance(u, int) and u > 0]
        if ids and self.read_sas is not None and len(self._targets) < self.targets_max:
            for uid in ids:
                self._targets[uid] = self._later[uid] = ev.get("vpn")
        else:  # nothing to target (or too much): the whole daemon, and readers wait for it
            self._asked += 1
            self._needed = self._asked
        self._wake()
        if followed:
            self._schedule(self.coalesce)
        # else left to the next reader (who waits for it) and the reread below: reads at each
        # event of 1,000 tunnels coming up took charon and a core from them, for nobody
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
        self._needed = self._asked
        self._wake()
        self._schedule(self.coalesce)

    def _read_again(self) -> None:
        self._reread_timer = None
        self._seen += 1
        if self._later:
            self._targets.update(self._later)
            self._later = {}
        else:
            self._asked += 1
            self._needed = self._asked
        self._wake()
        self._schedule(self.coalesce)

    def apply_status(self, kind: str, name: str, status: str) -> None:
        """An entry's apply status changed: recompose, publish the change with it."""
        self._pending.append(("apply-status", {"kind": kind, "name": name, "status": status},
                              0))
        self._recompose = True
        self._schedule(self.coalesce)

    def invalidate(self) -> None:
        """What ``compose`` adds changed: recompose at the next read, or soon for subscribers."""
        self._recompose = True
        if self._feed:  # (none: no timer, a bulk load's statuses recomposed all every 0.25 s)
            self._schedule(self.recompose_delay)

    async def run(self) -> None:
        """Sample the daemon every ``interval`` seconds while anyone subscribes to the
        changes (until cancelled)."""
        while True:
            await asyncio.sleep(self.interval)
            # nobody follows the changes: no sample. A reader reads the daemon on demand
            # (``max_age``); a sample then only took the interpreter from it (one list-sas
            # of 1,000 SAs decoded and converted is ~1 s of CPU on a loaded machine)
            if not self._feed:
                continue
            self._asked += 1
            try:
                await self._settle(self._seen, self._asked)
            except Exception:  # a sample must never end the sampling
                log.exception("state sample failed")

    @property
    def version(self) -> int:
        """The current snapshot's version."""
        return self._snapshot.version

    # -- internals -------------------------------------------------------------------------

    def _wake(self) -> None:
        if self._poke is not None:
            self._poke.set()

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
        task = asyncio.ensure_future(self._settle_all())
        task.add_done_callback(lambda t: t.cancelled() or t.exception() is None
                               or log.error("state refresh failed", exc_info=t.exception()))

    def _due(self) -> bool:
        return self._served < self._asked or self._done < self._seen or self._recompose

    async def _settle(self, seen: int, needed: int) -> None:
        """Read until the events up to ``seen`` and the full reads up to ``needed`` are
        covered (one step in flight, shared)."""
        while self._done < seen or self._served < needed:
            await self._one_step()

    async def _settle_all(self) -> None:
        """Read and recompose until nothing asked for is left."""
        while self._due():
            await self._one_step()

    async def _one_step(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._step())
        await asyncio.shield(self._task)

    def _next(self) -> str | None:
        """What to read next: FULL, TARGETED or None (only a recompose)."""
        if self._served < self._needed:
            return FULL  # someone waits for a full read: it covers the events too
        if self._done < self._seen:
            state, read_at, stale = self._reading
            limit = max(self.targeted_min,
                        self.targeted_share * len(state.get("ike-sa") or ()))
            if (self._targets and self.read_sas is not None and read_at is not None
                    and not stale and len(self._targets) <= limit):
                return TARGETED
            return FULL
        return FULL if self._served < self._asked else None

    async def _step(self) -> None:
        """One read (paced) and the tree recomposed from it, or only the recompose."""
        if self._poke is None:
            self._poke = asyncio.Event()
        while (kind := self._next()) is not None:
            rest = self._ended + self.read_pause * self._took[kind] - time.monotonic()
            if rest <= 0:
                break
            self._poke.clear()  # more to read may change what to read: decide again then
            try:
                await asyncio.wait_for(self._poke.wait(), rest)
            except TimeoutError:
                pass
        if kind is not None:
            seen, started = self._seen, time.monotonic()
            try:
                if kind == FULL:
                    await self._read_full()
                else:
                    await self._read_targets()
            finally:
                self._done = max(self._done, seen)
                self._ended = time.monotonic()
                self._took[kind] = self._ended - started
        self._publish_tree()

    async def _read_full(self) -> None:
        asked = self._asked
        self._targets.clear()  # covered by this read
        try:
            reading = await self.read_fn()
            if reading[2] and self._reading[1] is not None:
                # no answer: the last reading (merged since the reader's last full one)
                reading = (self._reading[0], self._reading[1], True)
            if self.extra:
                reading = await self._read_extra(reading)
            self._reading = reading
        finally:
            self._served = asked
            self._read_mono = time.monotonic()
        self.reads += 1

    async def _read_targets(self) -> None:
        assert self.read_sas is not None
        targets, self._targets = self._targets, {}
        ids, vpns = set(targets), {v for v in targets.values() if v}
        part = await self.read_sas(ids, vpns)
        self.targeted_reads += 1
        state, read_at, stale = self._reading
        if part is None:  # no answer: stale, and a full read to be sure (as a reader asks)
            self._reading = (state, read_at, True)
            self._read_mono = time.monotonic()
            self._asked += 1
            return
        # the extra readers' parts are kept: they are read with the full reads (a dump of
        # the kernel's SAD and SPD costs about a millisecond per entry, more than this read)
        self._reading = (merge(state, part, ids, vpns), read_at, stale)

    @unwalked
    def _publish_tree(self) -> None:
        """Compose the tree from the reading; publish the events it covers."""
        self._recompose = False
        state, read_at, stale = self._reading
        tree = self.compose(state, read_at, stale)
        ready = [p for p in self._pending if p[2] <= self._done]
        if ready:
            self._pending = [p for p in self._pending if p[2] > self._done]
        changed = self._content is None or not same_content(tree, self._content)
        self._content = tree
        snap = StateSnapshot(tree=tree, read_at=read_at, stale=stale,
                             version=self._snapshot.version + (1 if changed else 0))
        self._snapshot = snap
        for reason, event, _ in ready:
            self._publish(StateChange(reason, snap, event))
        if changed and not ready:
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
        self._feed.publish(change)
