"""Whole reads printed from the datastore's own nodes: no copy of what is returned.

The general read (``reading.config_roots``, then ``filters.subtree``) copies what it may
return, applies with-defaults and NACM to the copy, filters it, moves it into the reply and
prints it. For the commonest big read that is all waste: a ``<get-config>`` of whole lists or
containers of one top-level container (``<ike><vpn/></ike>``: the whole VPN list), of a whole
top-level container (``<ike/>``) or of everything (no filter), by a user NACM lets read
everything (``Access.superuser``), in our basic with-defaults mode (explicit: what is stored).
The reply is then exactly the stored nodes: here they are printed where they are, each
selected child once, and spliced into the reply (``replies.Verbatim``). At 10,000 VPNs the
copy, its two moves between documents and its freeing were two thirds of the read.

The bytes are those of the general path (``tests/unit/northbound/test_verbatim.py`` compares
them): lxml prints a node that is not a document's root with every namespace in scope declared
on it; those declarations, which the enclosing element printed here declares already, are cut
off again, after checking they are exactly what a node of that name gets (else: the general
path). One difference is allowed, as it is the same XML: a stored node that repeats its
parent's namespace declaration is printed without it.

The last big whole read of running printed is kept with running's version
(``Datastores.version``, raised by every change of running) and given again while that
version lasts: a monitoring stack polling the whole VPN list is served without printing
10,000 entries each time (at 10,000 VPNs: 4.5 MB kept, 60 ms of printing saved per read).

Anything else (another user, another with-defaults mode, a filter with content matches, keys,
nested nodes, several top-level nodes, an XPath filter) returns None: the general path reads.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from lxml import etree

from nf.edit import elements, qname
from nf.tree import has_children
from northbound import replies
from northbound.context import ServerContext
from northbound.reading import WD, wd_mode

NC = replies.NC
NMDA = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"
OR = "urn:ietf:params:xml:ns:yang:ietf-origin"
_AFTER_TAG = (b" ", b">", b"/")
# a printing smaller than this is not kept: printing it again costs less than it is worth
KEEP_MIN = 64 * 1024
# per set of datastores (dropped with it): (request, running's version) -> the last big
# whole read of running printed
_kept: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], bytes]] = \
    weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Wrapper:
    """The element the read's nodes go in, as the general path prints it: ``opening`` and
    ``closing`` tags, ``empty`` (with nothing in it), ``scope`` (the namespaces declared on it:
    lxml drops a declaration of one of them from a top-level node moved into it, as the
    general path does; such a node is left to the general path)."""

    opening: bytes
    closing: bytes
    empty: bytes
    scope: frozenset[str]


GET_CONFIG = Wrapper(b"<data>", b"</data>", b"<data/>", frozenset({NC}))
_NMDA_DATA = b'<data xmlns="%s" xmlns:or="%s"' % (NMDA.encode(), OR.encode())
GET_DATA = Wrapper(_NMDA_DATA + b">", b"</data>", _NMDA_DATA + b"/>",
                   frozenset({NC, NMDA, OR}))


def get_config(ctx: ServerContext, session: Any, name: str,
               op: etree._Element) -> replies.Verbatim | None:
    """The ``<data>`` of a get-config of datastore ``name`` printed from the stored nodes, or
    None when the request is not one this module serves (see the module docstring)."""
    f = op.find(f"{{{NC}}}filter")
    if f is not None and f.get("type", "subtree") != "subtree":
        return None
    return read(ctx, session, name, op, f, GET_CONFIG)


def read(ctx: ServerContext, session: Any, name: str, wd_holder: etree._Element,
         f: etree._Element | None, wrapper: Wrapper) -> replies.Verbatim | None:
    """What a read of datastore ``name`` with the subtree filter ``f`` (None: no filter)
    returns, in ``wrapper``, printed from the stored nodes; None when this module does not
    serve it. ``wd_holder``: the element holding the request's ``<with-defaults>`` (in
    ietf-netconf-with-defaults' namespace)."""
    if wd_mode(wd_holder.find(f"{{{WD}}}with-defaults")) != "explicit":
        return None
    plan = _plan(f)
    if plan is None or not ctx.access(session).superuser:
        return None
    root = ctx.ds.tree(name)
    if root.nsmap:  # declarations above the top-level nodes: not worth the cases
        return None
    if name != "running":
        return _print(root, plan, wrapper)
    key = (ctx.ds.version, id(root), wrapper.opening, plan)
    kept = _kept.get(ctx.ds)
    if kept is not None and kept[0] == key:
        return replies.Verbatim(kept[1])
    out = _print(root, plan, wrapper)
    if out is not None and len(out.xml) >= KEEP_MIN:
        _kept[ctx.ds] = (key, out.xml)
    return out


Plan = tuple[str, ...] | tuple[str, str, frozenset[str]]


def _plan(f: etree._Element | None) -> Plan | None:
    """What a subtree filter selects, when it is a read this module serves: ("all",) (no
    filter), ("none",) (an empty filter), ("top", tag) (one top-level node whole),
    ("children", tag, tags) (those children of one top-level node, whole); else None."""
    if f is None:
        return ("all",)
    fs = list(elements(f))
    if not fs:
        return ("none",)
    if len(fs) != 1:
        return None
    sel = fs[0]
    ns, name = qname(sel)
    if not ns:
        return None
    if not has_children(sel):
        if (sel.text or "").strip():
            return None  # a content match on a container: the general path decides
        return ("top", f"{{{ns}}}{name}")
    tags = _whole_tags(sel)
    return None if tags is None else ("children", f"{{{ns}}}{name}", frozenset(tags))


