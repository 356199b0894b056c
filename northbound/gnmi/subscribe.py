"""gNMI Subscribe: ONCE, POLL and STREAM (SAMPLE, ON_CHANGE, TARGET_DEFINED).

Every mode starts with the full dump of the subscribed paths and a ``sync_response``
(``updates_only``: the sync_response alone). A subscription's content is the leaves under
its paths that the user may read, from running and the observed state (one view of both).

- ON_CHANGE (and TARGET_DEFINED, which is ON_CHANGE here: SA up/down/rekey and apply-status
  changes are events of the state source, config changes are events of the datastores, and
  counters are sent whenever the state source publishes a new reading) sends, after each
  new state snapshot or change of running, exactly the leaves that changed (updates) and
  the nodes that went away (deletes, at the highest node gone: a whole IKE SA entry when it
  is deleted); with ``heartbeat_interval``, every leaf again at least that often. A new
  snapshot alone is compared with the last one entry by entry (``northbound/state_delta.py``)
  and only the changed members and SA entries are rendered: one SA's event costs that SA,
  not the table (leaves that move only with the clock, countdowns, are sent with their
  entry's changes).
- SAMPLE sends every leaf each ``sample_interval`` (default 10 s); with
  ``suppress_redundant``, only those that changed (and deletes), and every leaf again each
  ``heartbeat_interval``.
- POLL sends the dump and a sync_response at each Poll request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
from pygnmi.spec.v080 import gnmi_pb2 as pb

from nf.observed import StateSnapshot
from nf.paths import Step
from nf.schema import Schema
from northbound.gnmi import data, paths
from northbound.gnmi.auth import GnmiSession
from northbound.gnmi.context import GnmiContext, now_ns, put_coalesced
from northbound.gnmi.errors import GnmiError
from northbound.gnmi.get import STATE_MAX_AGE, _echo, check_encoding, read, typed
from northbound.state_delta import SCOPE_DEPTH, Delta, state_delta

DEFAULT_SAMPLE = 10.0  # seconds, when sample_interval is 0
MIN_SAMPLE = 0.1
OUTBOX = 64  # notifications waiting for a slow client before the producers wait too
MAX_BACKLOG = 8  # changes waiting past which ON_CHANGE diffs against the newest at once
SL = pb.SubscriptionList
ON_CHANGE, SAMPLE, TARGET_DEFINED = (pb.SubscriptionMode.ON_CHANGE, pb.SubscriptionMode.SAMPLE,
                                     pb.SubscriptionMode.TARGET_DEFINED)
_GONE = object()


@dataclass
class Sub:
    """One subscription of a SubscriptionList."""

    path: pb.Path
    steps: tuple[Step, ...]
    origin: str
    mode: int
    sample: float
    heartbeat: float
    suppress: bool
    last: data.Leaves = field(default_factory=dict)
    full_at: float = 0.0  # when every leaf was last sent

    @property
    def floor(self) -> int:
        """The depth of the subscribed nodes: deletes are never above them."""
        return len([s for s in self.steps if s.name != paths.ANY_DEPTH])


def _subs(g: GnmiContext, sl: pb.SubscriptionList) -> list[Sub]:
    top = g.ctx.schema.state_top
    prefix = sl.prefix if sl.HasField("prefix") else None
    out = []
    for s in sl.subscription or [pb.Subscription(path=pb.Path())]:
        try:
            steps = paths.parse(prefix, s.path, top)
        except paths.PathError as e:
            raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT, str(e)) from None
        sample = s.sample_interval / 1e9 or DEFAULT_SAMPLE
        if s.mode == SAMPLE and sample < MIN_SAMPLE:
            raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT,
                            f"sample_interval under {MIN_SAMPLE * 1e9:.0f} ns is not supported")
        mode = ON_CHANGE if s.mode == TARGET_DEFINED else s.mode
        out.append(Sub(s.path, steps, s.path.origin or (prefix.origin if prefix else ""), mode,
                       sample, s.heartbeat_interval / 1e9, s.suppress_redundant))
    return out


async def view(g: GnmiContext, session: GnmiSession, subs: list[Sub],
               snapshot: StateSnapshot | None = None) -> list[data.Leaves]:
    """The leaves of each subscription now (the state of ``snapshot`` if given)."""
    tops = await read(g, session, data.ALL, snapshot, [sub.steps for sub in subs])
    # libyang works on the private copies in a thread: the event loop stays free
    return await asyncio.to_thread(_leaves, g.ctx.schema, tops, [sub.steps for sub in subs])


def _leaves(schema: Schema, tops: list, wanted: list[tuple[Step, ...]]) -> list[data.Leaves]:
    top = schema.state_top
    out = []
    with data.parsed(schema, tops) as tree:
        for steps in wanted:
            leaves: data.Leaves = {}
            if not steps:
                leaves.update(data.leaves((), data.whole(tree), top))
            for node in data.select(tree, steps) if steps else []:
                where = data.node_steps(node)
                leaves.update(data.leaves(where, data.value(node),
                                          paths.schema_nodes(where, top)[-1]))
            out.append(leaves)
    return out


def diff(old: data.Leaves, new: data.Leaves, floor: int = 1
         ) -> tuple[data.Leaves, list[tuple[Step, ...]]]:
    """(the leaves new or changed, the highest paths gone, none shorter than ``floor`` steps:
    the subscribed path's own depth)."""
    updates = {p: v for p, v in new.items() if old.get(p, _GONE) != v}
    present = {p[:i] for p in new for i in range(1, len(p) + 1)}
    deletes: dict[tuple[Step, ...], None] = {}
    for p in old:
        if p in new:
            continue
        for i in range(min(max(floor, 1), len(p)), len(p) + 1):
            if p[:i] not in present:
                deletes.setdefault(p[:i])
                break
    return updates, list(deletes)


def notification(sub: Sub, updates: data.Leaves, deletes: list[tuple[Step, ...]],
                 encoding: int, prefix: pb.Path | None) -> pb.SubscribeResponse:
    """One notification of a subscription's updates and deletes."""
    return pb.SubscribeResponse(update=pb.Notification(
        timestamp=now_ns(), prefix=_echo(prefix),
        update=[pb.Update(path=paths.to_gnmi(p, sub.origin), val=typed(v, encoding))
                for p, v in updates.items()],
        delete=[paths.to_gnmi(p, sub.origin) for p in deletes]))


SYNC = pb.SubscribeResponse(sync_response=True)


async def subscribe(g: GnmiContext, session: GnmiSession,
                    requests: AsyncIterator[pb.SubscribeRequest]
                    ) -> AsyncIterator[pb.SubscribeResponse]:
    """The responses of one Subscribe stream."""
    first = await anext(requests, None)
    if first is None:
        return
    if not first.HasField("subscribe"):
        raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT,
                        "the first SubscribeRequest must hold a SubscriptionList")
    sl = first.subscribe
    check_encoding(sl.encoding)
    subs = _subs(g, sl)
    prefix = sl.prefix if sl.HasField("prefix") else None
    enc = sl.encoding

    async def dump(snapshot: StateSnapshot | None = None) -> list[pb.SubscribeResponse]:
        out = []
        now = time.monotonic()
        for sub, leaves in zip(subs, await view(g, session, subs, snapshot), strict=True):
            sub.last, sub.full_at = leaves, now
            if leaves and not sl.updates_only:
                out.append(notification(sub, leaves, [], enc, prefix))
        return out

    if sl.mode == SL.ONCE:
        for r in await dump():
            yield r
        yield SYNC
        return
    if sl.mode == SL.POLL:
        for r in await dump():
            yield r
        yield SYNC
        async for req in requests:
            if not req.HasField("poll"):
                raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT,
                                "a POLL subscription takes only Poll requests")
            sl.updates_only = False
            for r in await dump():
                yield r
            yield SYNC
        return
    async for r in _stream(g, session, subs, sl, prefix, dump):
        yield r


