"""YANG-Push on-change (RFC 8641 section 3.3), entry by entry: what changed since the last
update an on-change subscription delivered, without rendering its whole view each time.

The state engine publishes a new snapshot when its content changed (an SA up or down, a
counter...); leaves that move only with the clock (:data:`nf.observed.CLOCK`: ages,
countdowns, state-read-time) are not a change and are not on-change notifiable (RFC 8641
section 3.10; they are in push-update: sync-on-start, resync, periodic). So a new snapshot
is compared with the one the last update was made from, member by member of ``/ike`` and
entry by entry of its keyed lists (``northbound/state_delta.py``, as gNMI ON_CHANGE does);
only the members and entries that changed are rendered, read-checked (NACM), stripped of
secrets and filtered, then compared with the same part of what was delivered. At 1,000 IKE
SAs one SA going down costs that SA's XML, not 1,000 entries; a snapshot of the same version
costs nothing.

The whole view is read and compared (:func:`northbound.push.diff`) when the delta cannot
tell: running changed (config, NACM rules), state that needs running to render (a VPN's
``effective``, another module's state), a selection filter that looks beyond one member or
entry (:func:`per_entry`), or a view without the state engine (running, intended).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from lxml import etree

from nf.edit import elements
from nf.observed import StateSnapshot
from nf.schema import NS, SNode
from northbound import push
from northbound.state_delta import Delta, state_delta

IKE = f"{{{NS}}}ike"
Roots = list[etree._Element]


@runtime_checkable
class StateView(Protocol):
    """A datastore subscription's view that can be read in parts (``ops_push.View``)."""

    async def read_state(self) -> tuple[Roots, StateSnapshot | None]:
        """The whole view, and the state snapshot it holds (None: no state engine)."""

    async def state(self) -> StateSnapshot | None:
        """The current state snapshot (None: this view holds no state engine's)."""

    def part(self, tree: dict) -> Roots | None:
        """The view of a part of a state tree (only ``/ike`` members), or None when the
        selection filter cannot be applied to a part alone."""


# --- which selection filters can be applied to a part of the view ------------------------------

_LITERAL = re.compile(r"'[^']*'|\"[^\"]*\"")
_PATH = re.compile(r"\s*[\w:.@*/-]+\s*")


def per_entry(selection: push.Selection) -> bool:
    """Whether ``selection`` selects from each ``/ike`` member and list entry on its own, so
    that filtering the changed ones alone gives what filtering the whole view would: no
    content-match node on a top-level node or its children (``<ike><enabled>true</enabled>``
    tests the whole ``/ike``); for XPath, absolute location paths whose first step has no
    predicate, predicates that compare or test a relative path (not a position), no function
    call, no parent or other axis."""
    if selection.subtree is not None:
        for top in elements(selection.subtree):
            for f in (top, *elements(top)):
                if not len(f) and (f.text or "").strip():
                    return False
        return True
    if selection.xpath is not None:
        return _local_xpath(selection.xpath)
    return True


def _local_xpath(expr: str) -> bool:
    e = _LITERAL.sub("''", expr)
    if any(t in e for t in ("(", "..", "::", "$")):
        return False
    branches, depth, start = [], 0, 0
    for i, ch in enumerate(e):
        depth += (ch == "[") - (ch == "]")
        if ch == "|" and depth == 0:
            branches.append(e[start:i])
            start = i + 1
    branches.append(e[start:])
    return all(_local_branch(b.strip()) for b in branches)


def _local_branch(b: str) -> bool:
    if not b.startswith("/") or b.startswith("//"):
        return False
    first = b[1:].split("/", 1)[0]
    if "[" in first:  # a predicate on the top-level node looks at all of /ike
        return False
    depth, open_at = 0, 0
    for i, ch in enumerate(b):
        if ch == "[":
            depth += 1
            if depth == 1:
                open_at = i + 1
        elif ch == "]":
            depth -= 1
            if depth == 0 and not _local_predicate(b[open_at:i]):
                return False
        elif ch == "/" and depth > 0:
            before = b[:i].rstrip()
            if not before or not (before[-1].isalnum() or before[-1] in "_-.*"):
                return False  # an absolute path inside a predicate
    return depth == 0


def _local_predicate(p: str) -> bool:
    if re.search(r"[=<>]", p):
        return True
    return bool(_PATH.fullmatch(p)) and not re.fullmatch(r"\s*[\d.]+\s*", p)


# --- one update from a delta -------------------------------------------------------------------

