"""The gateway's long-lived objects kept out of the cyclic garbage collector's way.

A server holding 10,000 VPNs holds millions of Python objects (the datastores' dicts, the
effective config, the reconciler's records), nearly all of them alive until the next change
of the entries they stand for. CPython's collector walks all of them at every full
collection, and a bulk load sets off several (the 25% rule: a full pass whenever the objects
that survived into the oldest generation grow by a quarter): measured at 10,000 VPNs over
NETCONF, 2-4 full passes of 0.5-0.8 s each per load, on top of a first pass of 0.3 s over
the young objects an edit made while the collector was paused (nf/gc_pause.py), so a later
load, with more survivors to walk, cost more than the first.

:func:`freeze` (called when a datastore operation that made many objects ends: a bulk edit
or commit) moves every object alive into the permanent generation (:func:`gc.freeze`: a list
splice, no walk): later passes walk only what was made since. Frozen objects are still freed
by their reference count as before; only cyclic garbage among them waits, until :func:`thaw`
gives them back to the collector: once the server has had no datastore operation for
:data:`QUIET` seconds and the backend has applied every change (:func:`thaw_when_quiet`),
and when a large removal is applied, before the heap is trimmed (:func:`collected_after`;
nf/memory.py).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable

QUIET = 5.0  # seconds without a datastore operation before the frozen objects are thawed
# young objects an operation must have left for a freeze: a bulk change (1,000 VPNs leave
# ~10,000), not a one-entry commit (whose few survivors the collector walks cheaply)
FREEZE_MIN = 5_000

_frozen_at: float | None = None  # time.monotonic() of the last freeze not thawed since


def freeze(least: int | None = None) -> bool:
    """Move every object alive into the permanent generation (not walked by collections),
    when at least ``least`` (default :data:`FREEZE_MIN`) objects were made since the last
    collection; True if done."""
    global _frozen_at
    if gc.get_count()[0] < (FREEZE_MIN if least is None else least):
        return False
    gc.freeze()
    _frozen_at = time.monotonic()
    return True


def thaw(collect: bool = False) -> None:
    """Give the frozen objects back to the collector (the oldest generation); with
    ``collect``, run a full collection at once (cyclic garbage among them is freed)."""
    global _frozen_at
    _frozen_at = None
    gc.unfreeze()
    if collect:
        gc.collect()


def frozen() -> int:
    """How many objects are frozen now."""
    return gc.get_freeze_count()


async def collected_after(settled: Awaitable[object]) -> None:
    """Wait for ``settled`` (a removal applied), then thaw and collect: the removed entries'
    cyclic garbage, if any, is freed before the heap is trimmed (nf/memory.py)."""
    await settled
    if frozen():
        thaw(collect=True)


async def thaw_when_quiet(settled: Callable[[], bool], quiet: float = QUIET,
                          every: float = 1.0) -> None:
    """Forever: thaw once no freeze happened for ``quiet`` seconds and ``settled()`` (the
    backend has applied every change: a load's own work is done), checked every ``every``
    seconds; the collector then takes its usual course over them."""
    while True:
        await asyncio.sleep(every)
        at = _frozen_at
        if at is not None and time.monotonic() - at >= quiet and settled():
            thaw()
