"""A VPN's load-conn payload is built once per change: the checks' size count and the
reconciler's request share it (southbound/conn_cache.py)."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest

from nf.effective import EffectiveConfig
from southbound import conn_cache
from southbound.charon_backend import DATAPLANES, KINDS, refusals
from southbound.charon_backend import VPN as VPN_KIND
from southbound.convert import conn_for
from southbound.desired import DesiredSet
from southbound.vici_client import request_size
from tests.unit.southbound.test_convert import VPN


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    conn_cache.clear()
    yield
    conn_cache.clear()


def test_an_equal_vpn_gets_the_payload_built_first() -> None:
    first = conn_cache.payload(VPN)
    again = conn_cache.payload(copy.deepcopy(VPN))  # another object, the same value
    assert again is first
    assert first == conn_for(VPN)
    assert conn_cache.payload(VPN, trap_as_start=True) == conn_for(VPN, trap_as_start=True)
    assert conn_cache.payload(VPN, trap_as_start=True) is not first


def test_a_changed_vpn_gets_its_own_payload() -> None:
    changed = replace(VPN, remote_address="203.0.113.99")
    assert conn_cache.payload(changed) == conn_for(changed)
    assert conn_cache.payload(changed)["remote_addrs"] == ["203.0.113.99"]
    assert conn_cache.payload(VPN)["remote_addrs"] != ["203.0.113.99"]


def test_size_is_the_request_size_of_the_kept_payload() -> None:
    assert conn_cache.size(VPN) == request_size("load-conn", {VPN.name: conn_for(VPN)})
    assert conn_cache.kept() == 1


def test_take_hands_over_what_the_check_built_and_keeps_nothing() -> None:
    built = conn_cache.payload(VPN)
    assert conn_cache.take(copy.deepcopy(VPN)) is built
    assert conn_cache.kept() == 0
    fresh = conn_cache.take(VPN)  # nothing kept: built anew, not kept either
    assert fresh == built and fresh is not built
    assert conn_cache.kept() == 0


def test_the_check_and_the_reconciler_share_one_payload() -> None:
    dp = DATAPLANES["kernel-netlink"]
    eff = EffectiveConfig(vpns={VPN.name: VPN})
    assert refusals(dp, eff) == []  # the size check builds the payload once
    assert conn_cache.kept() == 1
    desired = DesiredSet(KINDS, dp)
    changed = desired.update(EffectiveConfig(vpns={VPN.name: copy.deepcopy(VPN)}),
                             {VPN_KIND: {VPN.name}})
    assert changed[VPN_KIND] == {VPN.name}
    assert desired.payloads[VPN_KIND][VPN.name] == conn_for(VPN, trap_as_start=not dp.can_trap)
    assert conn_cache.kept() == 0


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conn_cache, "LIMIT", 3)
    vpns = [replace(VPN, name=f"v{i}") for i in range(5)]
    for v in vpns:
        conn_cache.payload(v)
    assert conn_cache.kept() == 3
    assert conn_cache.take(vpns[-1]) is not None and conn_cache.kept() == 2


def test_the_request_is_encoded_once_for_the_check_the_digest_and_the_send() -> None:
    import hashlib

    import vici

    from southbound.charon_backend import request_digest

    conn_cache.size(VPN)  # the check encodes it
    payload = conn_cache.take(VPN)
    packet = conn_cache.request(VPN.name, payload)
    assert conn_cache.request(VPN.name, payload) is packet  # kept, not encoded again
    # the bytes the vici package would send for that payload
    assert packet == vici.protocol.Packet.request("load-conn", vici.protocol.Message.serialize(
        {VPN.name: conn_for(VPN)}))
    assert len(packet) == conn_cache.size(copy.deepcopy(VPN))
    assert request_digest(VPN.name, payload) == hashlib.sha256(packet).hexdigest()
    assert request_digest(VPN.name, copy.deepcopy(payload)) == hashlib.sha256(packet).hexdigest()
    copy_kept = conn_cache.requests_kept()  # the copy's request, encoded for its digest
    conn_cache.sent(payload)
    assert conn_cache.requests_kept() == copy_kept - 1
    again = conn_cache.request(VPN.name, payload)  # sent: encoded anew, the same bytes
    assert again == packet and again is not packet
    assert conn_cache.request("other-name", payload) != packet  # the name is in the request


def test_requests_of_payloads_nobody_holds_any_more_are_dropped() -> None:
    held = []
    for i in range(conn_cache.SWEEP_MIN * 2):
        payload = {"version": "2", "n": str(i)}  # the reconciler's payloads
        conn_cache.request(f"vpn{i}", payload)
        if i % 2:
            held.append(payload)  # still desired; the others were superseded, never sent
    kept = conn_cache.requests_kept()
    assert len(held) <= kept < conn_cache.SWEEP_MIN * 2
    assert all(conn_cache._requests[id(p)][0] is p for p in held)  # every held one kept
