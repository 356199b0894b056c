"""edit-config (RFC 6241 section 7.2) applied to an XML config tree, guided by the schema."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable

from lxml import etree

from nf.errors import RpcError
from nf.schema import SNode
from nf.tree import Tree, Txn

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
YANG = "urn:ietf:params:xml:ns:yang:1"
OP_ATTR = f"{{{NC}}}operation"
INSERT_ATTR = f"{{{YANG}}}insert"
WriteCheck = Callable[[str, etree._Element, bool], None]
OPERATIONS = ("merge", "replace", "create", "delete", "remove", "none")


def qname(el: etree._Element) -> tuple[str, str]:
    """(namespace, local name) of an element."""
    q = etree.QName(el)
    return q.namespace or "", q.localname


def elements(el: etree._Element) -> Iterable[etree._Element]:
    """Child elements, without comments and processing instructions."""
    return (c for c in el if isinstance(c.tag, str))


def step(snode: SNode, el: etree._Element | None) -> str:
    """One XPath step for error-path, with list keys as predicates."""
    s = f"/{snode.module}:{snode.name}"
    if snode.kind == "list" and el is not None:
        for k in snode.keys:
            kv = el.find(f"{{{snode.ns}}}{k}")
            if kv is not None:
                s += f"[{snode.module}:{k}={_quote(kv.text or '')}]"
    elif snode.kind == "leaf-list" and el is not None:
        s += f"[.={_quote(el.text or '')}]"
    return s


def _quote(v: str) -> str:
    return f"'{v}'" if "'" not in v else f'"{v}"'


def key_of(snode: SNode, el: etree._Element) -> tuple[str, ...]:
    """The identity of a data node among its siblings of the same schema node."""
    if snode.kind == "list":
        return tuple(el.findtext(f"{{{snode.ns}}}{k}") or "" for k in snode.keys)
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


def strip_ops(el: etree._Element) -> etree._Element:
    """A copy of an edit subtree without NETCONF/YANG edit attributes (operation, insert,
    value, key), keeping every namespace in scope (values such as NACM paths use prefixes)."""
    out = copy.deepcopy(el)
    missing = {p: u for p, u in el.nsmap.items() if p is not None and out.nsmap.get(p) != u}
    if missing:
        scoped = etree.Element(out.tag, dict(out.attrib), nsmap={**out.nsmap, **missing})
        scoped.text = out.text
        scoped.extend(list(out))
        out = scoped
    for e in out.iter():
        if isinstance(e.tag, str):
            for a in [a for a in e.attrib if a.startswith((f"{{{NC}}}", f"{{{YANG}}}"))]:
                del e.attrib[a]
    return out


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
            raise RpcError.of(
                "unknown-namespace",
                f"unknown namespace {ns!r} of element {name!r}",
                parent_path or "/",
                **{"bad-element": name, "bad-namespace": ns},
            )
        raise RpcError.of(
            "unknown-element",
            f"unknown element {name!r}",
            parent_path or "/",
            **{"bad-element": name},
        )

    def _op(self, el: etree._Element, inherited: str, path: str) -> str:
        op = el.get(OP_ATTR)
        if op is None:
            return inherited
        if op not in OPERATIONS:
            raise RpcError.of(
                "bad-attribute",
                f"invalid operation {op!r}",
                path,
                type="protocol",
                **{"bad-attribute": "operation", "bad-element": qname(el)[1]},
            )
        return op

    def _node(
        self, parent: etree._Element, el: etree._Element, snode: SNode, inherited: str, ppath: str
    ) -> None:
        path = ppath + step(snode, el)
        if not snode.config:
            raise RpcError.of(
                "invalid-value", f"{snode.name!r} is state data and cannot be edited", path
            )
        op = self._op(el, inherited, path)
        insert = el.get(INSERT_ATTR)
        if insert not in (None, "first", "last"):
            raise RpcError.of("operation-not-supported",
                              f"yang:insert={insert!r} is not supported (use first or last)",
                              path, type="protocol", **{"bad-attribute": "insert"})
        if snode.kind == "list":
            for k in snode.keys:
                if el.find(f"{{{snode.ns}}}{k}") is None:
                    raise RpcError.of(
                        "missing-element",
                        f"list entry {snode.name!r} lacks its key {k!r}",
                        path,
                        **{"bad-element": k},
                    )
        existing = find_match(parent, snode, el, self.tree)
        if op == "create" and existing is not None:
            raise RpcError.of("data-exists", f"{snode.name!r} already exists", path)
        if op == "delete" and existing is None:
            raise RpcError.of("data-missing", f"{snode.name!r} does not exist", path)
        if op in ("delete", "remove"):
            if existing is not None:
                self._mark(path, "delete", existing, deep=True)
                self.txn.remove(parent, existing)
            return
        if op in ("create", "replace"):
            self._check_subtree(el, snode, path)
            new = strip_ops(el)
            if existing is not None:
                if _same(existing, new):
                    return
                if self.check is not None:
                    # RFC 8341 3.4.5: what a replace removes needs delete access, what it puts
                    # in needs create access
                    self.check("delete", existing, True)
                self.txn.replace(existing, new)
            else:
                self.txn.append(parent, new, self._first(parent, snode, insert))
            self._mark(path, op, new, deep=True, nacm_op="create")
            return
        # merge or none
        if existing is None and op == "merge" and snode.kind in ("container", "list") \
                and not el.xpath(".//*[@nc:operation]", namespaces={"nc": NC}):
            # a new subtree without operations inside: inserted whole, like create
            self._check_subtree(el, snode, path)
            new = strip_ops(el)
            self.txn.append(parent, new, self._first(parent, snode, insert))
            self._mark(path, "create", new, deep=True)
            return
        if snode.kind in ("leaf", "leaf-list"):
            if op == "merge":
                value = el.text or ""
                if existing is None:
                    new = strip_ops(el)
                    self.txn.append(parent, new, self._first(parent, snode, insert))
                    self._mark(path, "create", new)
                elif snode.kind == "leaf" and (existing.text or "") != value:
                    self.txn.set_text(existing, value)
                    self._mark(path, "merge", existing, nacm_op="update")
            return
        created = existing is None
        node = existing
        if node is None:
            nsmap = None if parent.nsmap.get(None) == snode.ns else {None: snode.ns}
            node = etree.Element(f"{{{snode.ns}}}{snode.name}", nsmap=nsmap)
            for k in snode.keys:
                node.append(strip_ops(el.find(f"{{{snode.ns}}}{k}")))
            self.txn.append(parent, node)
        for c in elements(el):
            ns, name = qname(c)
            cs = snode.child(ns, name)
            if cs is None:
                self._unknown(c, path, ns)
            if snode.kind == "list" and name in snode.keys and ns == snode.ns:
                self._op(c, op, path)
                continue
            self._node(node, c, cs, op, path)
        if created:
            if op == "none" and len(node) == len(snode.keys):
                self.txn.remove(parent, node)
            else:
                self._mark(path, "create", node)

    @staticmethod
    def _first(parent: etree._Element, snode: SNode, insert: str | None) -> etree._Element | None:
        """yang:insert="first": the sibling to insert before (None = at the end)."""
        return parent.find(f"{{{snode.ns}}}{snode.name}") if insert == "first" else None

    def _check_subtree(self, el: etree._Element, snode: SNode, path: str) -> None:
        """Every node of a subtree to insert is known config; paths are built only on error."""
        if self.trusted:
            return
        for c in el:
            tag = c.tag
            if not isinstance(tag, str):
                continue
            ns, _, name = tag[1:].partition("}") if tag[0] == "{" else ("", "", tag)
            cs = snode.children.get((ns, name))
            if cs is None:
                self._unknown(c, path, ns)
            if not cs.config:
                raise RpcError.of("invalid-value",
                                  f"{cs.name!r} is state data and cannot be edited",
                                  path + step(cs, c))
            if OP_ATTR in c.attrib:
                self._op(c, "merge", path + step(cs, c))
            if cs.children:
                self._check_subtree(c, cs, path + step(cs, c))

    def _mark(self, path: str, op: str, el: etree._Element, deep: bool = False,
              nacm_op: str | None = None) -> None:
        if self.check is not None:
            self.check(nacm_op or op, el, deep)
        self.edits.append((path, op))


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
