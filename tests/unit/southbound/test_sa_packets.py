"""A full list-sas converted from the raw VICI messages (southbound/sa_packets.py): through
reads where only the clocks move, counters change, clock fields appear and go, and an
identity carries bytes that look like a clock element, the entries are exactly what decoding
and converting every message gives, and only the messages that changed are decoded."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from vici.protocol import Message

from southbound import sa_packets, sa_state
from southbound.sa_state import ike_sa_state
from southbound.vici_stream import decode
from tests.unit.southbound.test_sa_state import LIST_SAS_ENTRY


def sa(uid: int, tick: int = 0, bytes_in: int = 252, **extra: Any) -> dict[str, Any]:
    """One IKE SA's list-sas message content (charon 5.9.8's fields, bytes values)."""
    e = copy.deepcopy(LIST_SAS_ENTRY["siteA-siteB"])
    e["uniqueid"] = str(uid).encode()
    e["established"] = str(12 + tick).encode()
    e["rekey-time"] = str(13000 - tick).encode()
    c = e["child-sas"]["trunk-1"]
    c["rekey-time"] = str(3000 - tick).encode()
    c["life-time"] = str(3500 - tick).encode()
    c["use-in"] = str(1 + tick).encode()
    c["bytes-in"] = str(bytes_in).encode()
    for k, v in extra.items():
        if v is None:
            c.pop(k, None)
        else:
            e[k] = v
    return {f"vpn{uid}": e}


def packets(entries: list[dict[str, Any]]) -> list[bytes]:
    return [Message.serialize(e) for e in entries]


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many messages sa_packets decoded (the real decoder, counted)."""
    count = [0]

    def counting(data: Any, start: int = 0) -> dict[str, Any]:
        count[0] += 1
        return decode(data, start)

    monkeypatch.setattr(sa_packets, "decode", counting)
    return count


def check(conv: sa_state.IkeSaConverter, entries: list[dict[str, Any]]) -> list[dict]:
    got = sa_packets.convert(conv, packets(entries))
    want = [ike_sa_state(decode(p)) for p in packets(entries)]
    assert got == want
    assert [list(g) for g in got] == [list(w) for w in want]  # the same leaf order
    return got


def test_only_changed_messages_are_decoded(decoded: list[int]) -> None:
    conv = sa_state.IkeSaConverter()
    first = check(conv, [sa(1), sa(2), sa(3)])
    assert decoded[0] == 3
    # the clocks moved: nothing decoded, the values are this read's
    second = check(conv, [sa(1, tick=5), sa(2, tick=5), sa(3, tick=5)])
    assert decoded[0] == 3
    assert second[0]["established-time"] == 17 and second[0]["child-sa"][0]["use-in"] == 6
    assert first[0]["established-time"] == 12  # the entry given before is not changed
    # nothing moved at all: the very same objects
    again = check(conv, [sa(1, tick=5), sa(2, tick=5), sa(3, tick=5)])
    assert all(a is b for a, b in zip(again, second, strict=True)) and decoded[0] == 3
    # traffic on SA 2 (a counter is not a clock): decoded and converted again
    moved = check(conv, [sa(1, tick=6), sa(2, tick=6, bytes_in=999), sa(3, tick=6)])
    assert decoded[0] == 4 and moved[1]["child-sa"][0]["bytes-in"] == 999
    assert moved[1]["bytes-in"] == 999
    # a clock field that goes (use-in), a countdown that runs negative (0), an SA gone
    gone = check(conv, [sa(1, tick=7, **{"use-in": None}), sa(3, tick=20000)])
    assert decoded[0] == 5 and gone[1]["rekey-time"] == 0
    # the targeted reads' memory follows: an update of SA 3 alone
    part = conv.update([sa(3, tick=20001)], [3])
    assert part == [ike_sa_state(sa(3, tick=20001))]


def test_an_identity_that_looks_like_a_clock_element_is_not_taken_for_one(
        decoded: list[int]) -> None:
    conv = sa_state.IkeSaConverter()
    fake = b"\x03\x0bestablished\x00\x0299"
    check(conv, [sa(1, **{"remote-id": b"peer" + fake})])
    check(conv, [sa(1, tick=1, **{"remote-id": b"peer" + fake})])
    assert decoded[0] == 2  # never remembered: decoded each time, still right
    # an SA whose real clock element is replaced by one inside its identity
    real = sa(1)
    check(conv, [real])
    mimic = copy.deepcopy(real)
    del mimic["vpn1"]["established"]
    mimic["vpn1"]["remote-id"] = b"secgwb.example.net" + fake
    got = check(conv, [mimic])
    assert "established-time" not in got[0]
    assert got[0]["remote-id"].endswith("99")


def test_vpn_counters_from_the_raw_answer() -> None:
    """get-counters all=yes's raw answer (over the VICI fake): what decoding it gives; the
    same answer to the byte gives the very same list; a moved counter is seen; a failure
    answer is a ViciError (no counters plugin)."""
    from southbound.vici_client import ViciClient, ViciError
    from southbound.vici_stream import answer
    from tests.fakes.vici_server import FakeCharon

    conv = sa_state.IkeSaConverter()
    with FakeCharon() as fake:
        fake.counters = {"": {"invalid": 3}, "vpn-a": {"ike-init-out-req": 2, "invalid": 1},
                         "vpn-b": {"child-rekey": 5}}
        with ViciClient(fake.path) as c:
            first = sa_packets.vpn_counters(conv, c.counters_answer())
            assert first == sa_state.vpn_counters(c.read_counters()[1])
            assert first[0] == {"name": "vpn-a", "ike-init-out-req": 2, "invalid": 1}
            assert sa_packets.vpn_counters(conv, c.counters_answer()) is first
            fake.counters["vpn-b"] = {"child-rekey": 6}
            moved = sa_packets.vpn_counters(conv, c.counters_answer())
            assert moved[1]["child-rekey"] == 6 and moved[0] is first[0]
            assert first[1]["child-rekey"] == 5  # the list given before is not changed
            refused = answer(c._session, c._sock, "get-counters", {"name": "nope"})
            with pytest.raises(ViciError, match="no counters found"):
                sa_packets.vpn_counters(conv, refused)
            assert c.list_sas() == []  # the session in step


def test_a_read_broken_off_leaves_the_converter_as_it_was(decoded: list[int]) -> None:
    """The messages are converted one by one as they come (Conversion); the converter's
    memory is renewed only when the read ends whole."""
    conv = sa_state.IkeSaConverter()
    check(conv, [sa(1), sa(2)])
    kept = conv._packets
    broken = sa_packets.Conversion(conv)
    for p in packets([sa(1, tick=3), sa(2, tick=3, bytes_in=99)]):
        broken.add(p)
    assert conv._packets is kept  # (no finish: charon's answer never ended)
    decoded[0] = 0
    got = check(conv, [sa(1, tick=4), sa(2, tick=4)])
    assert decoded[0] == 0 and got[0]["established-time"] == 16
