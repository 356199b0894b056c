"""TEMPORARY: a StateSource over ``ServerContext.read_state`` until the state engine
(southbound/state_engine.py) gives ``ServerContext.state``. The composition root uses it only
when the context has no ``state`` field; delete this module and that fallback then.

It reads the daemon again when the cached state is older than asked, and while someone
listens to ``changes()`` it re-reads every ``period`` seconds and publishes each reading
whose content differs from the one before (reason ``refresh``: it sees no SA events itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from nf.observed import StateChange, StateSnapshot

VOLATILE = ("state-read-time",)  # apply-status leaves that change at every reading


def _content(tree: dict[str, Any]) -> dict[str, Any]:
    status = tree.get("apply-status")
    if isinstance(status, dict):
        tree = {**tree, "apply-status": {k: v for k, v in status.items() if k not in VOLATILE}}
    return tree


class ReadStateSource:
    """A polling StateSource (see the module's docstring)."""

    def __init__(self, read_state: Callable[[], Awaitable[dict[str, Any]]],
                 period: float = 0.5) -> None:
        self._read = read_state
        self.period = period
        self._snap = StateSnapshot({}, None, True, 0)
        self._at = float("-inf")
        self._lock = asyncio.Lock()
        self._listeners: set[asyncio.Queue[StateChange]] = set()
        self._poller: asyncio.Task[None] | None = None

    async def snapshot(self, max_age: float = 1.0) -> StateSnapshot:
        """The cached state, read again when older than ``max_age`` seconds."""
        async with self._lock:
            if time.monotonic() - self._at <= max_age:
                return self._snap
            tree = await self._read()
            self._at = time.monotonic()
            stale = bool(tree.get("apply-status", {}).get("state-stale", False))
            changed = _content(tree) != _content(dict(self._snap.tree))
            version = self._snap.version + (1 if changed else 0)
            self._snap = StateSnapshot(tree, datetime.now(UTC), stale, version)
            if changed:
                for q in self._listeners:
                    q.put_nowait(StateChange("refresh", self._snap))
            return self._snap

    async def _poll(self) -> None:
        while self._listeners:
            await self.snapshot(0.0)
            await asyncio.sleep(self.period)

    async def changes(self) -> AsyncIterator[StateChange]:
        """Every new reading whose content changed, from now on."""
        q: asyncio.Queue[StateChange] = asyncio.Queue()
        self._listeners.add(q)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll())
        try:
            while True:
                yield await q.get()
        finally:
            self._listeners.discard(q)
            if not self._listeners and self._poller is not None:
                self._poller.cancel()
                with contextlib.suppress(BaseException):
                    await self._poller
                self._poller = None
