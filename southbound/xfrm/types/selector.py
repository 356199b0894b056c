"""Addresses and the selector of a policy or SA (``xfrm_selector``), and the error of a
value the kernel could not hold."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class XfrmValueError(ValueError):
    """A value that cannot be an XFRM state/policy (mixed families, bad port, ...)."""


def family_of(*values: IPAddress | IPNetwork | None) -> int:
    """The address family (4 or 6) shared by VALUES (None ignored); XfrmValueError if mixed."""
    versions = {v.version for v in values if v is not None}
    if len(versions) != 1:
        raise XfrmValueError(f"addresses of one family needed, got {sorted(versions) or 'none'}")
    return versions.pop()


@dataclass(frozen=True)
class Selector:
    """Which packets a policy (or an SA's selector) matches: ``xfrm_selector``.

    ``proto`` 0 is any protocol; a port 0 is any port (the kernel's mask is 0 then, 0xffff
    otherwise). For ICMP the kernel carries the type in ``sport`` and the code in ``dport``.
    ``ifindex`` 0 is any interface.
    """

    src: IPNetwork
    dst: IPNetwork
    proto: int = 0
    sport: int = 0
    dport: int = 0
    ifindex: int = 0

    def __post_init__(self) -> None:
        family_of(self.src, self.dst)
        for port in (self.sport, self.dport):
            if not 0 <= port <= 0xFFFF:
                raise XfrmValueError(f"port {port} out of range")
        if not 0 <= self.proto <= 255:
            raise XfrmValueError(f"protocol {self.proto} out of range")

    @property
    def family(self) -> int:
        """4 or 6."""
        return self.src.version

    @staticmethod
    def any(family: int) -> Selector:
        """The selector matching every packet of FAMILY (4 or 6)."""
        net = ipaddress.ip_network("0.0.0.0/0" if family == 4 else "::/0")
        return Selector(net, net)
