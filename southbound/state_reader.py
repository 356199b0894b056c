"""Reading the daemon's operational state (SA tables) without ever blocking the northbound.

One request at a time is shared by every concurrent reader; the whole read is bounded by a
timeout (a stopped or wedged daemon included), after which the last state read is returned,
marked stale, and :attr:`StateReader.unresponsive` says why.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from southbound.backend import BackendUnavailable
from southbound.status import utc_now

log = logging.getLogger(__name__)

Reading = tuple[dict[str, Any], datetime | None, bool]  # (state, read at, stale)


class StateReader:
    """Bounded, shared reads of ``read(timeout)`` (a blocking backend call, run in a thread)."""

    def __init__(self, read: Callable[[float], dict[str, Any]], timeout: float) -> None:
        self.read_fn = read
        self.timeout = timeout
        self.unresponsive: str | None = None  # why the last read failed, None when it worked
        self._last: tuple[dict[str, Any], datetime] | None = None
        self._task: asyncio.Future[dict[str, Any]] | None = None
        self._started = 0.0

    def __repr__(self) -> str:
        return f"StateReader(timeout={self.timeout}, unresponsive={self.unresponsive!r})"

    async def read(self) -> Reading:
        """The daemon's state, or the last one read (stale) when it does not answer in time."""
        task = self._task
        # join a read in flight, unless it is older than the bound (stuck: left to its timeout)
        if task is None or task.done() or time.monotonic() - self._started > self.timeout:
            self._started = time.monotonic()
            task = self._task = asyncio.ensure_future(
                asyncio.to_thread(self.read_fn, self.timeout))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved
        try:
            state = await asyncio.wait_for(asyncio.shield(task), self.timeout + 0.5)
        except (BackendUnavailable, TimeoutError) as exc:
            self.unresponsive = f"state read failed: {exc or 'no answer in time'}"
            return self._stale()
        except Exception as exc:  # an answer we cannot read: show the last one, stale
            log.exception("reading the SA state failed")
            self.unresponsive = f"state read failed: {type(exc).__name__}"
            return self._stale()
        self.unresponsive = None
        self._last = (state, utc_now())
        return state, self._last[1], False

    def _stale(self) -> Reading:
        if self._last is None:
            return {}, None, True
        return self._last[0], self._last[1], True
