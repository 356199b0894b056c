"""Immutable values of the kernel's XFRM SAD/SPD and of its events (no netlink in here).

Addresses are :mod:`ipaddress` objects; a family is never stored beside them (it follows from
the addresses, and a state or policy mixing families is refused when built). Keys are bytes
and never shown by ``repr`` (secrets stay out of logs and errors).

Limits: ``None`` means "no limit" (the kernel's XFRM_INF for bytes/packets, 0 for seconds).

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
them watch those counters (:mod:`southbound.kernel_state` reads them), not these events.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import Enum, IntEnum

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class XfrmValueError(ValueError):
    """A value that cannot be an XFRM state/policy (mixed families, bad port, ...)."""


class Proto(IntEnum):
    """The IPsec protocol of an SA or template (IP protocol numbers)."""

    ESP = 50
    AH = 51
    COMP = 108  # IPcomp


class Mode(IntEnum):
    """The mode of an SA or template (XFRM_MODE_*)."""

    TRANSPORT = 0
    TUNNEL = 1
    BEET = 4


class Direction(IntEnum):
    """The direction of a policy (XFRM_POLICY_IN/OUT/FWD)."""

    IN = 0
    OUT = 1
    FWD = 2


class Action(IntEnum):
    """What a policy does with matching packets (XFRM_POLICY_ALLOW/BLOCK)."""

    ALLOW = 0
    BLOCK = 1


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


@dataclass(frozen=True)
class Algorithm:
    """An encryption (or compression) algorithm by its kernel name (``cbc(aes)``) and key."""

    name: str
    key: bytes = field(repr=False)


@dataclass(frozen=True)
class AuthAlgorithm:
    """An integrity algorithm (``hmac(sha256)``), its key and ICV truncation in bits."""

    name: str
    key: bytes = field(repr=False)
    trunc_bits: int


@dataclass(frozen=True)
class AeadAlgorithm:
    """An AEAD algorithm (``rfc4106(gcm(aes))``), its key (with salt) and ICV length in bits."""

    name: str
    key: bytes = field(repr=False)
    icv_bits: int


@dataclass(frozen=True)
class Lifetime:
    """Soft and hard limits of an SA or policy (``xfrm_lifetime_cfg``); None = no limit."""

    soft_bytes: int | None = None
    hard_bytes: int | None = None
    soft_packets: int | None = None
    hard_packets: int | None = None
    soft_add_seconds: int | None = None
    hard_add_seconds: int | None = None
    soft_use_seconds: int | None = None
    hard_use_seconds: int | None = None


@dataclass(frozen=True)
class LifetimeCurrent:
    """What an SA or policy has used so far (``xfrm_lifetime_cur``); times are Unix seconds
    (``use_time`` 0: never used)."""

    bytes: int = 0
    packets: int = 0
    add_time: int = 0
    use_time: int = 0


@dataclass(frozen=True)
class SaStats:
    """An SA's error counters (``xfrm_stats``) and replay state."""

    replay_window: int = 0  # packets dropped as outside the window
    replay: int = 0  # packets dropped as replayed
    integrity_failed: int = 0
    # sequence numbers (XFRMA_REPLAY_VAL / XFRMA_REPLAY_ESN_VAL): last sent, last seen
    oseq: int = 0
    seq: int = 0


class EncapType(IntEnum):
    """UDP encapsulation of ESP (UDP_ENCAP_*)."""

    ESPINUDP_NON_IKE = 1
    ESPINUDP = 2  # RFC 3948 (the one in use)


@dataclass(frozen=True)
class Encap:
    """ESP-in-UDP encapsulation of an SA (``xfrm_encap_tmpl``)."""

    sport: int
    dport: int
    type: EncapType = EncapType.ESPINUDP
    oa: IPAddress | None = None  # original address (NAT-OA), rarely used


@dataclass(frozen=True)
class SaId:
    """The kernel's identity of an SA: destination, SPI, protocol (+ if_id/mark for lookups)."""

    dst: IPAddress
    spi: int
    proto: Proto = Proto.ESP
    src: IPAddress | None = None  # not part of the key; needed by some deletes (ah/comp)

    @property
    def family(self) -> int:
        """4 or 6."""
        return self.dst.version


@dataclass(frozen=True)
class XfrmState:
    """An SA of the kernel's SAD (``xfrm_usersa_info`` and its attributes).

    Exactly one of ``aead`` or ``enc`` (with or without ``auth``) for ESP; ``auth`` alone for AH.
    ``selector`` None: the kernel's "any" of the family (what ``ip xfrm state add`` does).
    The fields after ``flags`` are filled on reads only (ignored when writing).
    """

    src: IPAddress
    dst: IPAddress
    spi: int
    proto: Proto = Proto.ESP
    mode: Mode = Mode.TUNNEL
    reqid: int = 0
    enc: Algorithm | None = None
    auth: AuthAlgorithm | None = None
    aead: AeadAlgorithm | None = None
    replay_window: int = 32  # packets; 0 disables anti-replay (outbound SAs)
    lifetime: Lifetime = Lifetime()
    encap: Encap | None = None
    if_id: int = 0
    selector: Selector | None = None
    esn: bool = False  # extended sequence numbers (XFRM_STATE_ESN)
    flags: int = 0  # other XFRM_STATE_* flags, as the kernel has them
    # read-only
    current: LifetimeCurrent | None = None
    stats: SaStats | None = None

    def __post_init__(self) -> None:
        family_of(self.src, self.dst)
        if not 0 <= self.spi <= 0xFFFFFFFF:
            raise XfrmValueError(f"SPI {self.spi:#x} out of range")
        if self.aead is not None and (self.enc is not None or self.auth is not None):
            raise XfrmValueError("an AEAD SA has no separate encryption/integrity algorithm")

    @property
    def family(self) -> int:
        """4 or 6."""
        return self.src.version

    @property
    def id(self) -> SaId:
        """The kernel's key of this SA."""
        return SaId(self.dst, self.spi, self.proto, self.src)


@dataclass(frozen=True)
class Template:
    """One SA a policy requires (``xfrm_user_tmpl``).

    ``spi`` 0: any SA; ``src``/``dst`` are the tunnel endpoints (tunnel mode) or None (the
    packet's addresses, transport mode). ``optional`` is ``ip xfrm``'s "level use".
    """

    dst: IPAddress | None
    src: IPAddress | None = None
    proto: Proto = Proto.ESP
    mode: Mode = Mode.TUNNEL
    reqid: int = 0
    spi: int = 0
    optional: bool = False


@dataclass(frozen=True)
class PolicyId:
    """The kernel's key of a policy: its selector and direction (and if_id), or its index."""

    selector: Selector
    direction: Direction
    if_id: int = 0
    index: int = 0  # non-zero: the policy with this index (selector then ignored)


@dataclass(frozen=True)
class XfrmPolicy:
    """A policy of the kernel's SPD (``xfrm_userpolicy_info`` with its templates).

    ``index`` 0 when writing: the kernel chooses one (read back by :meth:`XfrmDriver.add_policy`).
    """

    selector: Selector
    direction: Direction
    action: Action = Action.ALLOW
    priority: int = 0
    index: int = 0
    templates: tuple[Template, ...] = ()
    if_id: int = 0
    lifetime: Lifetime = Lifetime()
    # read-only
    current: LifetimeCurrent | None = None

    @property
    def id(self) -> PolicyId:
        """The kernel's key of this policy."""
        return PolicyId(self.selector, self.direction, self.if_id)


# ----------------------------------------------------------------------------------- events


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
