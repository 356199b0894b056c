"""vici_encode produces vici.Message.serialize's bytes, byte for byte, for every message shape
the reconciler sends (built from real effective configs) and the edge cases; its request
packet is vici.Packet.request's, and vici_client.request_size counts exactly its length."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from vici.protocol import Message, Packet

from nf.templates import resolve
from southbound.charon_backend import DATAPLANES, KINDS, PSK, VPN
from southbound.convert import SecretBytes, conn_for, shared_for
from southbound.vici_client import request_size
from southbound.vici_encode import ViciTooLong, encode, request
from tests.unit.southbound.test_convert import VPN as SITE
from tests.unit.southbound.test_remote_access import config

# the request and message each kind's payload is sent with (charon_backend, ra_session)
_SENT = {PSK: lambda name, p: ("load-shared", {"id": name, **p}),
         VPN: lambda name, p: ("load-conn", {name: p}),
         "certificate-authority": lambda name, p: ("load-authority", {name: p}),
         "pool": lambda name, p: ("load-pool", {name: p["pools"]}),
         "eap-key": lambda name, p: ("load-shared", {"id": "eap-" + name, **p})}


def _real_messages() -> list[tuple[str, dict[str, Any]]]:
    """What the reconciler sends for a remote-access config with a PSK, on both planes."""
    cfg = config(**{"local-eap-id": "me"})
    cfg["ike"]["pre-shared-key"] = [{"name": "k", "id": ["peer.example.net"],
                                     "secret": "0sAAECA/8="}]
    eff = resolve(cfg)
    out = []
    for dp in DATAPLANES.values():
        for kind in KINDS:
            for name, value in kind.select(eff).items():
                if kind.name in _SENT:
                    out.append(_SENT[kind.name](name, dict(kind.payload(value, dp))))
    for trap in (False, True):
        out.append(("load-conn", {"site": conn_for(SITE, trap)}))
        out.append(("load-conn", {"site": conn_for(replace(SITE, remote_address=None), trap)}))
    return out


REAL = _real_messages()
EDGES: list[dict[str, Any]] = [
    {},
    {"a": "b"},
    {"empty": {}, "none": [], "nested": {"deeper": {"deepest": {}}}},
    {"x": {"y": ["1", b"\x00\xff", 3, True], "z": {}}, "e": [], "n": 7, "u": "é"},
    {"utf8-ключ": "значение ✓", "list": ["日本", ""]},
    {"bytes": b"", "secret": SecretBytes(b"\x01\x02"), "bool": False, "int": -1, "f": 1.5},
    {"a" * 255: {"b" * 255: ["c" * 255], "k": "v" * 256}},
    {"long": "x" * 65535, "items": [b"y" * 65535, "z" * 300]},
    {"vpn": {"children": {f"child{i}": {"mode": "tunnel"} for i in range(5)}}},
]


def test_the_real_messages_cover_every_kind_sent() -> None:
    commands = {command for command, _ in REAL}
    assert commands == {"load-conn", "load-shared", "load-authority", "load-pool"}
    assert any(isinstance(m.get("data"), SecretBytes) for _, m in REAL)


@pytest.mark.parametrize("sent", REAL, ids=lambda s: s[0])
def test_real_messages_are_vicis_bytes(sent: tuple[str, dict[str, Any]]) -> None:
    command, message = sent
    assert encode(message) == Message.serialize(message)
    assert request(command, message) == Packet.request(command, Message.serialize(message))
    assert request_size(command, message) == len(request(command, message))


@pytest.mark.parametrize("message", EDGES)
def test_edge_cases_are_vicis_bytes(message: dict[str, Any]) -> None:
    assert encode(message) == Message.serialize(message)
    assert request("load-conn", message) == Packet.request("load-conn",
                                                           Message.serialize(message))
    assert request_size("load-conn", message) == len(request("load-conn", message))


def test_repeated_keys_encode_the_same_each_time() -> None:
    message = {"site": conn_for(SITE)}
    assert encode(message) == encode(message) == Message.serialize(message)


def test_a_request_without_message_is_the_command_only() -> None:
    assert request("get-conns") == Packet.request("get-conns")


@pytest.mark.parametrize("message", [{"a" * 256: "x"}, {"a": "x" * 65536},
                                     {"s": {"l": [b"y" * 65536]}}, {"s": {"é" * 128: {}}},
                                     {"l": ["x" * 65536]}])
def test_refuses_what_vici_cannot_encode(message: dict[str, Any]) -> None:
    with pytest.raises(ViciTooLong):
        encode(message)
    with pytest.raises(Exception) as vici:  # the package: struct.error
        Message.serialize(message)
    assert type(vici.value).__name__ == "error"


def test_psk_message_is_vicis() -> None:
    psk = resolve(config() | {"ike": {**config()["ike"], "pre-shared-key": [
        {"name": "k", "id": ["a", "b"], "secret": "0x00ff"}]}}).psks["k"]
    message = {"id": "k", **shared_for(psk)}
    assert encode(message) == Message.serialize(message)


def test_the_kept_encodings_are_bounded_and_stay_right(monkeypatch: pytest.MonkeyPatch) -> None:
    from southbound import vici_encode
    monkeypatch.setattr(vici_encode, "_CACHE_MAX", 8)
    monkeypatch.setattr(vici_encode, "_PAIRS", {})
    monkeypatch.setattr(vici_encode, "_ITEMS", {})
    monkeypatch.setattr(vici_encode, "_HEADERS", {1: {}, 4: {}})
    messages = [{f"vpn{i}": {**conn_for(SITE), "remote_addrs": [f"203.0.113.{i}"]}}
                for i in range(20)]
    for _ in range(2):  # the second pass partly from what was kept
        for message in messages:
            assert encode(message) == Message.serialize(message)
    assert len(vici_encode._PAIRS) <= 8 and len(vici_encode._ITEMS) <= 8
    assert all(len(c) <= 8 for c in vici_encode._HEADERS.values())
