"""The observed (operational) state as every front reads it: one snapshot, one change feed.

The state engine (``southbound/state_engine.py``) implements :class:`StateSource`: it caches
what the daemon reports (SA tables, counters, task processing) with the reconciler's apply
status, refreshes it when an SA event or an apply-status change says it is out of date, on
demand when it is older than the reader accepts, and on a sampling period. NETCONF ``<get>``
and ``<get-data>``, gNMI Get/Subscribe and YANG-Push all read it through this seam, so they
see the same snapshot.

``tree`` is the config-false content of ``/ike`` as plain data in the YANG model's names
(containers as dicts, lists as lists of dicts, leaf-lists as lists), exactly what
:func:`nf.state.to_xml` renders.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

#: Seconds: how old a snapshot a read of any front accepts before the daemon is read again
#: (NETCONF <get>/<get-data>, gNMI Get, YANG-Push updates). SA events and actions make the
#: snapshot out of date at once, whatever its age; counters and countdowns may be this old
#: (``/ike/apply-status/state-read-time`` says when the daemon was read).
READ_MAX_AGE = 1.0

#: Seconds: how old a snapshot the fronts' reads (NETCONF <get>/<get-data>, gNMI Get) still
#: take *at once* while the engine reads the daemon again in the background
#: (stale-while-revalidate, ``snapshot(max_stale=...)``): older than :data:`READ_MAX_AGE` but
#: not older than this, and nothing (an SA event, an action) made it out of date. 5 s is the
#: default sampling period (``serve --state-interval``): what a subscriber's counters may
#: already be between two samples; it covers the gap between the polls of a monitoring client
#: polling every few seconds (it never waits for a read of the whole table), and a reader
#: after a longer quiet spell waits for a fresh read rather than getting anything older.
READ_MAX_STALE = 5.0


#: Leaves that change with the clock alone (not a change of content).
CLOCK = frozenset({"established-time", "rekey-time", "reauth-time", "installed-time",
                   "life-time", "use-in", "use-out", "state-read-time",
                   # RFC 9061's IKE case (nf/i2nsf_ike_state.py)
                   "established", "current-rekey-time", "current-reauth-time"})


_GONE = object()


def steady(value: Any) -> Any:
    """``value`` without the :data:`CLOCK` leaves: what a change of content is judged on."""
    if isinstance(value, Mapping):
        return {k: steady(v) for k, v in value.items() if k not in CLOCK}
    if isinstance(value, list):
        return [steady(v) for v in value]
    return value


def same_content(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` are equal leaving out the :data:`CLOCK` leaves (``steady(a) ==
    steady(b)``), without copying either: a shared subtree (``is``: each VPN's effective view
    is cached between refreshes) costs nothing, and the walk stops at the first difference.
    A copy of the whole tree per refresh was most of a read's time with thousands of VPNs.

    Two dicts with the same keys in the same order (an SA entry read again: a copy of its last
    conversion with the clock values renewed) are compared as their lists of values, in C,
    once the clock leaves are taken out and the nested dicts and lists found the same; a walk
    over every key in Python was most of the check after a read of 1,000 SAs."""
    if a is b:
        return True
    if type(a) is dict and type(b) is dict:
        keys = tuple(a)
        if keys == tuple(b):
            return _same_values(keys, list(a.values()), list(b.values()))
    elif type(a) is list:
        return type(b) is list and len(a) == len(b) and all(map(same_content, a, b))
    return _same_walk(a, b)


#: per key order of a dict: the places of its clock leaves, and of the values that were
#: dicts or lists when first seen (a place wrongly taken for one costs a comparison more)
_PLACES: dict[tuple[str, ...], tuple[tuple[int, ...], tuple[int, ...]]] = {}


def _same_values(keys: tuple[str, ...], va: list[Any], vb: list[Any]) -> bool:
    places = _PLACES.get(keys)
    if places is None:
        if len(_PLACES) > 256:  # (a few shapes in practice)
            _PLACES.clear()
        clocks = tuple(i for i, k in enumerate(keys) if k in CLOCK)
        places = _PLACES[keys] = (clocks, tuple(
            i for i, v in enumerate(va) if i not in clocks and type(v) in (dict, list)))
    for i in places[0]:
        va[i] = vb[i] = None
    for i in places[1]:
        v, w = va[i], vb[i]
        if v is w or (type(v) in (dict, list) and same_content(v, w)):
            va[i] = vb[i] = None
    return va == vb


