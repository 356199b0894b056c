"""Validation of a config tree by libyang, with errors mapped to RFC 6241 rpc-errors."""

from __future__ import annotations

import re
from typing import Any

import libyang
from lxml import etree

from nf.errors import ErrorInfo, RpcError
from nf.schema import LyError, Schema


def nc_path(ly_path: str | None, module: str = "ipsec-nf") -> str | None:
    """libyang's data path ("/ipsec-nf:ike/vpn[name='a']") as a fully prefixed XPath."""
    if not ly_path:
        return None
    current = module

    def prefix(m: re.Match[str]) -> str:
        nonlocal current
        if m.group(2):
            current = m.group(2)
            return m.group(0)
        return f"{m.group(1)}{current}:{m.group(3)}"

    return re.sub(r"([/\[])(?:([\w.-]+):)?([A-Za-z_][\w.-]*)(?=[\[=/\]]|$)", prefix, ly_path)


def to_rpc_error(items: list[LyError], fallback: str) -> RpcError:
    """Map libyang error items (RFC 7950 section 15 conventions) to an RpcError."""
    if not items:
        return RpcError.of("invalid-value", fallback)
    errs = []
    for it in items:
        msg, path, app = it.message, nc_path(it.path), it.apptag
        if "leafref" in msg or app == "instance-required":
            errs.append(ErrorInfo("data-missing", msg, path, app_tag="instance-required"))
        elif app == "must-violation" or "must" in msg.lower() and "condition" in msg.lower():
            errs.append(ErrorInfo("operation-failed", msg, path, app_tag="must-violation"))
        elif "Mandatory node" in msg:
            errs.append(ErrorInfo("data-missing", msg, path, app_tag="mandatory"))
        elif "Unique data" in msg:
            errs.append(ErrorInfo("operation-failed", msg, path, app_tag="data-not-unique"))
        elif "not found as a child" in msg or "Unknown element" in msg:
            errs.append(ErrorInfo("unknown-element", msg, path))
        else:
            errs.append(ErrorInfo("invalid-value", msg, path, app_tag=app))
    return RpcError(*errs)


def validate(schema: Schema, roots: list[etree._Element]) -> dict[str, Any]:
    """Validate a whole config; return it as libyang's dict (with defaults) or raise RpcError."""
    xml = "".join(etree.tostring(r, encoding="unicode") for r in roots)
    try:
        dnode = schema.parse_config(xml)
    except libyang.LibyangError as e:
        raise to_rpc_error(schema.ctx.last_errors, str(e)) from None
    if dnode is None:
        return {}
    try:
        out: dict[str, Any] = {}
        for sib in dnode.siblings(include_self=True):
            out.update(sib.print_dict(include_implicit_defaults=True, absolute=False))
        return out
    finally:
        dnode.free()
