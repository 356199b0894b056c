"""southbound.peer_refusals: refused peers read from charon's log events.

tests/data/charon_log_refusals.txt is charon 5.9.8's VICI ``log`` stream (unique id | IKE SA
name | message) of tests/e2e/test_road_warriors.py: a PSK road warrior that gets in (1), a
certificate revoked (4), one of another CA (5), a wrong EAP password rejected by FreeRADIUS
(6). The other sequences follow charon's messages for those cases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from southbound.peer_refusals import KEEP, RefusedPeers, log_event

DATA = Path(__file__).resolve().parents[2] / "data" / "charon_log_refusals.txt"
NOW = datetime(2026, 11, 30, 1, 2, 3, tzinfo=UTC)


def events(text: str) -> list[dict[str, bytes]]:
    out = []
    for line in text.splitlines():
        sa, name, msg = line.split("|", 2)
        out.append({"group": b"IKE", "level": b"1", "ikesa-uniqueid": sa.encode(),
                    "ikesa-name": name.encode(), "msg": msg.encode()})
    return out


def feed(log: RefusedPeers, text: str) -> list:
    return [r for r in map(log.feed, events(text)) if r is not None]


def test_the_road_warriors_capture() -> None:
    log = RefusedPeers(now=lambda: NOW)
    refused = feed(log, DATA.read_text())
    assert [r.tree() for r in refused] == log.tree()
    revoked, other_ca, eap = log.tree()
    assert revoked == {
        "id": 1, "time": "2026-11-30T01:02:03Z", "vpn": "rw-cert",
        "remote-address": "192.0.2.11", "remote-port": 4500,
        "remote-id": "carol@cert.example.net", "reason": "certificate-revoked",
        "message": revoked["message"]}
    assert revoked["message"].startswith("certificate was revoked on ")
    assert "reason: key compromise" in revoked["message"]
    assert "no trusted ECDSA public key found for 'carol@cert.example.net'" in \
        revoked["message"]
    assert other_ca["reason"] == "certificate-untrusted" and other_ca["id"] == 2
    assert other_ca["remote-id"] == "mallory@cert.example.net"
    assert other_ca["message"] == (
        'no issuer certificate found for "CN=mallory@cert.example.net"; issuer is '
        "\"CN=Other CA\"; no trusted ECDSA public key found for 'mallory@cert.example.net'")
    assert eap["reason"] == "radius-reject" and eap["vpn"] == "rw-eap"
    assert eap["remote-id"] == "erin@eap.example.net" and eap["remote-eap-id"] == "erin"
    assert eap["remote-address"] == "192.0.2.12"
    assert eap["message"] == ("RADIUS authentication of 'erin' failed; EAP method "
                              "EAP_MSCHAPV2 failed for peer erin@eap.example.net")
    assert "1" not in log._open  # the SA that got in is forgotten


def _file_line(event: dict[str, bytes]) -> str:
    """An event as charon.log writes it (our filelog: time_format, ike_name)."""
    sa, name = event["ikesa-uniqueid"].decode(), event["ikesa-name"].decode()
    who = f"<{sa}>" if name == "(unnamed)" else f"<{name}|{sa}>"
    return f"Nov  1 19:00:00 07[{event['group'].decode()}] {who} {event['msg'].decode()}"


def test_charon_log_gives_what_the_event_stream_gave() -> None:
    by_events, by_lines = RefusedPeers(now=lambda: NOW), RefusedPeers(now=lambda: NOW)
    feed(by_events, DATA.read_text())
    for e in events(DATA.read_text()):
        parsed = log_event(_file_line(e))
        assert parsed is not None and parsed["msg"] == e["msg"].decode()
        by_lines.feed(parsed)
    assert by_lines.tree() == by_events.tree() and len(by_lines.tree()) == 3


def test_peer_log_lines() -> None:
    assert log_event("Nov 30 19:00:00 12[CFG] added vici connection: vpn7") is None  # no SA
    assert log_event("Nov 30 19:00:00 05[NET] <3> received packet") == {
        "ikesa-name": "(unnamed)", "ikesa-uniqueid": "3", "msg": "received packet"}
    assert log_event("05[NET] <3> received packet: from 192.0.2.10[500]") == {
        "ikesa-name": "(unnamed)", "ikesa-uniqueid": "3",
        "msg": "received packet: from 192.0.2.10[500]"}
    assert log_event("05[IKE] <a|b|12> IKE_SA deleted") == {
        "ikesa-name": "a|b", "ikesa-uniqueid": "12", "msg": "IKE_SA deleted"}


PSK = """7|(unnamed)|received packet: from 198.51.100.7[4500] to 192.0.2.1[4500] (320 bytes)
7|(unnamed)|parsed IKE_AUTH request 1 [ IDi N(INIT_CONTACT) IDr AUTH SA TSi TSr ]
7|(unnamed)|looking for peer configs matching 192.0.2.1[gw]...198.51.100.7[bob@psk.example.net]
7|rw-psk|selected peer config 'rw-psk'
7|rw-psk|tried 1 shared key for 'gw.example.net' - 'bob@psk.example.net', but MAC mismatched
7|rw-psk|generating IKE_AUTH response 1 [ N(AUTH_FAILED) ]
8|(unnamed)|received packet: from 198.51.100.8[4500] to 192.0.2.1[4500] (320 bytes)
8|(unnamed)|looking for peer configs matching 192.0.2.1[gw]...198.51.100.8[nobody@example.org]
8|(unnamed)|no matching peer config found
8|(unnamed)|generating IKE_AUTH response 1 [ N(AUTH_FAILED) ]
9|(unnamed)|received packet: from 198.51.100.9[500] to 192.0.2.1[500] (464 bytes)
9|(unnamed)|parsed IKE_SA_INIT request 0 [ SA KE No N(NATD_S_IP) N(NATD_D_IP) ]
9|(unnamed)|received proposals: IKE:3DES_CBC/HMAC_MD5_96/PRF_HMAC_MD5/MODP_1024
9|(unnamed)|configured proposals: IKE:AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048
9|(unnamed)|received proposals unacceptable
9|(unnamed)|generating IKE_SA_INIT response 0 [ N(NO_PROP) ]
"""


def test_psk_mismatch_no_vpn_and_no_proposal() -> None:
    log = RefusedPeers(now=lambda: NOW)
    psk, novpn, noprop = feed(log, PSK)
    assert psk.reason == "pre-shared-key-mismatch" and psk.vpn == "rw-psk"
    assert psk.remote_id == "bob@psk.example.net" and psk.remote_address == "198.51.100.7"
    assert novpn.reason == "no-matching-vpn" and novpn.vpn is None
    assert noprop.reason == "no-proposal-chosen" and noprop.remote_port == 500
    assert noprop.remote_id is None
    assert "received proposals: IKE:3DES_CBC" in noprop.message
    assert psk.summary() == (
        "peer refused (pre-shared-key-mismatch): vpn rw-psk peer 198.51.100.7 id "
        "bob@psk.example.net: tried 1 shared key for 'gw.example.net' - "
        "'bob@psk.example.net', but MAC mismatched")


def test_a_specific_reason_replaces_a_generic_one() -> None:
    log = RefusedPeers()
    (r,) = feed(log, """3|(unnamed)|received packet: from 192.0.2.5[4500] to 192.0.2.1[4500]
