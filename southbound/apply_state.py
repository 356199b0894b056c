"""The apply-status part of the state tree (``/ike/apply-status`` in ``ipsec-nf.yang``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from southbound.reconciler import Reconciler


def _time(t: datetime | None) -> str | None:
    """A yang:date-and-time value."""
    return None if t is None else t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def apply_status_tree(rec: Reconciler, state_read_at: datetime | None,
                      state_stale: bool) -> dict[str, Any]:
    """Summary and per-entry apply status, shaped like the YANG container."""
    summary = rec.summary()
    summary["last-full-sync"] = _time(summary["last-full-sync"])
    summary["state-read-time"] = _time(state_read_at)
    summary["state-stale"] = state_stale
    summary["entry"] = [
        {"kind": e.kind, "name": e.name, "status": e.status, "last-change": _time(e.since),
         "message": e.message, "attempts": e.attempts if e.status == "failed" else None,
         "removing": True if e.removing else None}
        for e in rec.entries()]
    return summary
