"""edit-config (RFC 6241 section 7.2) applied to an XML config tree, guided by the schema."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from lxml import etree

from nf.errors import (
    BadAttribute,
    BadElement,
    DataExists,
    DataMissing,
    InvalidValue,
    MissingAttribute,
    MissingElement,
    RpcError,
    TaggedError,
    UnknownAttribute,
    UnknownElement,
    UnknownNamespace,
)
from nf.paths import Level, PathError, parse_predicates, path_step
from nf.schema import SNode
from nf.tree import Tree, Txn, has_children, is_np_container, prune_empty

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
YANG = "urn:ietf:params:xml:ns:yang:1"
OP_ATTR = f"{{{NC}}}operation"
INSERT_ATTR = f"{{{YANG}}}insert"
KEY_ATTR = f"{{{YANG}}}key"
VALUE_ATTR = f"{{{YANG}}}value"
WriteCheck = Callable[[str, etree._Element, bool], None]
OPERATIONS = ("merge", "replace", "create", "delete", "remove", "none")
INSERTS = ("first", "last", "before", "after")


@dataclass(frozen=True)
class Insert:
    """Where an edit puts an entry of an ordered-by user list or leaf-list (RFC 7950 7.7.9,
    7.8.6): ``first``, ``last``, or ``before``/``after`` the entry whose key values (list) or
    value (leaf-list) are ``ref``."""

    where: str
    ref: tuple[str, ...] = ()


def qname(el: etree._Element) -> tuple[str, str]:
    """(namespace, local name) of an element."""
    q = etree.QName(el)
    return q.namespace or "", q.localname


def elements(el: etree._Element) -> Iterable[etree._Element]:
    """Child elements, without comments and processing instructions."""
    return (c for c in el if isinstance(c.tag, str))


def key_of(snode: SNode, el: etree._Element) -> tuple[str, ...]:
    """The identity of a data node among its siblings of the same schema node."""
    if snode.kind == "list":
        # (iterchildren: findtext goes through ElementPath, 3x slower, per entry of a bulk edit)
        return tuple(next((c.text for c in el.iterchildren(f"{{{snode.ns}}}{k}")), None) or ""
                     for k in snode.keys)
    if snode.kind == "leaf-list":
        return (el.text or "",)
    return ()


def find_match(
    parent: etree._Element, snode: SNode, edit_el: etree._Element, tree: Tree | None = None
) -> etree._Element | None:
    """The node of the target tree that an edit element addresses, if present."""
    tag = f"{{{snode.ns}}}{snode.name}"
    if snode.kind in ("container", "leaf"):
        return parent.find(tag)
    want = key_of(snode, edit_el)
    if tree is not None and snode.kind == "list" and parent.getparent() is tree.root:
        return tree.find_entry(parent, tag, want)
    for c in parent.iterchildren(tag):
        if key_of(snode, c) == want:
            return c
    return None


def scoped(el: etree._Element) -> etree._Element:
    """A deep copy of ``el`` declaring every prefix in scope where it was: a subtree taken out of
    its document keeps the prefixes its values use (yang:key, NACM paths)."""
    out = copy.deepcopy(el)
    missing = {p: u for p, u in el.nsmap.items() if p is not None and out.nsmap.get(p) != u}
    if not missing:
        return out
    wrapped = etree.Element(out.tag, dict(out.attrib), nsmap={**out.nsmap, **missing})
    wrapped.text = out.text
    wrapped.extend(list(out))
    return wrapped


def strip_ops(el: etree._Element) -> etree._Element:
    """A copy of an edit subtree without NETCONF/YANG edit attributes (operation, insert,
    value, key), keeping every namespace in scope (values such as NACM paths use prefixes)."""
    out = scoped(el)
    for e in out.iter():
        if isinstance(e.tag, str):
            for a in [a for a in e.attrib if a.startswith((f"{{{NC}}}", f"{{{YANG}}}"))]:
                del e.attrib[a]
    return out


# per schema level (a node, or the top-level dict), its children by element tag (Clark
# notation): the walks over every node of a bulk edit look each node up by its tag, without
# splitting it; levels live as long as the schema
_by_tag: dict[int, tuple[Level, dict[str, SNode]]] = {}


def _children_by_tag(level: SNode | dict[tuple[str, str], SNode]) -> dict[str, SNode]:
    hit = _by_tag.get(id(level))
    if hit is None or hit[0] is not level:
        kids = level.children if isinstance(level, SNode) else level
        hit = _by_tag[id(level)] = (level, {f"{{{ns}}}{name}" if ns else name: sn
                                            for (ns, name), sn in kids.items()})
    return hit[1]


def _split(tag: str) -> tuple[str, str]:
    """(namespace, local name) of a Clark-notation tag."""
    ns, _, name = tag[1:].partition("}") if tag[0] == "{" else ("", "", tag)
    return ns, name


def check_unique(config: etree._Element, top: dict[tuple[str, str], SNode]) -> None:
    """Refuse a data node given twice in one edit: a leaf or a container twice in its parent,
    a list entry twice with the same keys, a leaf-list value twice (RFC 7950 7.6.1, 7.7, 7.8:
    one instance each; leaf-list values are unique in configuration). Applying both would let
    the last one win.

    Raises bad-element (RFC 7950 8.3.1: payload the schema does not allow) with the node's
    path. Unknown nodes are left to the editor. Costs the size of the edit.
    """
    _unique(config, top, ())


def _unique(el: etree._Element, level: SNode | dict[tuple[str, str], SNode],
            chain: tuple[tuple[SNode, etree._Element], ...]) -> None:
    seen: set[tuple[str, tuple[str, ...]]] = set()
    kids = _children_by_tag(level)
    for c in el:
        tag = c.tag
        if not isinstance(tag, str):
            continue
        cs = kids.get(tag)
        if cs is None:
            continue
        kind = cs.kind
        ident = (tag, key_of(cs, c) if kind == "list" else (c.text or "",)
                 if kind == "leaf-list" else ())
        if ident in seen:
            name = _split(tag)[1]
            path = "".join(path_step(s, e) for s, e in (*chain, (cs, c)))
            what = {"list": "list entry", "leaf-list": "leaf-list value"}.get(cs.kind, cs.kind)
            raise BadElement(f"{what} {name!r} is given more than once", path,
                             **{"bad-element": name})
        seen.add(ident)
        if kind in ("container", "list"):
            _unique(c, cs, (*chain, (cs, c)))


# compiled once: an XPath given as a string is compiled at every call (3x the evaluation,
# and these run for every entry of a bulk edit)
_NESTED_YANG_ATTR = etree.XPath("boolean(.//*/@*[namespace-uri()=$ns])")
_NESTED_OPERATION = etree.XPath(".//*[@nc:operation]", namespaces={"nc": NC})


def _has_nested_yang_attrs(el: etree._Element) -> bool:
    """Does an element below ``el`` carry a yang:insert, yang:key or yang:value?"""
    return bool(_NESTED_YANG_ATTR(el, ns=YANG))


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


class Editor:
    """Applies one edit-config <config> to a target tree in place."""

    def __init__(self, txn: Txn, check: WriteCheck | None = None, trusted: bool = False) -> None:
        self.trusted = trusted
        self.txn = txn
        self.tree = txn.tree
        self.top = txn.tree.top
        self.check = check
        self.edits: list[tuple[str, str]] = []

    def apply(self, target: etree._Element, config: etree._Element, default_op: str) -> None:
        """Apply every top-level element of ``config`` to ``target`` (the datastore root)."""
        if not self.trusted:
            check_unique(config, self.top)
        for el in elements(config):
            ns, name = qname(el)
            snode = self.top.get((ns, name))
            if snode is None:
                self._unknown(el, "", ns)
            self._node(target, el, snode, default_op, "")

    def _unknown(self, el: etree._Element, parent_path: str, ns: str) -> None:
        known = {n.ns for n in self.top.values()}
        _, name = qname(el)
        if ns not in known:
            raise UnknownNamespace(f"unknown namespace {ns!r} of element {name!r}",
                                   parent_path or "/",
                                   **{"bad-element": name, "bad-namespace": ns})
        raise UnknownElement(f"unknown element {name!r}", parent_path or "/",
                             **{"bad-element": name})

    def _op(self, el: etree._Element, inherited: str, path: str) -> str:
        op = el.get(OP_ATTR)
        if op is None:
            return inherited
        if op not in OPERATIONS:
            raise BadAttribute(f"invalid operation {op!r}", path, type="protocol",
                               **{"bad-attribute": "operation", "bad-element": qname(el)[1]})
        return op

    # ---- yang:insert (RFC 7950 7.7.9, 7.8.6) -----------------------------
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

    def _new(self, el: etree._Element, snode: SNode, path: str) -> etree._Element | None:
        """The subtree an edit element puts in the tree: without edit attributes, ordered as
        the yang:insert inside it say, without empty non-presence containers; None if nothing
        is left (an empty non-presence container)."""
        new = strip_ops(el)
        if snode.children:
            if _has_nested_yang_attrs(el):
                self._arrange(el, new, snode, path)
            prune_empty(new, snode)
            if is_np_container(snode) and not has_children(new):
                return None
        return new

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

    # ---- one node of the edit ----------------------------------------------
    def _node(
        self, parent: etree._Element, el: etree._Element, snode: SNode, inherited: str, ppath: str
    ) -> None:
        path = ppath + path_step(snode, el)
        if not snode.config:
            raise InvalidValue(f"{snode.name!r} is state data and cannot be edited", path)
        op = self._op(el, inherited, path)
        ins = self._insert(el, snode, path)
        if snode.kind == "list":
            for k in snode.keys:
                if el.find(f"{{{snode.ns}}}{k}") is None:
                    raise MissingElement(f"list entry {snode.name!r} lacks its key {k!r}",
                                         path, **{"bad-element": k})
        existing = find_match(parent, snode, el, self.tree)
        if op == "none" and existing is None and not is_np_container(snode) \
                and not self.trusted:
            # RFC 6241 7.2: with default-operation none, data for which the target has no
            # corresponding level is data-missing (a non-presence container is there as soon
            # as a child is)
            raise DataMissing(f"{snode.name!r} does not exist and no operation creates it",
                              path)
        if op == "create" and existing is not None:
            raise DataExists(f"{snode.name!r} already exists", path)
        if op == "delete" and existing is None and not self.trusted:
            raise DataMissing(f"{snode.name!r} does not exist", path)
        if op in ("delete", "remove"):
            if existing is not None:
                self._mark(path, "delete", existing, deep=True)
                self.txn.remove(parent, existing)
            return
        if op in ("create", "replace"):
            self._replace(parent, el, snode, op, ins, existing, path)
            return
        # merge or none
        if existing is None and op == "merge" and snode.kind in ("container", "list") \
                and not _NESTED_OPERATION(el):
            # a new subtree without operations inside: inserted whole, like create
            self._check_subtree(el, snode, path)
            new = self._new(el, snode, path)
            if new is not None:
                self._add(parent, snode, new, ins, path)
                self._mark(path, "create", new, deep=True)
            return
        if snode.kind in ("leaf", "leaf-list"):
            if op == "merge":
                value = el.text or ""
                if existing is None:
                    new = strip_ops(el)
                    self._add(parent, snode, new, ins, path)
                    self._mark(path, "create", new)
                elif snode.kind == "leaf" and (existing.text or "") != value:
                    self.txn.set_text(existing, value)
                    self._mark(path, "merge", existing, nacm_op="update")
                elif snode.kind == "leaf-list":
                    self._move(parent, snode, existing, ins, path, op)
            return
        created = existing is None
        node = existing
        if node is None:
            nsmap = None if parent.nsmap.get(None) == snode.ns else {None: snode.ns}
            node = etree.Element(f"{{{snode.ns}}}{snode.name}", nsmap=nsmap)
            for k in snode.keys:
                node.append(strip_ops(el.find(f"{{{snode.ns}}}{k}")))
            self._add(parent, snode, node, ins if op == "merge" else None, path)
        elif op == "merge":
            self._move(parent, snode, node, ins, path, op)
        for c in elements(el):
            ns, name = qname(c)
            cs = snode.child(ns, name)
            if cs is None:
                self._unknown(c, path, ns)
            if snode.kind == "list" and name in snode.keys and ns == snode.ns:
                self._op(c, op, path)
                continue
            self._node(node, c, cs, op, path)
        if is_np_container(snode) and not has_children(node):
            # RFC 7950 7.5.1: a non-presence container without children does not exist
            self.txn.remove(parent, node)
        elif created:
            if op == "none" and snode.kind == "list" and len(node) == len(snode.keys):
                self.txn.remove(parent, node)  # a replayed edit of an earlier version
            else:
                self._mark(path, "create", node)

    def _replace(self, parent: etree._Element, el: etree._Element, snode: SNode, op: str,
                 ins: Insert | None, existing: etree._Element | None, path: str) -> None:
        """create or replace: the edit's subtree takes the place of the node (if any)."""
        self._check_subtree(el, snode, path)
        new = self._new(el, snode, path)
        if new is None:  # an empty non-presence container: there is none after the edit
            if existing is not None:
                self._mark(path, "delete", existing, deep=True)
                self.txn.remove(parent, existing)
            return
        if existing is None:
            self._add(parent, snode, new, ins, path)
        elif _same(existing, new):
            self._move(parent, snode, existing, ins, path, op)
            return
        else:
            if self.check is not None:
                # RFC 8341 3.4.5: what a replace removes needs delete access, what it puts
                # in needs create access
                self.check("delete", existing, True)
            self.txn.replace(existing, new)
            self._move(parent, snode, new, ins, path, None)
        self._mark(path, op, new, deep=True, nacm_op="create")

    def _check_subtree(self, el: etree._Element, snode: SNode, path: str,
                       chain: tuple[tuple[SNode, etree._Element], ...] = ()) -> None:
        """Every node of a subtree to insert is known config; paths are built only on error
        (``path`` is the subtree's, ``chain`` the steps below it: a path per node cost as
        much as the checks in a bulk edit)."""
        if self.trusted:
            return
        kids = _children_by_tag(snode)
        for c in el:
            tag = c.tag
            if not isinstance(tag, str):
                continue
            cs = kids.get(tag)
            if cs is None:
                self._unknown(c, _joined(path, chain), _split(tag)[0])
            if not cs.config:
                raise InvalidValue(f"{cs.name!r} is state data and cannot be edited",
                                   _joined(path, (*chain, (cs, c))))
            if OP_ATTR in c.attrib:
                self._op(c, "merge", _joined(path, (*chain, (cs, c))))
            if cs.children:
                self._check_subtree(c, cs, path, (*chain, (cs, c)))

    def _mark(self, path: str, op: str, el: etree._Element, deep: bool = False,
              nacm_op: str | None = None) -> None:
        if self.check is not None:
            self.check(nacm_op or op, el, deep)
        self.edits.append((path, op))


