"""What a read can return, found before anything is copied: reads cost what they return.

A read (get, get-config, get-data) used to copy the whole datastore, apply with-defaults and
NACM to every node, and only then run its filter. Here the filter is first turned into a
*spec*: the shape of a subtree filter that selects a superset of what the real filter selects,
cut at the top-level containers' children. ``pick`` copies only that superset out of the
datastore, using the tree's entry index for list entries selected by their keys; the read
then applies with-defaults, NACM and the real filter to those copies as before, so the reply
is the same, node for node, as without narrowing.

Why the superset is enough: the subtree filter (RFC 6241 6.2) keeps a child of a top-level
container only if a filter node of its name selects it, and a list entry whose keys differ
from the filter's key content-match nodes is never selected; NACM rules and with-defaults
decide each node by its own path and schema, not by its siblings' entries. An XPath filter is
narrowed only when it is a plain absolute path (``/p:top/p:list[p:key='v']/p:leaf``) whose
steps cannot leave the entry (no ``//``, ``..``, axes, unions, variables, or paths inside
predicates); anything else reads the whole datastore as before.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from lxml import etree

from nf.edit import elements, qname
from nf.paths import schema_of
from nf.schema import SNode
from nf.tree import Tree

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NMDA = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"
MANY = 32  # more index look-ups than this in one list: one pass over the list instead


def _is_content_match(f: etree._Element) -> bool:
    return not any(isinstance(c.tag, str) for c in f) and bool((f.text or "").strip())


def _matches(f: etree._Element, ns: str, name: str) -> bool:
    fns, fname = qname(f)
    return fname == name and (not fns or fns == ns)


# ---- the spec of a request ------------------------------------------------
def spec_of(op: etree._Element) -> etree._Element | None:
    """The narrowing spec of a read operation's filter (``<filter>`` of get/get-config,
    ``subtree-filter``/``xpath-filter`` of get-data), or None: read everything."""
    f = op.find(f"{{{NC}}}filter")
    if f is not None:
        ftype = f.get("type", "subtree")
        if ftype == "subtree":
            return f
        if ftype == "xpath" and f.get("select") is not None:
            return xpath_spec(f.get("select"), f.nsmap)
        return None
    sub = op.find(f"{{{NMDA}}}subtree-filter")
    if sub is not None:
        return sub
    xp = op.find(f"{{{NMDA}}}xpath-filter")
    if xp is not None:
        return xpath_spec((xp.text or "").strip(), xp.nsmap)
    return None


_NAME = r"[A-Za-z_][\w.-]*"
_STEP = re.compile(rf"/(?:({_NAME}):)?({_NAME})((?:\[[^\[\]/]*\])*)")
_KEY_PRED = re.compile(
    rf"""\[\s*(?:({_NAME}):)?({_NAME})\s*=\s*(?:'([^']*)'|"([^"]*)")\s*\]""")
_UNSAFE = ("|", "//", "..", "::", "$", "@")


def xpath_spec(select: str, nsmap: dict) -> etree._Element | None:
    """The spec of an XPath filter that is a plain absolute path of child steps (see the
    module docstring), or None."""
    select = select.strip()
    if not select or any(u in select for u in _UNSAFE):
        return None
    steps, pos = [], 0
    while pos < len(select):
        m = _STEP.match(select, pos)
        if m is None:
            return None
        steps.append(m)
        pos = m.end()
    if not steps:
        return None
    spec = etree.Element("spec")
    parent = spec
    for depth, m in enumerate(steps[:2]):
        prefix, name, preds = m.group(1), m.group(2), m.group(3)
        ns = nsmap.get(prefix) if prefix else None
        if ns is None or (depth == 0 and preds):
            return None  # an unprefixed name is in no namespace: nothing to narrow
        node = etree.SubElement(parent, f"{{{ns}}}{name}")
        if depth == 1 and preds:
            keys = _key_preds(preds, nsmap)
            for kns, kname, value in keys or ():
                etree.SubElement(node, f"{{{kns}}}{kname}").text = value
        parent = node
    return spec


def _key_preds(preds: str, nsmap: dict) -> list[tuple[str, str, str]] | None:
    """``[p:k='v']...`` as (ns, name, value) when every predicate is of that form, else None
    (a positional or other predicate: no key narrowing)."""
    out, pos = [], 0
    while pos < len(preds):
        m = _KEY_PRED.match(preds, pos)
        if m is None or not m.group(1) or nsmap.get(m.group(1)) is None:
            return None
        value = m.group(3) if m.group(3) is not None else m.group(4)
        if not value.strip():
            return None
        out.append((nsmap[m.group(1)], m.group(2), value))
        pos = m.end()
    return out


