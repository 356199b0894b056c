"""The data nodes of an edit-config payload: names, keys, the entry of a tree an edit element
addresses, copies without edit attributes, and the check for a node given twice."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable

from lxml import etree

from nf.errors import BadElement
from nf.paths import Level, path_step
from nf.schema import SNode
from nf.tree import Tree

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
YANG = "urn:ietf:params:xml:ns:yang:1"
OP_ATTR = f"{{{NC}}}operation"
WriteCheck = Callable[[str, etree._Element, bool], None]


def qname(el: etree._Element) -> tuple[str, str]:
    """(namespace, local name) of an element."""
    tag = el.tag
    if isinstance(tag, str):  # split here: etree.QName costs 4x more, ~20 times per rpc
        if tag[:1] == "{":
            ns, _, name = tag[1:].partition("}")
            return ns, name
        return "", tag
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


# Namespaces of the protocol, not of data: an edit's payload has them in scope (ncclient
# writes ``<nc:rpc xmlns:nc=...>``), but no stored value can use them (no identity, no data
# node), so a stored subtree does not declare them. Declared there, each whole read would have
# to drop them again (northbound/verbatim.py declines such a node; lxml drops them when the
# general path moves the node into ``<data>``).
PROTOCOL_NS = frozenset({NC, YANG, "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"})


def scoped(el: etree._Element) -> etree._Element:
    """A deep copy of ``el`` declaring every prefix in scope where it was: a subtree taken out of
    its document keeps the prefixes its values use (yang:key, NACM paths)."""
    return _declaring(copy.deepcopy(el), el.nsmap, frozenset())


def stored(el: etree._Element) -> etree._Element:
    """:func:`scoped` for a data subtree without edit attributes that goes into a datastore:
    without declarations of :data:`PROTOCOL_NS`."""
    return _declaring(copy.deepcopy(el), el.nsmap, PROTOCOL_NS)


def _declaring(out: etree._Element, scope: dict[str | None, str],
               skip: frozenset[str]) -> etree._Element:
    """``out`` declaring the prefixes of ``scope`` it lacks, and (on ``out`` itself) none of
    the namespaces ``skip`` that its own name and attributes do not use: a new top element
    if that changes anything."""
    own = out.nsmap
    missing = {p: u for p, u in scope.items()
               if p is not None and own.get(p) != u and u not in skip}
    unused = {p for p, u in own.items() if u in skip and not out.tag.startswith(f"{{{u}}}")
              and not any(a.startswith(f"{{{u}}}") for a in out.attrib)}
    if not missing and not unused:
        return out
    nsmap = {p: u for p, u in {**own, **missing}.items() if p not in unused}
    wrapped = etree.Element(out.tag, dict(out.attrib), nsmap=nsmap)
    wrapped.text = out.text
    wrapped.extend(list(out))
    return wrapped


def strip_ops(el: etree._Element) -> etree._Element:
    """A copy of an edit subtree without NETCONF/YANG edit attributes (operation, insert,
    value, key) that goes into a datastore, keeping every namespace in scope (values such as
    NACM paths use prefixes) but those of :data:`PROTOCOL_NS`."""
    out = copy.deepcopy(el)
    for e in out.iter():
        if isinstance(e.tag, str):
            for a in [a for a in e.attrib if a.startswith((f"{{{NC}}}", f"{{{YANG}}}"))]:
                del e.attrib[a]
    return _declaring(out, el.nsmap, PROTOCOL_NS)


# per schema level (a node, or the top-level dict), its children by element tag (Clark
# notation): the walks over every node of a bulk edit look each node up by its tag, without
# splitting it; levels live as long as the schema
_by_tag: dict[int, tuple[Level, dict[str, SNode]]] = {}


def children_by_tag(level: SNode | dict[tuple[str, str], SNode]) -> dict[str, SNode]:
    """The schema nodes one level below ``level`` by element tag (Clark notation)."""
    hit = _by_tag.get(id(level))
    if hit is None or hit[0] is not level:
        kids = level.children if isinstance(level, SNode) else level
        hit = _by_tag[id(level)] = (level, {f"{{{ns}}}{name}" if ns else name: sn
                                            for (ns, name), sn in kids.items()})
    return hit[1]


def split_tag(tag: str) -> tuple[str, str]:
    """(namespace, local name) of a Clark-notation tag."""
    ns, _, name = tag[1:].partition("}") if tag[0] == "{" else ("", "", tag)
    return ns, name


def check_unique(config: etree._Element,
                 top: dict[tuple[str, str], SNode]) -> set[etree._Element]:
    """Refuse a data node given twice in one edit: a leaf or a container twice in its parent,
    a list entry twice with the same keys, a leaf-list value twice (RFC 7950 7.6.1, 7.7, 7.8:
    one instance each; leaf-list values are unique in configuration). Applying both would let
    the last one win.

    Raises bad-element (RFC 7950 8.3.1: payload the schema does not allow) with the node's
    path. Unknown nodes are left to the editor. Costs the size of the edit.

    Returns the plain containers and list entries of the edit: those whose every node,
    themselves included, is a known config node without any attribute (the editor then
    neither checks them again nor strips edit attributes from them, nor looks for nested
    operations or yang:insert in them: a new VPN of a bulk edit is walked once, here).
    """
    plain: set[etree._Element] = set()
    _unique(config, top, (), plain)
    return plain


def _unique(el: etree._Element, level: SNode | dict[tuple[str, str], SNode],
            chain: tuple[tuple[SNode, etree._Element], ...],
            plain: set[etree._Element]) -> bool:
    """Check ``el``'s children (``level``: their schema); are they all plain?"""
    seen: set[tuple[str, tuple[str, ...]]] = set()
    kids = children_by_tag(level)
    clean = True
    for c in el:
        tag = c.tag
        if not isinstance(tag, str):
            continue
        cs = kids.get(tag)
        if cs is None:
            clean = False
            continue
        kind = cs.kind
        ident = (tag, key_of(cs, c) if kind == "list" else (c.text or "",)
                 if kind == "leaf-list" else ())
        if ident in seen:
            name = split_tag(tag)[1]
            path = "".join(path_step(s, e) for s, e in (*chain, (cs, c)))
            what = {"list": "list entry", "leaf-list": "leaf-list value"}.get(cs.kind, cs.kind)
            raise BadElement(f"{what} {name!r} is given more than once", path,
                             **{"bad-element": name})
        seen.add(ident)
        ok = cs.config and not c.attrib
        if kind in ("container", "list"):
            if _unique(c, cs, (*chain, (cs, c)), plain) and ok:
                plain.add(c)
            else:
                ok = False
        clean = clean and ok
    return clean