def _joined(path: str, chain: tuple[tuple[SNode, etree._Element], ...]) -> str:
    """A path and the steps below it."""
    return path + "".join(path_step(s, e) for s, e in chain)


def _same(a: etree._Element, b: etree._Element) -> bool:
    return etree.tostring(a, method="c14n") == etree.tostring(b, method="c14n")


def edit_tree(
    txn: Txn,
    config: etree._Element,
    default_op: str = "merge",
    check: WriteCheck | None = None,
    trusted: bool = False,
) -> list[tuple[str, str]]:
    """Apply ``config`` in place within a transaction; return the edits as (path, operation).

    ``trusted``: the edit was already applied and checked once (replay): skip the name checks.

    ``check(access-operation, node, deep)`` is called for every node created, updated or
    deleted, while it is in the tree; it raises to refuse the edit (access control). On an
    error the caller rolls the transaction back.
    """
    ed = Editor(txn, check, trusted)
    ed.apply(txn.tree.root, config, default_op)
    return ed.edits


def apply_edit(
    top: dict[tuple[str, str], SNode],
    target: etree._Element,
    config: etree._Element,
    default_op: str = "merge",
    check: WriteCheck | None = None,
) -> list[tuple[str, str]]:
    """Apply ``config`` to a detached tree ``target`` in place (no undo)."""
    return edit_tree(Tree(target, top).begin(), config, default_op, check)