# ---- picking from a datastore -------------------------------------------
def pick(root: etree._Element, tree: Tree | None, spec: etree._Element | None,
         top: dict[tuple[str, str], SNode],
         keep_containers: bool = False) -> list[etree._Element]:
    """Copies of the top-level nodes of ``root`` cut to what ``spec`` can select (all of them,
    whole, when ``spec`` is None). ``tree``: the datastore's Tree when ``root`` is its root
    (its entry index is used), or None. ``keep_containers``: keep every child of a top
    container that is not a list entry (leaves, containers: few; and one child at least), for
    with-defaults modes that add default nodes to what is kept (libyang adds none to an
    empty top container)."""
    if spec is None:
        return [copy.deepcopy(r) for r in elements(root)]
    fs_all = list(elements(spec))
    out = []
    for d in elements(root):
        ns, name = qname(d)
        fs = [f for f in fs_all if _matches(f, ns, name)]
        if not fs:
            continue
        if any(not any(isinstance(c.tag, str) for c in f) for f in fs):
            out.append(copy.deepcopy(d))  # a selection node: the whole container
            continue
        out.append(_cut(d, [fc for f in fs for fc in elements(f)],
                        tree if tree is not None and d.getparent() is tree.root else None,
                        schema_of(top, d), keep_containers))
    return out


def _cut(d: etree._Element, fcs: list[etree._Element], tree: Tree | None,
         sn: SNode | None, keep_containers: bool) -> etree._Element:
    """A copy of the top container ``d`` holding only the children some ``fcs`` may select
    (and, with ``keep_containers``, every child that is not a list entry)."""
    whole = _whole_tags(fcs, sn, keep_containers)
    if whole is not None:
        cut = _most(d, whole)
        if cut is not None:
            return cut
    chosen: dict[int, etree._Element] = {}
    sources = 0  # how many look-ups added to chosen (more than one: order may be lost)
    by_tag: dict[str, list[etree._Element]] = {}
    for fc in fcs:
        fns, fname = qname(fc)
        lsn = _list_of(sn, fns, fname)
        tag = f"{{{fns}}}{fname}" if fns else f"{{*}}{fname}"
        if lsn is not None:
            by_tag.setdefault(f"{{{lsn.ns}}}{lsn.name}", []).append(fc)
            continue
        sources += 1
        for c in d.iterchildren(tag):
            chosen[id(c)] = c
    for tag, lfcs in by_tag.items():
        lsn = _list_of(sn, *_split(tag))
        keys = [_keys_of(lsn, fc) for fc in lfcs]
        if any(k is None for k in keys) or len(keys) > MANY or tree is None:
            sources += 1
            for c in d.iterchildren(tag):
                if any(k is None or _has_key(lsn, c, k) for k in keys):
                    chosen[id(c)] = c
            continue
        for k in keys:
            sources += 1
            found = tree.find_entry(d, tag, k)
            if found is None:  # a key stored with spaces around it: look for it
                for c in d.iterchildren(tag):
                    if _has_key(lsn, c, k):
                        chosen[id(c)] = c
            else:
                chosen[id(found)] = found
    if keep_containers and sn is not None:
        for (cns, cname), csn in sn.children.items():
            if csn.kind != "list":
                sources += 1
                for c in d.iterchildren(f"{{{cns}}}{cname}"):
                    chosen[id(c)] = c
    if keep_containers and not chosen:
        first = next(elements(d), None)  # so that d is not empty: libyang fills defaults in
        if first is not None:
            chosen[id(first)] = first
    picked = list(chosen.values())
    if sources > 1 and len(picked) > 1:  # back in document order
        if len(picked) > MANY:
            picked = [c for c in d if id(c) in chosen]
        else:  # index(): a walk of the siblings in C (an XPath count built a node set)
            picked.sort(key=d.index)
    if len(picked) > MANY and 2 * len(picked) > len(d):  # most of it: one copy, in C
        new = copy.deepcopy(d)
        for orig, c in zip(list(d), list(new), strict=True):
            if id(orig) not in chosen:
                new.remove(c)
        return new
    new = etree.Element(d.tag, dict(d.attrib), nsmap=d.nsmap)
    new.text = d.text
    for c in picked:
        new.append(copy.deepcopy(c))
    return new


def _whole_tags(fcs: list[etree._Element], sn: SNode | None,
                keep_containers: bool) -> list[tuple[str, str]] | None:
    """The (namespace or "", name) of the children ``fcs`` select whole, when they select
    nothing by key; else None."""
    out = []
    for fc in fcs:
        fns, fname = qname(fc)
        lsn = _list_of(sn, fns, fname)
        if lsn is not None and _keys_of(lsn, fc) is not None:
            return None
        out.append((fns, fname))
    if keep_containers:
        if sn is None:
            return None
        out += [k for k, csn in sn.children.items() if csn.kind != "list"]
    return out


def _most(d: etree._Element, tags: list[tuple[str, str]]) -> etree._Element | None:
    """A copy of ``d`` with only its children of these names, made as one copy in C with the
    others removed, when they are most of ``d`` (a whole list of 10,000 entries); else None."""
    ns = {f"p{i}": t[0] for i, t in enumerate(tags) if t[0]}
    test = " or ".join(f"self::p{i}:{name}" if tns else f"local-name()='{name}'"
                       for i, (tns, name) in enumerate(tags))
    if not test or "'" in "".join(name for _, name in tags):
        return None
    count = int(d.xpath(f"count(*[{test}])", namespaces=ns))
    if count <= MANY or 2 * count <= len(d):
        return None
    new = copy.deepcopy(d)
    for c in new.xpath(f"*[not({test})] | comment() | processing-instruction()",
                       namespaces=ns):
        new.remove(c)
    new.text = d.text
    return new


