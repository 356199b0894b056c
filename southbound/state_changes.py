"""The state engine's change feed: each subscriber's bounded queue of state changes.

Each subscriber (:meth:`ChangeFeed.changes`) has a queue of ``size`` changes. A ``refresh``
change replaces the ``refresh`` changes still queued (the newest snapshot supersedes them).
Event changes are kept in order; when a subscriber is so slow that its queue is full, the
queue is replaced by one change of reason ``overflow`` whose ``event`` is ``{"dropped": N}``
(N changes were not delivered) and whose snapshot is the newest: the subscriber knows it
missed events and resynchronizes from that snapshot. Nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import AsyncIterator

from nf.observed import StateChange


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


class ChangeFeed:
    """The subscribers of the state changes (see the module docstring)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._subs: weakref.WeakSet[_Subscriber] = weakref.WeakSet()

    def __len__(self) -> int:
        """How many subscribers there are."""
        return len(self._subs)

    def changes(self) -> AsyncIterator[StateChange]:
        """Every change published from now on, for one new subscriber."""
        sub = _Subscriber(self.size)
        self._subs.add(sub)
        return self._iterate(sub)

    def publish(self, change: StateChange) -> None:
        """Queue ``change`` for every subscriber."""
        for sub in list(self._subs):
            sub.put(change)

    async def _iterate(self, sub: _Subscriber) -> AsyncIterator[StateChange]:
        try:
            while True:
                yield await sub.get()
        finally:
            self._subs.discard(sub)
