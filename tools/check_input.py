"""Reading the file `ipsec-nf check` is given: XML (a ``<config>`` element or a top-level
container) or JSON_IETF, as the ``<config>`` element the server would parse."""

from __future__ import annotations

import json
from typing import Any

from lxml import etree

from nf import paths
from nf.edit import elements, strip_ops
from nf.schema import NAMESPACES, Schema

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"


class Unreadable(Exception):
    """The file cannot be read, or is not well-formed XML or JSON, or holds no configuration
    (exit status 2)."""


def read_config(text: bytes, schema: Schema) -> tuple[etree._Element, str]:
    """The file's content as a ``<config>`` element holding the top-level containers (a copy
    without edit attributes), and its format (``xml`` or ``json``); Unreadable if it is
    neither well-formed XML nor JSON, or holds no configuration."""
    head = text.lstrip()[:1]
    if head in (b"{", b"["):
        return _from_json(text, schema), "json"
    if head == b"<":
        return _from_xml(text, schema), "xml"
    if not head:
        raise Unreadable("the file is empty")
    raise Unreadable("neither XML (a <config> element, or <ike xmlns=...>) nor JSON_IETF "
                     '({"ipsec-nf:ike": ...})')


def _from_xml(text: bytes, schema: Schema) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True,
                             remove_pis=True, load_dtd=False)
    try:
        root = etree.fromstring(text, parser)
    except etree.XMLSyntaxError as e:
        where = "" if "line" in (e.msg or "") else f" (line {e.lineno})"
        raise Unreadable(f"not well-formed XML: {e.msg}{where}") from None
    q = etree.QName(root)
    if (q.namespace or "", q.localname) in schema.top:
        tops = [root]
    elif q.localname == "config":
        tops = list(elements(root))
    else:
        names = ", ".join(sorted(f"<{n.name} xmlns=\"{n.ns}\">" for n in schema.top.values()))
        raise Unreadable(f"line {root.sourceline}: expected a <config> element or one of "
                         f"{names}, found <{q.localname}>")
    config = etree.Element(f"{{{NC}}}config", nsmap={"nc": NC})
    for top in tops:
        config.append(strip_ops(top))  # copies keep their line numbers
    return config


def _from_json(text: bytes, schema: Schema) -> etree._Element:
    """JSON_IETF (RFC 7951) as the XML the server parses; libyang checks it the same way."""
    try:
        data = json.loads(text)
    except UnicodeDecodeError as e:
        raise Unreadable(f"not valid JSON: {e}") from None
    except json.JSONDecodeError as e:
        raise Unreadable(f"not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") \
            from None
    if not isinstance(data, dict):
        raise Unreadable('expected a JSON object of top-level containers, e.g. '
                         '{"ipsec-nf:ike": {...}}')
    config = etree.Element(f"{{{NC}}}config", nsmap={"nc": NC})
    for key, value in data.items():
        module, sep, name = key.partition(":")
        if not sep:
            raise Unreadable(f"top-level member {key!r} needs its module name (RFC 7951), "
                             'e.g. "ipsec-nf:ike"')
        if module not in NAMESPACES:
            raise Unreadable(f"{key!r}: no module {module!r} in the model")
        _json_node(config, NAMESPACES[module], name, value, schema.top)
    return config


def _json_node(parent: etree._Element, ns: str, name: str, value: Any,
               level: paths.Level) -> None:
    sn = paths.child(level, ns, name)
    items = value if isinstance(value, list) and value != [None] else [value]
    for item in items:
        el = etree.SubElement(parent, f"{{{ns}}}{name}")
        if isinstance(item, dict):
            for key, v in item.items():
                module, sep, local = key.partition(":")
                cns = (NAMESPACES.get(module, f"urn:unknown-module:{module}") if sep else ns)
                _json_node(el, cns, local if sep else key, v, sn)
        elif item is None or item == [None]:  # type empty
            continue
        elif isinstance(item, bool):
            el.text = "true" if item else "false"
        elif isinstance(item, list | dict):
            el.text = json.dumps(item)  # not a value of any leaf: libyang says so
        else:
            el.text = str(item)
