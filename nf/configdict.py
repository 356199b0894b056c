"""The whole config as libyang's dict, kept up to date one entry at a time."""

from __future__ import annotations

from typing import Any

from lxml import etree

from nf.tree import EntryKey
from nf.validate import BULK


def keyed(data: dict[str, Any]) -> dict[str, Any]:
    """libyang's dict with the bulk lists keyed by name (so single entries can be replaced)."""
    for top in data.values():
        if isinstance(top, dict):
            for name in BULK:
                if name in top:
                    top[name] = {e["name"]: e for e in top[name]}
    return data


def merge(config: dict[str, Any], sliced: dict[str, Any], touched: set[EntryKey]) -> None:
    """Fold the dict of a validated slice into the whole config dict."""
    keyed(sliced)
    for top_name, top in sliced.items():
        whole = config.setdefault(top_name, {})
        for k, v in top.items():
            if k not in BULK:
                whole[k] = v
    for key in touched:
        top_name = etree.QName(key[0]).localname
        list_name = etree.QName(key[1]).localname
        name = key[2][0]
        entries = config.setdefault(top_name, {}).setdefault(list_name, {})
        new = sliced.get(top_name, {}).get(list_name, {}).get(name)
        if new is None:
            entries.pop(name, None)
            if not entries:
                del config[top_name][list_name]
        else:
            entries[name] = new
