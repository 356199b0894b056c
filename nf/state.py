"""The config-false state tree: observed state (plain dicts) rendered as YANG XML."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from lxml import etree

from nf.observed import CLOCK, same_shape
from nf.schema import NS

_PARSER = etree.XMLParser(resolve_entities=False, huge_tree=True)
_KEEP = 24  # members whose markup is remembered (a snapshot has about 15)
_MEMBERS: OrderedDict[tuple[int, str, str], tuple[Any, str]] = OrderedDict()
_LOCK = threading.Lock()
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _markup(out: list[str], data: dict[str, Any]) -> None:
    for name, value in data.items():
        if value is None:
            continue
        if isinstance(value, dict):
            out.append(f"<{name}>")
            _markup(out, value)
            out.append(f"</{name}>")
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    out.append(f"<{name}>")
                    _markup(out, item)
                    out.append(f"</{name}>")
                elif item is not None:
                    out.append(f"<{name}>{_text(item).translate(_ESCAPES)}</{name}>")
        else:
            out.append(f"<{name}>{_text(value).translate(_ESCAPES)}</{name}>")


# lists whose entries' markup is remembered entry by entry, by their key: a refresh makes a
# new list (and new entries, their countdowns moved) each time
_ENTRY_KEYS = {"ike-sa": "unique-id"}
# (ns, list name) -> key text -> (entry, markup pieces, clock slots: (piece index, trail))
_ENTRIES: dict[tuple[str, str], dict[str, tuple[Any, list[str], list[tuple[int, tuple]]]]] = {}


def _slotted(out: list[str], data: dict[str, Any], slots: list[tuple[int, tuple]],
             trail: tuple) -> None:
    """:func:`_markup`, noting where the text of each clock leaf is (index in ``out``, the
    keys and list positions leading to its value)."""
    for name, value in data.items():
        if value is None:
            continue
        if isinstance(value, dict):
            out.append(f"<{name}>")
            _slotted(out, value, slots, (*trail, name))
            out.append(f"</{name}>")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    out.append(f"<{name}>")
                    _slotted(out, item, slots, (*trail, name, i))
                    out.append(f"</{name}>")
                elif item is not None:
                    out.append(f"<{name}>{_text(item).translate(_ESCAPES)}</{name}>")
        elif name in CLOCK:
            out.append(f"<{name}>")
            slots.append((len(out), (*trail, name)))
            out.append(_text(value).translate(_ESCAPES))
            out.append(f"</{name}>")
        else:
            out.append(f"<{name}>{_text(value).translate(_ESCAPES)}</{name}>")


def _compact(pieces: list[str], slots: list[tuple[int, tuple]]
             ) -> tuple[list[str], list[tuple[int, tuple]]]:
    """The same markup with the pieces between clock values joined (a few pieces per entry
    remembered, not one per element)."""
    out: list[str] = []
    new_slots = []
    start = 0
    for i, trail in slots:
        out.append("".join(pieces[start:i]))
        new_slots.append((len(out), trail))
        out.append(pieces[i])
        start = i + 1
    out.append("".join(pieces[start:]))
    return out, new_slots


def _at(value: Any, trail: tuple) -> Any:
    for step in trail:
        value = value[step]
    return value


def _entries_markup(name: str, entries: list[Any], ns: str) -> list[str]:
    """The markup of a list's entries, each remembered with the entry it came from: an entry
    equal to the last one of its key but for its clock leaves' values (``same_shape``) gets
    the remembered markup with those values written in; others are written again."""
    key = _ENTRY_KEYS[name]
    with _LOCK:
        old = _ENTRIES.get((ns, name), {})
    new: dict[str, tuple[Any, list[str], list[tuple[int, tuple]]]] = {}
    out: list[str] = []
    for e in entries:
        k = _text(e.get(key))
        hit = old.get(k)
        if hit is not None and (hit[0] is e or hit[0] == e):
            pieces, slots = hit[1], hit[2]
        elif hit is not None and same_shape(hit[0], e):
            pieces, slots = list(hit[1]), hit[2]
            for i, trail in slots:
                pieces[i] = _text(_at(e, trail)).translate(_ESCAPES)
        else:
            pieces, slots = [f"<{name}>"], []
            _slotted(pieces, e, slots, ())
            pieces.append(f"</{name}>")
            pieces, slots = _compact(pieces, slots)
        if k not in new:  # a key twice (never from charon): the first one is remembered
            new[k] = (e, pieces, slots)
        out.extend(pieces)
    with _LOCK:
        _ENTRIES[(ns, name)] = new
    return out


def _member_markup(name: str, value: Any, ns: str) -> str:
    """The markup of one top-level state member, remembered while it is the same object."""
    key = (id(value), name, ns)
    with _LOCK:
        hit = _MEMBERS.get(key)
        if hit is not None and hit[0] is value:
            _MEMBERS.move_to_end(key)
            return hit[1]
    out = [f'<r xmlns="{ns}">']
    if name in _ENTRY_KEYS and isinstance(value, list) \
            and all(isinstance(e, dict) for e in value):
        out.extend(_entries_markup(name, value, ns))
    else:
        _markup(out, {name: value})
    out.append("</r>")
    text = "".join(out)
    with _LOCK:
        _MEMBERS[key] = (value, text)  # holding value: its id is not reused meanwhile
        while len(_MEMBERS) > _KEEP:
            _MEMBERS.popitem(last=False)
    return text


def add_member(parent: etree._Element, name: str, value: Any, ns: str = NS) -> None:
    """Append one member of a snapshot's tree (``ike-sa``, ``counters``...) under ``parent``.

    A snapshot's tree is never changed (nf/observed.py), and each member stays the same object
    until the daemon is read again: its markup is remembered, so reads of one snapshot (gets
    within a second, every front) render its SA table once, then only parse it (in C)."""
    if value is None:
        return
    if not isinstance(value, (dict, list)):
        to_xml(parent, {name: value}, ns)
        return
    for child in etree.fromstring(_member_markup(name, value, ns), _PARSER):
        parent.append(child)


def to_xml(parent: etree._Element, data: dict[str, Any], ns: str = NS) -> None:
    """Append ``data`` (containers as dicts, lists as lists of dicts) under ``parent``.

    Written as text and parsed once by lxml: creating each element from Python was most of a
    <get> of 1,000 SAs (about 50,000 leaves); names are YANG identifiers, values escaped."""
    out = [f'<r xmlns="{ns}">']
    _markup(out, data)
    out.append("</r>")
    for child in etree.fromstring("".join(out), _PARSER):
        parent.append(child)


# state lists whose entries live inside entries of a config list (``vpn[name]/effective``):
# merged into the config entry with the same key, never added beside it
_INSIDE_CONFIG = {"vpn": "name", "pool": "name"}  # pool: its usage (remote access)
INSIDE_CONFIG = frozenset(_INSIDE_CONFIG)  # public: whose state needs running to render


def merge_state(config_roots: list[etree._Element], state: dict[str, Any]) -> list[etree._Element]:
    """The config roots with the ``ike`` state (ike-sa list, counters...) added inside
    ``<ike>``; the state of a config list entry (a VPN's ``effective``) goes into that entry,
    and is left out when the entry is not there (not configured, or not readable)."""
    roots = list(config_roots)
    ike = next((r for r in roots if r.tag == f"{{{NS}}}ike"), None)
    if ike is None:
        ike = etree.Element(f"{{{NS}}}ike", nsmap={None: NS})
        roots.append(ike)
    for name, value in state.items():
        if ":" in name:  # another module's state, inside its configured entries
            _merge_module(roots, name, value)
            continue
        key = _INSIDE_CONFIG.get(name)
        if key is None:
            add_member(ike, name, value)
            continue
        entries = {e.findtext(f"{{{NS}}}{key}"): e for e in ike.findall(f"{{{NS}}}{name}")}
        for item in value or []:
            entry = entries.get(str(item.get(key)))
            if entry is not None:
                to_xml(entry, {k: v for k, v in item.items() if k != key})
    return roots


def _merge_module(roots: list[etree._Element], top: str, value: dict[str, Any]) -> None:
    """State of another module (``module:top``, e.g. ``ietf-i2nsf-ikeless:ipsec-ikeless``)
    merged into its configured tree: containers are followed, a list item goes into the
    configured entry with the same ``name`` (left out when there is none), leaves are added."""
    from nf.schema import NAMESPACES

    module, name = top.split(":", 1)
    ns = NAMESPACES.get(module)
    root = next((r for r in roots if r.tag == f"{{{ns}}}{name}"), None)
    if ns is None or root is None:
        return
    _merge_into(root, value, ns)


def _merge_into(parent: etree._Element, data: dict[str, Any], ns: str) -> None:
    for name, value in data.items():
        tag = f"{{{ns}}}{name}"
        if isinstance(value, list) and value and isinstance(value[0], dict) \
                and "name" in value[0]:
            entries = {e.findtext(f"{{{ns}}}name"): e for e in parent.findall(tag)}
            for item in value:
                entry = entries.get(str(item["name"]))
                if entry is not None:
                    to_xml(entry, {k: v for k, v in item.items() if k != "name"}, ns)
        elif isinstance(value, dict) and (child := parent.find(tag)) is not None:
            _merge_into(child, value, ns)
        elif not isinstance(value, dict) or not _has_entries(value):
            # a leaf, or a state-only container (RFC 9061's number-ike-sas): added; a
            # container of list entries is left out when it is not configured
            to_xml(parent, {name: value}, ns)


def _has_entries(data: dict[str, Any]) -> bool:
    """Whether ``data`` holds list entries keyed by ``name`` (state of configured entries)."""
    for value in data.values():
        if isinstance(value, list) and value and isinstance(value[0], dict) \
                and "name" in value[0]:
            return True
        if isinstance(value, dict) and _has_entries(value):
            return True
    return False
