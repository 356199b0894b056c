"""yang:insert (RFC 7950 7.7.9, 7.8.6): where an edit puts an entry of an ordered-by user list
or leaf-list, with its yang:key / yang:value checked; mixed into nf.edit.Editor."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from nf.edit_nodes import YANG, elements, key_of, qname
from nf.errors import (
    BadAttribute,
    MissingAttribute,
    RpcError,
    TaggedError,
    UnknownAttribute,
)
from nf.paths import PathError, parse_predicates, path_step
from nf.schema import SNode
from nf.tree import Tree, Txn

INSERT_ATTR = f"{{{YANG}}}insert"
KEY_ATTR = f"{{{YANG}}}key"
VALUE_ATTR = f"{{{YANG}}}value"
INSERTS = ("first", "last", "before", "after")


@dataclass(frozen=True)
class Insert:
    """Where an edit puts an entry of an ordered-by user list or leaf-list (RFC 7950 7.7.9,
    7.8.6): ``first``, ``last``, or ``before``/``after`` the entry whose key values (list) or
    value (leaf-list) are ``ref``."""

    where: str
    ref: tuple[str, ...] = ()


def _key_predicates(el: etree._Element, snode: SNode, text: str) -> tuple[str, ...] | None:
    """yang:key's "[p:k1='v1'][p:k2='v2']" as key values in key order, or None unless it is
    one predicate per key of the list (prefixes resolved where the attribute is; a name
    without prefix is taken in the list's namespace)."""
    try:
        predicates = parse_predicates(text)
    except PathError:
        return None
    values: dict[str, str] = {}
    for prefix, name, value in predicates:
        if prefix is not None and el.nsmap.get(prefix) != snode.ns:
            return None
        if name not in snode.keys or name in values:
            return None
        values[name] = value
    if set(values) != set(snode.keys):
        return None
    return tuple(values[k] for k in snode.keys)


class Inserting:
    """The yang:insert part of nf.edit.Editor, which provides ``txn``, ``tree``, ``trusted``
    and ``_mark``."""

    txn: Txn
    tree: Tree
    trusted: bool

    def _mark(self, path: str, op: str, el: etree._Element, deep: bool = False,
              nacm_op: str | None = None) -> None:
        raise NotImplementedError

    def _insert(self, el: etree._Element, snode: SNode, path: str) -> Insert | None:
        """The yang:insert of an edit element with its yang:key / yang:value, checked
        (RFC 7950 8.3.1, RFC 6241 appendix A); None without one."""
        insert, key, value = el.get(INSERT_ATTR), el.get(KEY_ATTR), el.get(VALUE_ATTR)
        if insert is None and key is None and value is None:
            return None
        name = snode.name

        def refuse(error: type[TaggedError], attr: str, message: str) -> RpcError:
            return error(message, path, **{"bad-attribute": attr, "bad-element": name})

        for attr, given, kind in (("insert", insert, ""), ("key", key, "list"),
                                  ("value", value, "leaf-list")):
            if given is not None and not (snode.ordered_user and kind in ("", snode.kind)):
                where = kind or "list or leaf-list"
                raise refuse(UnknownAttribute, attr, f"yang:{attr} belongs on an ordered-by "
                             f"user {where}; {name!r} is not one")
        if insert is None:
            return None
        if insert not in INSERTS:
            raise refuse(BadAttribute, "insert",
                         f"yang:insert={insert!r} is not first, last, before or after")
        if insert in ("first", "last"):
            return Insert(insert)
        attr, given = ("key", key) if snode.kind == "list" else ("value", value)
        if given is None:
            raise refuse(MissingAttribute, attr,
                         f'yang:insert="{insert}" needs yang:{attr} naming an entry')
        if snode.kind == "leaf-list":
            return Insert(insert, (given,))
        ref = _key_predicates(el, snode, given)
        if ref is None:
            raise refuse(BadAttribute, "key",
                         f"yang:key={given!r} is not the key predicates of a {name!r} entry, "
                         f"e.g. [{snode.module}:{snode.keys[0]}='...']")
        return Insert(insert, ref)

    @staticmethod
    def _missing_instance(snode: SNode, path: str) -> RpcError:
        """RFC 7950 15.7: yang:key / yang:value names no existing entry."""
        attr = "key" if snode.kind == "list" else "value"
        return BadAttribute(f"yang:{attr} names no existing {snode.name!r} entry", path,
                            app_tag="missing-instance",
                            **{"bad-attribute": attr, "bad-element": snode.name})

    def _anchor(self, parent: etree._Element, snode: SNode, ref: tuple[str, ...],
                path: str) -> etree._Element | None:
        """The entry that yang:key / yang:value names among ``parent``'s children; None only
        in a replayed edit (trusted) whose entry is gone: the entry then goes last."""
        tag = f"{{{snode.ns}}}{snode.name}"
        if snode.kind == "list" and parent.getparent() is self.tree.root:
            found = self.tree.find_entry(parent, tag, ref)
        else:
            found = next((c for c in parent.iterchildren(tag) if key_of(snode, c) == ref), None)
        if found is None and not self.trusted:
            raise self._missing_instance(snode, path)
        return found

    def _position(self, parent: etree._Element, snode: SNode, ins: Insert | None, path: str,
                  moving: etree._Element | None = None) -> tuple[etree._Element, bool] | None:
        """Where an entry goes: (sibling, after it?), or None for "at the end" (a new entry)
        or "where it is" (``moving``, an entry of the tree)."""
        if ins is None:
            return None
        tag = f"{{{snode.ns}}}{snode.name}"
        ref: etree._Element | None
        if ins.where == "first":
            ref, after = parent.find(tag), False
        elif ins.where == "last":
            if moving is None:
                return None
            ref = next(parent.iterchildren(tag, reversed=True), None)
            after = True
        else:
            ref, after = self._anchor(parent, snode, ins.ref, path), ins.where == "after"
        if ref is None or ref is moving or moving is not None and moving is (
                ref.getnext() if after else ref.getprevious()):
            return None  # (already) there
        return ref, after

    def _add(self, parent: etree._Element, snode: SNode, new: etree._Element,
             ins: Insert | None, path: str) -> None:
        """Insert a new child where yang:insert says (the end by default)."""
        ref, after = self._position(parent, snode, ins, path) or (None, False)
        self.txn.append(parent, new, ref, after)

    def _move(self, parent: etree._Element, snode: SNode, node: etree._Element,
              ins: Insert | None, path: str, op: str | None) -> None:
        """Move an existing entry where yang:insert says (merge or replace, RFC 7950 7.8.6);
        a move is an edit ``op`` (NACM: update) unless ``op`` is None (already recorded)."""
        where = self._position(parent, snode, ins, path, moving=node)
        if where is not None:
            self.txn.move(node, *where)
            if op is not None:
                self._mark(path, op, node, nacm_op="update")

    def _arrange(self, el: etree._Element, new: etree._Element, snode: SNode,
                 path: str) -> None:
        """Order the user-ordered entries of a new subtree as if they were inserted one at a
        time in document order, each where its yang:insert says (RFC 7950 7.8.6)."""
        orders: dict[str, list[tuple[tuple[str, ...], etree._Element]]] = {}
        placed: set[str] = set()
        for c, n in zip(elements(el), elements(new), strict=True):
            ns, name = qname(c)
            cs = snode.child(ns, name)
            if cs is None:
                continue
            cpath = path + path_step(cs, c)
            if cs.children:
                self._arrange(c, n, cs, cpath)
            ins = self._insert(c, cs, cpath)
            if not cs.ordered_user:
                continue
            order = orders.setdefault(n.tag, [])
            at = len(order)
            if ins is not None and ins.where != "last":
                placed.add(n.tag)
                if ins.where == "first":
                    at = 0
                else:
                    i = next((i for i, (k, _) in enumerate(order) if k == ins.ref), None)
                    if i is not None:
                        at = i + (ins.where == "after")
                    elif not self.trusted:
                        raise self._missing_instance(cs, cpath)
            order.insert(at, (key_of(cs, c), n))
        for tag in placed:
            for _, n in orders[tag]:
                new.append(n)  # in their final order, after their other siblings

