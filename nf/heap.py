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
by their reference count as before; only cyclic garbage among them waits, until
:func:`settle` collects it: once the server has had no datastore operation for :data:`QUIET`
seconds and the backend has applied every change (:func:`thaw_when_quiet`), and when a large
removal is applied, before the heap is trimmed (:func:`collected_after`; nf/memory.py).

:func:`settle` thaws, collects in full once, and freezes what is left again. Giving the
loaded configuration back to the collector for good made every later full pass walk it
again, and the state engine's reads set such passes off: each read of 1,000 SAs leaves new
survivors (its snapshot; the last one's are freed by their reference count), so that every
fourth read or so came with a full pass of ~175 ms over the whole heap that found nothing
(measured: a gNMI Get waiting for a read took 500 ms instead of 300). Operations too small
to freeze mark the heap changed; it is settled once quiet, at most every :data:`SETTLE_EVERY`
seconds for them (a pass over 10,000 VPNs takes ~1 s of the event loop).
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

SETTLE_EVERY = 600.0  # seconds: the least time between two settles for small operations only
_frozen_at: float | None = None  # time.monotonic() of the last freeze not settled since
_changed_at: float | None = None  # the last small operation's, not settled since
_settled_at = float("-inf")


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


def changed() -> None:
    """Mark the heap changed by an operation too small to freeze (its cyclic garbage, if
    any, among frozen objects waits for the next :func:`settle`)."""
    global _changed_at
    _changed_at = time.monotonic()


def settle() -> None:
    """Thaw, collect in full (the cyclic garbage among the frozen objects is freed), and
    freeze what is left: later passes walk only what is made after."""
    global _frozen_at, _changed_at, _settled_at
    _frozen_at = _changed_at = None
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _settled_at = time.monotonic()


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
    """Wait for ``settled`` (a removal applied), then :func:`settle`: the removed entries'
    cyclic garbage, if any, is freed before the heap is trimmed (nf/memory.py)."""
    await settled
    if frozen():
        settle()


async def thaw_when_quiet(settled: Callable[[], bool], quiet: float = QUIET,
                          every: float = 1.0, settle_every: float | None = None) -> None:
    """Forever: :func:`settle` once no freeze happened for ``quiet`` seconds and
    ``settled()`` (the backend has applied every change: a load's own work is done), checked
    every ``every`` seconds; after small operations only (:func:`changed`), likewise but at
    most every ``settle_every`` seconds (default :data:`SETTLE_EVERY`)."""
    while True:
        await asyncio.sleep(every)
        now = time.monotonic()
        at = _frozen_at
        if at is None and _changed_at is not None and now - _settled_at >= (
                SETTLE_EVERY if settle_every is None else settle_every):
            at = _changed_at
        if at is not None and now - at >= quiet and settled():
            settle()
