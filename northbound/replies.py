"""Building <rpc-reply> documents: data, ok, and rpc-error (RFC 6241 section 4.3)."""

from __future__ import annotations

from lxml import etree

from nf.errors import RpcError
from nf.paths import prefixes
from nf.schema import NAMESPACES

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# module names used as error-path prefixes that have no YANG module in the schema
OTHER_PREFIXES = {"notifications": "urn:ietf:params:xml:ns:netconf:notification:1.0"}


class Verbatim:
    """The one child of a reply, already printed (``northbound/verbatim.py``: the data of a
    whole read, printed from the datastore's own nodes instead of a copy). Its XML may use
    the reply's default namespace (the base one) and no other declaration of the reply."""

    def __init__(self, xml: bytes) -> None:
        self.xml = xml


def reply(rpc_attrs: dict[str, str], *children: etree._Element | Verbatim) -> bytes:
    """An rpc-reply carrying the rpc's attributes (message-id and any others) and ``children``."""
    r = etree.Element(f"{{{NC}}}rpc-reply", nsmap={None: NC})
    for k, v in rpc_attrs.items():
        r.set(k, v)
    if children and isinstance(children[0], Verbatim):
        if len(children) != 1:
            raise ValueError("a verbatim child is a reply's only child")
        empty = etree.tostring(r, encoding="utf-8", xml_declaration=True)
        if not empty.endswith(b"/>"):
            raise ValueError("unexpected rpc-reply serialization")
        return b"".join((empty[:-2], b">", children[0].xml, b"</rpc-reply>"))
    for c in children:
        if isinstance(c, Verbatim):
            raise ValueError("a verbatim child is a reply's only child")
        r.append(c)
    for path in list(r.iter(f"{{{NC}}}error-path")):
        _declare_prefixes(path)
    return etree.tostring(r, encoding="utf-8", xml_declaration=True)


def _path_nsmap(path: str) -> dict[str, str]:
    """The namespace of every module prefix of an error-path (module names are prefixes)."""
    known = {**OTHER_PREFIXES, **NAMESPACES}
    return {m: known[m] for m in sorted(prefixes(path)) if m in known}


def _declare_prefixes(path: etree._Element) -> None:
    """Declare the prefixes of an error-path on the element itself, in the finished reply.

    lxml drops a declaration of a namespace that is already in scope under another prefix
    when an element moves into a tree (the base namespace is the reply's default one, so
    'ietf-netconf:' would end up undeclared); an element created in place keeps them."""
    nsmap = _path_nsmap(path.text or "")
    parent = path.getparent()
    if not nsmap or parent is None:
        return
    later = list(parent)[parent.index(path) + 1:]
    parent.remove(path)
    new = etree.SubElement(parent, path.tag, nsmap={None: NC, **nsmap})
    new.text = path.text
    for el in later:
        parent.append(el)


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
            p = etree.SubElement(el, f"{{{NC}}}error-path", nsmap=_path_nsmap(e.path) or None)
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
