"""A thread that listens to charon's VICI event stream (its own VICI session) and hands each
event to a subclass; it reconnects when charon restarts and stops within about a second."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import vici

from southbound.convert import vici_str

log = logging.getLogger(__name__)


class ViciEventThread:
    """Listens to the VICI events ``events`` of the charon at ``socket_path`` in a thread;
    :meth:`handle` (run in that thread) gets each one."""

    events: Sequence[str] = ()
    thread_name = "vici-events"

    def __init__(self, socket_path: str | Path) -> None:
        self.socket_path = str(socket_path)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)

    def handle(self, name: str, msg: Mapping[str, Any]) -> None:
        """One event of the stream (in the listening thread)."""
        raise NotImplementedError

    def start(self) -> None:
        """Start listening."""
        self._thread.start()

    def stop(self) -> None:
        """Stop listening (within about a second); nothing to do if it never started (a
        server whose charon did not come up stops before its listeners start)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def _run(self) -> None:
        while not self._stop.is_set():
            sock = socket.socket(socket.AF_UNIX)
            try:
                sock.connect(self.socket_path)
                for name, msg in vici.Session(sock).listen(list(self.events), timeout=0.5):
                    if self._stop.is_set():
                        return
                    if name is None:  # timeout: a chance to notice stop()
                        continue
                    self.handle(vici_str(name), msg)
            except Exception as e:  # charon restarting: try again shortly
                log.debug("VICI %s stream: %s", self.thread_name, e)
            finally:
                sock.close()
            time.sleep(0.5)
