"""SA events from charon (VICI ike-updown, child-updown, ike-rekey, child-rekey), as plain dicts.

A daemon thread holds its own VICI session (event streams block it) and hands each event to a
callback on the asyncio loop. It reconnects when charon restarts.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import vici

from southbound.convert import vici_int, vici_str

log = logging.getLogger(__name__)
EVENTS = ["ike-updown", "child-updown", "ike-rekey", "child-rekey"]
SaEvent = dict[str, Any]  # kind (ike|child), event (up|down|rekeyed), vpn, peer, unique-id, policy


def parse(name: str, msg: Mapping[str, Any]) -> list[SaEvent]:
    """The SA events carried by one VICI event message (pure)."""
    out: list[SaEvent] = []
    up = vici_str(msg.get("up", b"no")) == "yes"
    for vpn, sa in msg.items():
        if not isinstance(sa, Mapping):
            continue
        if name == "ike-rekey":
            new = sa.get("new") or {}
            out.append({"kind": "ike", "event": "rekeyed", "vpn": vici_str(vpn),
                        "peer": vici_str(new.get("remote-host", b"")) or None,
                        "unique-id": vici_int(new.get("uniqueid"))})
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


class SaEventListener:
    """Listens to charon's SA events in a thread; ``callback`` runs on ``loop``."""

    def __init__(self, socket_path: str | Path, callback: Callable[[SaEvent], None],
                 loop: asyncio.AbstractEventLoop) -> None:
        self.socket_path = str(socket_path)
        self.callback = callback
        self.loop = loop
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vici-events", daemon=True)

    def start(self) -> None:
        """Start listening."""
        self._thread.start()

    def stop(self) -> None:
        """Stop listening (within about a second)."""
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        while not self._stop.is_set():
            sock = socket.socket(socket.AF_UNIX)
            try:
                sock.connect(self.socket_path)
                for name, msg in vici.Session(sock).listen(EVENTS, timeout=0.5):
                    if self._stop.is_set():
                        return
                    if name is None:  # timeout: a chance to notice stop()
                        continue
                    for ev in parse(vici_str(name), msg):
                        self.loop.call_soon_threadsafe(self.callback, ev)
            except Exception as e:  # charon restarting: try again shortly
                log.debug("VICI event stream: %s", e)
            finally:
                sock.close()
            time.sleep(0.5)
