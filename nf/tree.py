"""A config tree that is edited in place: an index of list entries, an undo log, and the
entries (children of the top-level containers) each transaction touched, with their images.

Edits cost what they change: no whole-tree copy, no linear search among 10,000 VPNs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable

from lxml import etree

from nf.paths import Level, chain, schema_of
from nf.schema import SNode

# An entry: (top-level tag, child tag, key values); child tag None = the whole top container.
EntryKey = tuple[str, str | None, tuple[str, ...]]


def _elements(el: etree._Element) -> Iterable[etree._Element]:
    return (c for c in el if isinstance(c.tag, str))


def _key(sn: SNode | None, el: etree._Element) -> tuple[str, ...]:
    if sn is None or sn.kind != "list":
        return ()
    # by hand: the keys come first in an entry, and findtext costs 3x a short loop
    tags = [f"{{{sn.ns}}}{k}" for k in sn.keys]
    found = dict.fromkeys(tags, "")
    left = len(tags)
    for c in el:
        if c.tag in found and found[c.tag] == "":
            found[c.tag] = c.text or ""
            left -= 1
            if not left:
                break
    return tuple(found.values())


def is_np_container(sn: SNode | None) -> bool:
    """Is this a non-presence container (RFC 7950 7.5.1: it exists only through its children)?"""
    return sn is not None and sn.kind == "container" and not sn.presence


def has_children(el: etree._Element) -> bool:
    """Has the element a child element? (Stops at the first one: O(1), unlike len().)"""
    return any(isinstance(c.tag, str) for c in el)


# elements without child elements or text: leaves of type empty, and empty containers
_CHILDLESS = etree.XPath(".//*[not(*) and not(normalize-space())]")


def _prune(base: etree._Element, level: Level) -> bool:
    """``level``: the schema of ``base``'s children (its schema node, or the top-level nodes)."""
    changed = False
    for el in _CHILDLESS(base):  # few: found in C, then each walked up to its parents
        while el is not base and not has_children(el) \
                and is_np_container(chain(el, level, base)[-1][1]):
            parent = el.getparent()
            parent.remove(el)
            changed, el = True, parent
    return changed


def prune_empty(el: etree._Element, sn: SNode) -> bool:
    """Remove the non-presence containers without children under ``el`` (not ``el``), and
    the containers that are left empty by that; return True if any was removed.

    RFC 7950 7.5.1: a non-presence container without children is the same as no container.
    """
    return _prune(el, sn)


def prune_root(root: etree._Element, top: dict[tuple[str, str], SNode]) -> bool:
    """``prune_empty`` for a whole datastore root, top-level containers included."""
    return _prune(root, top)


class Tree:
    """The root of one datastore (children = top-level containers) and its entry index."""

    def __init__(self, root: etree._Element, top: dict[tuple[str, str], SNode],
                 prune: bool = True) -> None:
        """Index ``root``; with ``prune``, first drop its empty non-presence containers (a
        tree stored before they were dropped on every edit), so no datastore holds one."""
        self.root = root
        self.top = top
        self._snodes: dict[tuple[str, str], SNode | None] = {}
        if prune:
            prune_root(root, top)
        self.index: dict[tuple[str, str], dict[tuple[str, ...], etree._Element]] = {}
        for t in _elements(root):
            for c in _elements(t):
                self._index_add(t, c)

    # ---- schema helpers ----------------------------------------------
    def _child_snode(self, top_el: etree._Element, el: etree._Element) -> SNode | None:
        # by tags, cached: asked for every entry an edit or a commit adds, and finding it
        # from the elements parses both tags
        tags = (top_el.tag, el.tag)
        try:
            return self._snodes[tags]
        except KeyError:
            sn = self._snodes[tags] = schema_of(schema_of(self.top, top_el), el)
            return sn

    def _index_add(self, top_el: etree._Element, el: etree._Element) -> None:
        sn = self._child_snode(top_el, el)
        if sn is not None and sn.kind == "list":
            self.index.setdefault((top_el.tag, el.tag), {})[_key(sn, el)] = el

    def index_top(self, top_el: etree._Element, add: bool) -> None:
        """Index (or unindex) every entry of a top-level container."""
        for c in _elements(top_el):
            (self._index_add if add else self._index_del)(top_el, c)

    def _index_del(self, top_el: etree._Element, el: etree._Element) -> None:
        sn = self._child_snode(top_el, el)
        if sn is not None and sn.kind == "list":
            self.index.get((top_el.tag, el.tag), {}).pop(_key(sn, el), None)

    def entry_of(self, el: etree._Element) -> tuple[EntryKey, etree._Element | None]:
        """The entry containing ``el`` (which must be in the tree) and its entry element."""
        chain = [el]
        while chain[-1].getparent() is not None and chain[-1].getparent() is not self.root:
            chain.append(chain[-1].getparent())
        top_el = chain[-1]
        if len(chain) == 1:
            return (top_el.tag, None, ()), top_el
        entry = chain[-2]
        return (top_el.tag, entry.tag, _key(self._child_snode(top_el, entry), entry)), entry

    def find_entry(self, top_el: etree._Element, tag: str,
                   key: tuple[str, ...]) -> etree._Element | None:
        """A list entry under a top-level container, by key (constant time)."""
        return self.index.get((top_el.tag, tag), {}).get(key)

    def top_element(self, tag: str) -> etree._Element | None:
        """The top-level container ``tag`` (Clark notation), if present."""
        # (iterchildren: find goes through ElementPath, 2-3x slower; asked for every entry a
        # commit of thousands of entries moves, several times)
        return next(self.root.iterchildren(tag), None)

    def lookup(self, key: EntryKey) -> etree._Element | None:
        """The element of an entry, if present."""
        top_el = self.top_element(key[0])
        if top_el is None or key[1] is None:
            return top_el
        found = self.find_entry(top_el, key[1], key[2])
        if found is None and not key[2]:
            found = top_el.find(key[1])
        return found

    def begin(self) -> Txn:
        """Start a transaction of in-place edits."""
        return Txn(self)


