"""nf/history.py's commit files: an entry's attributes read back as written."""

from __future__ import annotations

import json

from lxml import etree

from nf.history import _attr, _key_attr


def test_entry_attributes_read_back_whatever_they_hold() -> None:
    for v in ("{urn:ipsec-nf:yang:ipsec-nf}vpn", "vpn1", "a&b", 'q"x', "it's", "tab\t", "é",
              "", "a<b>", "x;y=z?[]", "back\\slash"):
        for parts in ((v,), (v, "2"), ()):
            e = etree.fromstring(f"<e a={_attr(v)} k={_key_attr(parts)}/>")
            assert e.get("a") == v and json.loads(e.get("k")) == list(parts)
