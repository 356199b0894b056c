"""The kernel's XFRM events and multicast groups.

What the kernel reports, and how (linux/xfrm.h, net/xfrm/):

- XFRM_MSG_ACQUIRE (group XFRMNLGRP_ACQUIRE): a packet hit a policy whose template has no SA:
  :class:`AcquireEvent`;
- XFRM_MSG_EXPIRE (XFRMNLGRP_EXPIRE): an SA reached a soft or hard lifetime:
  :class:`ExpireEvent` (``hard`` tells which; after a hard expire the SA is gone);
- XFRM_MSG_POLEXPIRE (XFRMNLGRP_EXPIRE): the same for a policy: :class:`PolicyExpireEvent`;
- XFRM_MSG_REPORT (XFRMNLGRP_REPORT): used by Mobile IPv6 route optimisation:
  :class:`ReportEvent`;
- XFRM_MSG_MAPPING (XFRMNLGRP_MAPPING): the peer's NAT-T address or port changed:
  :class:`MappingEvent`;
- XFRM_MSG_NEWAE (XFRMNLGRP_AEVENTS): replay counter / lifetime counter updates of an SA
  (when thresholds are set on it): :class:`AsyncEvent`;
- XFRM_MSG_NEWSA/UPDSA/DELSA, NEWPOLICY/UPDPOLICY/DELPOLICY, FLUSHSA/FLUSHPOLICY
  (XFRMNLGRP_SA / XFRMNLGRP_POLICY): changes by anyone: :class:`StateChanged`,
  :class:`PolicyChanged`, :class:`Flushed`.

The kernel sends no netlink message for an outbound sequence number overflow nor for an
inbound packet with an unknown SPI ("bad SPI"): it counts them in /proc/net/xfrm_stat
(``XfrmOutStateSeqError``, ``XfrmInNoStates``) and writes an audit record. Callers that need
them watch those counters (:mod:`southbound.kernel_state` reads them), not these events."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum

from southbound.xfrm.types.lifetime import LifetimeCurrent
from southbound.xfrm.types.policy import PolicyId, Template, XfrmPolicy
from southbound.xfrm.types.sa import SaId, XfrmState
from southbound.xfrm.types.selector import IPAddress, Selector


@dataclass(frozen=True)
class AcquireEvent:
    """A packet matched ``policy`` (direction, selector, index) but template ``template`` has
    no SA: the kernel asks for one between ``src`` and ``dst`` (XFRM_MSG_ACQUIRE)."""

    src: IPAddress
    dst: IPAddress
    template: Template
    selector: Selector  # the packet's own selector (addresses of the triggering packet)
    policy: XfrmPolicy
    seq: int = 0  # the kernel's acquire sequence number (echo it in the SA to match)
    if_id: int = 0


@dataclass(frozen=True)
class ExpireEvent:
    """An SA reached its soft (``hard`` False) or hard lifetime (XFRM_MSG_EXPIRE).

    ``state`` is what the kernel puts in an expire: addresses, SPI, reqid, mode, lifetimes,
    current counters, if_id; no algorithms (they are None here, not absent from the SA)."""

    state: XfrmState
    hard: bool

    @property
    def sa(self) -> SaId:
        """The expired SA's identity."""
        return self.state.id


@dataclass(frozen=True)
class PolicyExpireEvent:
    """A policy reached its soft or hard lifetime (XFRM_MSG_POLEXPIRE)."""

    policy: XfrmPolicy
    hard: bool


@dataclass(frozen=True)
class ReportEvent:
    """XFRM_MSG_REPORT: the kernel reports ``selector`` for protocol ``proto`` (MIPv6 RO)."""

    proto: int
    selector: Selector
    coaddr: IPAddress | None = None


@dataclass(frozen=True)
class MappingEvent:
    """XFRM_MSG_MAPPING: the NAT-T address/port of SA ``sa`` changed from old to new."""

    sa: SaId
    reqid: int
    old_addr: IPAddress
    old_port: int
    new_addr: IPAddress
    new_port: int


class AsyncFlag(IntEnum):
    """Why the kernel sent an XFRM_MSG_NEWAE (XFRM_AE_*)."""

    RTHR = 1  # replay threshold reached
    RVAL = 2
    LVAL = 4
    ETHR = 8  # expiry timer fired
    CR = 16  # replay counter changed
    CE = 32  # lifetime counter changed
    CU = 64


@dataclass(frozen=True)
class AsyncEvent:
    """XFRM_MSG_NEWAE: an SA's replay state / counters (``flags`` are :class:`AsyncFlag` bits)."""

    sa: SaId
    reqid: int
    flags: int
    current: LifetimeCurrent | None = None
    oseq: int = 0
    seq: int = 0


class Change(Enum):
    """What happened to a state or policy (from XFRMNLGRP_SA / XFRMNLGRP_POLICY)."""

    NEW = "new"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True)
class StateChanged:
    """An SA was added, updated or deleted (by us or anyone else)."""

    change: Change
    state: XfrmState | None  # None for a delete that carries only the identity
    sa: SaId


@dataclass(frozen=True)
class PolicyChanged:
    """A policy was added, updated or deleted (by us or anyone else)."""

    change: Change
    policy: XfrmPolicy | None
    id: PolicyId | None = None


@dataclass(frozen=True)
class Flushed:
    """The SAD (``what`` "states") or SPD ("policies") was flushed."""

    what: str
    proto: int = 0  # states: the protocol flushed (0 = all IPsec protocols)


XfrmEvent = (
    AcquireEvent
    | ExpireEvent
    | PolicyExpireEvent
    | ReportEvent
    | MappingEvent
    | AsyncEvent
    | StateChanged
    | PolicyChanged
    | Flushed
)


class Group(IntEnum):
    """The kernel's XFRM multicast groups (XFRMNLGRP_*), for :meth:`XfrmDriver.events`."""

    ACQUIRE = 1
    EXPIRE = 2
    SA = 3
    POLICY = 4
    AEVENTS = 5
    REPORT = 6
    MIGRATE = 7
    MAPPING = 8


#: the groups an IKE-less controller wants by default
DEFAULT_GROUPS: tuple[Group, ...] = (Group.ACQUIRE, Group.EXPIRE, Group.MAPPING)