async def _stream(g: GnmiContext, session: GnmiSession, subs: list[Sub],
                  sl: pb.SubscriptionList, prefix: pb.Path | None,
                  dump) -> AsyncIterator[pb.SubscribeResponse]:  # noqa: ANN001
    # bounded: a client that reads slowly holds back its own producers (SAMPLE skips, and
    # ON_CHANGE diffs over the changes it missed), never the server's memory
    out: asyncio.Queue[pb.SubscribeResponse | BaseException] = asyncio.Queue(OUTBOX)
    events: asyncio.Queue = asyncio.Queue()
    on_change = [s for s in subs if s.mode == ON_CHANGE]
    sampled = [s for s in subs if s.mode == SAMPLE]
    tasks: list[asyncio.Task] = []
    # listen before the dump: nothing that happens after it is missed
    if on_change:
        g.config.subscribe(events)
        tasks.append(asyncio.create_task(_pump_state(g, events)))
    try:
        first = await g.state.snapshot(STATE_MAX_AGE)
        for r in await dump(first):
            yield r
        yield SYNC
        if on_change:
            tasks.append(asyncio.create_task(_guard(out, _changes(
                g, session, on_change, sl.encoding, prefix, events, out, first))))
        for sub in sampled:
            tasks.append(asyncio.create_task(_guard(out, _sample(
                g, session, sub, sl.encoding, prefix, out))))
        while True:
            item = await out.get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        g.config.unsubscribe(events)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t


