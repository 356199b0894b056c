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

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

#: Seconds: how old a snapshot a read of any front accepts before the daemon is read again
#: (NETCONF <get>/<get-data>, gNMI Get, YANG-Push updates). SA events and actions make the
#: snapshot out of date at once, whatever its age; counters and countdowns may be this old
#: (``/ike/apply-status/state-read-time`` says when the daemon was read).
READ_MAX_AGE = 1.0


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

    async def snapshot(self, max_age: float = READ_MAX_AGE) -> StateSnapshot:
        """The state, read again from the daemon first if the cached one is older than
        ``max_age`` seconds or an event made it out of date (bounded in time: a daemon that
        does not answer gives the last snapshot, ``stale``)."""

    def expire(self) -> None:
        """The daemon's SAs changed (an action ran): the next snapshot reads it again."""

    def changes(self) -> AsyncIterator[StateChange]:
        """Every change from now on, in order, for one subscriber (a slow subscriber skips to
        the newest snapshot rather than holding the others back; SA events are never
        merged away)."""
