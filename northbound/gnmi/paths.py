"""gNMI paths <-> the data paths of our modules.

A gNMI ``Path`` names nodes by their YANG names: the first element may carry its module
(``ipsec-nf:ike``; without it, the top-level node of that name in any of our modules, or
the module the ``origin`` names), later ones only where the module changes (RFC 7951's rule);
keys are the list keys. ``*`` as a name matches any one node, ``...`` any depth, and a key
given as ``*`` (or left out) matches every entry. Paths are checked against the schema
(unknown node or key: :class:`PathError`), then turned into the XPath libyang evaluates.
Answers carry the data node's own path back as a gNMI ``Path`` (first element qualified).
"""

from __future__ import annotations

from collections.abc import Iterable

from pygnmi.spec.v080 import gnmi_pb2 as pb

from nf import paths as nfpaths
from nf.paths import Step
from nf.schema import NAMESPACES, SNode

WILDCARD = "*"
ANY_DEPTH = "..."
ORIGINS = ("", "rfc7951")  # besides a module name: the origins we answer


class PathError(ValueError):
    """A path that does not name nodes of our schema (gNMI's INVALID_ARGUMENT)."""


Level = dict[tuple[str, str], SNode] | SNode | None


def parse(prefix: pb.Path | None, path: pb.Path, top: dict[tuple[str, str], SNode]
          ) -> tuple[Step, ...]:
    """The steps of ``prefix`` + ``path``, each with its module (``""`` for ``*``/``...``)
    and keys (a key given as ``*`` is left out); PathError if the schema has no such node."""
    if path.element or (prefix is not None and prefix.element):
        raise PathError("the deprecated 'element' path field is not supported: use 'elem'")
    origin = path.origin or (prefix.origin if prefix is not None else "")
    modules = {sn.module for sn in top.values()}
    if origin not in ORIGINS and origin not in modules:
        raise PathError(f"unknown origin {origin!r}: use '' or one of {', '.join(sorted(modules))}")
    elems = [*(prefix.elem if prefix is not None else ()), *path.elem]
    module = origin if origin in modules else ""
    level: Level = top
    steps: list[Step] = []
    for e in elems:
        if e.name in (WILDCARD, ANY_DEPTH):
            if e.key:
                raise PathError(f"{e.name!r} cannot have keys")
            steps.append(Step("", e.name))
            level = None  # below a wildcard the schema is not followed
            continue
        prefix_name, _, name = e.name.rpartition(":")
        if prefix_name and prefix_name not in NAMESPACES:
            raise PathError(f"unknown module {prefix_name!r} in {e.name!r}")
        mod = prefix_name or module
        sn = nfpaths.find(level, mod, name) if level is not None else None
        if level is not None and sn is None:
            raise PathError(f"no node {e.name!r} in the schema at {_show(steps) or '/'}")
        if sn is not None:
            mod = sn.module
            unknown = set(e.key) - set(sn.keys)
            if unknown:
                raise PathError(f"{e.name!r} has no key {', '.join(sorted(unknown))}")
            keys = tuple((k, e.key[k]) for k in sn.keys if k in e.key and e.key[k] != WILDCARD)
        else:
            keys = tuple((k, v) for k, v in sorted(e.key.items()) if v != WILDCARD)
        steps.append(Step(mod, name, keys))
        module = mod
        level = sn
    return tuple(steps)


def _show(steps: Iterable[Step]) -> str:
    return "".join(f"/{s.name}" for s in steps)


def has_wildcards(steps: Iterable[Step], top: dict[tuple[str, str], SNode]) -> bool:
    """Does the path match possibly several nodes (a wildcard name, or a list entry without
    all its keys)?"""
    steps = tuple(steps)
    if any(s.name in (WILDCARD, ANY_DEPTH) for s in steps):
        return True
    snodes = nfpaths.resolve(steps, top)
    return any(sn is not None and sn.kind == "list" and len(s.keys) < len(sn.keys)
               for s, sn in zip(steps, snodes, strict=True))


def xpath(steps: Iterable[Step]) -> str:
    """The XPath of the steps for libyang (``/`` alone: the whole tree)."""
    out: list[str] = []
    module = ""
    for s in steps:
        if s.name == ANY_DEPTH:
            out.append("/")
            continue
        if s.name == WILDCARD:
            out.append("/*")
            continue
        name = s.name if s.module == module else f"{s.module}:{s.name}"
        module = s.module
        preds = "".join(f"[{k}={nfpaths.quote(v)}]" for k, v in s.keys)
        out.append(f"/{name}{preds}")
    text = "".join(out)
    if len(text) > 1 and text.endswith("/"):  # a trailing '...': all below, which it holds
        text = text[:-1]
    return text or "/"


def from_data_path(ly_path: str) -> tuple[Step, ...]:
    """The steps of a libyang data path (``/ipsec-nf:ike/vpn[name='a']``); a leaf-list
    entry's value predicate is dropped (gNMI names the leaf-list)."""
    steps = nfpaths.parse(ly_path, inherit=True)
    return tuple(Step(s.module, s.name, tuple(kv for kv in s.keys if kv[0] != "."))
                 for s in steps)


def to_gnmi(steps: Iterable[Step], origin: str = "") -> pb.Path:
    """The gNMI path of concrete steps: the first element (unless ``origin`` names its
    module) and every one whose module differs from its parent's carry the module name."""
    elems = []
    module = origin if origin in NAMESPACES else ""
    for s in steps:
        name = s.name if s.module == module else f"{s.module}:{s.name}"
        module = s.module
        elems.append(pb.PathElem(name=name, key=dict(s.keys)))
    return pb.Path(elem=elems, origin=origin)


def text(path: pb.Path) -> str:
    """A path as text, for messages (``/ipsec-nf:ike/vpn[name=a]``)."""
    out = []
    for e in path.elem:
        out.append("/" + e.name + "".join(f"[{k}={v}]" for k, v in sorted(e.key.items())))
    return "".join(out) or "/"


def schema_nodes(steps: Iterable[Step], top: dict[tuple[str, str], SNode]
                 ) -> list[SNode | None]:
    """The schema node of every step (None after a wildcard)."""
    return nfpaths.resolve(steps, top)