class Txn:
    """In-place mutations of a Tree that can be undone, recording the entries touched.

    The undo records name the tree, never the transaction: a record holding the Txn would
    make a reference cycle (Txn -> its undo list -> closure -> Txn), and a finished
    transaction, with every before-image and removed entry it holds (a copy of each of 10,000
    VPNs removed at once), would then live on until the cyclic garbage collector's next full
    pass instead of being freed when its commit drops it (docs/benchmarks.md, memory after
    removal)."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self._undo: list[Callable[[], None]] = []
        self.before: dict[EntryKey, etree._Element | None] = {}
        # the entries and top containers put at the end of their parent, in the order of
        # their last such append (a new entry, or one removed and added again): where a
        # commit that moves entries (nf.promote) puts them
        self.appended: dict[EntryKey, None] = {}

    @property
    def touched(self) -> set[EntryKey]:
        """The entries this transaction changed."""
        return set(self.before)

    def _note(self, el: etree._Element) -> None:
        """Remember the before-image of the entry around ``el`` (in the tree, unchanged yet)."""
        key, entry = self.tree.entry_of(el)
        if key not in self.before and (key[0], None, ()) not in self.before:
            self.before[key] = copy.deepcopy(entry)

    def _note_top(self, top_el: etree._Element) -> None:
        """Remember a whole top container as it was before this transaction: its current
        copy with the entries changed so far put back as they were."""
        tkey = (top_el.tag, None, ())
        if tkey in self.before:
            return
        img = copy.deepcopy(top_el)
        shadow = Tree(etree.Element("r"), self.tree.top, prune=False)
        shadow.root.append(img)
        shadow.index_top(img, True)
        for key in [k for k in self.before if k[0] == top_el.tag and k[1] is not None]:
            old, cur = self.before.pop(key), shadow.lookup(key)
            if cur is not None and old is not None:
                cur.addprevious(copy.deepcopy(old))
                img.remove(cur)
            elif cur is not None:
                img.remove(cur)
            elif old is not None:
                img.append(copy.deepcopy(old))
        self.before[tkey] = img

    def _is_entry(self, parent: etree._Element) -> bool:
        return parent.getparent() is self.tree.root

    def _is_top(self, parent: etree._Element) -> bool:
        return parent is self.tree.root

    def _ordered_entry(self, parent: etree._Element, el: etree._Element) -> bool:
        """Is ``el`` an entry of an ordered-by user list right under a top container? Its
        position is part of the data but not of its entry image, so a change of position
        (insert, move, delete) is recorded as a change of the whole top container."""
        if not self._is_entry(parent):
            return False
        sn = self.tree._child_snode(parent, el)
        return sn is not None and sn.ordered_user

    def append(self, parent: etree._Element, el: etree._Element,
               ref: etree._Element | None = None, after: bool = False) -> None:
        """Add a new child at the end, or right before (``after``: after) its sibling ``ref``
        (ordered-by user lists and leaf-lists)."""
        if self._is_top(parent):
            self.before.setdefault((el.tag, None, ()), None)
            for key in [k for k in self.before if k[0] == el.tag and k[1] is not None]:
                del self.before[key]  # the whole container is new: nothing inside existed
        elif not self._is_entry(parent):
            self._note(parent)
        elif ref is not None and self._ordered_entry(parent, el):
            self._note_top(parent)
        if ref is None:
            parent.append(el)
        elif after:
            ref.addnext(el)
        else:
            ref.addprevious(el)
        if self._is_entry(parent):
            key = self.tree.entry_of(el)[0]
            if (parent.tag, None, ()) not in self.before:
                self.before.setdefault(key, None)
            if ref is None:
                self.appended.pop(key, None)
                self.appended[key] = None
            self.tree._index_add(parent, el)
        elif self._is_top(parent):
            key = (el.tag, None, ())
            self.appended.pop(key, None)
            self.appended[key] = None
            self.tree.index_top(el, True)
        tree = self.tree
        self._undo.append(lambda: _undo_append(tree, parent, el))

    def remove(self, parent: etree._Element, el: etree._Element) -> None:
        """Remove a child."""
        if self._is_top(parent):
            self._note_top(el)
        elif self._ordered_entry(parent, el):
            self._note_top(parent)
        else:
            self._note(el)
        pos = parent.index(el)
        if self._is_entry(parent):
            self.tree._index_del(parent, el)
        elif self._is_top(parent):
            self.tree.index_top(el, False)
        parent.remove(el)
        tree = self.tree
        self._undo.append(lambda: _undo_remove(tree, parent, el, pos))

    def move(self, el: etree._Element, ref: etree._Element, after: bool = False) -> None:
        """Move a child right before (``after``: after) its sibling ``ref``."""
        parent = el.getparent()
        if self._ordered_entry(parent, el):
            self._note_top(parent)
        else:
            self._note(el)
        nxt = el.getnext()  # undone newest first: it is back in place when this is undone
        if after:
            ref.addnext(el)
        else:
            ref.addprevious(el)
        self._undo.append(lambda: nxt.addprevious(el) if nxt is not None else parent.append(el))

    def replace(self, old: etree._Element, new: etree._Element) -> None:
        """Put ``new`` where ``old`` is."""
        parent = old.getparent()
        if self._is_top(parent):
            self._note_top(old)
        else:
            self._note(old)
        tree = self.tree
        _swap(tree, parent, old, new)
        self._undo.append(lambda: _swap(tree, parent, new, old))

    def set_text(self, el: etree._Element, text: str) -> None:
        """Change a leaf's value."""
        self._note(el)
        old = el.text
        el.text = text
        self._undo.append(lambda: setattr(el, "text", old))

    def put(self, parent: etree._Element, old: etree._Element | None,
            new: etree._Element | None, at_end: bool) -> None:
        """Make ``new`` (None: nothing) the entry or top container ``key`` of ``parent`` (the
        root or a top container) in place of ``old`` (None: absent); with ``at_end``, ``new``
        goes after its siblings, else where ``old`` was. The caller records the before-image
        (a copy of ``old`` made while it is in the tree: a detached element no longer has its
        ancestors' namespace declarations and would serialize with made-up prefixes)."""
        tree = self.tree
        if old is not None and new is not None and not at_end:
            _swap(tree, parent, old, new)
            self._undo.append(lambda: _swap(tree, parent, new, old))
            return
        if old is not None:
            pos = parent.index(old)
            _undo_append(tree, parent, old)  # (removes it, unindexed)
            self._undo.append(lambda: _undo_remove(tree, parent, old, pos))
        if new is not None:
            parent.append(new)
            if parent is tree.root:
                tree.index_top(new, True)
            else:
                tree._index_add(parent, new)
            self._undo.append(lambda: _undo_append(tree, parent, new))

    def rollback(self) -> None:
        """Undo every mutation, newest first."""
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()
        self.before.clear()
        self.appended.clear()

    def after(self) -> dict[EntryKey, etree._Element | None]:
        """Copies of the touched entries as they are now (None = absent)."""
        out = {}
        for key in self.before:
            el = self.tree.lookup(key)
            out[key] = copy.deepcopy(el) if el is not None else None
        return out


