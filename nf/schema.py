"""The YANG schema: the libyang context and a light Python mirror of the config tree.

Which modules are loaded, and with which features, is :mod:`nf.yang_modules`; what an
operation's input accepts is read by :mod:`nf.rpc_input`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import libyang
from _libyang import ffi, lib
from libyang.data import DataType
from libyang.util import c2str

from nf.rpc_input import InputNode, input_nodes
from nf.yang_modules import FEATURES, MODULES, SUPPORT_MODULES, YANG_DIR, standard_module_dirs

NS = "urn:ipsec-nf:yang:ipsec-nf"
NAMESPACES: dict[str, str] = {}  # module name -> namespace, of every loaded module


@dataclass(frozen=True)
class LyError:
    """One error item reported by libyang."""

    vecode: int
    message: str
    path: str | None
    apptag: str | None


class _Context(libyang.Context):
    """A libyang context that keeps the structured error items of the last failure."""

    last_errors: list[LyError]

    def error(self, msg: str, *args) -> libyang.LibyangError:  # noqa: D102
        items: list[LyError] = []
        if self.cdata:
            err = lib.ly_err_first(self.cdata)
            while err:
                items.append(
                    LyError(
                        vecode=int(err.vecode),
                        message=c2str(err.msg) if err.msg else "",
                        path=c2str(err.path) if err.path else None,
                        apptag=c2str(err.apptag) if err.apptag else None,
                    )
                )
                err = err.next
        self.last_errors = items
        return super().error(msg, *args)


@dataclass
class SNode:
    """A schema node of the data tree, in the shape edit-config and filters need."""

    name: str
    ns: str
    module: str
    kind: str  # container | list | leaf | leaf-list
    config: bool
    keys: tuple[str, ...] = ()
    default: str | None = None
    deny_all: bool = False
    deny_write: bool = False
    conv: str | None = None  # "int" / "float": JSON carries these as strings (RFC 7951)
    presence: bool = False  # a presence container (exists without children, RFC 7950 7.5.1)
    ordered_user: bool = False  # a list or leaf-list "ordered-by user" (RFC 7950 7.7.7)
    children: dict[tuple[str, str], SNode] = field(default_factory=dict)

    def child(self, ns: str, name: str) -> SNode | None:
        """The child schema node with this namespace and name, if any."""
        return self.children.get((ns, name))


def _mirror(s: libyang.SNode) -> SNode:
    kind = s.keyword()
    mod = s.module()
    node = SNode(
        name=s.name(),
        ns=c2str(mod.cdata.ns),
        module=mod.name(),
        kind=kind,
        config=not s.config_false(),
        keys=tuple(k.name() for k in s.keys()) if kind == "list" else (),
        default=(str(s.default()) if kind == "leaf" and s.default() is not None else None),
        presence=kind == "container" and s.presence() is not None,
        ordered_user=kind in ("list", "leaf-list") and s.ordered(),
    )
    if kind in ("leaf", "leaf-list"):
        base = s.type().base()
        if base in (lib.LY_TYPE_INT64, lib.LY_TYPE_UINT64):
            node.conv = "int"
        elif base == lib.LY_TYPE_DEC64:
            node.conv = "float"
    for ext in s.extensions():
        if ext.module().name() == "ietf-netconf-acm":
            node.deny_all |= ext.name() == "default-deny-all"
            node.deny_write |= ext.name() == "default-deny-write"
    if kind in ("container", "list"):
        for c in s.children():
            if c.keyword() in ("container", "list", "leaf", "leaf-list"):
                m = _mirror(c)
                node.children[(m.ns, m.name)] = m
    return node


class Schema:
    """The loaded modules: a libyang context plus the mirror of their top-level nodes."""

    def __init__(self, modules: tuple[str, ...] = MODULES) -> None:
        search = ":".join(str(p) for p in [YANG_DIR, *standard_module_dirs()])
        # Data paths in error items need the path flag of the log callback.
        lib.ly_log_options(lib.LY_LOSTORE)
        lib.ly_set_log_clb(lib.lypy_log_cb, True)
        self.ctx = _Context(search)
        self.ctx.last_errors = []
        self.modules = [self.ctx.load_module(m) for m in modules]
        self.support = [self.ctx.load_module(m) for m in SUPPORT_MODULES]
        self._enable_features()
        self._inputs: dict[tuple[str, str], dict[tuple[str, str], InputNode] | None] = {}
        NAMESPACES.update({name: ns for name, _, ns in self.implemented()})

        self.top: dict[tuple[str, str], SNode] = {}
        for mod in self.modules:
            for c in mod.children():
                if c.keyword() in ("container", "list", "leaf", "leaf-list"):
                    m = _mirror(c)
                    self.top[(m.ns, m.name)] = m
        # state-only trees of the support modules, so filters know their list keys
        self.state_top: dict[tuple[str, str], SNode] = dict(self.top)
        for mod in [*self.support, self.ctx.get_module("ietf-yang-library")]:
            for c in mod.children():
                if c.keyword() in ("container", "list"):
                    m = _mirror(c)
                    self.state_top.setdefault((m.ns, m.name), m)

    def parse_config(self, xml: str) -> libyang.DNode | None:
        """Parse and fully validate a config tree given as XML; raise LibyangError."""
        self.ctx.last_errors = []
        return self.ctx.parse_data_mem(
            xml, "xml", strict=True, no_state=True, validate_present=True
        )

    def print_with_defaults(self, xml: str, mode: str) -> str:
        """Re-print a valid config in an RFC 6243 with-defaults mode (report-all, trim, ...).

        libyang puts the report-all-tagged attribute in the ietf-netconf-with-defaults module
        namespace; callers move it to RFC 6243's (northbound.defaults.retag)."""
        flag = {
            "explicit": lib.LYD_PRINT_WD_EXPLICIT,
            "trim": lib.LYD_PRINT_WD_TRIM,
            "report-all": lib.LYD_PRINT_WD_ALL,
            # RFC 6243 section 2.3: in our 'explicit' basic mode, default data is what the
            # client did not set; a leaf set to its default value is not tagged.
            "report-all-tagged": lib.LYD_PRINT_WD_IMPL_TAG,
        }[mode]
        # No validation: the tree may be an unvalidated candidate; defaults are added as such.
        dnode = self.ctx.parse_data_mem(xml, "xml", parse_only=True, strict=True)
        if dnode is None:
            return ""
        node_p = ffi.new("struct lyd_node **", dnode.cdata)
        if lib.lyd_new_implicit_all(node_p, self.ctx.cdata, lib.LYD_IMPLICIT_NO_STATE,
                                    ffi.NULL) != lib.LY_SUCCESS:
            dnode.free()
            raise self.ctx.error("cannot add default values")
        dnode = libyang.DNode.new(self.ctx, node_p[0])
        buf = ffi.new("char **")
        try:
            flags = lib.LYD_PRINT_WITHSIBLINGS | lib.LYD_PRINT_SHRINK | flag
            ret = lib.lyd_print_mem(buf, dnode.cdata, lib.LYD_XML, flags)
            if ret != lib.LY_SUCCESS:
                raise self.ctx.error("cannot print data")
            return c2str(buf[0])
        finally:
            if buf[0]:
                lib.free(buf[0])
            dnode.free()

    def _enable_features(self) -> None:
        """Set the features of FEATURES on their modules (libyang recompiles the context, so
        this runs before any compiled node is looked at)."""
        for name, feats in FEATURES.items():
            mod = self.ctx.get_module(name)
            names = [ffi.new("char[]", f.encode()) for f in feats]
            arr = ffi.new("const char *[]", [*names, ffi.NULL])
            if lib.lys_set_implemented(mod.cdata, arr) != lib.LY_SUCCESS:
                raise self.ctx.error(f"cannot enable the features of {name}")

    def features(self, module: str) -> list[str]:
        """The enabled features of a loaded module."""
        return [f.name() for f in self.ctx.get_module(module).features() if f.state()]

    def rpc_input(self, ns: str, name: str) -> dict[tuple[str, str], InputNode] | None:
        """What the input of the operation ``name`` of namespace ``ns`` accepts, from its YANG
        definition (augments and enabled features included), or None if no loaded module
        defines it."""
        key = (ns, name)
        if key not in self._inputs:
            module = next((m for m, _, mns in self.implemented() if mns == ns), None)
            rpc = ffi.NULL
            if module is not None:
                path = f"/{module}:{name}".encode()
                rpc = lib.lys_find_path(self.ctx.cdata, ffi.NULL, path, 0)
                lib.ly_err_clean(self.ctx.cdata, ffi.NULL)
            if rpc == ffi.NULL or rpc.nodetype != lib.LYS_RPC:
                self._inputs[key] = None
            else:
                inout = lib.lysc_node_child(rpc)  # the input, then the output
                while inout != ffi.NULL and inout.nodetype != lib.LYS_INPUT:
                    inout = inout.next
                self._inputs[key] = input_nodes(inout, inout) if inout != ffi.NULL else {}
        return self._inputs[key]

    def validate_rpc(self, xml: str) -> list[LyError] | None:
        """Parse and validate one operation element (RPC or action input) against its YANG
        definition; None when it is valid, else libyang's error items."""
        self.ctx.last_errors = []
        try:
            dnode = self.ctx.parse_op_mem("xml", xml, DataType.RPC_YANG)
        except libyang.LibyangError:
            return self.ctx.last_errors or [LyError(0, "invalid operation input", None, None)]
        try:
            dnode.validate(rpc=True)
        except libyang.LibyangError:
            return self.ctx.last_errors or [LyError(0, "invalid operation input", None, None)]
        finally:
            dnode.free()
        return None

    def is_default(self, chain: list[SNode], value: str) -> bool | None:
        """Whether ``value`` is the schema default of the leaf at the end of ``chain`` (its
        schema nodes from the top; for a leaf-list, one of its defaults), compared as values
        of its type; None if the node has no default or the value is not valid for its
        type."""
        path = "".join(f"/{n.module}:{n.name}" for n in chain).encode()
        node = lib.lys_find_path(self.ctx.cdata, ffi.NULL, path, 0)
        if node == ffi.NULL or node.nodetype not in (lib.LYS_LEAF, lib.LYS_LEAFLIST):
            return None
        if node.nodetype == lib.LYS_LEAFLIST:
            # a leaf-list's defaults are a libyang sized array: its count precedes it
            dflts = ffi.cast("struct lysc_node_leaflist *", node).dflts
            if dflts == ffi.NULL:
                return None
            count = ffi.cast("uint64_t *", dflts)[-1]
            return any(self._same_value(node, value, dflts[i]) for i in range(count))
        dflt = ffi.cast("struct lysc_node_leaf *", node).dflt
        if dflt == ffi.NULL:
            return None
        return self._same_value(node, value, dflt)

    def _same_value(self, node: Any, value: str, dflt: Any) -> bool | None:
        """Whether ``value`` equals the libyang value ``dflt`` of ``node``'s type; None if it
        is not valid for the type."""
        want = c2str(lib.lyd_value_get_canonical(self.ctx.cdata, dflt))
        realtype = ffi.new("struct lysc_type **")
        raw = value.encode()
        ret = lib.lyd_value_validate(self.ctx.cdata, node, raw, len(raw), ffi.NULL, realtype,
                                     ffi.NULL)
        lib.ly_err_clean(self.ctx.cdata, ffi.NULL)
        if ret not in (lib.LY_SUCCESS, lib.LY_EINCOMPLETE):
            return None
        base = realtype[0].basetype if realtype[0] != ffi.NULL else lib.LY_TYPE_STRING
        if base in _INTEGERS:
            return int(value) == int(want)
        if base == lib.LY_TYPE_DEC64:
            return Decimal(value.strip()) == Decimal(want)
        return value == want

    def check_data(self, xml: str) -> None:
        """Parse data (config and state, as <get> or get-data returns it) strictly and validate
        it against the schema; raise LibyangError with libyang's reason if it does not
        conform."""
        self.ctx.last_errors = []
        dnode = self.ctx.parse_data_mem(xml, "xml", strict=True, validate_present=True)
        if dnode is not None:
            dnode.free()

    def check_notification(self, xml: str) -> None:
        """Parse the content of a <notification> (the event element, without the envelope)
        strictly and validate it against its YANG notification statement; raise LibyangError
        if it does not conform. An instance-identifier need not point at existing data (a
        config change names the nodes it deleted)."""
        self.ctx.last_errors = []
        raw = ffi.new("char[]", xml.encode())
        inp = ffi.new("struct ly_in **")
        if lib.ly_in_new_memory(raw, inp) != lib.LY_SUCCESS:
            raise self.ctx.error("cannot read the notification")
        tree = ffi.new("struct lyd_node **")
        try:
            if lib.lyd_parse_op(self.ctx.cdata, ffi.NULL, inp[0], lib.LYD_XML,
                                lib.LYD_TYPE_NOTIF_YANG, tree, ffi.NULL) != lib.LY_SUCCESS:
                raise self.ctx.error("invalid notification")
            if lib.lyd_validate_op(tree[0], ffi.NULL, lib.LYD_TYPE_NOTIF_YANG,
                                   ffi.NULL) != lib.LY_SUCCESS:
                error = self.ctx.error("invalid notification")
                if any("required instance not found" not in e.message
                       for e in self.ctx.last_errors):
                    raise error
        finally:
            lib.ly_in_free(inp[0], False)
            if tree[0] != ffi.NULL:
                lib.lyd_free_all(tree[0])

    def implemented(self) -> list[tuple[str, str, str]]:
        """(name, revision, namespace) of every module in the context."""
        out = []
        ctx = self.ctx.cdata
        i = ffi.new("uint32_t *", 0)
        while True:
            mod = lib.ly_ctx_get_module_iter(ctx, i)
            if mod == ffi.NULL:
                break
            rev = c2str(mod.revision) if mod.revision else ""
            out.append((c2str(mod.name), rev, c2str(mod.ns)))
        return out

    def module_text(self, name: str, revision: str | None = None) -> str | None:
        """The YANG source of a module of the context (for get-schema), or None."""
        try:
            mod = self.ctx.get_module(name)
        except libyang.LibyangError:
            return None
        rev = c2str(mod.cdata.revision) if mod.cdata.revision else ""
        if revision and rev != revision:
            return None
        path = mod.filepath()
        if path and Path(path).exists():
            return Path(path).read_text()
        return mod.print_mem("yang")

    def yang_library(self, content_id: str) -> str:
        """The ietf-yang-library data (RFC 8525) of the context, as XML."""
        dnode = self.ctx.get_yanglib_data(content_id)
        try:
            return dnode.print_mem("xml", with_siblings=True, pretty=False)
        finally:
            dnode.free()


_INTEGERS = {lib.LY_TYPE_INT8, lib.LY_TYPE_INT16, lib.LY_TYPE_INT32, lib.LY_TYPE_INT64,
             lib.LY_TYPE_UINT8, lib.LY_TYPE_UINT16, lib.LY_TYPE_UINT32, lib.LY_TYPE_UINT64}


def free(dnode: libyang.DNode | None) -> None:
    """Free a data tree returned by parse_config."""
    if dnode is not None:
        dnode.free()


__all__ = ["Schema", "SNode", "LyError", "NS", "free", "ffi"]
