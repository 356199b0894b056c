"""RFC 9061 SAD and SPD entries (``nf.effective_ikeless``) as the kernel's XFRM states and
policies (:mod:`southbound.xfrm.types`)."""

from __future__ import annotations

import ipaddress

from nf.effective_ikeless import SadEntry, SpdEntry
from southbound.xfrm.types import (
    Action,
    AeadAlgorithm,
    Algorithm,
    AuthAlgorithm,
    Direction,
    Encap,
    Lifetime,
    Mode,
    Proto,
    Selector,
    Template,
    XfrmPolicy,
    XfrmState,
)

PRIORITY_BASE = 1000  # the first SPD entry's policy priority (lower is preferred)
XFRM_STATE_NOPMTUDISC = 4  # outer DF bit cleared (df-bit clear); else copied from the inner


def _net(prefix: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(prefix, strict=False)


def _selector(e: SadEntry | SpdEntry) -> Selector:
    s = e.selector
    return Selector(_net(s.src), _net(s.dst), s.proto or 0, s.sport or 0, s.dport or 0)


def _limit(n: int) -> int | None:
    return n or None


def xfrm_state(e: SadEntry) -> XfrmState:
    """The kernel SA of a SAD entry."""
    return XfrmState(
        src=ipaddress.ip_address(e.src), dst=ipaddress.ip_address(e.dst), spi=e.spi,
        proto=Proto.ESP, mode=Mode.TUNNEL if e.mode == "tunnel" else Mode.TRANSPORT,
        reqid=e.reqid,
        enc=Algorithm(e.encryption.name, e.encryption.key) if e.encryption else None,
        auth=(AuthAlgorithm(e.integrity.name, e.integrity.key, e.integrity.bits or 0)
              if e.integrity else None),
        aead=AeadAlgorithm(e.aead.name, e.aead.key, e.aead.bits or 0) if e.aead else None,
        replay_window=e.replay_window,
        lifetime=Lifetime(
            soft_bytes=_limit(e.soft.bytes), hard_bytes=_limit(e.hard.bytes),
            soft_packets=_limit(e.soft.packets), hard_packets=_limit(e.hard.packets),
            soft_add_seconds=_limit(e.soft.time), hard_add_seconds=_limit(e.hard.time),
            soft_use_seconds=_limit(e.soft.idle), hard_use_seconds=_limit(e.hard.idle)),
        encap=(Encap(e.encap.sport, e.encap.dport,
                     oa=ipaddress.ip_address(e.encap.oaddr) if e.encap.oaddr else None)
               if e.encap else None),
        selector=_selector(e), esn=e.esn,
        flags=0 if e.copy_df or e.mode != "tunnel" else XFRM_STATE_NOPMTUDISC)


def xfrm_policies(p: SpdEntry) -> tuple[XfrmPolicy, ...]:
    """The kernel policies of an SPD entry (inbound: ``in`` and ``fwd``)."""
    templates: tuple[Template, ...] = ()
    if p.action == "protect":
        tunnel = p.mode == "tunnel"
        templates = (Template(
            dst=ipaddress.ip_address(p.dst) if tunnel and p.dst else None,
            src=ipaddress.ip_address(p.src) if tunnel and p.src else None, proto=Proto.ESP,
            mode=Mode.TUNNEL if tunnel else Mode.TRANSPORT, reqid=p.reqid),)
    action = Action.BLOCK if p.action == "discard" else Action.ALLOW
    dirs = (Direction.OUT,) if p.direction == "out" else (Direction.IN, Direction.FWD)
    return tuple(XfrmPolicy(selector=_selector(p), direction=d, action=action,
                            priority=PRIORITY_BASE + p.index, templates=templates)
                 for d in dirs)
