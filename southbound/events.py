"""SA events from charon (VICI ike-updown, child-updown, ike-rekey, child-rekey), as plain dicts.

A daemon thread holds its own VICI session (event streams block it) and hands each event to a
callback on the asyncio loop. It reconnects when charon restarts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from southbound.convert import vici_int, vici_str
from southbound.vici_listen import ViciEventThread

log = logging.getLogger(__name__)
EVENTS = ["ike-updown", "child-updown", "ike-rekey", "child-rekey"]
#: kind (ike|child), event (up|down|rekeyed), vpn, peer, unique-id (the IKE SA's; of an
#: ike-rekey the new one's), old-unique-id (ike-rekey only: the replaced IKE SA, which goes
#: away), policy (child events). The state engine reads again only the IKE SAs named.
SaEvent = dict[str, Any]


def parse(name: str, msg: Mapping[str, Any]) -> list[SaEvent]:
    """The SA events carried by one VICI event message (pure)."""
    out: list[SaEvent] = []
    up = vici_str(msg.get("up", b"no")) == "yes"
    for vpn, sa in msg.items():
        if not isinstance(sa, Mapping):
            continue
        if name == "ike-rekey":
            new, old = sa.get("new") or {}, sa.get("old") or {}
            out.append({"kind": "ike", "event": "rekeyed", "vpn": vici_str(vpn),
                        "peer": vici_str(new.get("remote-host", b"")) or None,
                        "unique-id": vici_int(new.get("uniqueid")),
                        "old-unique-id": vici_int(old.get("uniqueid"))})
            continue
        base = {"vpn": vici_str(vpn), "peer": vici_str(sa.get("remote-host", b"")) or None,
                "unique-id": vici_int(sa.get("uniqueid"))}
        if name == "ike-updown":
            out.append({"kind": "ike", "event": "up" if up else "down", **base})
        for child in (sa.get("child-sas") or {}).values():
            if name == "child-updown":
                out.append({"kind": "child", "event": "up" if up else "down",
                            "policy": vici_str(child.get("name", b"")), **base})
            elif name == "child-rekey":
                new = child.get("new") or {}
                out.append({"kind": "child", "event": "rekeyed",
                            "policy": vici_str(new.get("name", b"")), **base})
    return out


class SaEventListener(ViciEventThread):
    """Listens to charon's SA events in a thread; ``callback`` runs on ``loop``."""

    events = EVENTS

    def __init__(self, socket_path: str | Path, callback: Callable[[SaEvent], None],
                 loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(socket_path)
        self.callback = callback
        self.loop = loop

    def handle(self, name: str, msg: Mapping[str, Any]) -> None:
        """Each SA event of the message, to ``callback`` on the loop."""
        for ev in parse(name, msg):
            self.loop.call_soon_threadsafe(self.callback, ev)
