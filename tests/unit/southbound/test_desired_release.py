"""A desired entry's payload is kept until the backend applied it, then rebuilt on demand from
the typed entry; what the upkeep reads stays (southbound/desired.py)."""

from __future__ import annotations

from dataclasses import replace

from nf.effective import EffectiveConfig
from southbound.charon_backend import DATAPLANES, KINDS
from southbound.charon_backend import VPN as VPN_KIND
from southbound.convert import conn_for
from southbound.desired import DesiredSet
from tests.unit.southbound.test_convert import VPN

DP = DATAPLANES["kernel-libipsec"]


def test_released_payloads_are_rebuilt_equal_and_the_upkeep_view_stays() -> None:
    desired = DesiredSet(KINDS, DP)
    desired.update(EffectiveConfig(vpns={VPN.name: VPN}))
    sent = desired.payload(VPN_KIND, VPN.name)
    assert sent == conn_for(VPN, trap_as_start=not DP.can_trap)
    digest = desired.digests[VPN_KIND][VPN.name]
    desired.release(VPN_KIND, VPN.name, digest)
    assert VPN.name not in desired.payloads[VPN_KIND]  # no longer kept
    assert desired.payload(VPN_KIND, VPN.name) == sent  # a drift repair gets the same
    view = desired.upkeep[VPN_KIND][VPN.name]
    assert set(view["children"]) == set(sent["children"])
    for name, child in view["children"].items():
        assert child == {"start_action": sent["children"][name]["start_action"],
                         "mode": sent["children"][name]["mode"]}


def test_a_payload_changed_meanwhile_is_not_released_by_the_old_apply() -> None:
    desired = DesiredSet(KINDS, DP)
    desired.update(EffectiveConfig(vpns={VPN.name: VPN}))
    old_digest = desired.digests[VPN_KIND][VPN.name]
    changed = replace(VPN, remote_address="203.0.113.99")
    desired.update(EffectiveConfig(vpns={VPN.name: changed}))
    desired.release(VPN_KIND, VPN.name, old_digest)  # the old version's apply ends late
    assert desired.payloads[VPN_KIND][VPN.name]["remote_addrs"] == ["203.0.113.99"]


def test_a_removed_entry_leaves_nothing_behind() -> None:
    desired = DesiredSet(KINDS, DP)
    desired.update(EffectiveConfig(vpns={VPN.name: VPN}))
    desired.update(EffectiveConfig())
    assert VPN.name not in desired.upkeep[VPN_KIND]
    assert VPN.name not in desired.payloads[VPN_KIND]