def _same_walk(a: Any, b: Any) -> bool:
    """:func:`same_content` key by key (any mapping, keys in any order)."""
    if isinstance(a, Mapping):
        if not isinstance(b, Mapping):
            return False
        for k, v in a.items():
            if k in CLOCK:
                continue
            w = b.get(k, _GONE)
            if v is w or v == w:  # a leaf (or a subtree equal clocks and all): no call
                continue
            if w is _GONE or not isinstance(v, (Mapping, list)) or not same_content(v, w):
                return False
        return all(k in a for k in b if k not in CLOCK)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same_content, a, b))
    return a == b


def same_shape(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` are equal but for the values of their :data:`CLOCK` leaves,
    which must be there (and None or not) in both alike: the same entry, its ages and
    countdowns moved. What can be rendered once and then have only those values renewed
    (per-entry renderings of the SA table, northbound/gnmi/entries.py and nf/state.py).
    Snapshot trees are plain dicts and lists: ``==`` compares a subtree in C first."""
    if a is b:
        return True
    if type(a) is dict:
        if type(b) is not dict or len(a) != len(b):
            return False
        for k, v in a.items():
            w = b.get(k, _GONE)
            if v == w:
                continue
            if w is _GONE:
                return False
            if type(v) is dict or type(v) is list:
                if not same_shape(v, w):
                    return False
            elif (k not in CLOCK or type(w) is dict or type(w) is list
                  or (v is None) != (w is None)):
                return False
        return True
    if type(a) is list:
        return type(b) is list and len(a) == len(b) and all(map(same_shape, a, b))
    return bool(a == b)


@dataclass(frozen=True, slots=True)
class StateSnapshot:
    """One reading of the operational state.

    ``version`` grows by one each time the content of ``tree`` changes (a reader that saw
    version N and gets N again knows nothing changed; leaves that move only with the clock,
    ages and countdowns such as ``rekey-time``, are fresh in every snapshot but are not a
    change: see ``southbound/state_engine.py``); ``read_at`` is when the daemon was
    last read (None: never); ``stale`` is true when the last read failed and ``tree`` is the
    one before.
    """

    tree: Mapping[str, Any]
    read_at: datetime | None
    stale: bool
    version: int


@dataclass(frozen=True, slots=True)
class StateChange:
    """Why a new snapshot was published: ``reason`` is ``sa-event`` (``event`` is the SA
    event: kind ike|child, event up|down|rekeyed, vpn, peer, unique-id, policy),
    ``apply-status`` (``event``: kind, name, status), ``refresh`` (a sample or an on-demand
    read found the content changed) or ``overflow`` (this subscriber was too slow: its queued
    changes were dropped, ``event`` is ``{"dropped": N}``, and ``snapshot`` is the newest; it
    should resynchronize from it)."""

    reason: str
    snapshot: StateSnapshot
    event: Mapping[str, Any] | None = field(default=None)


class StateSource(Protocol):
    """What the fronts read the operational state from."""

    async def snapshot(self, max_age: float = READ_MAX_AGE,
                       max_stale: float = 0.0) -> StateSnapshot:
        """The state, read again from the daemon first if the cached one is older than
        ``max_age`` seconds or an event made it out of date (bounded in time: a daemon that
        does not answer gives the last snapshot, ``stale``). A snapshot older than
        ``max_age`` but at most ``max_stale`` seconds old that nothing made out of date is
        returned at once, and read again in the background (``read_at`` says how old)."""

    def expire(self) -> None:
        """The daemon's SAs changed (an action ran): the next snapshot reads it again."""

    def changes(self) -> AsyncIterator[StateChange]:
        """Every change from now on, in order, for one subscriber (a slow subscriber skips to
        the newest snapshot rather than holding the others back; SA events are never
        merged away)."""


F = TypeVar("F", bound=Callable[..., Any])


def unwalked(fn: F, then: Callable[[], object] | None = None) -> F:
    """Run ``fn`` with the cyclic collector off, and nothing frozen after: for a state read
    and what is built from it (a reading of 1,000 SAs, the tree, the answer rendered from
    it): many acyclic containers which live a while, freed by their reference count.
    Collected as they were made, each of the dozen gen-0/gen-1 passes such a read set off
    walked what it had built so far, all of it alive (~30 ms a read); the collector walks
    them once after. (Freezing them, as ``nf.gc_pause.paused`` does through ``then``, would
    keep the cyclic garbage made meanwhile by anything else from the collector for as long
    as reads follow each other.) The collector is turned on again after, only if it was on
    before (nested and concurrent pauses leave it as the outermost found it), ``then`` run
    just before."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        was_on = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if was_on:
                if then is not None:
                    then()
                gc.enable()

    return run  # type: ignore[return-value]
