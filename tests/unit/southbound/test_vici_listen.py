"""The VICI event-stream thread (southbound/vici_listen.py): it can be stopped before it was
started (a server whose charon never came up stops before its listeners start), and a started
one stops within its second even when no charon listens on the socket."""

from __future__ import annotations

import time
from pathlib import Path

from southbound.vici_listen import ViciEventThread


class Events(ViciEventThread):
    events = ("ike-updown",)

    def handle(self, name: str, msg: object) -> None:  # pragma: no cover - no charon here
        raise AssertionError("no event expected")


def test_stop_before_start_is_quiet(tmp_path: Path) -> None:
    Events(tmp_path / "none.vici").stop()


def test_a_started_listener_stops_without_charon(tmp_path: Path) -> None:
    ev = Events(tmp_path / "none.vici")
    ev.start()
    t0 = time.monotonic()
    ev.stop()
    assert not ev._thread.is_alive()
    assert time.monotonic() - t0 < 2.5
