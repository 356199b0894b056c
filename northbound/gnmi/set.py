"""gNMI Set: one edit of running, the same as NETCONF edit-config + commit.

The deletes, replaces and updates of a SetRequest become edit-config payloads (``remove``,
``replace``, ``merge`` on the target node), applied in the specification's order (deletes,
replaces, updates, each in the order given) as ONE edit of running
(``Datastores.edit_batch``): the same libyang validation and backend checks, the same NACM
write checks, one commit-history record and one netconf-config-change notification, and
nothing changed if any part fails. Values are JSON_IETF, parsed by libyang into the node's
place in the tree; libyang prints the XML payload.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
import libyang
from lxml import etree
from pygnmi.spec.v080 import gnmi_pb2 as pb

from nf.edit import elements
from nf.errors import RpcError
from nf.nacm import write_checker
from nf.paths import Step
from nf.schema import NAMESPACES, Schema, SNode
from northbound.gnmi import data, paths
from northbound.gnmi.auth import GnmiSession
from northbound.gnmi.context import GnmiContext, now_ns
from northbound.gnmi.errors import GnmiError, from_rpc_error

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
OPERATION = f"{{{NC}}}operation"
Part = tuple[etree._Element, str]  # (an edit-config <config>, its default operation)
_XML = etree.XMLParser(remove_blank_text=True, resolve_entities=False)


def _bad(message: str) -> GnmiError:
    return GnmiError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _config() -> etree._Element:
    return etree.Element(f"{{{NC}}}config", nsmap={"nc": NC})


def _skeleton(steps: tuple[Step, ...], leaf_value: str | None = None
              ) -> tuple[etree._Element, etree._Element]:
    """A <config> holding the path's nodes (list entries with their keys): (config, the
    target element)."""
    config = _config()
    cur = config
    for s in steps:
        ns = NAMESPACES[s.module]
        cur = etree.SubElement(cur, f"{{{ns}}}{s.name}", nsmap={None: ns})
        for k, v in s.keys:
            etree.SubElement(cur, f"{{{ns}}}{k}").text = v
    if leaf_value is not None:
        cur.text = leaf_value
    return config, cur


def removals(tree: libyang.DNode | None, steps: tuple[Step, ...]) -> list[Part]:
    """Parts removing every node of running the path selects (none: nothing to do, which a
    gNMI delete accepts); ``()`` removes every top-level node."""
    if tree is None:
        return []
    nodes = data.select(tree, steps)
    out: list[Part] = []
    for node in nodes:
        where = data.node_steps(node)
        if node.schema().keyword() == "leaf-list":
            for entry in data.value(node):
                config, target = _skeleton(where, data._key_text(entry))
                target.set(OPERATION, "remove")
                out.append((config, "none"))
            continue
        config, target = _skeleton(where)
        target.set(OPERATION, "remove")
        out.append((config, "none"))
    return out


def json_value(val: pb.TypedValue) -> Any:
    """The JSON value of an update (JSON_IETF or JSON; a scalar type for a leaf; a text that
    is not JSON is taken as a string, as pygnmi sends strings)."""
    which = val.WhichOneof("value")
    if which in ("json_ietf_val", "json_val"):
        raw = getattr(val, which).decode("utf-8", errors="replace")
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    if which in ("string_val", "ascii_val", "int_val", "uint_val", "bool_val", "float_val",
                 "double_val"):
        return getattr(val, which)
    if which == "leaflist_val":
        return [json_value(v) for v in val.leaflist_val.element]
    raise GnmiError(grpc.StatusCode.UNIMPLEMENTED,
                    f"values of type {which} are not supported: use JSON_IETF")


def _member(sn: SNode) -> str:
    return f"{sn.module}:{sn.name}"


def _parse_into(schema: Schema, text: str, parent: libyang.DNode | None) -> libyang.DNode | None:
    try:
        return schema.ctx.parse_data_mem(text, "json", parent=parent, parse_only=True,
                                         strict=True)
    except libyang.LibyangError as e:
        raise _bad(f"invalid value: {e}") from None


def _build(schema: Schema, steps: tuple[Step, ...], sn: SNode, val: Any) -> str:
    """The XML of the path's nodes with the value in place of the target (parsed by
    libyang from JSON_IETF; keys from the path)."""
    ctx = schema.ctx
    root: libyang.DNode | None = None
    try:
        if sn.kind in ("container", "list"):
            if not isinstance(val, dict):
                raise _bad(f"the value of {sn.name!r} must be a JSON object")
            members = dict(val)
            for k, v in steps[-1].keys:  # keys come from the path; the value may repeat them
                for name in (k, f"{sn.module}:{k}"):
                    if name in members:
                        if data._key_text(members.pop(name)) != v:
                            raise _bad(f"key {k!r} of the value differs from the path's")
            root = ctx.create_data_path(paths.xpath(steps))
            target = root.root().find_path(paths.xpath(steps)) if root is not None else None
            if target is None:
                raise _bad(f"cannot create {paths.xpath(steps)}")
            if members:
                _parse_into(schema, json.dumps(members), target)
        else:
            if sn.kind == "leaf-list" and not isinstance(val, list):
                val = [val]
            parent = None
            if len(steps) > 1:
                root = ctx.create_data_path(paths.xpath(steps[:-1]))
                parent = root.root().find_path(paths.xpath(steps[:-1])) if root else None
            try:
                made = _parse_into(schema, json.dumps({_member(sn): val}), parent)
            except GnmiError:
                if isinstance(val, str | list) or parent is None:
                    raise
                # pygnmi sends a string value as bare text: "123" arrives as the number 123
                made = _parse_into(schema, json.dumps({_member(sn): data._key_text(val)}),
                                   parent)
            root = root or made
        assert root is not None
        return root.root().first_sibling().print_mem("xml", with_siblings=True, pretty=False)
    except libyang.LibyangError as e:
        raise _bad(f"invalid path or value: {e}") from None
    finally:
        if root is not None:
            root.root().first_sibling().free(with_siblings=True)


def _targets(config: etree._Element, steps: tuple[Step, ...]) -> list[etree._Element]:
    """The elements of the payload at the end of the path (several for a leaf-list)."""
    cur = [config]
    for s in steps:
        tag = f"{{{NAMESPACES[s.module]}}}{s.name}"
        cur = [c for c in cur[0] if c.tag == tag] if cur else []
    return cur


def payload(schema: Schema, steps: tuple[Step, ...], val: Any, op: str) -> Part:
    """A replace or update of one node as an edit-config part."""
    top = schema.top
    if not steps:
        if not isinstance(val, dict):
            raise _bad("the value of the path '/' must be a JSON object of top-level nodes")
        tree = _parse_into(schema, json.dumps(val), None)
        try:
            xml = tree.first_sibling().print_mem("xml", with_siblings=True,
                                                pretty=False) if tree is not None else ""
        finally:
            if tree is not None:
                tree.first_sibling().free(with_siblings=True)
        config = etree.fromstring(f'<config xmlns="{NC}">{xml}</config>', _XML)
        for el in elements(config):
            el.set(OPERATION, op)
        return config, "merge"
    if paths.has_wildcards(steps, top):
        raise _bad(f"{paths.xpath(steps)}: a replace or update names one node (no wildcards)")
    sn = paths.schema_nodes(steps, top)[-1]
    if sn is None or not sn.config:
        raise _bad(f"{paths.xpath(steps)} is not configuration")
    config = etree.fromstring(f'<config xmlns="{NC}">{_build(schema, steps, sn, val)}</config>',
                             _XML)
    if op != "merge":
        for el in _targets(config, steps):
            el.set(OPERATION, op)
    return config, "merge"


def parts_of(schema: Schema, running: etree._Element, req: pb.SetRequest) -> tuple[
        list[Part], list[pb.UpdateResult]]:
    """The edit-config parts of a SetRequest, and what its response reports."""
    top = schema.top
    prefix = req.prefix if req.HasField("prefix") else None
    parts: list[Part] = []
    results: list[pb.UpdateResult] = []
    if getattr(req, "union_replace", None):  # gNMI 0.10; not in the 0.8 messages
        raise GnmiError(grpc.StatusCode.UNIMPLEMENTED, "union_replace is not supported")

    def steps_of(path: pb.Path) -> tuple[Step, ...]:
        try:
            return paths.parse(prefix, path, top)
        except paths.PathError as e:
            raise _bad(str(e)) from None

    # the nodes of running deletes (and replaces of '/' or of a leaf-list) remove, found by
    # libyang in the part of running those paths can select
    removing = [steps_of(p) for p in req.delete] + [steps_of(u.path) for u in req.replace]
    tops = data.pick(running, removing, schema.state_top) if removing else []
    with data.parsed(schema, tops) as tree:
        for path in req.delete:
            parts += removals(tree, steps_of(path))
            results.append(pb.UpdateResult(path=path, op=pb.UpdateResult.DELETE))
        for u in req.replace:
            steps = steps_of(u.path)
            val = json_value(u.val)
            if not steps:  # replace '/': what the value does not hold goes
                given = set(val) if isinstance(val, dict) else set()
                for el in elements(running):
                    q = etree.QName(el)
                    mod = next((m for m, ns in NAMESPACES.items() if ns == q.namespace), "")
                    if f"{mod}:{q.localname}" not in given:
                        parts += removals(tree, (Step(mod, q.localname),))
            elif paths.schema_nodes(steps, top)[-1] is not None and \
                    paths.schema_nodes(steps, top)[-1].kind == "leaf-list":
                parts += removals(tree, steps)  # a leaf-list is replaced whole
            parts.append(payload(schema, steps, val, "replace"))
            results.append(pb.UpdateResult(path=u.path, op=pb.UpdateResult.REPLACE))
    for u in req.update:
        parts.append(payload(schema, steps_of(u.path), json_value(u.val), "merge"))
        results.append(pb.UpdateResult(path=u.path, op=pb.UpdateResult.UPDATE))
    return parts, results


async def set_(g: GnmiContext, session: GnmiSession, req: pb.SetRequest) -> pb.SetResponse:
    """Apply a SetRequest to running, all or nothing."""
    access = g.access(session)
    if not access.may_exec("ietf-netconf", "edit-config"):
        g.ctx.nacm_counters.denied_operations += 1
        raise GnmiError(grpc.StatusCode.PERMISSION_DENIED,
                        "this user may not edit the configuration (edit-config)")
    ds = g.ctx.ds
    parts, results = parts_of(g.ctx.schema, ds.tree("running"), req)
    check = write_checker(access, g.ctx.schema.top, g.ctx.nacm_counters)
    g.ctx.registry.attach(session)  # the history and notifications name the caller
    try:
        ds.edit_batch("running", parts, session.session_id, check)
    except RpcError as e:
        raise from_rpc_error(e) from None
    finally:
        g.ctx.registry.detach(session)
    return pb.SetResponse(prefix=req.prefix if req.HasField("prefix") else None,
                          response=results, timestamp=now_ns())
