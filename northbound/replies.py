"""Building <rpc-reply> documents: data, ok, and rpc-error (RFC 6241 section 4.3)."""

from __future__ import annotations

import re

from lxml import etree

from nf.errors import RpcError
from nf.schema import NAMESPACES, NS

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def reply(rpc_attrs: dict[str, str], *children: etree._Element) -> bytes:
    """An rpc-reply carrying the rpc's attributes (message-id and any others) and ``children``."""
    r = etree.Element(f"{{{NC}}}rpc-reply", nsmap={None: NC})
    for k, v in rpc_attrs.items():
        r.set(k, v)
    for c in children:
        r.append(c)
    return etree.tostring(r, encoding="utf-8", xml_declaration=True)


def ok() -> etree._Element:
    """<ok/>."""
    return etree.Element(f"{{{NC}}}ok")


def data(*children: etree._Element) -> etree._Element:
    """<data> holding ``children``."""
    d = etree.Element(f"{{{NC}}}data")
    for c in children:
        d.append(c)
    return d


def error_elements(err: RpcError) -> list[etree._Element]:
    """One <rpc-error> element per error of ``err``."""
    out = []
    for e in err.errors:
        el = etree.Element(f"{{{NC}}}rpc-error")
        etree.SubElement(el, f"{{{NC}}}error-type").text = e.type
        etree.SubElement(el, f"{{{NC}}}error-tag").text = e.tag
        etree.SubElement(el, f"{{{NC}}}error-severity").text = "error"
        if e.app_tag:
            etree.SubElement(el, f"{{{NC}}}error-app-tag").text = e.app_tag
        if e.path:
            prefixes = set(re.findall(r"([\w.-]+):", e.path))
            nsmap = {m: NAMESPACES.get(m, NS) for m in prefixes if m in NAMESPACES} or None
            p = etree.SubElement(el, f"{{{NC}}}error-path", nsmap=nsmap)
            p.text = e.path
        m = etree.SubElement(el, f"{{{NC}}}error-message")
        m.set(XML_LANG, "en")
        m.text = e.message
        if e.info:
            info = etree.SubElement(el, f"{{{NC}}}error-info")
            for k, v in e.info.items():
                etree.SubElement(info, f"{{{NC}}}{k}").text = v
        out.append(el)
    return out


def error_reply(rpc_attrs: dict[str, str], err: RpcError) -> bytes:
    """An rpc-reply with the rpc-errors of ``err``."""
    return reply(rpc_attrs, *error_elements(err))
