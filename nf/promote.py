"""A commit moves the candidate's changed entries into running instead of running the editor
again on running (the candidate is "running plus pending edits" while running has not moved
under it: the edits already made there what they make in running).

The result is the tree a replay of the edits on running gives, entry for entry and in the same
order: an entry the edits left where it was is swapped in place, one they put at the end of its
parent (new, or removed and added again) goes at the end, in the order of its last append; the
images are running's entries as they were, the touched entries those the replay touches.
"""

from __future__ import annotations

import copy

from lxml import etree

from nf.edit_nodes import split_tag
from nf.paths import child
from nf.tree import EntryKey, Tree, Txn


class Changes:
    """The entries the candidate's kept edits touched since it last equalled running, in the
    order of first touch, and those they appended, in the order of last append."""

    def __init__(self) -> None:
        self.touched: dict[EntryKey, None] = {}
        self.appended: dict[EntryKey, None] = {}

    def fold(self, txns: list[Txn]) -> None:
        """Add the transactions of an edit kept in the candidate (in the order made)."""
        for t in txns:
            for key in t.before:
                self.touched.setdefault(key, None)
            for key in t.appended:
                self.appended.pop(key, None)
                self.appended[key] = None

    def keys(self) -> list[EntryKey]:
        """The touched entries as one transaction over all the edits records them: an entry
        inside a top container the edits touched whole is part of that container."""
        whole = {k[0] for k in self.touched if k[1] is None}
        return [k for k in self.touched if k[1] is None or k[0] not in whole]


def promote(txn: Txn, candidate: Tree, changes: Changes) -> set[EntryKey] | None:
    """Make running (``txn``'s tree) equal the candidate by putting copies of its changed
    entries in place; return the entries touched, or None (nothing changed) when an entry
    cannot be moved by its key (the caller replays the edits instead)."""
    running = txn.tree
    keys = changes.keys()
    moves: dict[EntryKey, tuple[etree._Element, etree._Element | None,
                                etree._Element | None]] = {}
    for key in keys:
        parent = running.root if key[1] is None else running.top_element(key[0])
        new = candidate.lookup(key)
        if key[1] is not None and not key[2] and _repeats(running, key):
            return None  # a leaf-list right below a top container: no key names one element
        if parent is None:
            if new is not None:
                return None  # (an entry of a new container comes with the container's key)
            continue
        moves[key] = (parent, running.lookup(key), new)
    for key in keys:  # the images, in the order the edits touched the entries
        old = moves[key][1] if key in moves else None
        txn.before[key] = copy.deepcopy(old) if old is not None else None
    order = [k for k in moves if k not in changes.appended]
    order += [k for k in changes.appended if k in moves]
    for key in order:
        parent, old, new = moves[key]
        txn.put(parent, old, copy.deepcopy(new) if new is not None else None,
                at_end=key in changes.appended or old is None)
    return set(keys)


def _repeats(tree: Tree, key: EntryKey) -> bool:
    """Is the schema node of a keyless entry one that repeats (a leaf-list or a keyless
    list), so that its key names no single element?"""
    sn = child(child(tree.top, *split_tag(key[0])), *split_tag(key[1] or ""))
    return sn is not None and sn.kind in ("leaf-list", "list")
