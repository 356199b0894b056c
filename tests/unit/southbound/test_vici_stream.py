"""The fast VICI decoder and streamed request (southbound/vici_stream.py): the same result as
the vici package's, over the wire-level VICI fake."""

from __future__ import annotations

import pytest
from vici.exception import CommandException
from vici.protocol import FiniteStream, Message

from southbound.vici_client import ViciClient
from southbound.vici_stream import ViciDecodeError, decode, requested
from tests.fakes.vici_server import FakeCharon

SA = {"vpn-a": {"uniqueid": b"7", "state": b"ESTABLISHED", "local-vips": [b"10.0.0.1", b""],
                "empty": {}, "child-sas": {"trunk-9": {"name": b"trunk", "bytes-in": b"84",
                                                       "local-ts": [b"10.1.0.0/24"]}},
                "remote-vips": [], "blob": b"\x00\xff" * 300}}


def test_decode_gives_what_vici_gives() -> None:
    raw = Message.serialize(SA)
    assert decode(raw) == Message.deserialize(FiniteStream(raw)) == SA
    with pytest.raises(ViciDecodeError):
        decode(raw[:-1])
    with pytest.raises(ViciDecodeError):
        decode(b"\x09")


def test_list_sas_streams_every_sa_and_its_filter() -> None:
    with FakeCharon() as fake:
        fake.sas = [{"vpn-a": {"uniqueid": "1", "state": "ESTABLISHED"}},
                    {"vpn-b": {"uniqueid": "2", "state": "CONNECTING"}}]
        with ViciClient(fake.path) as c:
            got = c.list_sas()
            assert [list(e) for e in got] == [["vpn-a"], ["vpn-b"]]
            assert got[0]["vpn-a"]["state"] == b"ESTABLISHED"
            assert [list(e) for e in c.list_sas(ike="vpn-b")] == [["vpn-b"]]
            c.list_sas()  # the session is still in step after each
            assert c.list_conns() == []


def test_counters_of_every_connection_decoded_fast_as_vici_would() -> None:
    """get-counters all=yes answered and decoded by vici_stream.requested: the same counters
    as the vici package's request gives, the session in step after it; a refusal is a
    ViciError."""
    from southbound.vici_client import ViciError

    with FakeCharon() as fake:
        fake.counters = {"": {"invalid": 3}, "vpn-a": {"ike-init-out-req": 2, "invalid": 1},
                         "vpn-b": {"child-rekey": 5}}
        with ViciClient(fake.path) as c:
            total, per_conn = c.read_counters()
            slow = c._session.get_counters({"all": "yes"})["counters"]
            assert per_conn == {str(k): {str(n): int(v) for n, v in vs.items()}
                                for k, vs in slow.items()}
            assert per_conn["vpn-a"] == {"ike-init-out-req": 2, "invalid": 1}
            assert total["invalid"] == 3
            assert c.list_sas() == []  # still in step
            with pytest.raises(CommandException, match="no counters found"):
                requested(c._session, c._sock, "get-counters", {"name": "nope"})
            with pytest.raises(ViciError):
                c.counters("nope")
            assert c.list_sas() == []
