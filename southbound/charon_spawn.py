"""Starting charon so that it dies with us, and stopping the charons an earlier server left.

Every charon is forked by one long-lived thread (:data:`SPAWNER`) with a parent-death signal,
so a ``kill -9`` of the server leaves no charon holding the IKE ports; a charon of the same
run directory left over from an earlier server is found by its environment
(``STRONGSWAN_CONF``) and stopped before a new one starts.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import logging
import os
import queue
import select
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CHARON_BIN = "/usr/lib/ipsec/charon"


# -- spawning: charon dies with us -------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


class _Spawner:
    """One long-lived thread that forks every charon, with a parent-death signal.

    ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` in the child makes the kernel kill charon when its
    parent dies, a ``kill -9`` or a crash of the server included. The "parent" is the *thread*
    that forked: forking from ``asyncio.to_thread`` workers, which may exit, could kill a healthy
    charon. So every fork happens on this daemon thread, which lives as long as the process,
    whatever thread calls :meth:`CharonProcess.start`. The setting survives the ``execve`` of
    ``ip netns exec``, ``unshare`` (no ``--fork``), ``sh -c 'mount ... && exec charon'`` and
    charon (none is set-uid, none forks charon off; see test_charon_process.py).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], list[str],
                                            dict[str, Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._prctl: Any = None

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """``subprocess.Popen(argv, **kwargs)`` on the spawner thread, child bound to us."""
        with self._lock:
            if self._prctl is None:
                prctl = ctypes.CDLL(None, use_errno=True).prctl
                prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                                  ctypes.c_ulong]
                prctl.restype = ctypes.c_int
                self._prctl = prctl
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="charon-spawner",
                                                daemon=True)
                self._thread.start()
        job: concurrent.futures.Future[subprocess.Popen[bytes]] = concurrent.futures.Future()
        self._jobs.put((job, argv, kwargs))
        return job.result()

    def _run(self) -> None:
        while True:
            job, argv, kwargs = self._jobs.get()
            try:
                proc = subprocess.Popen(argv, preexec_fn=self._preexec(os.getpid()),  # noqa: S603
                                        **kwargs)
            except BaseException as exc:  # handed to the caller
                job.set_exception(exc)
            else:
                job.set_result(proc)

    def _preexec(self, parent: int) -> Callable[[], None]:
        prctl, sig = self._prctl, int(signal.SIGKILL)

        def preexec() -> None:  # runs in the child between fork and exec: keep it minimal
            if prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
            if os.getppid() != parent:  # the parent died before prctl: nobody to die with
                os._exit(1)

        return preexec


SPAWNER = _Spawner()
"""The process's one spawner: every charon is forked through it."""


# -- leftovers of an earlier server ------------------------------------------------------------

def _is_charon_of(pid: int, env_entry: bytes, names: frozenset[str]) -> bool:
    """True if ``pid`` runs a charon (by name) whose environment holds ``env_entry``."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        if comm not in names:
            return False
        return env_entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:  # gone, or not ours to read
        return False


def leftover_charons(conf_path: Path, charon_bin: str = CHARON_BIN) -> list[int]:
    """Pids of live charons started with ``STRONGSWAN_CONF=conf_path``, in any network or
    mount namespace of this pid namespace (reading their environment needs root)."""
    entry = b"STRONGSWAN_CONF=" + os.fsencode(str(conf_path))
    names = frozenset({"charon", Path(charon_bin).name[:15]})
    pids = (int(d) for d in os.listdir("/proc") if d.isdigit())
    return [p for p in pids if p != os.getpid() and _is_charon_of(p, entry, names)]


def _wait_pidfd(fd: int, timeout: float) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(int(timeout * 1000)))


def stop_leftover_charons(conf_path: Path, charon_bin: str = CHARON_BIN,
                          timeout: float = 5.0) -> list[int]:
    """Stop every :func:`leftover_charons` (SIGTERM, SIGKILL after ``timeout`` s), with a
    warning each; return their pids. A pidfd pins each process, so a reused pid is never hit."""
    entry = b"STRONGSWAN_CONF=" + os.fsencode(str(conf_path))
    names = frozenset({"charon", Path(charon_bin).name[:15]})
    stopped = []
    for pid in leftover_charons(conf_path, charon_bin):
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            if not _is_charon_of(pid, entry, names):
                continue
            log.warning("a charon of %s is still running (pid %d), left over by an earlier "
                        "server: stopping it, as it holds the IKE ports", conf_path.parent, pid)
            stopped.append(pid)
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    signal.pidfd_send_signal(fd, sig)
                except ProcessLookupError:
                    break
                if _wait_pidfd(fd, timeout):
                    break
                if sig == signal.SIGTERM:
                    log.warning("leftover charon pid %d ignored SIGTERM, killing it", pid)
            else:
                log.error("leftover charon pid %d did not die", pid)
        finally:
            os.close(fd)
    return stopped
