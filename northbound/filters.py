"""Subtree (RFC 6241 section 6) and XPath filtering of a data tree. Pure functions."""

from __future__ import annotations

import copy

from lxml import etree

from nf.edit import elements, qname
from nf.errors import InvalidValue
from nf.paths import chain
from nf.schema import SNode
from nf.tree import has_children


def _matches(f: etree._Element, d: etree._Element) -> bool:
    fns, fname = qname(f)
    dns, dname = qname(d)
    return fname == dname and (not fns or fns == dns)


def _is_content_match(f: etree._Element) -> bool:
    return len(list(elements(f))) == 0 and bool((f.text or "").strip())


def _local(el: etree._Element) -> tuple[str, str]:
    """(namespace, local name) of an element, from its tag (no QName object)."""
    tag = el.tag
    if tag[0] == "{":
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return "", tag


def _select(d: etree._Element, f: etree._Element, owned: bool = False) -> etree._Element | None:
    """What filter node ``f`` selects of ``d``; ``owned``: ``d`` is a copy made for this
    read, so what is selected whole is moved into the result instead of copied."""
    fchildren = list(elements(f))
    if not fchildren:
        return d if owned else copy.deepcopy(d)
    matches = [c for c in fchildren if _is_content_match(c)]
    for cm in matches:
        want = (cm.text or "").strip()
        if not any(_matches(cm, dc) and (dc.text or "").strip() == want for dc in elements(d)):
            return None
    others = [c for c in fchildren if not _is_content_match(c)]
    if not others:
        return d if owned else copy.deepcopy(d)
    by_name: dict[str, list[tuple[str, etree._Element, bool]]] = {}
    for c in fchildren:
        fns, fname = _local(c)
        by_name.setdefault(fname, []).append((fns, c, _is_content_match(c)))
    out = etree.Element(d.tag, nsmap=d.nsmap)
    if all(fns for cands in by_name.values() for fns, _, _ in cands):
        # every filter node has its namespace: lxml finds the candidates (a list of 10,000
        # entries is walked in C), and a lone selection node takes its nodes whole
        tags = {f"{{{fns}}}{name}": cands for name, cands in by_name.items()
                for fns, _, _ in cands}
        whole = {t for t, cands in tags.items() if len(cands) == 1
                 and not cands[0][2] and not has_children(cands[0][1])}
        if owned and not matches and whole == set(tags) and _only_these(d, whole):
            d.attrib.clear()  # every child is selected whole: d, as the new node would be
            d.text = d.tail = None
            return d if len(d) else None
        for dc in list(d.iterchildren(*tags)):
            if dc.tag in whole:
                out.append(dc if owned else copy.deepcopy(dc))
                continue
            _add(out, dc, [(fc, cm) for fns, fc, cm in tags[dc.tag]
                           if f"{{{fns}}}{_local(fc)[1]}" == dc.tag], owned)
        return _result(out, matches, others)
    for dc in list(elements(d)) if owned else elements(d):
        cands = by_name.get(_local(dc)[1])
        if not cands:
            continue
        dns = _local(dc)[0]
        _add(out, dc, [(fc, cm) for fns, fc, cm in cands if not fns or fns == dns], owned)
    return _result(out, matches, others)


def _only_these(d: etree._Element, tags: set[str]) -> bool:
    """Has ``d`` only child elements with these tags (counted in C)?"""
    ns = {}
    tests = []
    for i, tag in enumerate(sorted(tags)):
        tns, _, name = tag[1:].partition("}")
        ns[f"p{i}"] = tns
        tests.append(f"self::p{i}:{name}")
    return int(d.xpath(f"count(*[{' or '.join(tests)}])", namespaces=ns)) == len(d)


