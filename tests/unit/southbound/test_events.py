"""Parsing VICI SA events into our SA event dicts."""

from southbound.events import parse


def test_ike_and_child_updown() -> None:
    msg = {"up": b"yes", "siteA-siteB": {"uniqueid": b"3", "remote-host": b"198.51.100.2",
                                         "child-sas": {"trunk-4": {"name": b"trunk"}}}}
    assert parse("ike-updown", msg) == [
        {"kind": "ike", "event": "up", "vpn": "siteA-siteB", "peer": "198.51.100.2",
         "unique-id": 3}]
    assert parse("child-updown", {**msg, "up": b"no"}) == [
        {"kind": "child", "event": "down", "policy": "trunk", "vpn": "siteA-siteB",
         "peer": "198.51.100.2", "unique-id": 3}]


def test_rekeys() -> None:
    ike = {"v": {"old": {"uniqueid": b"8"},
                 "new": {"uniqueid": b"9", "remote-host": b"198.51.100.2"}}}
    assert parse("ike-rekey", ike)[0]["event"] == "rekeyed"
    # the new IKE SA, and the old one (it goes away): the state engine reads both again
    assert parse("ike-rekey", ike)[0]["unique-id"] == 9
    assert parse("ike-rekey", ike)[0]["old-unique-id"] == 8
    child = {"v": {"uniqueid": b"9", "remote-host": b"198.51.100.2",
                   "child-sas": {"t-1": {"old": {}, "new": {"name": b"t"}}}}}
    assert parse("child-rekey", child) == [
        {"kind": "child", "event": "rekeyed", "policy": "t", "vpn": "v",
         "peer": "198.51.100.2", "unique-id": 9}]
