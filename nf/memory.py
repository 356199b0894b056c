"""Giving freed memory back to the operating system after large configuration changes.

glibc's malloc keeps what a process frees in its arenas (one per thread that allocated: the
reconciler's VICI threads have their own) and returns it only when a free block happens to
be at the top of the heap. After 10,000 VPNs were loaded and removed, the server's RSS
stayed 230 MiB above its empty level although Python held no more objects than before
(measured: docs/benchmarks.md); ``malloc_trim(0)`` releases the free pages of every arena.
It walks the heap, so it runs in a (daemon) thread, once a change has settled, not per
commit.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import threading
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

try:
    _libc: ctypes.CDLL | None = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _malloc_trim = _libc.malloc_trim
except (OSError, AttributeError):  # not glibc: nothing to do
    _libc, _malloc_trim = None, None


def trim() -> bool:
    """Return the free pages of malloc's arenas to the OS; True if any were returned."""
    return bool(_malloc_trim(0)) if _malloc_trim is not None else False


async def trim_after_changes(size: Callable[[], int],
                             settled: Callable[[], Awaitable[object]],
                             every: float = 2.0, fewer: int = 100) -> None:
    """Forever: when ``size()`` (the number of entries configured) has dropped by ``fewer``
    or more below its highest value since the last trim, wait for ``settled()`` (the backend
    has applied the change, so its payloads are freed too), then trim once. A load frees
    little and is not followed by a trim (a trim takes the allocator's locks: not at every
    commit, nor while a loaded server shuts down). Checked every ``every`` seconds."""
    if _malloc_trim is None:
        return
    high = size()
    while True:
        await asyncio.sleep(every)
        now = size()
        high = max(high, now)
        if high - now < fewer:
            continue
        try:
            await settled()
        except Exception:  # noqa: BLE001 - trimming is an optimisation: never fail on it
            log.debug("waiting for the change to settle failed", exc_info=True)
        high = size()
        await _in_daemon_thread(trim)


async def _in_daemon_thread(fn: Callable[[], object]) -> None:
    """Run ``fn`` in a daemon thread: a shutdown does not wait for it (the default executor's
    threads are joined at exit, and a trim of a large heap can take a second or two)."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def run() -> None:
        try:
            fn()
        finally:
            try:
                loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))
            except RuntimeError:  # the loop is closed: the server is shutting down
                pass

    threading.Thread(target=run, name="malloc-trim", daemon=True).start()
    await done