def _add(out: etree._Element, dc: etree._Element, cands: list[tuple[etree._Element, bool]],
         owned: bool) -> None:
    """Add to ``out`` what the filter nodes ``cands`` (each with: is it a content match?)
    select of the data node ``dc``."""
    if not cands:
        return
    if any(cm for _, cm in cands):
        out.append(dc if owned else copy.deepcopy(dc))
        return
    sel = [fc for fc, _ in cands]
    r = _union([_select(dc, fc, owned and len(sel) == 1) for fc in sel])
    if r is not None:
        out.append(r)


def _result(out: etree._Element, matches: list, others: list) -> etree._Element | None:
    if matches and len(out) == len(matches) and others:
        # Only the keys matched and nothing selected under them: keep the entry (as a marker).
        return out
    return out if len(out) or not others else None


def subtree(roots: list[etree._Element], filt: etree._Element,
            owned: bool = False) -> list[etree._Element]:
    """The parts of ``roots`` (top-level data nodes) selected by a subtree filter.
    ``owned``: the roots are copies made for this read (what is selected whole is moved out
    of them, not copied: they are left cut up)."""
    out: list[etree._Element] = []
    fchildren = list(elements(filt))
    for d in roots:
        fs = [f for f in fchildren if _matches(f, d)]
        r = _union([_select(d, f, owned and len(fs) == 1) for f in fs])
        if r is not None and (len(r) or any(not list(elements(f)) for f in fs)):
            out.append(r)
    return out


def _union(results: list[etree._Element | None]) -> etree._Element | None:
    """Several filter siblings selecting the same node (RFC 6241 6.4.4): one node holding
    what any of them selected."""
    found = [r for r in results if r is not None]
    if not found:
        return None
    first = found[0]
    if len(found) == 1:
        return first
    seen = {etree.tostring(c, method="c14n") for c in elements(first)}
    for other in found[1:]:
        for c in list(elements(other)):
            key = etree.tostring(c, method="c14n")
            if key not in seen:
                seen.add(key)
                first.append(c)
    return first


def xpath(
    roots: list[etree._Element], select: str, nsmap: dict, top: dict[tuple[str, str], SNode]
) -> list[etree._Element]:
    """The nodes selected by an XPath expression, with their ancestors and list keys.

    Each top-level node is its own document, so absolute paths and unions work as written."""
    ns = {k: v for k, v in nsmap.items() if k}
    out_root = etree.Element("root")
    for r in roots:
        doc = etree.ElementTree(copy.deepcopy(r))
        try:
            found = doc.xpath(select, namespaces=ns)
        except etree.XPathError as e:
            raise InvalidValue(f"invalid XPath filter: {e}", type="protocol") from None
        if not isinstance(found, list):
            raise InvalidValue("the XPath filter must select nodes", type="protocol")
        for node in found:
            if not isinstance(node, etree._Element):
                node = node.getparent() if hasattr(node, "getparent") else None
            if node is not None and isinstance(node.tag, str):
                _graft(out_root, node, [sn for _, sn in chain(node, top)])
    return list(out_root)


def _graft(out_root: etree._Element, node: etree._Element, snodes: list[SNode | None]) -> None:
    chain = list(reversed(list(node.iterancestors())))
    parent = out_root
    for anc, sn in zip(chain, snodes, strict=False):
        keys = sn.keys if sn is not None else ()
        key_vals = [(k, anc.findtext(f"{{{sn.ns}}}{k}")) for k in keys] if sn else []
        existing = None
        for c in parent.iterchildren(anc.tag):
            if all(c.findtext(f"{{{sn.ns}}}{k}") == v for k, v in key_vals):
                existing = c
                break
        if existing is None:
            existing = etree.SubElement(parent, anc.tag, nsmap=anc.nsmap)
            for k, v in key_vals:
                etree.SubElement(existing, f"{{{sn.ns}}}{k}").text = v
        parent = existing
    sn = snodes[-1] if snodes else None
    if sn is not None and parent is not out_root and sn.name in (
        snodes[-2].keys if len(snodes) > 1 and snodes[-2] else ()
    ):
        return
    parent.append(copy.deepcopy(node))
