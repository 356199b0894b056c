"""charon's list-sas, stats and get-counters replies in the YANG shapes (southbound/sa_state.py).

The raw replies are those of a real charon 5.9.8 (a site-to-site pair, captured once), so the
field names are charon's own.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from nf.schema import Schema
from southbound import algorithms, sa_state
from southbound.sa_state import (
    COUNTERS,
    child_sa_state,
    counters,
    ike_sa_state,
    ike_sas,
    task_processing,
    vpn_counters,
)

YANG = Path(__file__).resolve().parents[3] / "yang" / "ipsec-nf.yang"

LIST_SAS_ENTRY = {"siteA-siteB": {
    "uniqueid": b"3", "version": b"2", "state": b"ESTABLISHED",
    "local-host": b"198.51.100.1", "local-port": b"4500", "local-id": b"secgwa.example.net",
    "remote-host": b"198.51.100.2", "remote-port": b"4500", "remote-id": b"secgwb.example.net",
    "initiator": b"yes", "initiator-spi": b"a1b2c3d4e5f60718", "responder-spi": b"1122334455667788",
    "nat-remote": b"yes", "nat-any": b"yes",
    "encr-alg": b"AES_CBC", "encr-keysize": b"128", "integ-alg": b"HMAC_SHA2_512_256",
    "prf-alg": b"PRF_HMAC_SHA2_512", "dh-group": b"MODP_2048",
    "established": b"12", "rekey-time": b"13000", "reauth-time": b"20000",
    "remote-vips": [b"10.9.0.1"], "tasks-queued": [b"IKE_DPD"],
    "child-sas": {"trunk-1": {
        "name": b"trunk", "uniqueid": b"1", "reqid": b"1", "state": b"INSTALLED",
        "mode": b"TUNNEL", "protocol": b"ESP", "encap": b"yes",
        "spi-in": b"c1d2e3f4", "spi-out": b"0a0b0c0d", "mark-in": b"0000002a",
        "if-id-out": b"00000007",
        "encr-alg": b"AES_GCM_16", "encr-keysize": b"256", "dh-group": b"CURVE_25519",
        "esn": b"1",
        "bytes-in": b"252", "packets-in": b"3", "use-in": b"1",
        "bytes-out": b"168", "packets-out": b"2", "use-out": b"1",
        "rekey-time": b"3000", "life-time": b"3500", "install-time": b"12",
        "local-ts": [b"192.168.0.0/24"], "remote-ts": [b"192.168.99.0/24"]}},
}}

# charon 5.9.8's stats reply, as VICI gives it
STATS = {
    "uptime": {"running": b"1 second", "since": b"Nov 29 22:15:27 2026"},
    "workers": {"total": b"26", "idle": b"17",
                "active": {"critical": b"4", "high": b"0", "medium": b"5", "low": b"0"}},
    "queues": {"critical": b"0", "high": b"1", "medium": b"0", "low": b"0"},
    "scheduled": b"6", "ikesas": {"total": b"1", "half-open": b"0"},
    "plugins": [b"charon", b"counters"],
}


def test_ike_sa_state_carries_every_field() -> None:
    assert ike_sa_state(LIST_SAS_ENTRY) == {
        "unique-id": 3, "name": "siteA-siteB", "version": 2, "state": "established",
        "initiator": True,
        "local-address": "198.51.100.1", "remote-address": "198.51.100.2",
        "local-id": "secgwa.example.net", "remote-id": "secgwb.example.net",
        "initiator-spi": "a1b2c3d4e5f60718", "responder-spi": "1122334455667788",
        "local-port": 4500, "remote-port": 4500,
        "nat-local": False, "nat-remote": True, "nat-fake": False, "nat-any": True,
        "enc-alg": "aes128-cbc", "auth-alg": "hmac-sha512", "prf-alg": "hmac-sha512",
        "dh-group": "modp2048", "established-time": 12, "rekey-time": 13000,
        "reauth-time": 20000, "remote-vips": ["10.9.0.1"], "tasks-queued": ["IKE_DPD"],
        "udp-encap": True, "child-sa-count": 1,
        "bytes-in": 252, "packets-in": 3, "bytes-out": 168, "packets-out": 2,
        "child-sa": [{
            "unique-id": 1, "name": "trunk", "state": "installed", "reqid": 1,
            "protocol": "esp", "mode": "tunnel", "udp-encap": True,
            "spi-in": "c1d2e3f4", "spi-out": "0a0b0c0d", "mark-in": 42, "if-id-out": 7,
            "aead-alg": "aes256-gcm-128", "dh-group": "curve25519", "esn": True,
            "bytes-in": 252, "packets-in": 3, "bytes-out": 168, "packets-out": 2,
            "use-in": 1, "use-out": 1,
            "installed-time": 12, "rekey-time": 3000, "life-time": 3500,
            "local-ts": {"subnet": ["192.168.0.0/24"]},
            "remote-ts": {"subnet": ["192.168.99.0/24"]}}],
    }


def test_unknown_names_are_left_out_not_invented() -> None:
    entry = {"x": {"uniqueid": b"9", "state": b"SOMETHING_NEW", "encr-alg": b"SERPENT_CBC",
                   "encr-keysize": b"256", "dh-group": b"ECP_256_BP",
                   "integ-alg": b"HMAC_SHA2_256_128", "prf-alg": b"PRF_AES128_CMAC",
                   "child-sas": {"c-1": {"uniqueid": b"4", "mode": b"WEIRD",
                                         "protocol": b"IPCOMP", "state": b"INSTALLED"}}}}
    state = ike_sa_state(entry)
    assert state["unique-id"] == 9 and "state" not in state
    assert "enc-alg" not in state and "dh-group" not in state
    assert state["auth-alg"] == "hmac-sha256" and state["prf-alg"] == "aes-cmac"
    assert state["child-sa"] == [{"unique-id": 4, "state": "installed"}]
    assert state["child-sa-count"] == 1 and state["bytes-in"] == 0


def test_child_without_traffic_has_no_use_times() -> None:
    child = child_sa_state({"uniqueid": b"2", "state": b"INSTALLED", "bytes-in": b"0"})
    assert child == {"unique-id": 2, "state": "installed", "bytes-in": 0}


def test_task_processing_and_ike_sas_from_stats() -> None:
    assert task_processing(STATS) == {
        "worker-threads": {"total": 26, "idle": 17, "critical": 4, "high": 0, "medium": 5,
                           "low": 0},
        "task-queues": {"critical": 0, "high": 1, "medium": 0, "low": 0, "scheduled": 6}}
    assert ike_sas(STATS) == {"total": 1, "half-open": 0}
    assert ike_sas({}) == {"total": 0, "half-open": 0}


def test_counters() -> None:
    raw = {name: str(i).encode() for i, name in enumerate(COUNTERS)}
    assert counters(raw) == {name: i for i, name in enumerate(COUNTERS)}
    assert len(COUNTERS) == 21  # the vRouter manual's list
    per = vpn_counters({"b": {"invalid": 1}, "a": {"ike-init-out-req": 2}, "": {}})
    assert per == [{"name": "a", "ike-init-out-req": 2}, {"name": "b", "invalid": 1}]


def _enums(typedef: str) -> set[str]:
    m = re.search(rf"typedef {typedef} \{{(.*?)\n  \}}", YANG.read_text(), re.S)
    assert m, typedef
    return set(re.findall(r"enum ([\w-]+)", m[1]))


@pytest.mark.parametrize(("typedef", "names"), [
    ("enc-alg", algorithms.ENC_ALGS), ("aead-alg", algorithms.AEAD_ALGS),
    ("auth-alg", algorithms.AUTH_ALGS), ("prf-alg", algorithms.PRF_ALGS),
    ("dh-group", algorithms.DH_GROUPS)])
def test_algorithm_names_are_the_config_enumerations(typedef: str, names: frozenset) -> None:
    assert _enums(typedef) == set(names)


@pytest.mark.parametrize(("path", "names"), [
    ("ike-sa/ipsec-nf:state", sa_state.IKE_STATES),
    ("ike-sa/ipsec-nf:child-sa/ipsec-nf:state", sa_state.CHILD_STATES),
    ("ike-sa/ipsec-nf:child-sa/ipsec-nf:mode", sa_state.MODES)])
def test_state_enumerations_match_the_model(path: str, names: frozenset) -> None:
    node = next(Schema().ctx.find_path(f"/ipsec-nf:ike/ipsec-nf:{path}"))
    assert {e.name() for e in node.type().enums()} == set(names)


def _with(entry: dict, ike: dict | None = None, child: dict | None = None) -> dict:
    ((name, sa),) = entry.items()
    children = {n: {**c, **(child or {})} for n, c in sa["child-sas"].items()}
    return {name: {**sa, **(ike or {}), "child-sas": children}}


def test_the_converter_gives_what_converting_every_entry_gives() -> None:
    conv = sa_state.IkeSaConverter()
    other = {"other": {**LIST_SAS_ENTRY["siteA-siteB"], "uniqueid": b"4"}}
    reads = [
        [LIST_SAS_ENTRY, other],
        # only the clock moved: the remembered entries, with the new ages and countdowns
        [_with(LIST_SAS_ENTRY, {"established": b"20", "rekey-time": b"12990"},
               {"use-in": b"9", "life-time": b"3490", "rekey-time": b"2990"}), other],
        # traffic: converted again
        [_with(LIST_SAS_ENTRY, {"established": b"21"}, {"bytes-in": b"500"}), other],
        # a countdown that went (the order of the leaves would differ): converted again
        [_with(LIST_SAS_ENTRY, {"established": b"22"}, {"bytes-in": b"500", "use-in": None}),
         other],
        # the same in every field, clocks too: the very same entry objects
        [_with(LIST_SAS_ENTRY, {"established": b"22"}, {"bytes-in": b"500", "use-in": None}),
         other],
        # a countdown back: converted again
        [_with(LIST_SAS_ENTRY, {"established": b"23"}, {"bytes-in": b"500", "use-in": b"1"}),
         other],
        [other],  # gone
    ]
    before: list = []
    given: list = []  # every entry given so far, and a copy of it as given
    for entries in reads:
        clean = [{n: {k: v for k, v in sa.items() if v is not None} for n, sa in e.items()}
                 for e in entries]
        for e in clean:
            for sa in e.values():
                sa["child-sas"] = {n: {k: v for k, v in c.items() if v is not None}
                                   for n, c in sa["child-sas"].items()}
        raw = copy.deepcopy(clean)
        got = conv.convert(clean)
        assert clean == raw  # the reply is not changed
        want = [ike_sa_state(e) for e in clean]
        assert got == want
        assert [list(g) for g in got] == [list(w) for w in want]  # the same leaf order
        assert all(list(gc) == list(wc) for g, w in zip(got, want, strict=True)
                   for gc, wc in zip(g.get("child-sa", []), w.get("child-sa", []), strict=True))
        # an entry is the last one given exactly when it is equal, clocks and all
        assert [any(g is b for b in before) for g in got] == [
            any(g == b for b in before) for g in got]
        given += [(g, copy.deepcopy(g)) for g in got]
        assert all(g == kept for g, kept in given)  # an entry given is never changed
        before = got
    # read 4 repeats read 3 field for field: both entries are the same objects
    assert [given[i][0] is given[i - 2][0] for i in (8, 9)] == [True, True]
    assert given[10][0] is not given[8][0] and given[10][0]["child-sa"][0]["use-in"] == 1
    assert before[0]["unique-id"] == 4


def test_the_converter_keeps_each_vpns_counters_while_they_are_the_same() -> None:
    """A full read (get-counters all=yes, as ViciClient gives it: ints) gives every VPN's
    entry; a VPN whose counters did not change keeps its entry object, one whose counters
    moved gets the new values; a targeted read (whole=False) leaves the others remembered."""
    conv = sa_state.IkeSaConverter()
    first = {"a": {"ike-init-out-req": 2, "invalid": 0}, "b": {"invalid": 1}, "": {}}
    got1 = conv.vpn_counters(first)
    assert got1 == vpn_counters(first)
    got2 = conv.vpn_counters({"a": dict(first["a"]), "b": {"invalid": 7}})
    assert got2 == [{"name": "a", "ike-init-out-req": 2, "invalid": 0},
                    {"name": "b", "invalid": 7}]
    assert got2[0] is got1[0] and got2[1] is not got1[1]
    assert got1[1] == {"name": "b", "invalid": 1}  # the entry given before is not changed
    part = conv.vpn_counters({"b": {"invalid": 7}}, whole=False)
    assert part == [got2[1]] and part[0] is got2[1]
    again = conv.vpn_counters({"a": {"ike-init-out-req": 2, "invalid": 0}})
    assert again[0] is got1[0]  # still remembered after the targeted read
    assert conv.vpn_counters({"a": {"ike-init-out-req": 3, "invalid": 0}})[0][
        "ike-init-out-req"] == 3
