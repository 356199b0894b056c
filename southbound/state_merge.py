"""Merging a targeted read of a few IKE SAs into the cached reading of the whole daemon.

After SA events the state engine reads only the IKE SAs they name (and the small tables:
``stats``, the global counters, the named VPNs' counters; see
:func:`southbound.charon_state.read_some`) and merges the answer into the last reading with
:func:`merge`. The merged reading is what a full read would have given for those parts, and
every part it did not read is the *same object* as before: the per-entry renderings
downstream (``nf/state.py``, ``northbound/gnmi/entries.py``) remember each ``ike-sa`` entry
by its unique-id and reuse it when it is the same object, and the change check
(``nf.observed.same_content``) skips a shared subtree at once. A part read again and equal
to the cached one keeps the cached object too.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

#: The small tables a targeted read carries whole (replaced; absent from it: gone, as a full
#: read would leave them out: no counters plugin, no pool loaded).
WHOLE = ("ike-sas", "task-processing", "counters", "pool")


def merge(state: Mapping[str, Any], part: Mapping[str, Any], unique_ids: Collection[int],
          vpns: Collection[str]) -> dict[str, Any]:
    """``state`` (a full reading, or one merged before) with ``part``, the targeted read of
    the IKE SAs ``unique_ids`` and the counters of ``vpns``: those IKE SAs replaced by what
    charon lists now (removed when it no longer lists them), those VPNs' counters replaced
    (removed when it has none), the :data:`WHOLE` tables replaced; everything else kept as
    the same objects. ``ike-sa`` stays in unique-id order, ``vpn-counters`` in name order."""
    out = dict(state)
    for key in WHOLE:
        if key in part:
            out[key] = _kept(state.get(key), part[key])
        else:
            out.pop(key, None)
    if "counters" in part:
        out["vpn-counters"] = _replace(state.get("vpn-counters") or [], "name", vpns,
                                       part.get("vpn-counters") or [])
    else:
        out.pop("vpn-counters", None)
    out["ike-sa"] = _replace(state.get("ike-sa") or [], "unique-id", unique_ids,
                             part.get("ike-sa") or [])
    return out


def _kept(old: Any, new: Any) -> Any:
    """``old`` when it equals ``new`` (the same object stays), else ``new``."""
    return old if old is not None and old == new else new


def _replace(old: list[dict[str, Any]], key: str, asked: Collection[Any],
             fresh: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries of ``old`` whose ``key`` was not ``asked``, and those of ``fresh`` (each
    the old object when equal to it), in ``key`` order."""
    new = {e.get(key): e for e in fresh}
    gone = set(asked) | new.keys()
    before = {e.get(key): e for e in old if e.get(key) in gone}
    out = [e for e in old if e.get(key) not in gone]
    out.extend(_kept(before.get(k), e) for k, e in new.items())
    blank: Any = 0 if key == "unique-id" else ""  # (never missing in charon's answers)
    out.sort(key=lambda e: e.get(key) or blank)
    return out