@dataclass
class Update:
    """The edits of one change, with what to splice into the view delivered once they are:
    ``gone`` (elements of the view replaced) and ``new`` (their replacements)."""

    edits: list[push.Edit]
    gone: list[etree._Element]
    new: list[etree._Element]


def entry_update(baseline: Roots, delta: Delta, part: Roots,
                 top: dict[tuple[str, str], SNode]) -> Update | None:
    """The edits that turn the members and entries ``delta`` names in ``baseline`` (the view
    delivered) into ``part`` (their view now), or None when ``baseline`` cannot tell which
    are which (an entry without its key)."""
    if any(r.tag != IKE for r in part):
        return None
    ike = next((r for r in baseline if r.tag == IKE), None)
    gone: list[etree._Element] = []
    if ike is not None:  # lxml finds the children of a name (the SA table's 1,000, in C)
        for name in delta.members:
            gone.extend(ike.iterchildren(f"{{{NS}}}{name}"))
        for name, (key, keys) in delta.entries.items():
            for c in ike.iterchildren(f"{{{NS}}}{name}"):
                k = c.findtext(f"{{{NS}}}{key}")
                if k is None:
                    return None
                if k in keys:
                    gone.append(c)
    old: Roots = []
    if gone:
        o = etree.Element(IKE, nsmap={None: NS})
        o.extend(copy.deepcopy(c) for c in gone)
        old = [o]
    return Update(push.diff(old, part, top), gone, [c for r in part for c in elements(r)])


def splice(baseline: Roots, update: Update) -> Roots:
    """``baseline`` (changed in place) with ``update``'s elements replaced."""
    for c in update.gone:
        c.getparent().remove(c)
    if update.new:
        ike = next((r for r in baseline if r.tag == IKE), None)
        if ike is None:
            ike = etree.Element(IKE, nsmap={None: NS})
            baseline = [*baseline, ike]
        ike.extend(update.new)
    return baseline


# --- what a subscription delivered and what changed since ----------------------------------------

class Tracker:
    """The view an on-change subscription last delivered (``baseline``) with the state
    snapshot it was made from, and the changes since. :meth:`changes` and :meth:`read` make
    a candidate view; :meth:`accept` makes it the one delivered (once its update is queued)."""

    def __init__(self, reader: Callable[[], Awaitable[Roots]],
                 top: dict[tuple[str, str], SNode]) -> None:
        self.reader = reader
        self.view = reader if isinstance(reader, StateView) else None
        self.top = top
        self.ike = next((sn for (ns, name), sn in top.items() if name == "ike" and ns == NS),
                        None)
        self.baseline: Roots = []
        self.seen: StateSnapshot | None = None
        self._next: tuple[Roots | Update, StateSnapshot | None] | None = None
        self.wholes = 0  # whole views read (sync, resync, fallbacks): for tests and benchmarks

    async def read(self) -> Roots:
        """The whole view (for a push-update)."""
        self.wholes += 1
        if self.view is None:
            roots, snap = await self.reader(), None
        else:
            roots, snap = await self.view.read_state()
        self._next = (roots, snap)
        return roots

    async def changes(self, config: bool) -> list[push.Edit]:
        """The edits from the view delivered to the view now (``config``: running changed
        since, so the whole view is read)."""
        if self.view is not None and not config and self.seen is not None:
            snap = await self.view.state()
            if snap is not None:
                if snap.version == self.seen.version:
                    self._next = (self.baseline, self.seen)
                    return []  # only the clock moved, or nothing
                update = self._partial(snap)
                if update is not None:
                    self._next = (update, snap)
                    return update.edits
        return push.diff(self.baseline, await self.read(), self.top)

    def _partial(self, snap: StateSnapshot) -> Update | None:
        assert self.view is not None and self.seen is not None
        delta = state_delta(self.seen.tree, snap.tree, self.ike)
        if delta is None:
            return None
        if not delta:
            return Update([], [], [])
        part = self.view.part(delta.tree)
        return None if part is None else entry_update(self.baseline, delta, part, self.top)

    def accept(self) -> None:
        """The candidate view is delivered (or its changes were all excluded)."""
        if self._next is None:
            return
        view, self.seen = self._next
        self._next = None
        if isinstance(view, Update):
            self.baseline = splice(self.baseline, view)
        else:
            self.baseline = view

    def forget(self) -> None:
        """Nothing was delivered: the next update has everything."""
        self._next, self.baseline, self.seen = None, [], None
