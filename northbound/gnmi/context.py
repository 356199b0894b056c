"""What the gNMI operations may use: the NETCONF handlers' ServerContext (datastores, schema,
NACM, the session registry) plus the state source and the credential check."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from pygnmi.spec.v080 import gnmi_pb2 as pb

from nf.nacm import Access
from nf.observed import StateSource
from northbound.context import ServerContext
from northbound.gnmi.auth import Authenticator, GnmiSession
from northbound.gnmi.entries import EntryCache

ENCODINGS = (pb.Encoding.JSON_IETF, pb.Encoding.JSON)


class ConfigFeed:
    """Tells every live subscription that running changed (a Datastores on_change hook)."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[Any]] = set()

    def subscribe(self, queue: asyncio.Queue[Any]) -> None:
        """Put ``"config"`` in ``queue`` at every change of running."""
        self._queues.add(queue)

    def unsubscribe(self, queue: asyncio.Queue[Any]) -> None:
        """No more."""
        self._queues.discard(queue)

    def changed(self, *_: Any) -> None:
        """The on_change hook: running changed."""
        for q in list(self._queues):
            put_coalesced(q, ("config", None))


# events a subscription may hold before they are folded (a client that stops reading must not
# grow the server's memory: ON_CHANGE diffs against the newest state anyway)
EVENT_CAP = 64


def put_coalesced(queue: asyncio.Queue[Any], item: tuple[str, Any], cap: int = EVENT_CAP) -> None:
    """Queue an ON_CHANGE event (``("config", None)`` or ``("state", snapshot)``); a queue at
    ``cap`` is first folded into at most one config event and the newest state."""
    if queue.qsize() >= cap:
        config, state = False, None
        while not queue.empty():
            kind, value = queue.get_nowait()
            config |= kind == "config"
            state = (kind, value) if kind == "state" else state
        if config:
            queue.put_nowait(("config", None))
        if state is not None:
            queue.put_nowait(state)
    queue.put_nowait(item)


@dataclass(frozen=True, kw_only=True)
class GnmiContext:
    """The services of the gNMI operations (built by the composition root)."""

    ctx: ServerContext
    state: StateSource
    auth: Authenticator
    config: ConfigFeed = field(default_factory=ConfigFeed)
    #: the SA table as the last Get of each reader rendered it (northbound/gnmi/entries.py)
    entries: EntryCache = field(default_factory=EntryCache)

    def access(self, session: GnmiSession) -> Access:
        """The NACM rights of the caller under the rules in running."""
        return self.ctx.access(session)


def now_ns() -> int:
    """A gNMI timestamp: nanoseconds since the epoch."""
    return time.time_ns()
