"""The pieces every XFRM message shares, ours ⇄ the kernel's fields: addresses, selectors,
lifetimes, and a decoded pyroute2 message's fields and attributes as plain dicts."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from southbound.xfrm.constants import XFRM_INF
from southbound.xfrm.types import (
    IPAddress,
    Lifetime,
    LifetimeCurrent,
    Selector,
)

AF = {4: socket.AF_INET, 6: socket.AF_INET6}

Msg = Any  # a decoded pyroute2 nlmsg/nla (a dict with attrs)


# ------------------------------------------------------------------------------ scalars


def plain(msg: Msg) -> dict[str, Any]:
    """MSG's fields as a plain dict (pyroute2's item access runs lookups: slow in bulk)."""
    return dict.copy(msg)


def attrs_of(msg: Msg) -> dict[str, Any]:
    """MSG's attributes by name (the first of each), struct values as plain dicts."""
    out: dict[str, Any] = {}
    for slot in dict.get(msg, "attrs") or ():
        name = slot.cell[0]
        if name not in out:
            value = slot.get_value()
            out[name] = dict.copy(value) if isinstance(value, dict) else value
    return out



def addr_bytes(addr: IPAddress | None) -> bytes:
    """xfrm_address_t of ADDR (IPv4 in the first 4 bytes; None: all zero)."""
    return b"" if addr is None else addr.packed.ljust(16, b"\0")


def addr_from(raw: bytes, family: int) -> IPAddress:
    """The address in xfrm_address_t RAW for socket family FAMILY."""
    raw = bytes(raw).ljust(16, b"\0")
    if family == socket.AF_INET:
        return ipaddress.IPv4Address(raw[:4])
    return ipaddress.IPv6Address(raw[:16])


def _net_from(raw: bytes, plen: int, family: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    raw = bytes(raw)
    if family == socket.AF_INET:
        return ipaddress.IPv4Network((int.from_bytes(raw[:4], "big"), plen), strict=False)
    return ipaddress.IPv6Network((int.from_bytes(raw[:16].ljust(16, b"\0"), "big"), plen),
                                 strict=False)


def _limit(value: int | None, seconds: bool) -> int:
    if value is None:
        return 0 if seconds else XFRM_INF
    return value


def _unlimit(value: int, seconds: bool) -> int | None:
    if seconds:
        return value or None
    return None if value == XFRM_INF else value


def cstr(raw: bytes) -> str:
    """The C string in RAW (up to its first NUL)."""
    return bytes(raw).split(b"\0", 1)[0].decode("ascii", "replace")


# ---------------------------------------------------------------------------- selectors


def selector_fields(sel: Selector, prefix: str = "sel_") -> dict[str, object]:
    """The xfrm_selector fields of SEL."""
    return {
        prefix + "daddr": addr_bytes(sel.dst.network_address),
        prefix + "saddr": addr_bytes(sel.src.network_address),
        prefix + "dport": sel.dport,
        prefix + "dport_mask": 0xFFFF if sel.dport else 0,
        prefix + "sport": sel.sport,
        prefix + "sport_mask": 0xFFFF if sel.sport else 0,
        prefix + "family": AF[sel.family],
        prefix + "prefixlen_d": sel.dst.prefixlen,
        prefix + "prefixlen_s": sel.src.prefixlen,
        prefix + "proto": sel.proto,
        prefix + "ifindex": sel.ifindex,
        prefix + "user": 0,
    }


def selector_from(msg: Msg, prefix: str = "sel_", family: int = 0) -> Selector:
    """The selector in MSG's PREFIX fields (FAMILY: the SA's, when the selector has none)."""
    fam = msg[prefix + "family"] or family or socket.AF_INET
    return Selector(
        src=_net_from(msg[prefix + "saddr"], msg[prefix + "prefixlen_s"], fam),
        dst=_net_from(msg[prefix + "daddr"], msg[prefix + "prefixlen_d"], fam),
        proto=msg[prefix + "proto"],
        sport=msg[prefix + "sport"] & msg[prefix + "sport_mask"],
        dport=msg[prefix + "dport"] & msg[prefix + "dport_mask"],
        ifindex=msg[prefix + "ifindex"],
    )


# ---------------------------------------------------------------------------- lifetimes

_LFT = (
    ("soft_bytes", "soft_byte_limit", False),
    ("hard_bytes", "hard_byte_limit", False),
    ("soft_packets", "soft_packet_limit", False),
    ("hard_packets", "hard_packet_limit", False),
    ("soft_add_seconds", "soft_add_expires_seconds", True),
    ("hard_add_seconds", "hard_add_expires_seconds", True),
    ("soft_use_seconds", "soft_use_expires_seconds", True),
    ("hard_use_seconds", "hard_use_expires_seconds", True),
)


def lifetime_fields(lft: Lifetime, prefix: str = "lft_") -> dict[str, object]:
    """The xfrm_lifetime_cfg fields of LFT."""
    return {prefix + kname: _limit(getattr(lft, ours), secs) for ours, kname, secs in _LFT}


def lifetime_from(msg: Msg, prefix: str = "lft_") -> Lifetime:
    """The Lifetime in MSG's xfrm_lifetime_cfg fields."""
    return Lifetime(**{ours: _unlimit(msg[prefix + kname], secs) for ours, kname, secs in _LFT})


def current_from(msg: Msg, prefix: str = "curlft_") -> LifetimeCurrent:
    """The LifetimeCurrent in MSG's xfrm_lifetime_cur fields."""
    return LifetimeCurrent(
        bytes=msg[prefix + "bytes"],
        packets=msg[prefix + "packets"],
        add_time=msg[prefix + "add_time"],
        use_time=msg[prefix + "use_time"],
    )
