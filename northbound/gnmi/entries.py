"""gNMI Get of the SA table (``/ike/ike-sa``), rendered through libyang and remembered per entry.

A Get of the 1,000-SA table rendered the whole snapshot every time (XML markup of ~50,000
leaves, libyang parse, one JSON print per entry: ~0.5 s of CPU), and every refresh of the
state makes a new snapshot: the countdowns and ages (:data:`nf.observed.CLOCK`) differ in each
one, so remembering whole answers per snapshot (``get._ANSWERS``) rarely helped a poller.

Here each ``ike-sa`` entry's JSON_IETF value, as libyang prints it after NACM pruning, is
remembered with the snapshot entry it came from, per reader (user, groups, running's version:
the NACM rules live in running). At the next Get, an entry

* that is the same object, or equal including its clock leaves: the value is reused;
* equal but for the values of its clock leaves (the same leaves present): each clock leaf
  that moved is written into a copy of the remembered value (:func:`_patched`) when
  libyang's printing of its old value there is the plain text (or number) of that old value,
  as for the model's uint64 ages and countdowns; a leaf NACM hid stays out. Otherwise only
  its keys and clock leaves (a "clock skeleton", a sixth of the entry) are rendered through
  libyang, with the same pruning, and their values replace the old ones in a copy;
* new or changed (anything but the clock values): rendered whole.

Every value sent is libyang's printing of the data (whole entries, the clock skeleton's
leaves placed into the remembered entry, or a clock value written the way libyang printed
that leaf's old value). NACM decides on the node path (list keys included) and the schema,
both the same in the skeleton and the whole entry, so the skeleton is pruned exactly as the
entry was; a patched leaf is one libyang printed for this reader before.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lxml import etree

from nf import paths as nfpaths
from nf.nacm import Access, prune_unreadable
from nf.observed import CLOCK, same_shape
from nf.paths import Step
from nf.schema import NAMESPACES, NS, Schema, SNode
from nf.state import to_xml
from northbound.gnmi import data
from northbound.gnmi.entry_text import Template, encoded, filled

TABLE, KEY = "ike-sa", "unique-id"
READERS_KEPT = 4  # readers (user, groups, running version) whose tables are remembered
_GONE = object()


@dataclass(frozen=True, slots=True)
class Rendered:
    """One entry as sent: the snapshot entry it was rendered from (held: compared with the
    next one), its data path, its JSON_IETF value (None: NACM hides it), that value's
    encoding (``text``, the bytes of a TypedValue) and its :class:`Template`."""

    entry: Mapping[str, Any]
    steps: tuple[Step, ...]
    value: Any
    text: bytes | None = None
    template: Template | None = None


def key_text(v: Any) -> str:
    """A key value as libyang writes it in a path."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else str(v)


def table_path(steps: tuple[Step, ...], top: dict[tuple[str, str], SNode]) -> str | None:
    """For a Get path on the SA table (``/ike/ike-sa``, all entries or one by ``unique-id``):
    the unique-id asked ("" for every entry); None for any other path."""
    if len(steps) != 2 or steps[0].name != "ike" or steps[1].name != TABLE:
        return None
    ike = top.get((NAMESPACES.get(steps[0].module, ""), "ike"))
    table = nfpaths.find(ike, steps[1].module, TABLE) if ike is not None else None
    if ike is None or table is None or ike.module != steps[1].module:
        return None
    if not steps[1].keys:
        return ""
    if len(steps[1].keys) == 1 and steps[1].keys[0][0] == KEY:
        return steps[1].keys[0][1]
    return None


def skeleton(entry: Mapping[str, Any], sn: SNode | None) -> dict[str, Any]:
    """The keys and clock leaves of an entry (and of the entries of its lists, in order)."""
    keep, below = _plan(sn)
    out: dict[str, Any] = {}
    for k, v in entry.items():
        t = type(v)
        if t is dict:
            part = skeleton(v, below(k))
            if part:
                out[k] = part
        elif t is list:
            if v and type(v[0]) is dict:  # a list's entries (a leaf-list holds no dicts)
                csn = below(k)
                parts = [skeleton(x, csn) for x in v]
                if any(parts):
                    out[k] = parts
        elif k in keep:
            out[k] = v
    return out


_PLANS: dict[int, tuple[frozenset[str], Any, SNode | None]] = {}


