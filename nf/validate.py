"""Validation of a config tree by libyang, with errors mapped to RFC 6241 rpc-errors."""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from typing import Any

import libyang
from lxml import etree

from nf.edit_nodes import elements
from nf.errors import (
    BadElement,
    DataMissing,
    ErrorInfo,
    InvalidValue,
    OperationFailed,
    RpcError,
    UnknownElement,
)
from nf.paths import from_libyang, in_deny_all, schema_of
from nf.schema import LyError, Schema, SNode

# libyang's validation error codes (LY_VECODE, libyang/log.h)
LYVE_REFERENCE = 4
LYVE_DATA = 9
# Where libyang gives no app-tag, its message formats tell the case apart (libyang/common.h:
# LY_VCODE_NOMAND, LY_VCODE_DUP, LY_VCODE_NOWHEN). Kept in one table, pinned by
# tests/unit/nf/test_validate_map.py against the installed libyang, so an upgrade that changes
# them fails a test instead of silently changing our rpc-errors.
_MANDATORY = re.compile(r'Mandatory node "([^"]+)" instance does not exist')
_DUPLICATE = re.compile(r'Duplicate instance of "([^"]+)"')
_WHEN = re.compile(r"When condition .* not satisfied")  # LY_VCODE_NOWHEN
_SECRET_MSG = ("invalid secret: use text, 0x and hexadecimal bytes, or 0s and base64 "
               "(value not shown)")


def error_info(item: LyError, path: str | None) -> ErrorInfo:
    """One libyang error item as an rpc-error (RFC 7950 section 15), chosen by libyang's error
    code and app-tag first."""
    msg, app = item.message, item.apptag
    if item.vecode == LYVE_REFERENCE:
        return UnknownElement.item(msg, path)
    if app == "instance-required":
        return DataMissing.item(msg, path, app_tag="instance-required")
    if app == "must-violation":
        return OperationFailed.item(msg, path, app_tag="must-violation")
    if app in ("data-not-unique", "too-many-elements", "too-few-elements"):
        return OperationFailed.item(msg, path, app_tag=app)
    if app == "missing-choice":
        return DataMissing.item(msg, path, app_tag=app)
    if _MANDATORY.search(msg):
        return DataMissing.item(msg, path, app_tag="mandatory")
    if _WHEN.search(msg):
        # a node whose "when" is false does not exist in the schema there (RFC 7950 8.3.1)
        return UnknownElement.item(msg, path)
    if dup := _DUPLICATE.search(msg):
        # a node given twice: the edit refuses it first (nf.edit.check_unique), same tag
        return BadElement.item(msg, path, **{"bad-element": dup.group(1)})
    return InvalidValue.item(msg, path, app_tag=app)


def to_rpc_error(items: list[LyError], fallback: str,
                 top: dict[tuple[str, str], SNode] | None = None) -> RpcError:
    """Map libyang error items to an RpcError. Messages about secret leaves never repeat the
    value."""
    if not items:
        return InvalidValue(fallback)
    errs = []
    for it in items:
        path = from_libyang(it.path)
        info = error_info(it, path)
        # only a bad-value message quotes the value; on an access-protected node (the secret
        # leaves, and all of /nacm) it is replaced
        if info.tag == InvalidValue.tag and top is not None and in_deny_all(path, top):
            info = dataclasses.replace(info, message=_SECRET_MSG if (path or "").endswith(
                ":secret") else "invalid value of an access-protected node (value not shown)")
        errs.append(info)
    return RpcError(*errs)


def validate(schema: Schema, roots: list[etree._Element]) -> dict[str, Any]:
    """Validate a whole config; return it as libyang's dict (with defaults) or raise RpcError."""
    return validate_text(schema, "".join(etree.tostring(r, encoding="unicode") for r in roots))


