"""Edit records: how edits are persisted, replayed, and split for continue-on-error."""

from __future__ import annotations

import copy

from lxml import etree

from nf.edit import edit_tree, elements
from nf.tree import Txn

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"


def record(edits: list[tuple[etree._Element, str]]) -> bytes:
    rec = etree.Element("record")
    for config, default_op in edits:
        e = etree.SubElement(rec, "edit", {"default-operation": default_op})
        e.append(copy.deepcopy(config))
    return etree.tostring(rec)


def replay(txn: Txn, payload: bytes) -> None:
    for e in etree.fromstring(payload, etree.XMLParser(huge_tree=True)):
        edit_tree(txn, e[0], e.get("default-operation", "merge"), trusted=True)


def units(config: etree._Element, split: bool = True) -> list[etree._Element]:
    """continue-on-error: each entry (child of a top-level node) is edited on its own; with
    ``split`` False (default-operation replace) each top-level node is one unit."""
    out = []
    for top in elements(config):
        kids = list(elements(top))
        if not split or not kids or top.get(f"{{{NC}}}operation") is not None:
            parts = [copy.deepcopy(top)]
        else:
            parts = []
            for k in kids:
                shell = etree.Element(top.tag, dict(top.attrib), nsmap=top.nsmap)
                shell.append(copy.deepcopy(k))
                parts.append(shell)
        for p in parts:
            one = etree.Element(f"{{{NC}}}config", nsmap=config.nsmap)
            one.append(p)
            out.append(one)
    return out
