"""Checks of the model beyond YANG: values that only make sense together, once templates are
resolved (a VPN's rekey-time may come from its template and its life-time from itself).

Each check takes the effective config and returns :class:`Inconsistent` refusals, located and
reported by :func:`nf.checks.run_checks` like the backend's (error-tag ``invalid-value``,
error-app-tag ``inconsistent-values``). :data:`CHECKS` is every one; the datastores run them at
validate, edit and commit, and ``ipsec-nf check`` offline.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from nf import i2nsf_ike, svti_checks
from nf.checks import pure
from nf.effective import EffectiveConfig, TrafficSelector, Vpn

APP_TAG = "inconsistent-values"
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class Inconsistent:
    """A VPN's setting that contradicts another (see :class:`nf.checks.Refusal`)."""

    vpn: str
    leaf: tuple[str, ...]
    message: str
    app_tag: str = APP_TAG


def seconds(duration: str | None) -> int | None:
    """Seconds of a model ``duration`` (``90``, ``90s``, ``15m``, ``4h``, ``1d``)."""
    if duration is None:
        return None
    unit = duration[-1:]
    if unit in _UNIT:
        return int(duration[:-1]) * _UNIT[unit]
    return int(duration)


def _range(text: str) -> tuple[str, str] | None:
    first, sep, last = text.partition("-")
    return (first, last) if sep else None


def _ts_problems(ts: TrafficSelector) -> Iterator[tuple[str, str]]:
    """(leaf, message) of each bad range of one traffic selector."""
    for subnet in ts.subnet:
        pair = _range(subnet)
        if pair is None:
            continue
        try:
            first, last = (ipaddress.ip_address(a) for a in pair)
        except ValueError:
            yield "subnet", f"{subnet}: both ends of an address range must be addresses"
            continue
        if first.version != last.version:
            yield "subnet", f"{subnet}: both ends of an address range must be of one family"
        elif first > last:
            yield "subnet", f"{subnet}: the first address of a range is above the last"
    if isinstance(ts.port, str):
        pair = _range(ts.port)
        if pair is not None:
            low, high = int(pair[0]), int(pair[1])
            if high > 65535 or low > high:
                yield "port", f"port range {ts.port}: FIRST-LAST within 0-65535, FIRST <= LAST"


def traffic_selectors(eff: EffectiveConfig) -> Iterator[Inconsistent]:
    """Address and port ranges in order and of one family."""
    for vpn in eff.vpns.values():
        for sp in vpn.security_policies:
            for side, ts in (("local-ts", sp.local_ts), ("remote-ts", sp.remote_ts)):
                for leaf, message in _ts_problems(ts):
                    yield Inconsistent(vpn.name, (f"security-policy[name='{sp.name}']", side,
                                                  leaf), message)


def _below(vpn: Vpn, policy: str, leaf: str, value: int | None, limit: int | None,
           limit_leaf: str, strict: bool = True) -> Iterator[Inconsistent]:
    """``leaf`` must be below ``limit_leaf`` (when both are set and the limit is not 0)."""
    if value is None or not limit:
        return
    if value > limit or (strict and value == limit):
        yield Inconsistent(vpn.name, (policy, leaf), (
            f"{leaf} ({value}) must be less than {limit_leaf} ({limit})"))


def _above(vpn: Vpn, leaf: str, value: int | None, floor: int | None,
           floor_leaf: str) -> Iterator[Inconsistent]:
    """A hard limit must be above the matching rekey limit (0 = no limit on either side)."""
    if not value or not floor:
        return
    if value <= floor:
        yield Inconsistent(vpn.name, ("ipsec-policy", leaf), (
            f"{leaf} ({value}) must be more than {floor_leaf} ({floor}): the hard limit "
            "ends a CHILD SA the rekeying did not renew"))


def lifetimes(eff: EffectiveConfig) -> Iterator[Inconsistent]:
    """Hard lifetimes above rekey limits; random jitter below what it is subtracted from."""
    for vpn in eff.vpns.values():
        ipsec, ike = vpn.ipsec, vpn.ike
        yield from _above(vpn, "life-time", seconds(ipsec.life_time), seconds(ipsec.rekey_time),
                          "rekey-time")
        yield from _above(vpn, "life-bytes", ipsec.life_bytes, ipsec.rekey_bytes, "rekey-bytes")
        yield from _above(vpn, "life-packets", ipsec.life_packets, ipsec.rekey_packets,
                          "rekey-packets")
        yield from _below(vpn, "ipsec-policy", "rand-time", seconds(ipsec.rand_time),
                          seconds(ipsec.rekey_time), "rekey-time")
        yield from _below(vpn, "ipsec-policy", "rand-bytes", ipsec.rand_bytes,
                          ipsec.rekey_bytes, "rekey-bytes")
        yield from _below(vpn, "ipsec-policy", "rand-packets", ipsec.rand_packets,
                          ipsec.rekey_packets, "rekey-packets")
        renew = [t for t in (seconds(ike.rekey_time), seconds(ike.reauth_time)) if t]
        yield from _below(vpn, "ike-policy", "rand-time", seconds(ike.rand_time),
                          min(renew) if renew else None,
                          "rekey-time" if renew and min(renew) == seconds(ike.rekey_time)
                          else "reauth-time")


def ike_options(eff: EffectiveConfig) -> Iterator[Inconsistent]:
    """IKE options that charon applies only in some combinations."""
    for vpn in eff.vpns.values():
        ike = vpn.ike
        if ike.dpd_timeout is not None and ike.version == 2:
            yield Inconsistent(vpn.name, ("ike-policy", "dpd-timeout"), (
                "dpd-timeout applies to IKEv1 only; with IKEv2 a peer is dead when a DPD "
                "request is not answered after the retransmissions of global-options "
                "(retransmit-tries, retransmit-timeout, retransmit-base)"))
        if ike.send_initial_contact is not None:
            never = ike.unique_sa == "never"
            if ike.send_initial_contact == never:
                yield Inconsistent(vpn.name, ("ike-policy", "send-initial-contact"), (
                    f"send-initial-contact {str(ike.send_initial_contact).lower()} needs "
                    f"unique-sa {'other than never' if never else 'never'}: the IKE daemon "
                    "sends INITIAL_CONTACT exactly when its uniqueness policy is not never"))


# i2nsf_ike.check: what the RFC 9061 models ask that is refused (model clashes, unsupported)
# (each a function of the effective config alone)
CHECKS = tuple(pure(c) for c in (traffic_selectors, lifetimes, ike_options, i2nsf_ike.check,
                                svti_checks.addresses))
