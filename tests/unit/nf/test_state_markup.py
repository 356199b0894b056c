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


def _sa(uid: int, tick: int, name: str = "vpn", child_bytes: int = 7) -> dict:
    return {"unique-id": uid, "name": name, "established-time": 10 + tick,
            "rekey-time": 900 - tick, "reauth-time": None,
            "child-sa": [{"unique-id": uid * 10, "bytes-in": child_bytes,
                          "rekey-time": 300 - tick, "life-time": 400 - tick}]}


def _rendered(sas: list) -> bytes:
    return etree.tostring(state.merge_state([], {"ike-sa": sas})[0])


def _reference(sas: list) -> bytes:
    ref = etree.Element(f"{{{NS}}}ike", nsmap={None: NS})
    reference(ref, {"ike-sa": sas})
    return etree.tostring(ref)


def test_ike_sa_entries_markup_is_renewed_entry_by_entry() -> None:
    state._ENTRIES.clear()
    assert _rendered([_sa(1, 0), _sa(2, 0)]) == _reference([_sa(1, 0), _sa(2, 0)])
    # a refresh: new dicts, clock leaves moved: the remembered markup with the new values
    remembered = state._ENTRIES[(NS, "ike-sa")]["1"][1]
    sas = [_sa(1, 5), _sa(2, 5)]
    assert _rendered(sas) == _reference(sas)
    assert state._ENTRIES[(NS, "ike-sa")]["1"][1] is not remembered
    assert b"<rekey-time>895</rekey-time>" in _rendered(sas)
    # a change of content (a counter, a name with markup in it), a clock leaf appearing,
    # an entry gone, a new one: each rendered again, nothing stale is kept
    changed = [_sa(1, 6, child_bytes=99), {**_sa(3, 6), "reauth-time": 50},
               _sa(4, 6, name="a<b")]
    assert _rendered(changed) == _reference(changed)
    assert set(state._ENTRIES[(NS, "ike-sa")]) == {"1", "3", "4"}
    back = [_sa(1, 7, child_bytes=99), {**_sa(3, 7), "reauth-time": None}]
    assert _rendered(back) == _reference(back)
