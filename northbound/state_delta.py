"""What changed between two state snapshots, entry by entry: what gNMI ON_CHANGE
(``northbound/gnmi/subscribe.py``) and YANG-Push on-change (``northbound/push_on_change.py``)
render again after a new snapshot.

A subscriber's whole view at 1,000 IKE SAs is ~50,000 leaves: rendering it for every SA event
took seconds, so updates came late or never. Instead, the two snapshot trees (plain dicts,
shared between snapshots where nothing changed) are compared member by member of ``/ike``,
and the entries of a keyed list (``ike-sa`` by ``unique-id``) one by one, leaving out the
leaves that move only with the clock (:data:`nf.observed.CLOCK`: they are not on-change
notifiable). Only what changed is rendered again: one SA going down costs that SA, plus one
dict comparison per entry.

A change that needs running to be rendered (the state kept inside config entries, a VPN's
``effective``, or another module's state) is not handled here: :func:`state_delta` gives
None and the subscriber renders its whole view.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nf import paths as nfpaths
from nf.observed import same_content
from nf.paths import Step
from nf.schema import SNode
from nf.state import INSIDE_CONFIG

_GONE = object()
SCOPE_DEPTH = 2  # (ike, member or entry): what a delta replaces is never above this


@dataclass(frozen=True)
class Delta:
    """The parts of ``/ike`` state that changed: ``tree`` holds the changed members whole and
    the changed or new entries of keyed lists; ``members`` the names replaced whole (changed,
    new or gone); ``entries`` member name -> (key leaf, key texts of entries changed, new or
    gone)."""

    tree: dict[str, Any]
    members: frozenset[str]
    entries: Mapping[str, tuple[str, frozenset[str]]]

    def __bool__(self) -> bool:
        return bool(self.members) or any(keys for _, keys in self.entries.values())

    def covers(self, path: tuple[Step, ...]) -> bool:
        """Whether a leaf path (from /ike) lies in what this delta replaces."""
        if len(path) < SCOPE_DEPTH or path[0].name != "ike":
            return False
        step = path[1]
        if step.name in self.members:
            return True
        hit = self.entries.get(step.name)
        return hit is not None and dict(step.keys).get(hit[0]) in hit[1]


def key_text(v: Any) -> str:
    """A key value as it appears in a path (libyang's text of it)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else str(v)


def state_delta(old: Mapping[str, Any], new: Mapping[str, Any], ike: SNode | None
                ) -> Delta | None:
    """The changes from ``old`` to ``new`` (two snapshot trees; ``ike`` the schema node of
    /ike), or None when one needs running to render."""
    tree: dict[str, Any] = {}
    members: set[str] = set()
    entries: dict[str, tuple[str, frozenset[str]]] = {}
    for name in list(old) + [n for n in new if n not in old]:
        a, b = old.get(name, _GONE), new.get(name, _GONE)
        if a is b or (a is not _GONE and b is not _GONE and same_content(a, b)):
            continue
        if ":" in name or name in INSIDE_CONFIG:
            return None
        sn = nfpaths.find(ike, "", name)
        if (sn is not None and sn.kind == "list" and len(sn.keys) == 1
                and isinstance(a, list) and isinstance(b, list)):
            key = sn.keys[0]
            before = {key_text(e.get(key)): e for e in a}
            changed: set[str] = set()
            items = []
            for e in b:
                k = key_text(e.get(key))
                o = before.pop(k, _GONE)
                if o is _GONE or not same_content(o, e):
                    changed.add(k)
                    items.append(e)
            changed.update(before)  # gone
            if items:
                tree[name] = items
            entries[name] = (key, frozenset(changed))
        else:
            members.add(name)
            if b is not _GONE:
                tree[name] = b
    return Delta(tree, frozenset(members), entries)