def _plan(sn: SNode | None) -> tuple[frozenset[str], Any]:
    """What :func:`skeleton` keeps of an entry of ``sn`` (its keys and the clock leaves) and
    how it finds a child's schema node, remembered per schema node (the schema lives as long
    as the process; ``sn`` is held so that its id is not reused)."""
    hit = _PLANS.get(id(sn))
    if hit is not None and hit[2] is sn:
        return hit[0], hit[1]
    children: dict[str, SNode | None] = {}

    def below(name: str) -> SNode | None:
        if name not in children:
            children[name] = nfpaths.find(sn, "", name) if sn is not None else None
        return children[name]

    keep = CLOCK | frozenset(sn.keys if sn is not None else ())
    _PLANS[id(sn)] = (keep, below, sn)
    return keep, below


def _overlay(base: Any, skel: Any) -> Any:
    """``base`` (a remembered JSON value) with the clock leaves of ``skel`` (the JSON of its
    skeleton) in place; None when they do not line up (then the entry is rendered whole)."""
    if not isinstance(base, dict) or not isinstance(skel, dict):
        return None
    out = dict(base)
    for k, v in skel.items():
        b = base.get(k, _GONE)
        if b is _GONE:
            return None
        if isinstance(v, dict):
            new = _overlay(b, v)
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            if not isinstance(b, list) or len(b) != len(v):
                return None
            new = [_overlay(x, y) for x, y in zip(b, v, strict=True)]
            if any(x is None for x in new):
                return None
        elif k.rpartition(":")[2] in CLOCK:
            new = v
        elif b == v:  # a key: the same entry
            continue
        else:
            return None
        if new is None:
            return None
        out[k] = new
    return out


def _patched(value: Any, old: Any, new: Any) -> Any:
    """``value`` (the remembered JSON of entry ``old``) for entry ``new``, when ``new`` is
    ``old`` but for the values of clock leaves: a copy with each moved clock leaf written as
    libyang printed its old value (text or number), the copy shared with ``value`` where
    nothing moved (``value`` itself when nothing did); None when anything else differs or a
    leaf cannot be written so (then the clock skeleton or the whole entry is rendered)."""
    if type(old) is not dict or type(new) is not dict or len(old) != len(new) \
            or type(value) is not dict:
        return None
    out = value
    for k, v in new.items():
        w = old.get(k, _GONE)
        if v == w:
            continue
        j = value.get(k, _GONE)
        if w is _GONE or j is _GONE:  # (a leaf NACM hid: the skeleton decides)
            return None
        tv = type(v)
        if tv is dict:
            part = _patched(j, w, v)
        elif tv is list:
            if type(w) is not list or len(w) != len(v) or type(j) is not list \
                    or len(j) != len(v):
                return None
            part = [_patched(a, b, c) if _same_key(a, b) else None
                    for a, b, c in zip(j, w, v, strict=True)]
            if any(x is None for x in part):
                return None
        elif k not in CLOCK or type(w) is not int or tv is not int or v < 0:
            return None
        elif type(j) is str and j == str(w):
            part = str(v)
        elif type(j) is int and j == w:
            part = v
        else:
            return None
        if out is value:
            out = dict(value)
        out[k] = part
    return out


def _same_key(value: Any, entry: Any) -> bool:
    """Whether ``value`` (a list entry's JSON) is the printing of ``entry`` by its key
    (``unique-id``, or ``name``): the entries of a list are matched, not assumed in order."""
    if type(value) is not dict or type(entry) is not dict:
        return False
    for k in (KEY, "name"):
        if k in entry:
            v = value.get(k, _GONE)
            return v is not _GONE and str(v) == key_text(entry[k])
    return False


