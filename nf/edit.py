"""edit-config (RFC 6241 section 7.2) applied to an XML config tree, guided by the schema."""

from __future__ import annotations

from lxml import etree

from nf.edit_insert import Insert, Inserting
from nf.edit_nodes import (
    NC,
    OP_ATTR,
    YANG,
    WriteCheck,
    check_unique,
    children_by_tag,
    elements,
    find_match,
    key_of,
    qname,
    scoped,
    split_tag,
    stored,
    strip_ops,
)
from nf.errors import (
    BadAttribute,
    DataExists,
    DataMissing,
    InvalidValue,
    MissingElement,
    UnknownElement,
    UnknownNamespace,
)
from nf.paths import path_step
from nf.schema import SNode
from nf.tree import Tree, Txn, has_children, is_np_container, prune_empty

# what other modules import from here (the editor's helpers live in nf.edit_nodes)
__all__ = ["NC", "OP_ATTR", "YANG", "Editor", "Insert", "WriteCheck", "apply_edit",
           "check_unique", "edit_tree", "elements", "find_match", "key_of", "qname", "scoped",
           "strip_ops"]

OPERATIONS = ("merge", "replace", "create", "delete", "remove", "none")


# compiled once: an XPath given as a string is compiled at every call (3x the evaluation,
# and these run for every entry of a bulk edit)
_NESTED_YANG_ATTR = etree.XPath("boolean(.//*/@*[namespace-uri()=$ns])")
_NESTED_OPERATION = etree.XPath(".//*[@nc:operation]", namespaces={"nc": NC})


def _has_nested_yang_attrs(el: etree._Element) -> bool:
    """Does an element below ``el`` carry a yang:insert, yang:key or yang:value?"""
    return bool(_NESTED_YANG_ATTR(el, ns=YANG))


class Editor(Inserting):
    """Applies one edit-config <config> to a target tree in place."""

    def __init__(self, txn: Txn, check: WriteCheck | None = None, trusted: bool = False) -> None:
        self.trusted = trusted
        self.txn = txn
        self.tree = txn.tree
        self.top = txn.tree.top
        self.check = check
        self.edits: list[tuple[str, str]] = []
        # the edit's subtrees check_unique found plain: known config, no attributes
        self.plain: set[etree._Element] = set()

    def apply(self, target: etree._Element, config: etree._Element, default_op: str) -> None:
        """Apply every top-level element of ``config`` to ``target`` (the datastore root)."""
        if not self.trusted:
            self.plain = check_unique(config, self.top)
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

    def _new(self, el: etree._Element, snode: SNode, path: str) -> etree._Element | None:
        """The subtree an edit element puts in the tree: without edit attributes, ordered as
        the yang:insert inside it say, without empty non-presence containers; None if nothing
        is left (an empty non-presence container)."""
        plain = el in self.plain
        new = stored(el) if plain else strip_ops(el)
        if snode.children:
            if not plain and _has_nested_yang_attrs(el):
                self._arrange(el, new, snode, path)
            prune_empty(new, snode)
            if is_np_container(snode) and not has_children(new):
                return None
        return new

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
                and (el in self.plain or not _NESTED_OPERATION(el)):
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
        if self.trusted or el in self.plain:
            return
        kids = children_by_tag(snode)
        for c in el:
            tag = c.tag
            if not isinstance(tag, str):
                continue
            cs = kids.get(tag)
            if cs is None:
                self._unknown(c, _joined(path, chain), split_tag(tag)[0])
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
