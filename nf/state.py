"""The config-false state tree: observed state (plain dicts) rendered as YANG XML."""

from __future__ import annotations

from typing import Any

from lxml import etree

from nf.schema import NS


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def to_xml(parent: etree._Element, data: dict[str, Any], ns: str = NS) -> None:
    """Append ``data`` (containers as dicts, lists as lists of dicts) under ``parent``."""
    for name, value in data.items():
        if value is None:
            continue
        tag = f"{{{ns}}}{name}"
        if isinstance(value, dict):
            to_xml(etree.SubElement(parent, tag), value, ns)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    to_xml(etree.SubElement(parent, tag), item, ns)
                elif item is not None:
                    etree.SubElement(parent, tag).text = _text(item)
        else:
            etree.SubElement(parent, tag).text = _text(value)


def merge_state(config_roots: list[etree._Element], state: dict[str, Any]) -> list[etree._Element]:
    """The config roots with the ``ike`` state (ike-sas, ike-sa list) added inside ``<ike>``."""
    roots = list(config_roots)
    ike = next((r for r in roots if r.tag == f"{{{NS}}}ike"), None)
    if ike is None:
        ike = etree.Element(f"{{{NS}}}ike", nsmap={None: NS})
        roots.append(ike)
    to_xml(ike, state)
    return roots
