"""Instance paths of the data tree: built, parsed and resolved against the schema in one place.

A path here is an RFC 7950 instance-identifier in its XML form, every node and key name
prefixed with the name of its module (module names are the prefixes on the wire: error-path,
netconf-config-change targets, NACM denials)::

    /ipsec-nf:ike/ipsec-nf:vpn[ipsec-nf:name='siteA-siteB']/ipsec-nf:local-id
    /ietf-netconf-acm:nacm/ietf-netconf-acm:groups/ietf-netconf-acm:group[...]/...:user-name[.='x']

It is read as a tuple of ``Step`` (module, name, key predicates). The same parser reads the
other dialects we meet: libyang's data paths (a prefix only where the module changes, RFC 7951
style: ``inherit``), NACM rule paths (prefixes declared in the XML document: ``nsmap``) and
yang:key attributes (predicates only: ``parse_predicates``). Values are quoted as XPath 1.0
and libyang quote them (RFC 7950 section 9.13): in single quotes, in double quotes if the
value holds a single quote. XPath has no escape: a value holding both quote characters has no
path (libyang prints one that does not parse either).

Schema nodes are found in the mirror of nf.schema (``SNode``: keys, nacm:default-deny-all):
``child`` / ``schema_of`` take one step down, ``resolve`` follows parsed steps, ``chain``
follows an element's ancestors. Nothing here imports libyang: libyang's own lookups
(``Schema.is_default``, ``Schema.rpc_input``) stay in nf.schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lxml import etree

from nf.schema import NAMESPACES, SNode

# one level of the schema mirror: the top-level nodes (keyed (namespace, name)), a schema
# node, or None (below an unknown node: every lookup finds nothing)
Level = Mapping[tuple[str, str], SNode] | SNode | None
# (prefix or None, name, value) of a key predicate as written, before prefixes are resolved
Predicate = tuple[str | None, str, str]


class PathError(ValueError):
    """A string that is not an instance path (or key predicates) we can read."""


@dataclass(frozen=True)
class Step:
    """One step of an instance path.

    ``module`` is the module name ("" when the step has no prefix and none is inherited);
    ``keys`` the predicates of a list entry as (key name, value) in the order given, or
    ``((".", value),)`` for a leaf-list entry; ``position`` a positional predicate ``[N]``
    (libyang's for entries of keyless lists)."""

    module: str
    name: str
    keys: tuple[tuple[str, str], ...] = ()
    position: int | None = None

    def key_values(self) -> dict[str, str]:
        """The key predicates as a dict (name -> value)."""
        return dict(self.keys)


# ---- building ------------------------------------------------------------------------------
def quote(value: str) -> str:
    """An XPath string literal of ``value``: single quotes, double ones if it holds a single
    quote (as libyang does)."""
    return f"'{value}'" if "'" not in value else f'"{value}"'


def format_step(step: Step) -> str:
    """``/module:name`` with its predicates, key names prefixed like the step."""
    prefix = f"{step.module}:" if step.module else ""
    out = [f"/{prefix}{step.name}"]
    for k, v in step.keys:
        out.append(f"[.={quote(v)}]" if k == "." else f"[{prefix}{k}={quote(v)}]")
    if step.position is not None:
        out.append(f"[{step.position}]")
    return "".join(out)


def build(steps: Iterable[Step]) -> str:
    """The path of ``steps``; ``/`` (the whole datastore) when there is none."""
    return "".join(format_step(s) for s in steps) or "/"


def module_of(ns: str) -> str | None:
    """The name of the loaded module whose namespace is ``ns``, if any."""
    return next((m for m, n in NAMESPACES.items() if n == ns), None)


def _ns_name(el: etree._Element) -> tuple[str, str]:
    q = etree.QName(el)
    return q.namespace or "", q.localname


def element_step(sn: SNode | None, el: etree._Element) -> Step:
    """The step of a data node: its module and name, the keys of a list entry (those it has)
    or the value of a leaf-list entry. Without schema node, the module is found by the
    element's namespace (the namespace itself if no module has it) and there are no keys."""
    if sn is None:
        ns, name = _ns_name(el)
        return Step(module_of(ns) or ns, name)
    if sn.kind == "list":
        keys = []
        for k in sn.keys:
            kv = el.find(f"{{{sn.ns}}}{k}")
            if kv is not None:
                keys.append((k, kv.text or ""))
        return Step(sn.module, sn.name, tuple(keys))
    if sn.kind == "leaf-list":
        return Step(sn.module, sn.name, ((".", el.text or ""),))
    return Step(sn.module, sn.name)


def path_step(sn: SNode | None, el: etree._Element) -> str:
    """One formatted step for a data node (error paths are built step by step as an edit
    goes down); an unknown node gets its bare name."""
    if sn is None:
        return format_step(Step("", _ns_name(el)[1]))
    return format_step(element_step(sn, el))


# ---- parsing -------------------------------------------------------------------------------
_IDENT = r"[A-Za-z_][A-Za-z0-9_.-]*"
_NAME = re.compile(rf"(?:({_IDENT}):)?({_IDENT})")
_WS = re.compile(r"\s*")
_NUMBER = re.compile(r"[1-9][0-9]*")
_LOCATION = re.compile(r'(Data|Schema) location "')


def _predicates(text: str, i: int) -> tuple[list[Predicate], int | None, int]:
    """The predicates starting at ``text[i]``: (key predicates, position, end index)."""
    preds: list[Predicate] = []
    position = None
    while True:
        start = _WS.match(text, i).end()
        if not text.startswith("[", start):
            return preds, position, i
        i = _WS.match(text, start + 1).end()
        number = _NUMBER.match(text, i)
        if number is not None:
            position, i = int(number.group()), number.end()
        else:
            if text.startswith(".", i):
                prefix, name, i = None, ".", i + 1
            else:
                m = _NAME.match(text, i)
                if m is None:
                    raise PathError(f"expected a key name at {i} in {text!r}")
                prefix, name, i = m.group(1), m.group(2), m.end()
            i = _WS.match(text, i).end()
            if not text.startswith("=", i):
                raise PathError(f"expected '=' at {i} in {text!r}")
            i = _WS.match(text, i + 1).end()
            q = text[i:i + 1]
            end = text.find(q, i + 1) if q in ("'", '"') else -1
            if end < 0:
                raise PathError(f"expected a quoted value at {i} in {text!r}")
            preds.append((prefix, name, text[i + 1:end]))
            i = end + 1
        i = _WS.match(text, i).end()
        if not text.startswith("]", i):
            raise PathError(f"expected ']' at {i} in {text!r}")
        i += 1


def parse_predicates(text: str) -> list[Predicate]:
    """Key predicates alone, as a yang:key attribute holds them (``[p:k1='v1'][p:k2="v2"]``):
    (prefix or None, key name, value) in the order given; PathError if it is anything else
    (a positional predicate included)."""
    text = text.strip()
    preds, position, end = _predicates(text, 0)
    if end != len(text) or position is not None:
        raise PathError(f"not key predicates: {text!r}")
    return preds


def parse(path: str, nsmap: Mapping[str | None, str] | None = None,
          inherit: bool = False) -> tuple[Step, ...]:
    """The steps of an instance path (``/`` alone: none).

    A prefix is a module name, or with ``nsmap`` (the namespaces in scope where the path was
    written, as in a NACM rule) a prefix of that map, turned into the module name (the prefix
    itself if it names no loaded module's namespace). A step without prefix has module "", or
    with ``inherit`` its parent step's (libyang's data paths). Key names lose their prefix.
    A leading ``/`` may be missing. PathError if ``path`` cannot be read.
    """
    text = path.strip()
    steps: list[Step] = []
    if text == "/":
        return ()
    i = 1 if text.startswith("/") else 0
    while True:
        m = _NAME.match(text, i)
        if m is None:
            raise PathError(f"expected a node name at {i} in {path!r}")
        prefix, name = m.groups()
        preds, position, i = _predicates(text, m.end())
        if prefix is None:
            module = steps[-1].module if inherit and steps else ""
        elif nsmap is not None:
            module = module_of(nsmap.get(prefix, "")) or prefix
        else:
            module = prefix
        steps.append(Step(module, name, tuple((k, v) for _, k, v in preds), position))
        if i == len(text):
            return tuple(steps)
        if text[i] != "/":
            raise PathError(f"expected '/' at {i} in {path!r}")
        i += 1


def from_libyang(ly_path: str | None, module: str = "ipsec-nf") -> str | None:
    """libyang's location of an error (``/ipsec-nf:ike/vpn[name='a']``, possibly inside its
    ``Data location "..."`` / ``Schema location "..."`` text) as a fully prefixed path; a
    first step without prefix is taken in ``module``. A location that does not parse is
    returned as libyang gave it."""
    if not ly_path:
        return None
    located = _LOCATION.search(ly_path)
    if located is not None:
        start = located.end()
        # a schema path holds no quotes; a data location is the last quoted text (a line
        # number may follow), and its key values may hold quotes
        end = ly_path.find('"', start) if located.group(1) == "Schema" else ly_path.rfind('"')
        ly_path = ly_path[start:end]
    try:
        steps = parse(ly_path, inherit=True)
    except PathError:
        return ly_path
    if steps and not steps[0].module:
        steps = (Step(module, steps[0].name, steps[0].keys, steps[0].position),
                 *(Step(s.module or module, s.name, s.keys, s.position) for s in steps[1:]))
    return build(steps)


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_PREFIX = re.compile(rf"({_IDENT}):")


def prefixes(text: str) -> set[str]:
    """Every prefix used in a path or in any XPath-like location (quoted values skipped): the
    namespaces an element holding it must declare."""
    return set(_PREFIX.findall(_QUOTED.sub("''", text)))


# ---- the schema ----------------------------------------------------------------------------
def child(level: Level, ns: str, name: str) -> SNode | None:
    """The schema node named (``ns``, ``name``) one level below ``level``."""
    if level is None:
        return None
    if isinstance(level, SNode):
        return level.children.get((ns, name))
    return level.get((ns, name))


def schema_of(level: Level, el: etree._Element) -> SNode | None:
    """The schema node of the element ``el`` one level below ``level``."""
    return child(level, *_ns_name(el))


def find(level: Level, module: str, name: str) -> SNode | None:
    """The schema node of a step: by module and name, or by name alone if ``module`` is ""."""
    if level is None:
        return None
    nodes = level.children if isinstance(level, SNode) else level
    if module:
        ns = NAMESPACES.get(module)
        return nodes.get((ns, name)) if ns is not None else None
    return next((n for n in nodes.values() if n.name == name), None)


def resolve(steps: Iterable[Step], top: Level) -> list[SNode | None]:
    """The schema node of every step (None from an unknown node on)."""
    out: list[SNode | None] = []
    level = top
    for s in steps:
        level = find(level, s.module, s.name)
        out.append(level)
    return out


def chain(el: etree._Element, level: Level, base: etree._Element | None = None
          ) -> list[tuple[etree._Element, SNode | None]]:
    """``el`` and its ancestors below ``base`` (without ``base`` itself; every ancestor when
    ``base`` is None, the document's root element included), outermost first, each with its
    schema node; ``level`` is what the outermost one is a child of: the top-level nodes, or
    ``base``'s schema node."""
    els = [el]
    while True:
        parent = els[-1].getparent()
        if parent is None or parent is base:
            break
        els.append(parent)
    out: list[tuple[etree._Element, SNode | None]] = []
    for e in reversed(els):
        level = schema_of(level, e)
        out.append((e, level))
    return out


def steps_of(nodes: Iterable[tuple[etree._Element, SNode | None]]) -> tuple[Step, ...]:
    """The steps of a ``chain``."""
    return tuple(element_step(sn, e) for e, sn in nodes)


def instance_path(el: etree._Element, top: Level, base: etree._Element | None = None) -> str:
    """The path of a data node (see ``chain`` for ``base``)."""
    return build(steps_of(chain(el, top, base)))


def in_deny_all(path: str | Iterable[Step] | None, top: Level) -> bool:
    """Does a prefixed path point at or into a node marked nacm:default-deny-all (secrets,
    /nacm)? A path that does not parse is taken as one that does (messages about it are
    masked rather than shown)."""
    if not path:
        return False
    try:
        steps = parse(path) if isinstance(path, str) else tuple(path)
    except PathError:
        return True
    return any(sn is not None and sn.deny_all for sn in resolve(steps, top))


__all__ = ["Level", "PathError", "Predicate", "Step", "build", "chain", "child", "element_step",
           "find", "format_step", "from_libyang", "in_deny_all", "instance_path", "module_of",
           "parse", "parse_predicates", "path_step", "prefixes", "quote", "resolve",
           "schema_of", "steps_of"]
