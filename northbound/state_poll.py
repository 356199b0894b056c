"""TEMPORARY: a :class:`nf.observed.StateSource` built on ``App.read_state``, for YANG-Push
until the state engine (``southbound/state_engine.py``) lands; then ``tools/app.py`` hands
the engine to ``Subscriptions`` instead and this module goes.

It reads the state on demand (at most ``max_age`` old) and, while someone follows
:meth:`changes`, every ``period`` seconds and soon after each SA event of the NETCONF stream
(:meth:`on_event`, a tap of ``Notifications``), publishing a change when the tree differs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from nf.observed import StateChange, StateSnapshot

EVENT_REREAD = (0.2, 1.0)  # seconds after an SA event: charon may still list a dying SA


class PolledState:
    """A StateSource over a ``read_state`` coroutine (temporary, see the module)."""

    def __init__(self, read: Callable[[], Awaitable[dict[str, Any]]],
                 period: float = 2.0) -> None:
        self._read = read
        self.period = period
        self._snap = StateSnapshot({}, None, True, 0)
        self._at: float | None = None
        self._lock = asyncio.Lock()
        self._followers: set[asyncio.Queue[StateChange]] = set()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def snapshot(self, max_age: float = 1.0) -> StateSnapshot:
        """The state, read again if the last reading is older than ``max_age``."""
        async with self._lock:
            if self._at is None or time.monotonic() - self._at > max_age:
                await self._refresh()
            return self._snap

    async def _refresh(self) -> None:
        tree = await self._read()
        self._at = time.monotonic()
        changed = tree != self._snap.tree
        stale = bool(tree.get("apply-status", {}).get("state-stale", False))
        self._snap = StateSnapshot(tree, datetime.now(UTC), stale,
                                   self._snap.version + (1 if changed else 0))
        if changed:
            change = StateChange("refresh", self._snap)
            for q in self._followers:
                if q.full():  # a slow follower skips to the newest snapshot
                    q.get_nowait()
                q.put_nowait(change)

    def changes(self) -> AsyncIterator[StateChange]:
        """Every change from now on (a follower that lags sees only the newest)."""
        return self._follow()

    async def _follow(self) -> AsyncIterator[StateChange]:
        q: asyncio.Queue[StateChange] = asyncio.Queue(maxsize=1)
        self._followers.add(q)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._poll())
        try:
            while True:
                yield await q.get()
        finally:
            self._followers.discard(q)

    async def _poll(self) -> None:
        while self._followers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.period)
            self._wake.clear()
            async with self._lock:
                await self._refresh()

    def on_event(self, t: datetime, body: etree._Element) -> None:
        """An event of the NETCONF stream: an SA event makes the state be read again soon."""
        if not etree.QName(body).localname.endswith("-sa-event"):
            return
        loop = asyncio.get_running_loop()
        for delay in EVENT_REREAD:
            loop.call_later(delay, self._wake.set)
