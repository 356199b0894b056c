"""The apply-status part of the state tree (``/ike/apply-status`` in ``ipsec-nf.yang``)."""

from __future__ import annotations

import weakref
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
    summary["entry"] = _entry_list(rec)
    return summary


# per reconciler (dropped with it): the list last rendered, with the status list it was
# rendered from, and each entry's rendering with the EntryStatus it renders. A status is
# immutable (a change replaces it) and the trees are read-only: at 10,000 VPNs each state
# reading rendered 10,000 entries again (10,000 isoformat calls), mostly unchanged
_rendered: weakref.WeakKeyDictionary[Any, tuple[list[Any], list[dict[str, Any]],
                                                dict[tuple[str, str], tuple[Any, dict]]]] = \
    weakref.WeakKeyDictionary()


def _entry_list(rec: Reconciler) -> list[dict[str, Any]]:
    """The ``entry`` list: the same list while the reconciler's table is the same; else
    a new list reusing the rendering of each entry that did not change."""
    entries = rec.entries()
    hit = _rendered.get(rec)
    if hit is not None and hit[0] is entries:
        return hit[1]
    old = hit[2] if hit is not None else {}
    each: dict[tuple[str, str], tuple[Any, dict]] = {}
    out = []
    for e in entries:
        key = (e.kind, e.name)
        done = old.get(key)
        if done is None or done[0] is not e:
            done = (e, _entry(e))
        each[key] = done
        out.append(done[1])
    _rendered[rec] = (entries, out, each)
    return out


def _entry(e: Any) -> dict[str, Any]:
    """One entry of the ``entry`` list."""
    return {"kind": e.kind, "name": e.name, "status": e.status, "last-change": _time(e.since),
            "message": e.message, "attempts": e.attempts if e.status == "failed" else None,
            "removing": True if e.removing else None}
