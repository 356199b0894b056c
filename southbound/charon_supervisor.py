"""Keep charon alive: :class:`CharonSupervisor` restarts it when it dies (with back-off) and
tells the reconciler to put the world back."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from southbound.charon import CharonError, CharonProcess

log = logging.getLogger(__name__)


STABLE = 30.0  # seconds charon must stay up before restarts are quick again


class CharonSupervisor:
    """Restart charon when it dies and tell the reconciler to put the world back.

    ``on_restart`` is called (in the event loop) after each restart, e.g.
    ``reconciler.resync``.
    """

    def __init__(self, charon: CharonProcess, on_restart: Callable[[], None] | None = None,
                 interval: float = 0.5, max_backoff: float = 10.0) -> None:
        self.charon = charon
        self.on_restart = on_restart
        self.interval = interval
        self.max_backoff = max_backoff
        self.restarts = 0
        self._stopping = False

    async def run(self) -> None:
        """Watch charon forever (cancel the task to stop); start it if it is not running.

        Restarts back off exponentially until charon has stayed up for ``STABLE`` seconds, so
        a charon that dies right after each start is not restarted in a tight loop.
        """
        backoff = self.interval
        started_at = time.monotonic()
        while not self._stopping:
            if not self.charon.alive():
                first = self.charon.pid is None and self.restarts == 0
                if not first and time.monotonic() - started_at < STABLE:
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                elif not first:
                    backoff = self.interval
                if self._stopping:
                    break
                try:
                    await asyncio.to_thread(self.charon.start)
                except (CharonError, OSError) as exc:
                    log.error("cannot start charon: %s", exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
                started_at = time.monotonic()
                if not first:
                    self.restarts += 1
                    log.warning("charon restarted (restart #%d)", self.restarts)
                if self.on_restart is not None:
                    self.on_restart()
            await asyncio.sleep(self.interval)

    def stop(self) -> None:
        """Stop watching and stop charon (blocking: call it from a thread in async code)."""
        self._stopping = True
        self.charon.stop()
