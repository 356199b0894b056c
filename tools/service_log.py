"""How `ipsec-nf serve` logs and tells systemd it is ready: to the journal with priorities
when stderr is the journal's stream, else plain lines; ``sd_notify`` over $NOTIFY_SOCKET."""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any

log = logging.getLogger("ipsec-nf")

# syslog priorities of the logging levels, for journald's "<N>" line prefix
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
             logging.CRITICAL: 2}


class JournalFormatter(logging.Formatter):
    """One journald line per record: ``<priority>logger: message``; journald adds the time,
    the unit and the pid, and turns the prefix into the entry's priority."""

    def format(self, record: logging.LogRecord) -> str:  # noqa: D102
        prio = _PRIORITY.get(record.levelno, 6 if record.levelno < logging.WARNING else 3)
        text = super().format(record).replace("\n", "\n    ")
        return f"<{prio}>{record.name}: {text}"


def stream_is_journal(stream: Any) -> bool:
    """Is ``stream`` connected to journald? (systemd sets JOURNAL_STREAM=device:inode.)"""
    want = os.environ.get("JOURNAL_STREAM", "")
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return want == f"{st.st_dev}:{st.st_ino}"


def setup_logging(level: str) -> bool:
    """Log to stderr at ``level``: with a timestamp on a terminal or in a file, with a
    journald priority prefix and no timestamp under systemd. Return whether it is journald.

    asyncssh logs a dozen lines per connection at INFO: it is kept at WARNING unless
    ``level`` is debug.
    """
    journal = stream_is_journal(sys.stderr)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JournalFormatter() if journal else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("asyncssh").setLevel(logging.DEBUG if level == "debug"
                                           else logging.WARNING)
    return journal


def sd_notify(address: str | None, state: str) -> bool:
    """Tell systemd (Type=notify) about the service's state, e.g. ``READY=1``, on the socket
    it gave in NOTIFY_SOCKET; a no-op without one. Return whether a message was sent."""
    if not address:
        return False
    target = "\0" + address[1:] if address.startswith("@") else address  # @: abstract
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.sendto(state.encode(), target)
    except OSError as e:
        log.warning("cannot notify systemd (%s): %s", address, e)
        return False
    return True