def _split(tag: str) -> tuple[str, str]:
    ns, _, name = tag[1:].partition("}")
    return ns, name


def _list_of(sn: SNode | None, ns: str, name: str) -> SNode | None:
    """The one list schema node a filter node of this name can select, or None."""
    if sn is None:
        return None
    found = [c for (cns, cname), c in sn.children.items()
             if cname == name and (not ns or cns == ns)]
    return found[0] if len(found) == 1 and found[0].kind == "list" else None


def _keys_of(lsn: SNode, fc: etree._Element) -> tuple[str, ...] | None:
    """The key values a list filter node selects entries by (content-match nodes of every
    key, once each), or None: any entry may match."""
    values: dict[str, str] = {}
    for c in elements(fc):
        cns, cname = qname(c)
        if cname in lsn.keys and (not cns or cns == lsn.ns) and _is_content_match(c):
            if cname in values:
                return None
            values[cname] = (c.text or "").strip()
    if len(values) != len(lsn.keys):
        return None
    return tuple(values[k] for k in lsn.keys)


def _has_key(lsn: SNode, c: etree._Element, key: tuple[str, ...]) -> bool:
    return tuple((c.findtext(f"{{{lsn.ns}}}{k}") or "").strip() for k in lsn.keys) == key


# ---- state --------------------------------------------------------------
def state(data: dict[str, Any], spec: etree._Element | None, ns: str,
          name: str) -> dict[str, Any]:
    """The state of the top container ``{ns}name`` (as plain data, children by name) cut to
    the children ``spec`` may select: the rest is not even built."""
    if spec is None:
        return data
    fs = [f for f in elements(spec) if _matches(f, ns, name)]
    if any(not any(isinstance(c.tag, str) for c in f) for f in fs):
        return data
    fcs = [fc for f in fs for fc in elements(f) if qname(fc)[0] in ("", ns)]
    wanted = {qname(fc)[1] for fc in fcs}
    # another module's state ("module:top", RFC 9061's IKE-less SAs) is cut by the filter
    out = {k: v for k, v in data.items() if k in wanted or ":" in k}
    for name, key in ENTRY_STATE.items():
        if isinstance(out.get(name), list):
            keys = _state_keys([fc for fc in fcs if qname(fc)[1] == name], ns, key)
            if keys is not None:
                by_key = _index(name, key, out[name])
                hits = sorted(p for k in keys for p in by_key.get(k, ()))
                out[name] = [out[name][p] for p in hits]  # in the list's order
    return out


# the last state list of each name indexed by its key, with the list it indexes: a published
# state tree is never changed (each reading composes new lists), so the index lasts as long
# as the list is the same object; a get of one VPN by key at 10,000 VPNs scanned all 10,000
_indexed: dict[str, tuple[list[Any], dict[str, list[int]]]] = {}


def _index(name: str, key: str, items: list[Any]) -> dict[str, list[int]]:
    """The positions of the items of the state list ``name`` by the (stripped) value of
    their ``key``."""
    hit = _indexed.get(name)
    if hit is not None and hit[0] is items:
        return hit[1]
    by_key: dict[str, list[int]] = {}
    for p, i in enumerate(items):
        by_key.setdefault(str(i.get(key)).strip(), []).append(p)
    _indexed[name] = (items, by_key)
    return by_key


# state lists whose items go into the config entry of the same key (nf/state.py merge_state):
# a filter that selects that list's entries by key needs only those items, not 10,000
ENTRY_STATE = {"vpn": "name", "pool": "name"}


def _state_keys(fcs: list[etree._Element], ns: str, key: str) -> set[str] | None:
    """The key values the filter nodes ``fcs`` of one list select entries by (each with one
    content-match node of ``key``), or None: any entry may be selected."""
    keys = set()
    for fc in fcs:
        kcs = [c for c in elements(fc) if qname(c)[1] == key and qname(c)[0] in ("", ns)]
        if len(kcs) != 1 or not _is_content_match(kcs[0]):
            return None
        keys.add((kcs[0].text or "").strip())
    return keys if fcs else None


def may_select(spec: etree._Element | None, namespaces: frozenset[str]) -> bool:
    """May ``spec`` select a top-level node in one of these namespaces? (A filter node with
    no namespace matches every namespace.)"""
    return spec is None or any(qname(f)[0] in namespaces or not qname(f)[0]
                               for f in elements(spec))


def wants_top(spec: etree._Element | None, ns: str, name: str) -> bool:
    """May ``spec`` select something in the top-level node ``{ns}name``?"""
    return spec is None or any(_matches(f, ns, name) for f in elements(spec))
