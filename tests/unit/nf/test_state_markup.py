"""The state tree's rendering (nf/state.py): text markup parsed once, the same XML as element
by element; a snapshot member's markup remembered while it is the same object."""

from __future__ import annotations

from lxml import etree

from nf import state
from nf.schema import NS

TREE = {"ike-sas": {"total": 2, "half-open": 0},
        "ike-sa": [{"unique-id": 1, "name": "a<&>b", "initiator": True, "local-vips": ["x"],
                    "child-sa": [{"unique-id": 3, "empty": {}, "gone": None}]}],
        "nothing": None}


def reference(parent: etree._Element, data: dict) -> None:
    """Element by element (the former to_xml)."""
    for name, value in data.items():
        tag = f"{{{NS}}}{name}"
        if value is None:
            continue
        if isinstance(value, dict):
            reference(etree.SubElement(parent, tag), value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    reference(etree.SubElement(parent, tag), item)
                elif item is not None:
                    etree.SubElement(parent, tag).text = str(item)
        else:
            etree.SubElement(parent, tag).text = (
                ("true" if value else "false") if isinstance(value, bool) else str(value))


def test_markup_is_the_same_xml() -> None:
    ours, ref = (etree.Element(f"{{{NS}}}ike", nsmap={None: NS}) for _ in range(2))
    state.to_xml(ours, TREE)
    reference(ref, TREE)
    assert etree.tostring(ours) == etree.tostring(ref)
    assert ours.findtext(f"{{{NS}}}ike-sa/{{{NS}}}name") == "a<&>b"


def test_a_members_markup_is_remembered_while_it_is_the_same_object() -> None:
    sas = [{"unique-id": 1}]
    first = etree.tostring(state.merge_state([], {"ike-sa": sas})[0])
    sas2 = [{"unique-id": 2}]  # a new reading: a new object, rendered anew
    assert b"<unique-id>2<" in etree.tostring(state.merge_state([], {"ike-sa": sas2})[0])
    assert etree.tostring(state.merge_state([], {"ike-sa": sas})[0]) == first
    for k in range(100):  # bounded
        state.merge_state([], {"ike-sa": [{"unique-id": k}]})
    assert len(state._MEMBERS) <= state._KEEP