3|rw|no trusted RSA public key found for 'x'
3|rw|subject certificate invalid (valid from Jan 01 00:00:00 2020 to Jan 02 00:00:00 2020)
3|rw|generating IKE_AUTH response 1 [ N(AUTH_FAILED) ]""")
    assert r.reason == "certificate-invalid"
    assert r.message == ("no trusted RSA public key found for 'x'; subject certificate invalid "
                         "(valid from Jan 01 00:00:00 2020 to Jan 02 00:00:00 2020)")
    (r,) = feed(log, """4|(unnamed)|received packet: from 192.0.2.5[4500] to 192.0.2.1[4500]
4|rw|EAP method EAP_MD5 failed for peer x
4|rw|generating IKE_AUTH response 3 [ EAP/FAIL ]""")
    assert r.reason == "eap-failed" and r.message == "EAP method EAP_MD5 failed for peer x"


def test_our_own_sas_and_established_ones_are_not_followed() -> None:
    log = RefusedPeers()
    # an SA we initiate has its VPN's name from its first message; a peer refusing us is not
    # a peer we refused
    assert feed(log, "5|site-b|received AUTHENTICATION_FAILED notify error\n"
                     "5|site-b|generating IKE_AUTH response 1 [ N(AUTH_FAILED) ]") == []
    assert log._open == {}


def test_only_the_last_ones_are_kept() -> None:
    log = RefusedPeers()
    for i in range(KEEP + 5):
        feed(log, f"{i + 1}|(unnamed)|no matching peer config found\n"
                  f"{i + 1}|(unnamed)|generating IKE_AUTH response 1 [ N(AUTH_FAILED) ]")
    tree = log.tree()
    assert len(tree) == KEEP and tree[0]["id"] == 6 and tree[-1]["id"] == KEEP + 5
