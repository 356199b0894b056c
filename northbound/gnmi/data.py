"""What one user may read, as libyang data, and the nodes a gNMI path selects in it.

Running and/or the observed state (a :class:`nf.observed.StateSnapshot`) are merged into one
XML tree, pruned by NACM exactly as NETCONF ``<get>`` prunes it (secrets and whatever the
rules hide are gone before anything else looks at it), and parsed by libyang. The values
sent are libyang's RFC 7951 (JSON_IETF) printing of the selected nodes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import libyang
from lxml import etree

from nf import paths as nfpaths
from nf.edit import elements
from nf.nacm import Access, prune_unreadable
from nf.observed import StateSnapshot
from nf.paths import Step
from nf.schema import NAMESPACES, Schema, SNode
from nf.state import merge_state
from northbound.gnmi import paths

CONFIG, STATE, ALL = "config", "state", "all"
Leaves = dict[tuple[Step, ...], Any]
"""Leaf (and leaf-list) paths -> their JSON value."""


def roots(running: etree._Element | None, snapshot: StateSnapshot | None, access: Access,
          top: dict[tuple[str, str], SNode],
          wanted: list[tuple[Step, ...]] | None = None) -> list[etree._Element]:
    """The top-level nodes of running (None: none) with the state of ``snapshot`` (None:
    none) merged in, without what ``access`` may not read; with ``wanted`` (the paths asked
    for), only what those paths can select is copied (a read costs what it returns)."""
    out = pick(running, wanted, top) if running is not None else []
    if snapshot is not None and snapshot.tree:
        out = merge_state(out, _state_part(dict(snapshot.tree), wanted))
    return prune_unreadable(access, out, top)


def state_only(tops: list[etree._Element], top: dict[tuple[str, str], SNode]
               ) -> list[etree._Element]:
    """The ``config false`` nodes of merged config and state, with the list keys that lead to
    them (gNMI's STATE): config leaves go, and config containers or entries left without
    state."""
    out = []
    for el in tops:
        sn = nfpaths.schema_of(top, el)
        if sn is not None and (not sn.config or _keep_state(el, sn)):
            out.append(el)
    return out


def _keep_state(el: etree._Element, sn: SNode) -> bool:
    """Strip config from ``el`` (a config node); is any state left in it?"""
    found = False
    for c in list(elements(el)):
        csn = nfpaths.schema_of(sn, c)
        if csn is None or not csn.config:
            found = True
        elif csn.kind in ("leaf", "leaf-list"):
            if csn.name not in sn.keys:
                el.remove(c)
        elif _keep_state(c, csn):
            found = True
        else:
            el.remove(c)
    return found


def _narrowable(wanted: list[tuple[Step, ...]] | None) -> bool:
    return wanted is not None and all(
        len(p) >= 2 and all(s.name not in (paths.WILDCARD, paths.ANY_DEPTH) for s in p[:2])
        for p in wanted)


def pick(root: etree._Element, wanted: list[tuple[Step, ...]] | None,
         top: dict[tuple[str, str], SNode]) -> list[etree._Element]:
    """Copies of the top-level nodes of ``root``, cut to the children of each top container
    the paths can select (their second step, with the keys they give); every node whole when
    a path stops at a top container or starts with a wildcard."""
    if not _narrowable(wanted):
        return [copy.deepcopy(r) for r in elements(root)]
    assert wanted is not None
    out = []
    for d in elements(root):
        q = etree.QName(d)
        mine = [p for p in wanted if p[0].name == q.localname
                and NAMESPACES.get(p[0].module) == q.namespace]
        if not mine:
            continue
        new = etree.Element(d.tag, dict(d.attrib), nsmap=d.nsmap)
        for c in elements(d):
            cq = etree.QName(c)
            for p in mine:
                if p[1].name == cq.localname and all(
                        (c.findtext(f"{{{cq.namespace}}}{k}") or "").strip() == v
                        for k, v in p[1].keys):
                    new.append(copy.deepcopy(c))
                    break
        out.append(new)
    return out


def _state_part(tree: dict[str, Any], wanted: list[tuple[Step, ...]] | None) -> dict[str, Any]:
    """The members of the state the paths can select (all when they cannot be narrowed)."""
    if not _narrowable(wanted):
        return tree
    assert wanted is not None
    names = {p[1].name for p in wanted if p[0].name == "ike"}
    names |= {f"{p[0].module}:{p[0].name}" for p in wanted}  # another module's ("m:top")
    return {k: v for k, v in tree.items() if k in names}


@contextmanager
def parsed(schema: Schema, tops: list[etree._Element]) -> Iterator[libyang.DNode | None]:
    """The nodes as one libyang data tree (not validated: running was, the state is what the
    daemon reports), freed afterwards."""
    if not tops:
        yield None
        return
    xml = "".join(etree.tostring(r, encoding="unicode") for r in tops)
    tree = schema.ctx.parse_data_mem(xml, "xml", parse_only=True, strict=True)
    try:
        yield tree
    finally:
        if tree is not None:
            tree.free()


def select(tree: libyang.DNode | None, steps: tuple[Step, ...]) -> list[libyang.DNode]:
    """The data nodes the path selects; a leaf-list's entries once (the leaf-list is one
    node for gNMI). ``()`` selects every top-level node."""
    if tree is None:
        return []
    if not steps:
        return list(tree.first_sibling().siblings())
    out: list[libyang.DNode] = []
    seen: set[str] = set()
    for node in tree.find_all(paths.xpath(steps)):
        key = _leaf_list_path(node) or node.path()
        if key not in seen:
            seen.add(key)
            out.append(node)
    return out


def _leaf_list_path(node: libyang.DNode) -> str | None:
    if node.schema().keyword() != "leaf-list":
        return None
    return node.path().rsplit("[", 1)[0]


def value(node: libyang.DNode) -> Any:
    """The JSON_IETF value of one node as libyang prints it: a container's or list entry's
    members, a leaf's value, a leaf-list's array of values."""
    if node.schema().keyword() == "leaf-list":
        return [json.loads(n.print_mem("json", pretty=False)).popitem()[1][0]
                for n in _leaf_list_entries(node)]
    v = json.loads(node.print_mem("json", pretty=False)).popitem()[1]
    if node.schema().keyword() == "list":
        return v[0]
    return v


def _leaf_list_entries(node: libyang.DNode) -> list[libyang.DNode]:
    name, mod = node.name(), node.module().name()
    return [n for n in node.first_sibling().siblings()
            if n.name() == name and n.module().name() == mod]


def whole(tree: libyang.DNode | None) -> dict[str, Any]:
    """Every top-level node, as one RFC 7951 object (the value of the path ``/``)."""
    if tree is None:
        return {}
    return json.loads(tree.first_sibling().print_mem("json", with_siblings=True, pretty=False))


def node_steps(node: libyang.DNode) -> tuple[Step, ...]:
    """The concrete path of a selected node."""
    return paths.from_data_path(_leaf_list_path(node) or node.path())


def leaves(steps: tuple[Step, ...], val: Any, sn: SNode | None | dict) -> Leaves:
    """The leaves under a node (``steps``, its JSON value ``val``, its schema node; the top
    level dict for the whole tree) as {path: JSON value}: list entries get their keys in the
    path, a leaf-list is one leaf with an array."""
    out: Leaves = {}
    _flatten(steps, val, sn, out)
    return out


def _flatten(steps: tuple[Step, ...], val: Any, sn: SNode | dict | None, out: Leaves) -> None:
    kind = sn.kind if isinstance(sn, SNode) else "container"
    if kind in ("leaf", "leaf-list") or not isinstance(val, dict):
        out[steps] = val
        return
    module = steps[-1].module if steps else ""
    for member, child_val in val.items():
        mod, _, name = member.rpartition(":")
        mod = mod or module
        csn = nfpaths.find(sn, mod, name) if sn is not None else None
        if csn is not None and csn.kind == "list" and isinstance(child_val, list):
            for entry in child_val:
                keys = tuple((k, _key_text(entry.get(k))) for k in csn.keys)
                _flatten((*steps, Step(mod, name, keys)), entry, csn, out)
        else:
            _flatten((*steps, Step(mod, name)), child_val, csn, out)


def _key_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else str(v)


def dumps(val: Any) -> str:
    """A JSON value as the text :func:`encode` gives as bytes."""
    return json.dumps(val, separators=(",", ":"), ensure_ascii=False)


def encode(val: Any) -> bytes:
    """A JSON value as the bytes of a TypedValue's json_ietf_val."""
    return dumps(val).encode()
