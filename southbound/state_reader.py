"""Reading the daemon's operational state (SA tables) without ever blocking the northbound.

One full read at a time is shared by every concurrent reader; the whole read is bounded by a
timeout (a stopped or wedged daemon included), after which the last state read is returned,
marked stale, and :attr:`StateReader.unresponsive` says why. A targeted read (a few IKE SAs,
after SA events: :meth:`StateReader.read_sas`) has the same bound and gives None on failure.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from southbound.backend import BackendUnavailable
from southbound.status import utc_now

log = logging.getLogger(__name__)

Reading = tuple[dict[str, Any], datetime | None, bool]  # (state, read at, stale)


ReadSas = Callable[[Collection[int], Collection[str], float], dict[str, Any]]


class StateReader:
    """Bounded, shared reads of ``read(timeout)`` (a blocking backend call, run in a thread),
    and bounded targeted reads of ``read_sas(unique_ids, vpns, timeout)`` when the backend
    has them (:meth:`read_sas`)."""

    def __init__(self, read: Callable[[float], dict[str, Any]], timeout: float,
                 read_sas: ReadSas | None = None) -> None:
        self.read_fn = read
        self.read_sas_fn = read_sas
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

    @property
    def targeted(self) -> bool:
        """Whether the backend reads a few IKE SAs on their own (:meth:`read_sas`)."""
        return self.read_sas_fn is not None

    async def read_sas(self, unique_ids: Collection[int], vpns: Collection[str]
                       ) -> dict[str, Any] | None:
        """The backend's targeted read of the IKE SAs ``unique_ids`` and the counters of
        ``vpns`` (what :func:`southbound.state_merge.merge` takes), within the same bound as
        :meth:`read`; None when the daemon does not answer in time or the answer cannot be
        read (:attr:`unresponsive` says why), or the backend has no targeted read."""
        if self.read_sas_fn is None:
            return None
        task = asyncio.ensure_future(asyncio.to_thread(
            self.read_sas_fn, sorted(unique_ids), sorted(vpns), self.timeout))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved
        try:
            part = await asyncio.wait_for(asyncio.shield(task), self.timeout + 0.5)
        except (BackendUnavailable, TimeoutError) as exc:
            self.unresponsive = f"state read failed: {exc or 'no answer in time'}"
            return None
        except Exception as exc:  # an answer we cannot read
            log.exception("reading SAs of the state failed")
            self.unresponsive = f"state read failed: {type(exc).__name__}"
            return None
        self.unresponsive = None
        return part

    def _stale(self) -> Reading:
        if self._last is None:
            return {}, None, True
        return self._last[0], self._last[1], True
