"""Watching tunnels on a charon, for the bring-up benchmarks: which connections got a CHILD
SA up (a VICI ``child-updown`` listener), and clearing every IKE SA between rounds."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

TIMEOUT = 900.0  # seconds a bring-up may take before the bench gives up
REINITIATE = 30.0  # seconds without a CHILD SA before the caller's nudge runs


class Updowns:
    """A VICI ``child-updown`` listener on one charon: which connections got a CHILD SA up."""

    def __init__(self, sock: Path) -> None:
        import vici

        self.up: set[str] = set()
        self.times: list[float] = []  # perf_counter() of each new connection's first CHILD SA
        self.cond = threading.Condition()
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_UNIX)
        self._sock.connect(str(sock))
        self._session = vici.Session(self._sock)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        time.sleep(0.2)  # the registration is answered before the first event can arrive

    def _run(self) -> None:
        self._ready.set()
        for name, msg in self._session.listen(["child-updown"], timeout=0.2):
            if self._stop.is_set():
                break
            if name is None or msg.get("up") != b"yes":
                continue
            now = time.perf_counter()
            with self.cond:
                for k in msg:
                    if k != "up" and k not in self.up:
                        self.up.add(k)
                        self.times.append(now)
                self.cond.notify_all()

    def wait(self, n: int, timeout: float = TIMEOUT,
             nudge: Callable[[set[str]], None] | None = None) -> None:
        """Until n connections had a CHILD SA up; ``nudge(up)`` every REINITIATE seconds."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.up) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SystemExit(f"only {len(self.up)} of {n} CHILD SAs up after {timeout} s")
                if not self.cond.wait_for(lambda: len(self.up) >= n, min(left, REINITIATE)) \
                        and nudge is not None:
                    up = set(self.up)
                    self.cond.release()
                    try:
                        nudge(up)
                    finally:
                        self.cond.acquire()

    def close(self) -> None:
        """Stop listening."""
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


def clear_sas(*socks: Path, timeout: float = 300) -> None:
    """Terminate every IKE SA of these charons and wait until none is left."""
    from southbound.vici_client import ViciClient, ViciError

    deadline = time.monotonic() + timeout
    asked: set[tuple[Path, int]] = set()
    while True:
        left = 0
        for sock in socks:
            with ViciClient(sock, timeout=120) as c:
                for entry in c.list_sas():
                    for sa in entry.values():
                        left += 1
                        uid = int(sa["uniqueid"])
                        if (sock, uid) not in asked:
                            asked.add((sock, uid))
                            try:
                                c.terminate(ike_id=uid, timeout_ms=-1, force=True)
                            except ViciError:  # gone meanwhile (its peer deleted it)
                                pass
        if not left:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"{left} IKE SAs still up {timeout} s after removal")
        time.sleep(0.2)
