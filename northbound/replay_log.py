"""The replay log of the NETCONF event stream (RFC 5277 section 3.2.5, RFC 8639 replay).

Events are kept as their serialized XML, not as lxml trees: a config-change event of a bulk
commit names every entry it touched, and as a tree one such event of 10,000 VPNs held 7 MiB
(as text: 1.05 MiB). Kept as trees, the events of a few load/remove cycles made the
server's memory grow cycle after cycle until the bound; as text the same bound holds five
times the events. A replay (rare: a subscription with a start time) parses the events it
selects back.

The log is bounded by a number of events and by their total size in bytes; the oldest go
first, but the newest event is always kept whatever its size. ``aged_time`` is the time of
the oldest event kept once any event was dropped (RFC 8639's ``replay-log-aged-time``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from datetime import datetime

from lxml import etree

LOG_SIZE = 1000  # events
LOG_BYTES = 8 * 1024 * 1024  # their serialized XML


class ReplayLog:
    """Events ``(time, body)`` kept for replay, oldest first."""

    def __init__(self, size: int = LOG_SIZE, max_bytes: int = LOG_BYTES) -> None:
        self.maxlen = size
        self.max_bytes = max_bytes
        self._events: deque[tuple[datetime, bytes]] = deque()
        self.bytes = 0  # the serialized size of the events kept
        self.dropped = 0  # events dropped to keep the bounds

    def __repr__(self) -> str:
        return f"ReplayLog(events={len(self._events)}, bytes={self.bytes})"

    def __len__(self) -> int:
        return len(self._events)

    def append(self, t: datetime, body: etree._Element) -> None:
        """Keep an event; drop the oldest ones beyond the bounds."""
        data = etree.tostring(body)
        self._events.append((t, data))
        self.bytes += len(data)
        while len(self._events) > 1 and (len(self._events) > self.maxlen
                                         or self.bytes > self.max_bytes):
            _, old = self._events.popleft()
            self.bytes -= len(old)
            self.dropped += 1

    @property
    def aged_time(self) -> datetime | None:
        """The oldest event's time once an event was dropped (else None: nothing aged)."""
        return self._events[0][0] if self.dropped and self._events else None

    @property
    def oldest_time(self) -> datetime | None:
        """The time of the oldest event kept, if any."""
        return self._events[0][0] if self._events else None

    def between(self, start: datetime,
                stop: datetime | None = None) -> list[tuple[datetime, etree._Element]]:
        """The events from ``start`` to ``stop`` (inclusive), parsed back, oldest first."""
        return [(t, etree.fromstring(data)) for t, data in self._events
                if t >= start and (stop is None or t <= stop)]

    def __iter__(self) -> Iterator[tuple[datetime, etree._Element]]:
        """Every event kept, parsed back, oldest first."""
        for t, data in list(self._events):
            yield t, etree.fromstring(data)
