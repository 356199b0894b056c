"""YANG-Push content (RFC 8641), pure functions: the data a subscription selects, the
difference between two selections as YANG Patch edits (RFC 8072), and the bodies of the
push-update, push-change-update and subscription state notifications (RFC 8639)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from urllib.parse import quote

from lxml import etree

from nf.edit import elements, qname
from nf.observed import CLOCK
from nf.paths import schema_of
from nf.schema import NAMESPACES, SNode
from northbound import filters

SN = "urn:ietf:params:xml:ns:yang:ietf-subscribed-notifications"
YP = "urn:ietf:params:xml:ns:yang:ietf-yang-push"
CHANGE_TYPES = ("create", "delete", "insert", "move", "replace")

Level = SNode | dict[tuple[str, str], SNode] | None


@dataclass(frozen=True)
class Edit:
    """One YANG Patch edit: ``operation`` (create, delete, replace) of the node at ``target``
    (a data resource identifier, RFC 8040 section 3.5.3, from the datastore's root) with its
    new ``value`` (None for a delete)."""

    operation: str
    target: str
    value: etree._Element | None = None


def strip_secrets(roots: list[etree._Element], top: Level) -> list[etree._Element]:
    """``roots`` (changed in place) without the nodes marked nacm:default-deny-all: a
    subscription never pushes a secret, whoever the receiver."""
    return [r for r in roots if _strip(r, schema_of(top, r))]


def _strip(el: etree._Element, sn: SNode | None) -> bool:
    if sn is not None and sn.deny_all:
        return False
    for c in list(elements(el)):
        if not _strip(c, schema_of(sn, c) if sn is not None else None):
            el.remove(c)
    return True


@dataclass(frozen=True)
class Selection:
    """A datastore selection filter: a subtree filter (the anydata element, whose children
    are the filter) or an XPath expression with the namespaces in scope (RFC 8641: every
    module name as a prefix, then the prefixes declared on the element)."""

    subtree: etree._Element | None = None
    xpath: str | None = None
    nsmap: tuple[tuple[str, str], ...] = ()

    def apply(self, roots: list[etree._Element], top: dict[tuple[str, str], SNode]
              ) -> list[etree._Element]:
        """The parts of ``roots`` the filter selects (all of them without a filter)."""
        if self.subtree is not None:
            return filters.subtree(roots, self.subtree)
        if self.xpath is not None:
            return filters.xpath(roots, self.xpath, dict(self.nsmap), top)
        return roots


def xpath_namespaces(el: etree._Element) -> tuple[tuple[str, str], ...]:
    """The XPath context of a filter leaf (RFC 8639/8641): module names as prefixes, then the
    element's own declarations (which win)."""
    ns = dict(NAMESPACES)
    ns.update({k: v for k, v in el.nsmap.items() if k})
    return tuple(sorted(ns.items()))


def event_selected(body: etree._Element, subtree: etree._Element | None,
                   xpath: str | None, nsmap: tuple[tuple[str, str], ...]) -> bool:
    """Does an event stream filter select this event record (RFC 8639 section 2.2)?"""
    if subtree is not None:
        return bool(filters.subtree([body], subtree))
    if xpath is not None:
        try:
            result = etree.ElementTree(body).xpath(xpath, namespaces=dict(nsmap))
        except etree.XPathError:
            return False
        return bool(result)
    return True


# --- differences as YANG Patch edits ---------------------------------------------------------

def _identity(el: etree._Element, sn: SNode | None) -> tuple:
    ns, name = qname(el)
    if sn is None:
        return (ns, name, etree.tostring(el, method="c14n"))
    if sn.kind == "list":
        return (ns, name, tuple((el.findtext(f"{{{sn.ns}}}{k}") or "") for k in sn.keys))
    if sn.kind == "leaf-list":
        return (ns, name, (el.text or "").strip())
    return (ns, name)


def _step(el: etree._Element, sn: SNode | None, parent_ns: str | None) -> str:
    ns, name = qname(el)
    module = next((m for m, n in NAMESPACES.items() if n == ns), ns)
    head = name if ns == parent_ns else f"{module}:{name}"
    if sn is not None and sn.kind == "list" and sn.keys:
        keys = [el.findtext(f"{{{sn.ns}}}{k}") or "" for k in sn.keys]
        return f"/{head}=" + ",".join(quote(k, safe="") for k in keys)
    if sn is not None and sn.kind == "leaf-list":
        return f"/{head}=" + quote((el.text or "").strip(), safe="")
    return f"/{head}"


def _index(parent: etree._Element | list[etree._Element], level: Level
           ) -> dict[tuple, tuple[etree._Element, SNode | None]]:
    out: dict[tuple, tuple[etree._Element, SNode | None]] = {}
    for c in (parent if isinstance(parent, list) else elements(parent)):
        sn = schema_of(level, c) if level is not None else None
        out.setdefault(_identity(c, sn), (c, sn))
    return out


def _np_container(sn: SNode | None) -> bool:
    return sn is not None and sn.kind == "container" and not sn.presence


def _clock(sn: SNode | None) -> bool:
    return sn is not None and sn.kind == "leaf" and not sn.config and sn.name in CLOCK


def diff(old: list[etree._Element], new: list[etree._Element], top: Level) -> list[Edit]:
    """The edits that turn the selection ``old`` into ``new`` (top-level nodes of the
    datastore): a node only in ``new`` is created, only in ``old`` deleted, a leaf whose value
    changed replaced; containers and list entries present in both are compared inside, so
    an edit names the deepest node that changed (a non-presence container, which exists only
    through its children, is never created or deleted itself). List entries are matched by
    their keys, leaf-list entries by value. State leaves that move only with the clock
    (:data:`nf.observed.CLOCK`: ages, countdowns, state-read-time) are not on-change
    notifiable (RFC 8641 section 3.10): they are sent inside a node created, never as edits
    of their own."""
    out: list[Edit] = []
    _diff(old, new, top, "", None, out)
    return out


def _diff(old: etree._Element | list[etree._Element], new: etree._Element | list[etree._Element],
          level: Level, path: str, parent_ns: str | None, out: list[Edit]) -> None:
    before, after = _index(old, level), _index(new, level)
    for key, (o, sn) in before.items():
        if key not in after and not _clock(sn):
            if _np_container(sn):  # exists only through its children: say which went
                _diff(o, etree.Element(o.tag), sn, path + _step(o, sn, parent_ns),
                      qname(o)[0], out)
            else:
                out.append(Edit("delete", path + _step(o, sn, parent_ns)))
    for key, (n, sn) in after.items():
        if _clock(sn):
            continue
        target = path + _step(n, sn, parent_ns)
        if key not in before:
            if _np_container(sn):
                _diff(etree.Element(n.tag), n, sn, target, qname(n)[0], out)
            else:
                out.append(Edit("create", target, n))
            continue
        o = before[key][0]
        if sn is not None and sn.kind in ("container", "list"):
            _diff(o, n, sn, target, qname(n)[0], out)
        elif sn is not None and sn.kind == "leaf" and (
                (o.text or "").strip() != (n.text or "").strip()):
            out.append(Edit("replace", target, n))


# --- notification bodies ---------------------------------------------------------------------

def _leaf(parent: etree._Element, ns: str, name: str, text: object) -> etree._Element:
    el = etree.SubElement(parent, f"{{{ns}}}{name}")
    el.text = str(text)
    return el


def push_update(sub_id: int, roots: list[etree._Element]) -> etree._Element:
    """RFC 8641 push-update: the whole selection (periodic, sync-on-start, resync)."""
    el = etree.Element(f"{{{YP}}}push-update", nsmap={None: YP})
    _leaf(el, YP, "id", sub_id)
    contents = etree.SubElement(el, f"{{{YP}}}datastore-contents")
    for r in roots:
        contents.append(copy.deepcopy(r))
    return el


def push_change_update(sub_id: int, patch_id: str, edits: list[Edit]) -> etree._Element:
    """RFC 8641 push-change-update: the changes since the last update as a YANG Patch."""
    el = etree.Element(f"{{{YP}}}push-change-update", nsmap={None: YP})
    _leaf(el, YP, "id", sub_id)
    patch = etree.SubElement(etree.SubElement(el, f"{{{YP}}}datastore-changes"),
                             f"{{{YP}}}yang-patch")
    _leaf(patch, YP, "patch-id", patch_id)
    for i, e in enumerate(edits, 1):
        edit = etree.SubElement(patch, f"{{{YP}}}edit")
        _leaf(edit, YP, "edit-id", f"edit{i}")
        _leaf(edit, YP, "operation", e.operation)
        _leaf(edit, YP, "target", e.target)
        if e.value is not None:
            etree.SubElement(edit, f"{{{YP}}}value").append(copy.deepcopy(e.value))
    return el


def state_notification(name: str, sub_id: int, reason: str | None = None) -> etree._Element:
    """An RFC 8639 subscription state change notification with its id (and reason, an
    identity of ietf-subscribed-notifications: subscription-suspended, -terminated)."""
    el = etree.Element(f"{{{SN}}}{name}", nsmap={None: SN, "sn": SN})
    _leaf(el, SN, "id", sub_id)
    if reason is not None:
        _leaf(el, SN, "reason", f"sn:{reason}")
    return el