def validate_text(schema: Schema, xml: str) -> dict[str, Any]:
    """:func:`validate` of a config given as XML text."""
    try:
        dnode = schema.parse_config(xml)
    except libyang.LibyangError:
        raise to_rpc_error(schema.ctx.last_errors, "invalid configuration", schema.top) from None
    if dnode is None:
        return {}
    try:
        text = dnode.print_mem("json", with_siblings=True, pretty=False,
                               include_implicit_defaults=True)
    finally:
        dnode.free()
    return _from_json(json.loads(text), schema)


def _from_json(data: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """RFC 7951 JSON as plain dicts: top-level names without module prefix, 64-bit integers
    and decimals as numbers."""
    by_name = {(n.module, n.name): n for n in schema.top.values()}
    out: dict[str, Any] = {}
    for qualified, value in data.items():
        module, _, name = qualified.partition(":")
        sn = by_name.get((module, name))
        out[name] = _convert(value, sn) if sn is not None else value
    return out


# per schema node, its children that _convert has work in (a number leaf, or below them), by
# name: built once (rebuilding it for every entry of a bulk validation cost as much as the
# conversion); schema nodes live as long as the schema
_to_convert: dict[int, tuple[SNode, dict[str, SNode]]] = {}


def _converted_children(sn: SNode) -> dict[str, SNode]:
    hit = _to_convert.get(id(sn))
    if hit is None or hit[0] is not sn:
        hit = _to_convert[id(sn)] = (sn, {c.name: c for c in sn.children.values()
                                          if c.conv is not None or c.children})
    return hit[1]


def _convert(value: Any, sn: SNode) -> Any:
    if sn.conv is not None:
        f = int if sn.conv == "int" else float
        return [f(v) for v in value] if isinstance(value, list) else f(value)
    if isinstance(value, list) and sn.kind == "list":
        return [_convert(v, sn) for v in value]
    if isinstance(value, dict):
        kids = _converted_children(sn)
        if not kids:
            return value
        for k, v in value.items():
            c = kids.get(k.partition(":")[2] or k)
            if c is not None:
                value[k] = _convert(v, c)
    return value


# Lists whose entries nothing refers to: a change to one of them is validated alone (with the
# small rest of the config it may refer to), so a commit costs what it changes.
BULK = {"vpn", "pre-shared-key"}


@functools.lru_cache(maxsize=256)
def _local(tag: str) -> str:
    # (cached: asked for every entry a bulk edit touches, and etree.QName parses the tag)
    return etree.QName(tag).localname


def is_bulk(key: tuple) -> bool:
    """Is this entry key (nf.tree.EntryKey) an entry of a bulk list?"""
    return key[1] is not None and _local(key[1]) in BULK and bool(key[2])


def validate_slice(schema: Schema, tree: Any, touched: set) -> dict[str, Any] | None:
    """Validate only the touched bulk entries of ``tree`` (an nf.tree.Tree) with the rest of the
    config, not the other bulk entries; return libyang's dict of that slice, or None when a full
    validation is needed."""
    if not touched or not all(is_bulk(k) for k in touched):
        return None
    # the slice as XML text at once: each kept node serialized where it is (with the
    # namespace declarations in scope there) instead of copied into a new tree first
    parts: dict[str, list[str]] = {}
    for top in elements(tree.root):
        q = etree.QName(top)
        part = parts[top.tag] = [f'<{q.localname} xmlns="{q.namespace or ""}">']
        sn = schema_of(schema.top, top)
        kept = [f"{{{c.ns}}}{c.name}" for c in (sn.children.values() if sn is not None else [])
                if c.name not in BULK]
        if kept:  # (one pass over the children: thousands of VPNs among them)
            part.extend(_text(c) for c in top.iterchildren(*kept))
    for key in touched:
        el = tree.lookup(key)
        if el is not None:
            parts[key[0]].append(_text(el))
    return validate_text(schema, "".join(
        "".join(part) + f"</{_local(tag)}>" for tag, part in parts.items()))


def _text(el: etree._Element) -> str:
    return etree.tostring(el, encoding="unicode", with_tail=False)