async def _guard(out: asyncio.Queue, work) -> None:  # noqa: ANN001
    """Run a producer; its failure ends the stream (with its error)."""
    try:
        await work
    except asyncio.CancelledError:
        raise
    except BaseException as e:  # noqa: BLE001 - handed to the stream, which raises it
        await out.put(e)


async def _pump_state(g: GnmiContext, events: asyncio.Queue) -> None:
    async for change in g.state.changes():
        put_coalesced(events, ("state", change.snapshot))


async def _changes(g: GnmiContext, session: GnmiSession, subs: list[Sub], enc: int,
                   prefix: pb.Path | None, events: asyncio.Queue, out: asyncio.Queue,
                   snapshot: StateSnapshot) -> None:
    """ON_CHANGE: after each event, what changed; every leaf again at each heartbeat."""
    seen = snapshot  # the snapshot the subscriptions' ``last`` leaves were made from
    ike = next((sn for (_, name), sn in g.ctx.schema.state_top.items() if name == "ike"), None)
    beats = [s.heartbeat for s in subs if s.heartbeat > 0]
    while True:
        timeout = None
        if beats:
            due = min(s.full_at + s.heartbeat for s in subs if s.heartbeat > 0)
            timeout = max(0.0, due - time.monotonic())
        config = False
        try:
            kind, snap = await asyncio.wait_for(events.get(), timeout)
            if kind == "state":
                snapshot = snap
            config = kind == "config"
        except TimeoutError:
            pass
        if events.qsize() > MAX_BACKLOG:  # fallen behind: one diff up to the newest state
            while not events.empty():
                kind, snap = events.get_nowait()
                if kind == "state":
                    snapshot = snap
                config |= kind == "config"
        now = time.monotonic()
        beat = any(s.heartbeat > 0 and now >= s.full_at + s.heartbeat for s in subs)
        delta = None if config or beat else state_delta(seen.tree, snapshot.tree, ike)
        seen = snapshot
        if delta is not None:
            if delta:
                await _partial(g, session, subs, delta, snapshot, enc, prefix, out)
            continue
        for sub, leaves in zip(subs, await view(g, session, subs, snapshot), strict=True):
            if sub.heartbeat > 0 and now >= sub.full_at + sub.heartbeat:
                updates, deletes = leaves, diff(sub.last, leaves, sub.floor)[1]
                sub.full_at = now
            else:
                updates, deletes = diff(sub.last, leaves, sub.floor)
            sub.last = leaves
            if updates or deletes:
                await out.put(notification(sub, updates, deletes, enc, prefix))


async def _partial(g: GnmiContext, session: GnmiSession, subs: list[Sub], delta: Delta,
                   snapshot: StateSnapshot, enc: int, prefix: pb.Path | None,
                   out: asyncio.Queue) -> None:
    """Send what ``delta`` changed: only its members and entries are rendered, and only the
    leaves they cover are compared with (and replaced in) each subscription's last view."""
    part = StateSnapshot(tree=delta.tree, read_at=snapshot.read_at, stale=snapshot.stale,
                         version=snapshot.version)
    wanted = [sub.steps for sub in subs]
    tops = data.roots(None, part, g.access(session), g.ctx.schema.state_top, wanted)
    views = await asyncio.to_thread(_leaves, g.ctx.schema, tops, wanted)
    for sub, leaves in zip(subs, views, strict=True):
        new = {p: v for p, v in leaves.items() if delta.covers(p)}
        old = {p: v for p, v in sub.last.items() if delta.covers(p)}
        updates, deletes = diff(old, new, max(sub.floor, SCOPE_DEPTH))
        for p in old:
            del sub.last[p]
        sub.last.update(new)
        if updates or deletes:
            await out.put(notification(sub, updates, deletes, enc, prefix))


async def _sample(g: GnmiContext, session: GnmiSession, sub: Sub, enc: int,
                  prefix: pb.Path | None, out: asyncio.Queue) -> None:
    """SAMPLE: every leaf each interval, or (suppress_redundant) what changed."""
    while True:
        await asyncio.sleep(sub.sample)
        snapshot = await g.state.snapshot(sub.sample / 2)
        leaves = (await view(g, session, [sub], snapshot))[0]
        now = time.monotonic()
        updates, deletes = diff(sub.last, leaves, sub.floor)
        if not sub.suppress or (sub.heartbeat > 0 and now >= sub.full_at + sub.heartbeat):
            updates, sub.full_at = leaves, now
        sub.last = leaves
        if updates or deletes:
            await out.put(notification(sub, updates, deletes, enc, prefix))
