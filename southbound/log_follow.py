"""The lines a daemon appends to its log file, followed in a thread (``tail -F``-like).

charon writes its filelog line by line (``flush_line``). The follower reads what was added
every :data:`EVERY` seconds and hands each whole line on. A file that became shorter than
what was read (emptied, or made anew) is read again from its start.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

EVERY = 0.2  # seconds between two reads
CHUNK = 1 << 20  # bytes read at most at once


class FollowedLog:
    """Hands each line appended to ``path`` after :meth:`start` to ``each`` (in a thread; a
    missing file is waited for)."""

    def __init__(self, path: str | Path, each: Callable[[str], None], name: str,
                 every: float = EVERY) -> None:
        self.path = Path(path)
        self.each = each
        self.every = every
        self._offset = 0
        self._partial = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Follow from the file's present end (what it held before is not handed on)."""
        try:
            self._offset = self.path.stat().st_size
        except OSError:
            self._offset = 0
        self._thread.start()

    def stop(self) -> None:
        """Stop following (within :attr:`every` seconds), after one last read."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def poll(self) -> None:
        """Read what was appended since the last read and hand on its whole lines."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return  # not (yet) there
        try:
            if os.fstat(fd).st_size < self._offset:
                self._offset, self._partial = 0, b""  # emptied or made anew
            while chunk := os.pread(fd, CHUNK, self._offset):
                self._offset += len(chunk)
                *lines, self._partial = (self._partial + chunk).split(b"\n")
                for line in lines:
                    self.each(line.decode("utf-8", "replace"))
        finally:
            os.close(fd)

    def _run(self) -> None:
        while True:
            stopping = self._stop.wait(self.every)
            try:
                self.poll()
            except Exception:  # one bad read must not end the following
                log.exception("reading %s", self.path)
            if stopping:
                return
