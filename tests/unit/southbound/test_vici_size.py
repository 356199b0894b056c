"""request_size counts a VICI request's bytes without encoding it: the same as the bytes
vici.Message.serialize produces, and the same refusals (names over 255, values over 65535)."""

from __future__ import annotations

from typing import Any

import pytest
from vici.protocol import Message, Packet

from southbound.convert import conn_for
from southbound.vici_client import ViciEncodingError, request_size
from tests.unit.southbound.test_convert import VPN


@pytest.mark.parametrize("message", [
    {"a": "b"},
    {"x": {"y": ["1", b"\x00\xff", 3], "z": {}}, "e": [], "n": 7, "u": "é"},
    {"vpn": conn_for(VPN)},
    {"vpn": conn_for(VPN, trap_as_start=True)},
])
def test_request_size_is_the_encoded_size(message: dict[str, Any]) -> None:
    assert request_size("load-conn", message) == len(
        Packet.request("load-conn", Message.serialize(message)))


@pytest.mark.parametrize("message", [{"a" * 256: "x"}, {"a": "x" * 65536},
                                     {"s": {"l": [b"y" * 65536]}}])
def test_request_size_refuses_what_vici_cannot_encode(message: dict[str, Any]) -> None:
    with pytest.raises(ViciEncodingError):
        request_size("load-conn", message)
