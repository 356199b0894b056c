"""Dynamic subscriptions (RFC 8639) and YANG-Push (RFC 8641) over NETCONF (RFC 8640).

A :class:`Subscription` is a target (the NETCONF event stream, or a datastore with a
selection filter and a trigger: periodic or on-change) and one bounded outbox drained by its
own sender task, so a receiver that reads slowly holds back only its own subscriptions:
when its outbox is full the subscription is suspended (``subscription-suspended``,
insufficient-resources: records are no longer queued), resumed once the receiver has taken
what was queued (``subscription-resumed``; an on-change subscription then sends what changed
since the last update it delivered), and terminated (``suspension-timeout``) if it stays
suspended too long. How a datastore selection is read for its receiver (NACM, filters) is
the caller's: each subscription is given its ``reader``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from nf.observed import StateSource
from nf.schema import SNode
from northbound import push
from northbound.notifications import Notifications, render
from northbound.push_on_change import Tracker
from northbound.subscription_terms import Spec, describe

log = logging.getLogger(__name__)
QUEUE_SIZE = 64  # notifications queued per subscription before it is suspended
SUSPENSION_TIMEOUT = 60.0  # seconds suspended before the subscription is terminated
MIN_PERIOD = 10  # centiseconds: the shortest periodic update interval
MAX_PER_SESSION = 32

Reader = Callable[[], Awaitable[list[etree._Element]]]
Authorize = Callable[[etree._Element], etree._Element | None]


@dataclass(eq=False)
class Subscription:
    """One dynamic subscription of one NETCONF session."""

    id: int
    session: Any
    spec: Spec
    reader: Reader | None
    authorize: Authorize
    backlog: list[tuple[datetime, etree._Element]] = field(default_factory=list)
    outbox: asyncio.Queue[tuple[datetime, etree._Element | None]] = field(
        default_factory=asyncio.Queue)
    dirty: asyncio.Event = field(default_factory=asyncio.Event)
    suspended: bool = False
    ended: bool = False
    patches: int = 0
    sent: int = 0
    excluded_records: int = 0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    config_changed: bool = False  # running changed since the last on-change update
    tracker: Tracker | None = None  # on-change: what was delivered


class Subscriptions:
    """Every dynamic subscription of the server, by id."""

    def __init__(self, notifications: Notifications, top: dict[tuple[str, str], SNode],
                 state: StateSource | None = None, queue_size: int = QUEUE_SIZE,
                 suspension_timeout: float = SUSPENSION_TIMEOUT) -> None:
        self.notifications = notifications
        self.top = top
        self.state = state
        self.queue_size = queue_size
        self.suspension_timeout = suspension_timeout
        self.subs: dict[int, Subscription] = {}
        self._next_id = 1
        self._state_task: asyncio.Task[None] | None = None
        notifications.taps.append(self.event)

    # --- life cycle ------------------------------------------------------------------------

    def of_session(self, session: Any) -> list[Subscription]:
        """The live subscriptions of a session."""
        return [s for s in self.subs.values() if s.session is session]

    def establish(self, session: Any, spec: Spec, reader: Reader | None, authorize: Authorize,
                  backlog: list[tuple[datetime, etree._Element]] | None = None
                  ) -> Subscription:
        """Create a subscription; its notifications start once the caller's reply is sent
        (its tasks first yield to the loop)."""
        sub = Subscription(self._next_id, session, spec, reader, authorize, list(backlog or []))
        self._next_id = self._next_id % 0xFFFFFFFF + 1
        self.subs[sub.id] = sub
        loop = asyncio.get_running_loop()
        sub.tasks.append(loop.create_task(self._sender(sub)))
        self._start(sub)
        return sub

    def _start(self, sub: Subscription) -> None:
        """Start the producer and the stop timer of a (new or modified) subscription."""
        loop = asyncio.get_running_loop()
        spec = sub.spec
        if spec.datastore is not None:
            work = self._periodic(sub) if spec.period is not None else self._on_change(sub)
            sub.tasks.append(loop.create_task(work))
            if spec.on_change and spec.datastore == "operational":
                self._watch_state()
        if spec.stop_time is not None:
            delay = (spec.stop_time - datetime.now(UTC)).total_seconds()
            sub.timers["stop"] = loop.call_later(max(delay, 0.0), self._stopped, sub)

    def _stop_producer(self, sub: Subscription) -> None:
        for task in sub.tasks[1:]:
            task.cancel()
        del sub.tasks[1:]
        stop = sub.timers.pop("stop", None)
        if stop is not None:
            stop.cancel()

    def modify(self, sub: Subscription, spec: Spec, reader: Reader | None) -> None:
        """Apply new terms; a subscription-modified notification tells the receiver, and a
        suspended subscription becomes active again (RFC 8639 section 2.4.3)."""
        self._stop_producer(sub)
        sub.spec, sub.reader = spec, reader
        if sub.suspended:
            self._resume(sub, notify=False)
        self._put(sub, modified(sub))
        self._start(sub)

    def remove(self, sub: Subscription, reason: str | None = None) -> None:
        """End a subscription: at once (delete-subscription, session gone: nothing more is
        sent), or with a subscription-terminated notification of ``reason`` (what was
        queued before it is dropped)."""
        if sub.ended:
            return
        sub.ended = True
        self.subs.pop(sub.id, None)
        self._stop_producer(sub)
        for t in sub.timers.values():
            t.cancel()
        sub.timers.clear()
        if reason is None:
            for task in sub.tasks:
                task.cancel()
            return
        while not sub.outbox.empty():
            sub.outbox.get_nowait()
        sub.outbox.put_nowait((datetime.now(UTC), push.state_notification(
            "subscription-terminated", sub.id, reason)))
        sub.outbox.put_nowait((datetime.now(UTC), None))

    def session_ended(self, session: Any) -> None:
        """Forget the subscriptions of a session that ended (RFC 8640 section 5: nothing is
        sent, the transport is gone)."""
        for sub in self.of_session(session):
            self.remove(sub)

    def resync(self, sub: Subscription) -> None:
        """resync-subscription: the next update of an on-change subscription is a full
        push-update."""
        sub.patches = -1
        sub.dirty.set()

    async def close(self) -> None:
        """Stop everything (server shutdown)."""
        for sub in list(self.subs.values()):
            self.remove(sub)
        if self._state_task is not None:
            self._state_task.cancel()

    # --- the outbox ------------------------------------------------------------------------

    def _put(self, sub: Subscription, body: etree._Element, t: datetime | None = None) -> None:
        """Queue a notification whatever the bound (state change notifications)."""
        sub.outbox.put_nowait((t or datetime.now(UTC), body))

    def offer(self, sub: Subscription, body: etree._Element, t: datetime | None = None) -> bool:
        """Queue an update or event record; False if it was not queued (the subscription is
        suspended, or is suspended now because its outbox is full)."""
        if sub.suspended or sub.ended:
            sub.excluded_records += 1
            return False
        if sub.outbox.qsize() >= self.queue_size:
            sub.suspended = True
            sub.excluded_records += 1
            log.warning("subscription %d (session %s): the receiver does not keep up; "
                        "suspended", sub.id, getattr(sub.session, "session_id", "?"))
            self._put(sub, push.state_notification("subscription-suspended", sub.id,
                                                   "insufficient-resources"))
            sub.timers["suspension"] = asyncio.get_running_loop().call_later(
                self.suspension_timeout, self._suspension_timeout, sub)
            return False
        self._put(sub, body, t)
        return True

    def _resume(self, sub: Subscription, notify: bool = True) -> None:
        sub.suspended = False
        timer = sub.timers.pop("suspension", None)
        if timer is not None:
            timer.cancel()
        if notify:
            self._put(sub, push.state_notification("subscription-resumed", sub.id))
        sub.dirty.set()  # an on-change subscription catches up from its last update

    def _suspension_timeout(self, sub: Subscription) -> None:
        if sub.suspended and not sub.ended:
            log.warning("subscription %d: suspended for %g s; terminated", sub.id,
                        self.suspension_timeout)
            self.remove(sub, "suspension-timeout")

    def _stopped(self, sub: Subscription) -> None:
        """stop-time reached: no more records (subscription-completed is a notification of
        configured subscriptions only, which we do not have): the subscription ends once
        what was queued is sent."""
        if sub.ended:
            return
        sub.ended = True
        self.subs.pop(sub.id, None)
        self._stop_producer(sub)
        sub.outbox.put_nowait((datetime.now(UTC), None))

    async def _send(self, sub: Subscription, t: datetime, body: etree._Element) -> bool:
        if not await sub.session.send_notification(render(t, body)):
            return False
        sub.sent += 1
        self.notifications.sent += 1
        counters = sub.session.data.setdefault("counters", {})
        counters["out-notifications"] = counters.get("out-notifications", 0) + 1
        return True

    async def _sender(self, sub: Subscription) -> None:
        """Deliver the replay, then the outbox in order; resume a suspended subscription
        once the receiver has taken everything queued."""
        await asyncio.sleep(0)  # after the reply to establish-subscription
        try:
            if sub.spec.replay_start is not None:
                backlog, sub.backlog = sub.backlog, []
                for t, body in backlog:
                    allowed = sub.authorize(body)
                    if allowed is not None and _selected(sub.spec, allowed):
                        await self._send(sub, t, allowed)
                await self._send(sub, datetime.now(UTC),
                                 push.state_notification("replay-completed", sub.id))
            while True:
                t, body = await sub.outbox.get()
                if body is None or not await self._send(sub, t, body):
                    break
                if sub.suspended and sub.outbox.empty() and not sub.ended:
                    self._resume(sub)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must not leave a subscription half alive
            log.exception("subscription %d failed", sub.id)
        finally:
            if not sub.ended:
                sub.ended = True
                self.subs.pop(sub.id, None)
                self._stop_producer(sub)

    # --- producers -------------------------------------------------------------------------

    def event(self, t: datetime, body: etree._Element) -> None:
        """An event published on the NETCONF stream: queue it for every stream subscription
        whose receiver may see it (NACM) and whose filter selects it."""
        for sub in list(self.subs.values()):
            spec = sub.spec
            if spec.stream is None or (spec.stop_time is not None and t > spec.stop_time):
                continue
            try:
                allowed = sub.authorize(body)
                if allowed is None:  # RFC 8341 denied-notifications, if it was selected
                    self.notifications.denied += 1 if _selected(spec, body) else 0
                elif _selected(spec, allowed):
                    self.offer(sub, allowed, t)
            except Exception:  # never let one subscription break the publisher
                log.exception("subscription %d: event not delivered", sub.id)

    def config_changed(self) -> None:
        """Running changed: every on-change datastore subscription looks again (at its
        whole view)."""
        for sub in self.subs.values():
            if sub.spec.on_change:
                sub.config_changed = True
                sub.dirty.set()

    def state_changed(self) -> None:
        """The operational state changed: on-change subscriptions on operational look again."""
        for sub in self.subs.values():
            if sub.spec.on_change and sub.spec.datastore == "operational":
                sub.dirty.set()

    def _watch_state(self) -> None:
        if self.state is None or (self._state_task is not None and not self._state_task.done()):
            return
        self._state_task = asyncio.get_running_loop().create_task(self._follow_state())

    async def _follow_state(self) -> None:
        assert self.state is not None
        async for _change in self.state.changes():
            self.state_changed()

    async def _periodic(self, sub: Subscription) -> None:
        """A push-update every period, at anchor-time plus a multiple of the period when an
        anchor is given (RFC 8641 section 3.1); a late tick is skipped, not queued."""
        await asyncio.sleep(0)
        assert sub.reader is not None and sub.spec.period is not None
        period = sub.spec.period / 100
        loop = asyncio.get_running_loop()
        due = loop.time()
        if sub.spec.anchor is not None:
            a, now = sub.spec.anchor.timestamp(), time.time()
            due += (a + math.ceil((now - a) / period) * period) - now
        while True:
            await asyncio.sleep(max(due - loop.time(), 0.0))
            roots = await sub.reader()
            self.offer(sub, push.push_update(sub.id, roots))
            due += period
            if due < loop.time():
                due += math.ceil((loop.time() - due) / period) * period

    async def _on_change(self, sub: Subscription) -> None:
        """The first selection (a push-update when sync-on-start), then a
        push-change-update with what changed since the last update delivered, at most one
        per dampening period (RFC 8641 section 3.2); a new state snapshot alone is compared
        entry by entry (``push_on_change.py``)."""
        await asyncio.sleep(0)
        assert sub.reader is not None
        loop = asyncio.get_running_loop()
        spec = sub.spec
        sub.tracker = tracker = Tracker(sub.reader, self.top)
        sub.config_changed = False
        first = await tracker.read()
        last = -math.inf  # when the last update record was made
        if not spec.sync_on_start:
            tracker.accept()
        elif self.offer(sub, push.push_update(sub.id, first)):
            tracker.accept()
            last = loop.time()
        else:
            tracker.forget()  # not delivered: the next update has everything
        while True:
            await sub.dirty.wait()
            sub.dirty.clear()
            wait = last + spec.dampening / 100 - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                sub.dirty.clear()
            if sub.patches < 0:  # resync-subscription
                sub.patches = 0
                sub.config_changed = False
                if self.offer(sub, push.push_update(sub.id, await tracker.read())):
                    tracker.accept()
                    last = loop.time()
                continue
            config, sub.config_changed = sub.config_changed, False
            edits = await tracker.changes(config)
            wanted = [e for e in edits if e.operation not in spec.excluded]
            if not wanted:  # nothing, or only excluded changes
                tracker.accept()
                continue
            body = push.push_change_update(sub.id, str(sub.patches), wanted)
            if self.offer(sub, body):
                sub.patches += 1
                tracker.accept()
                last = loop.time()
            elif config:
                sub.config_changed = True  # still to be read whole


def _selected(spec: Spec, body: etree._Element) -> bool:
    return push.event_selected(body, spec.stream_subtree, spec.stream_xpath, spec.nsmap)


def modified(sub: Subscription) -> etree._Element:
    """subscription-modified with the subscription's terms (RFC 8639 section 2.7.2)."""
    el = push.state_notification("subscription-modified", sub.id)
    describe(el, sub.spec)
    return el
