"""What an operation's input accepts (RFC 7950 section 7.14.2), read from its compiled YANG
definition: each parameter's kind, how often it may be given, its choices and children."""

from __future__ import annotations

from dataclasses import dataclass, field

from _libyang import ffi, lib
from libyang.util import c2str


@dataclass(frozen=True)
class InputNode:
    """A parameter of an operation's input (RFC 7950 section 7.14.2): how often it may be
    given, the choices it belongs to, and the parameters inside it (containers, lists)."""

    name: str
    ns: str
    kind: str  # leaf | leaf-list | container | list | anyxml | anydata
    max: int | None  # most instances (1 unless a list or leaf-list); None = unbounded
    cases: tuple[tuple[str, str], ...]  # (choice, case) of every choice it is in, outermost first
    children: dict[tuple[str, str], InputNode] = field(default_factory=dict)


_KINDS = {"LYS_LEAF": "leaf", "LYS_LEAFLIST": "leaf-list", "LYS_CONTAINER": "container",
          "LYS_LIST": "list", "LYS_ANYXML": "anyxml", "LYS_ANYDATA": "anydata"}


def input_nodes(parent, stop) -> dict[tuple[str, str], InputNode]:  # noqa: ANN001 - cdata
    """The data nodes under the compiled node ``parent`` (through choices and cases)."""
    kinds = {getattr(lib, k): v for k, v in _KINDS.items()}
    out: dict[tuple[str, str], InputNode] = {}
    child = lib.lys_getnext(ffi.NULL, parent, ffi.NULL, 0)
    while child != ffi.NULL:
        kind = kinds.get(child.nodetype)
        if kind is not None:
            cases: list[tuple[str, str]] = []
            up = child.parent
            while up != ffi.NULL and up != stop and up != parent:
                if up.nodetype == lib.LYS_CASE:
                    cases.insert(0, (c2str(up.parent.name), c2str(up.name)))
                up = up.parent
            most: int | None = 1
            if kind == "leaf-list":
                most = ffi.cast("struct lysc_node_leaflist *", child).max
            elif kind == "list":
                most = ffi.cast("struct lysc_node_list *", child).max
            if most == 0xFFFFFFFF:
                most = None
            node = InputNode(
                name=c2str(child.name), ns=c2str(child.module.ns), kind=kind, max=most,
                cases=tuple(cases),
                children=input_nodes(child, child) if kind in ("container", "list") else {})
            out[(node.ns, node.name)] = node
        child = lib.lys_getnext(child, parent, ffi.NULL, 0)
    return out
