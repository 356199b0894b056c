"""RFC 6243 'default' attribute: how report-all-tagged output marks default data, and what a
client's config that carries such marks (edit-config, edit-data, copy-config, validate) means.

The attribute is ``default`` in the namespace ``urn:ietf:params:xml:ns:netconf:default:1.0``
(RFC 6243 section 6; prefix ``wd`` here), an xs:boolean. libyang prints it in the namespace of
the ietf-netconf-with-defaults module, which no client knows: ``retag`` moves it.

In our 'explicit' basic mode, default data is data the client did not set (RFC 6243 section
2.3). A leaf a client sends tagged ``default="true"`` (typically read back with
report-all-tagged) is therefore default data, not a value the client sets: its value must be
the schema default (else invalid-value), and the leaf is left to its default — an explicit
value it had is removed (a merge) or it is simply not stored (create, replace, copy-config).
A tag ``false`` changes nothing. The attribute is never stored.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from nf.edit import OP_ATTR, elements, qname
from nf.errors import BadAttribute, InvalidValue, UnknownAttribute
from nf.paths import path_step, schema_of
from nf.schema import SNode

WD_ATTR_NS = "urn:ietf:params:xml:ns:netconf:default:1.0"
WD_MODULE_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults"
DEFAULT_ATTR = f"{{{WD_ATTR_NS}}}default"
LIBYANG_ATTR = f"{{{WD_MODULE_NS}}}default"
_BOOLEAN = {"true": True, "1": True, "false": False, "0": False}


def retag(roots: list[etree._Element]) -> list[etree._Element]:
    """The roots with every default tag in RFC 6243's namespace (declared as ``wd`` on the
    root that holds tags) instead of the module namespace libyang uses."""
    out = []
    for r in roots:
        if not any(LIBYANG_ATTR in e.attrib for e in r.iter() if isinstance(e.tag, str)):
            out.append(r)
            continue
        nsmap = {k: v for k, v in r.nsmap.items() if v != WD_MODULE_NS}
        new = etree.Element(r.tag, nsmap={**nsmap, "wd": WD_ATTR_NS})
        for k, v in r.attrib.items():
            new.set(k, v)
        new.text = r.text
        new.extend(list(r))
        for e in new.iter():
            if isinstance(e.tag, str) and LIBYANG_ATTR in e.attrib:
                e.set(DEFAULT_ATTR, e.attrib.pop(LIBYANG_ATTR))
        etree.cleanup_namespaces(new, top_nsmap={"wd": WD_ATTR_NS}, keep_ns_prefixes=["wd"])
        out.append(new)
    return out


def untag(schema: Any, config: etree._Element, default_op: str | None) -> etree._Element:
    """Apply (in place) the 'default' attributes of a client's ``<config>``, as the module
    docstring says; ``default_op`` is the edit's default-operation, or None for a whole
    config (copy-config, validate). Returns ``config``."""
    if not any(DEFAULT_ATTR in e.attrib or LIBYANG_ATTR in e.attrib
               for e in config.iter() if isinstance(e.tag, str)):
        return config
    for top in list(elements(config)):
        _walk(schema, top, schema_of(schema.top, top), [], "", default_op)
    # drop the now unused declarations of the attribute's namespace (only those: values such
    # as NACM paths use prefixes that no tag or attribute shows)
    keep = {p for e in config.iter() if isinstance(e.tag, str)
            for p, uri in e.nsmap.items() if p is not None and uri != WD_ATTR_NS}
    etree.cleanup_namespaces(config, keep_ns_prefixes=sorted(keep))
    return config


def _walk(schema: Any, el: etree._Element, sn: SNode | None, chain: list[SNode], ppath: str,
          inherited: str | None) -> None:
    op = el.get(OP_ATTR, inherited)
    path = ppath + path_step(sn, el)
    if LIBYANG_ATTR in el.attrib:
        raise UnknownAttribute("the 'default' attribute is in the namespace "
                               f"{WD_ATTR_NS} (RFC 6243 section 6)", path,
                               **{"bad-attribute": "default", "bad-element": qname(el)[1]})
    if DEFAULT_ATTR in el.attrib:
        raw = el.attrib.pop(DEFAULT_ATTR)
        tagged = _BOOLEAN.get(raw.strip())
        if tagged is None:
            raise BadAttribute(f"default={raw!r} is not a boolean", path,
                               **{"bad-attribute": "default", "bad-element": qname(el)[1]})
        if tagged and sn is not None:
            _tagged_default(schema, el, [*chain, sn], path, op)
            return
    if sn is None:
        return  # unknown nodes are the editor's to refuse
    for c in list(elements(el)):
        _walk(schema, c, schema_of(sn, c), [*chain, sn], path, op)


def _tagged_default(schema: Any, el: etree._Element, chain: list[SNode], path: str,
                    op: str | None) -> None:
    """A node the client marks as default data: check it, then leave the leaf to its
    default."""
    sn = chain[-1]
    if sn.kind not in ("leaf", "leaf-list") or len(el):
        raise BadAttribute(f"{sn.name!r} is not a leaf: it cannot be tagged as default", path,
                           **{"bad-attribute": "default", "bad-element": sn.name})
    value = el.text or ""
    if not schema.is_default(chain, value):
        raise InvalidValue(f"{sn.name!r} is tagged as default but {value!r} is not its "
                           "default value", path, **{"bad-element": sn.name})
    parent = el.getparent()
    if op in ("delete", "remove"):
        return  # removing the leaf is what the client asked
    if op == "merge":
        el.set(OP_ATTR, "remove")  # an explicit value goes; the leaf takes its default
        return
    if parent is not None:  # create, replace, none, a whole config: the leaf is not stored
        parent.remove(el)


__all__ = ["retag", "untag", "WD_ATTR_NS", "DEFAULT_ATTR"]
