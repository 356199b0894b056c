"""Parsing RPC parameters: the shape of an operation's input checked once for every operation
(RFC 6241 section 4.3 / RFC 7950 section 8.3.1), and strict number parsing."""

from __future__ import annotations

import copy
import re
import weakref
from typing import Any

from lxml import etree

from nf.edit import elements, qname
from nf.errors import ErrorInfo, RpcError
from nf.rpc_input import InputNode
from nf.schema import NAMESPACES
from nf.validate import to_rpc_error

UINT32_MAX = 0xFFFFFFFF
NOTIF = "urn:ietf:params:xml:ns:netconf:notification:1.0"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
# create-subscription (RFC 5277 section 2.1.1) has no YANG module in the schema: its
# parameters, each at most once (the minOccurs="0" elements of RFC 5277's XML schema). Its
# <filter> is in the notification namespace; clients such as ncclient send the base one, so
# both are taken, as one parameter (two cases of a choice: never both).
_SUBSCRIPTION = {(NOTIF, n): InputNode(n, NOTIF, kind, 1, ()) for n, kind in (
    ("stream", "leaf"), ("startTime", "leaf"), ("stopTime", "leaf"))}
_SUBSCRIPTION.update({(ns, "filter"): InputNode("filter", ns, "anyxml", 1, (("filter", ns),))
                      for ns in (NOTIF, NC)})
EXTRA_INPUTS: dict[tuple[str, str], dict[tuple[str, str], InputNode]] = {
    (NOTIF, "create-subscription"): _SUBSCRIPTION}


def uint(text: str | None, name: str, low: int = 0, high: int = UINT32_MAX) -> int:
    """An unsigned integer parameter within [low, high]; invalid-value otherwise."""
    raw = (text or "").strip()
    if not re.fullmatch(r"[0-9]{1,20}", raw) or not low <= int(raw) <= high:
        raise RpcError.of("invalid-value", f"{name} must be a number from {low} to {high}",
                          type="protocol", **{"bad-element": name})
    return int(raw)


def validate_input(schema: Any, op: etree._Element) -> None:
    """Validate an operation's input against its YANG definition with libyang (types, ranges,
    enumerations, mandatory parameters, musts), as Netopeer2 does; raise the rpc-error.

    The content of anyxml/anydata parameters (``<config>``, ``<filter>``) is not sent to
    libyang: it is not validated there, and a big edit would be parsed twice. What is sent
    (the operation without that content) is remembered once found valid, a few hundred of
    them: libyang's answer depends on that text alone (no data tree is involved), and a
    client reading entries by key, or polling, sends the same one again and again.
    """
    spec = schema.rpc_input(*qname(op))
    if spec is None:
        return
    light = etree.tostring(_without_anyxml(op, spec), encoding="unicode")
    known = _valid.setdefault(schema, set())
    if light in known:
        return
    error = schema.validate_rpc(light)
    if error is None:
        if len(light) <= REMEMBER_MAX_LEN:
            if len(known) >= REMEMBERED:
                known.clear()
            known.add(light)
        return
    items = [_input_error(info) for info in to_rpc_error(error, "invalid input").errors]
    raise RpcError(*items)


# validate_input remembers valid operation texts up to this length, this many
REMEMBER_MAX_LEN = 4096
REMEMBERED = 512
_valid: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def _input_error(info: ErrorInfo) -> ErrorInfo:
    """A libyang error about RPC input as RFC 6241 puts it: a protocol error naming the
    parameter (bad-element), missing-element for a missing mandatory one."""
    name = (info.path or "").rstrip("/").rsplit("/", 1)[-1].split(":")[-1].split("[")[0]
    tag = "missing-element" if info.tag == "data-missing" else info.tag
    return ErrorInfo(tag, info.message, None, "protocol", info.app_tag,
                     {**info.info, "bad-element": name} if name else dict(info.info))


def _without_anyxml(el: etree._Element, spec: dict[tuple[str, str], InputNode]) -> etree._Element:
    out = etree.Element(el.tag, dict(el.attrib), nsmap=el.nsmap)
    out.text = el.text
    for child in elements(el):
        node = spec.get(qname(child))
        if node is not None and node.kind in ("anyxml", "anydata"):
            out.append(etree.Element(child.tag, dict(child.attrib), nsmap=child.nsmap))
        elif node is not None and node.children:
            out.append(_without_anyxml(child, node.children))
        else:
            out.append(copy.deepcopy(child))
    return out


def check_input(schema: Any, op: etree._Element) -> None:
    """Refuse an operation whose parameters do not fit what it accepts: a parameter it does
    not define (unknown-element, or unknown-namespace), one given more times than allowed
    (bad-element, error-app-tag too-many-elements; for a list or leaf-list above its
    max-elements, operation-failed as RFC 7950 section 15.2 says), or parameters of two cases
    of one choice (bad-element, RFC 7950 section 8.3.1). What the operation accepts is its YANG
    input (augments and enabled features included); containers are checked inside, anyxml and
    anydata (config, filter) are not. An operation no module defines is left to its handler.
    """
    spec = schema.rpc_input(*qname(op))
    if spec is None:
        spec = EXTRA_INPUTS.get(qname(op))
    if spec is not None:
        _check(op, spec)


def _check(parent: etree._Element, spec: dict[tuple[str, str], InputNode]) -> None:
    counts: dict[tuple[str, str], int] = {}
    chosen: dict[str, tuple[str, str]] = {}  # choice -> (case, element name)
    for el in elements(parent):
        ns, name = qname(el)
        node = spec.get((ns, name))
        if node is None:
            if ns not in NAMESPACES.values() and ns != NOTIF:
                raise RpcError.of("unknown-namespace", f"unknown namespace {ns!r} of <{name}>",
                                  type="protocol",
                                  **{"bad-element": name, "bad-namespace": ns})
            raise RpcError.of("unknown-element", f"<{qname(parent)[1]}> has no parameter "
                              f"<{name}>", type="protocol", **{"bad-element": name})
        counts[(ns, name)] = n = counts.get((ns, name), 0) + 1
        if node.max is not None and n > node.max:
            if node.kind in ("list", "leaf-list"):
                raise RpcError.of("operation-failed", f"<{name}> is given more than "
                                  f"{node.max} times", type="protocol",
                                  app_tag="too-many-elements", **{"bad-element": name})
            raise RpcError.of("bad-element", f"<{name}> is given more than once",
                              type="protocol", app_tag="too-many-elements",
                              **{"bad-element": name})
        for choice, case in node.cases:
            other = chosen.setdefault(choice, (case, name))
            if other[0] != case:
                raise RpcError.of("bad-element", f"<{name}> and <{other[1]}> cannot be given "
                                  f"together (they are cases of the choice {choice})",
                                  type="protocol", **{"bad-element": name})
        if node.children:
            _check(el, node.children)