class EntryCache:
    """The rendered SA table of the last Get of each reader (see the module docstring)."""

    def __init__(self, kept: int = READERS_KEPT) -> None:
        self.kept = kept
        self._tables: OrderedDict[Hashable, dict[str, Rendered]] = OrderedDict()
        self._lock = threading.Lock()
        self.rendered = 0  # entries rendered whole (for tests and profiling)
        self.clocked = 0  # entries whose clock skeleton was rendered
        self.patched = 0  # entries whose moved clock values were written into the last value

    def entries(self, schema: Schema, access: Access, reader: Hashable,
                tree: Mapping[str, Any] | None) -> list[Rendered] | None:
        """The readable entries of the SA table of a snapshot's ``tree``, in its order; None
        when the table cannot be rendered by entry (unique-ids not unique)."""
        table = list((tree or {}).get(TABLE) or [])
        keys = [key_text(e.get(KEY)) for e in table]
        if len(set(keys)) != len(keys):
            return None
        with self._lock:  # one reader at a time: the second finds the first one's work
            old = self._tables.pop(reader, {})
            new = self._update(schema, access, old, table, keys)
            self._tables[reader] = new
            while len(self._tables) > self.kept:
                self._tables.popitem(last=False)
        return [r for r in (new[k] for k in keys) if r.value is not None]

    def clear(self) -> None:
        """Forget every reader's table."""
        with self._lock:
            self._tables.clear()

    def _update(self, schema: Schema, access: Access, old: dict[str, Rendered],
                table: list[Mapping[str, Any]], keys: list[str]) -> dict[str, Rendered]:
        new: dict[str, Rendered] = {}
        whole: list[tuple[str, Mapping[str, Any]]] = []
        clocked: list[tuple[str, Mapping[str, Any]]] = []
        for k, e in zip(keys, table, strict=True):
            hit = old.get(k)
            if hit is None:
                whole.append((k, e))
            elif hit.entry is e or hit.entry == e:
                new[k] = Rendered(e, hit.steps, hit.value, hit.text, hit.template)
            elif hit.value is not None and (value := _patched(hit.value, hit.entry, e)
                                            ) is not None:
                # the text from the last one's template: no encoding of the whole value
                text = (filled(hit.template, value) if hit.template is not None
                        else None)
                new[k] = (Rendered(e, hit.steps, value, text, hit.template)
                          if text is not None else _made(e, hit.steps, value))
                self.patched += 1
            elif same_shape(hit.entry, e):
                clocked.append((k, e))
            else:
                whole.append((k, e))
        if clocked:
            sn = _table_node(schema)
            skels = _render(schema, access, [skeleton(e, sn) for _, e in clocked])
            for k, e in clocked:
                hit = old[k]
                skel = skels.get(k)
                if hit.value is None and skel is None:
                    new[k] = Rendered(e, hit.steps, None)  # still hidden
                    continue
                value = _overlay(hit.value, skel[1]) if skel is not None else None
                if value is None:
                    whole.append((k, e))
                else:
                    new[k] = _made(e, hit.steps, value)
            self.clocked += len(clocked)
        if whole:
            done = _render(schema, access, [e for _, e in whole])
            for k, e in whole:
                steps, value = done.get(k, ((), None))
                new[k] = _made(e, steps, value)
            self.rendered += len(whole)
        return new


def _made(entry: Mapping[str, Any], steps: tuple[Step, ...], value: Any) -> Rendered:
    """A rendered entry with its encoding and template (none for an entry NACM hides)."""
    if value is None:
        return Rendered(entry, steps, None)
    text, template = encoded(value)
    return Rendered(entry, steps, value, text, template)


def _table_node(schema: Schema) -> SNode | None:
    ike = next((sn for (_, name), sn in schema.state_top.items() if name == "ike"), None)
    return nfpaths.find(ike, "", TABLE) if ike is not None else None


def _render(schema: Schema, access: Access, entries: Sequence[Mapping[str, Any]]
            ) -> dict[str, tuple[tuple[Step, ...], Any]]:
    """The entries through NACM pruning and libyang: unique-id -> (data path, JSON_IETF
    value) of each one the reader may see."""
    ike = etree.Element(f"{{{NS}}}ike", nsmap={None: NS})
    to_xml(ike, {TABLE: list(entries)})
    tops = prune_unreadable(access, [ike], schema.state_top)
    module = _module(schema)
    out: dict[str, tuple[tuple[Step, ...], Any]] = {}
    with data.parsed(schema, tops) as tree:
        if tree is None:
            return out
        for node in tree.find_all(f"/{module}:ike/{TABLE}"):
            # the entry's path as libyang gives it (/ipsec-nf:ike/ike-sa[unique-id='5']):
            # its key read off the last predicate, not by parsing the path (1,000 parses
            # were most of a refresh's cost)
            m = _KEY_PREDICATE.search(node.path())
            if m is None:
                continue
            k = m.group(2)
            out[k] = ((Step(module, "ike"), Step(module, TABLE, ((KEY, k),))),
                      data.value(node))
    return out


_KEY_PREDICATE = re.compile(r"\[unique-id=(['\"])(.*)\1\]$")


def _module(schema: Schema) -> str:
    ike = next((sn for (_, name), sn in schema.state_top.items() if name == "ike"), None)
    return ike.module if ike is not None else "ipsec-nf"