def _undo_append(tree: Tree, parent: etree._Element, el: etree._Element) -> None:
    if parent.getparent() is tree.root:  # an entry
        tree._index_del(parent, el)
    elif parent is tree.root:  # a top container
        tree.index_top(el, False)
    parent.remove(el)


def _undo_remove(tree: Tree, parent: etree._Element, el: etree._Element, pos: int) -> None:
    parent.insert(pos, el)
    if parent.getparent() is tree.root:
        tree._index_add(parent, el)
    elif parent is tree.root:
        tree.index_top(el, True)


def _swap(tree: Tree, parent: etree._Element, old: etree._Element,
          new: etree._Element) -> None:
    """Put ``new`` where ``old`` is, under ``parent``, keeping the tree's index."""
    if parent.getparent() is tree.root:
        tree._index_del(parent, old)
    elif parent is tree.root:
        tree.index_top(old, False)
    old.addprevious(new)
    parent.remove(old)
    if parent.getparent() is tree.root:
        tree._index_add(parent, new)
    elif parent is tree.root:
        tree.index_top(new, True)


def rollback_all(txns: list[Txn]) -> None:
    """Undo several transactions, newest first."""
    for t in reversed(txns):
        t.rollback()


def touched_by(txns: list[Txn]) -> set[EntryKey]:
    """The entries any of the transactions changed."""
    out: set[EntryKey] = set()
    for t in txns:
        out |= t.touched
    return out
