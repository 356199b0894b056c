"""Checks of the SVTI interfaces (``/ike/svti``, route-based VPNs) beyond YANG.

The model's address patterns are loose for IPv6 (an ``inet:ipv6-prefix`` would be
canonicalised by libyang to its network, losing the interface's own address), so each address
is checked here as an interface address of its family. Reported like
:mod:`nf.consistency`'s (error-app-tag ``inconsistent-values``), with the entry's ``path``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from nf.effective import EffectiveConfig

APP_TAG = "inconsistent-values"


@dataclass(frozen=True, slots=True)
class SvtiInconsistent:
    """A bad value of an SVTI interface (see :class:`nf.checks.Refusal`; ``path`` is set)."""

    message: str
    path: str
    vpn: str = ""
    leaf: tuple[str, ...] = ()
    app_tag: str = APP_TAG


def _quoted(value: str) -> str:
    return f"'{value}'" if "'" not in value else f'"{value}"'


def addresses(eff: EffectiveConfig) -> Iterator[SvtiInconsistent]:
    """Every ipv4/ipv6 address of an SVTI interface is an address of its family with a
    prefix length (``10.0.0.1/30``, ``2001:db8::1/64``)."""
    for svti in eff.svtis.values():
        entry = f"/ipsec-nf:ike/ipsec-nf:svti[ipsec-nf:name={_quoted(svti.name)}]"
        for family, version, values in (("ipv4", 4, svti.ipv4_address),
                                        ("ipv6", 6, svti.ipv6_address)):
            for value in values:
                try:
                    ok = ipaddress.ip_interface(value).version == version
                except ValueError:
                    ok = False
                if not ok:
                    yield SvtiInconsistent(
                        f"svti {svti.name}: {value} is not an {family} address with a "
                        "prefix length", f"{entry}/ipsec-nf:{family}/ipsec-nf:address")