def _print(root: etree._Element, plan: Plan, wrapper: Wrapper) -> replies.Verbatim | None:
    """:func:`read`'s answer for the datastore whose root is ``root``, printed now."""
    if plan[0] == "all":
        return _whole(list(elements(root)), wrapper)
    if plan[0] == "none":
        return replies.Verbatim(wrapper.empty)
    top = root.find(plan[1])
    if top is None:
        return replies.Verbatim(wrapper.empty)
    if plan[0] == "top":
        return _whole([top], wrapper)
    return _children(top, plan[2], wrapper)  # type: ignore[misc]


def _in_scope(top: etree._Element, wrapper: Wrapper) -> bool:
    """Does ``top`` declare a namespace of the wrapper's scope (whatever the prefix)?"""
    return any(uri in wrapper.scope for uri in top.nsmap.values())


def _whole_tags(sel: etree._Element) -> set[str] | None:
    """The tags of the children a top-level filter node selects whole: each a selection node
    (no child, no text) with a namespace, each name once; else None."""
    tags: set[str] = set()
    names: set[str] = set()
    for c in elements(sel):
        ns, name = qname(c)
        if not ns or name in names or has_children(c) or (c.text or "").strip():
            return None
        names.add(name)
        tags.add(f"{{{ns}}}{name}")
    return tags or None


def _whole(tops: list[etree._Element], wrapper: Wrapper) -> replies.Verbatim | None:
    """Top-level nodes whole, as they are stored (their attributes, text and tail too)."""
    if not tops:
        return replies.Verbatim(wrapper.empty)
    parts = [wrapper.opening]
    for top in tops:
        if _in_scope(top, wrapper):
            return None
        parts.append(etree.tostring(top, with_tail=True))
    parts.append(wrapper.closing)
    return replies.Verbatim(b"".join(parts))


def _children(top: etree._Element, tags: frozenset[str],
              wrapper: Wrapper) -> replies.Verbatim | None:
    """``top`` (without its attributes and text) holding only its children of these tags."""
    if _in_scope(top, wrapper):
        return None
    shell = etree.Element(top.tag, nsmap=top.nsmap)
    printed = etree.tostring(shell)
    if not printed.endswith(b"/>"):
        return None
    opening = printed[:-2] + b">"
    closing = b"</" + printed[1:].split(b" ", 1)[0].split(b"/", 1)[0] + b">"
    kids = list(top)
    picked = [i for i, c in enumerate(kids) if c.tag in tags]
    if not picked:
        return replies.Verbatim(wrapper.empty)
    starts: dict[str, tuple[bytes, bytes] | None] = {}
    lo, hi = picked[0], picked[-1]
    if (hi - lo + 1 == len(picked) and not top.text
            and all(isinstance(c.tag, str) for c in kids)):
        # one run of children: print top whole (one call in C) and cut off the few others
        before = [_in_context(shell, c, starts) for c in kids[:lo]]
        after = [_in_context(shell, c, starts) for c in kids[hi + 1:]]
        if None not in before and None not in after:
            head = opening + b"".join(before)  # type: ignore[arg-type]
            tail = b"".join(after) + closing  # type: ignore[arg-type]
            whole = etree.tostring(top, with_tail=False)
            if (len(whole) >= len(head) + len(tail) and whole.startswith(head)
                    and whole.endswith(tail)):
                body = memoryview(whole)[len(head):len(whole) - len(tail)]
                return replies.Verbatim(
                    b"".join((wrapper.opening, opening, body, closing, wrapper.closing)))
    parts = [wrapper.opening, opening]
    for i in picked:
        text = _in_context(shell, kids[i], starts)
        if text is None:
            return None
        parts.append(text)
    parts += (closing, wrapper.closing)
    return replies.Verbatim(b"".join(parts))


def _in_context(shell: etree._Element, c: etree._Element,
                starts: dict[str, tuple[bytes, bytes] | None]) -> bytes | None:
    """``c`` (a child of the element ``shell`` stands for) and its tail as printed inside
    its parent, or None when that cannot be told from its printing alone (declarations of
    its own). ``starts``: what :func:`_declarations` said, by tag."""
    if c.tag not in starts:
        starts[c.tag] = _declarations(shell, c)
    start = starts[c.tag]
    if start is None:
        return None
    head, added = start
    text = etree.tostring(c, with_tail=True)
    cut = len(head) + len(added)
    if not text.startswith(head + added) or text[cut:cut + 1] not in _AFTER_TAG:
        return None
    return head + text[cut:]


def _declarations(shell: etree._Element, c: etree._Element) -> tuple[bytes, bytes] | None:
    """How lxml starts printing a child of ``shell``'s scope with ``c``'s tag when printed
    alone: its ``<name`` and the namespace declarations it adds; None when the name would
    not be printed as ``c``'s is (another prefix for its namespace)."""
    probe = etree.SubElement(shell, c.tag)
    try:
        if probe.prefix != c.prefix:
            return None
        text = etree.tostring(probe)
    finally:
        shell.remove(probe)
    local = c.tag.rpartition("}")[2]
    head = f"<{c.prefix}:{local}" if c.prefix else f"<{local}"
    head_b = head.encode()
    if not text.startswith(head_b) or not text.endswith(b"/>"):
        return None
    return head_b, text[len(head_b):-2]
