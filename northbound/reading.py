"""Reading a conventional datastore for a user: NACM pruning and with-defaults (RFC 6243)."""

from __future__ import annotations

import copy
from typing import Any

from lxml import etree

from nf.edit import elements
from nf.errors import RpcError
from nf.nacm import prune_unreadable

WD = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults"
WD_MODES = ("explicit", "trim", "report-all", "report-all-tagged")
_XML = etree.XMLParser(remove_blank_text=True, resolve_entities=False)


def config_roots(server: Any, session: Any, name: str,
                  op: etree._Element) -> list[etree._Element]:
    """Top-level config nodes of a datastore the user may read, in the with-defaults mode
    the request asks."""
    roots = [copy.deepcopy(r) for r in elements(server.ds.tree(name))]
    roots = prune_unreadable(server.access(session), roots, server.schema.top)
    wd = op.find(f"{{{WD}}}with-defaults")
    if wd is None or not roots:
        return roots
    mode = (wd.text or "").strip()
    if mode not in WD_MODES:
        raise RpcError.of("invalid-value", f"with-defaults must be one of {', '.join(WD_MODES)}",
                          type="protocol", **{"bad-element": "with-defaults"})
    if mode == "explicit":
        return roots
    text = server.schema.print_with_defaults(
        "".join(etree.tostring(r, encoding="unicode") for r in roots), mode)
    return list(elements(etree.fromstring(f"<r>{text}</r>", _XML)))
