"""The typed, immutable values of RFC 9061's IKE-less case that cross into the southbound:
the kernel SAs (:class:`SadEntry`) and policies (:class:`SpdEntry`) to install, as
:class:`IkelessConfig` in ``EffectiveConfig.ikeless``. Built by :mod:`nf.i2nsf_ikeless`."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Selector:
    """An XFRM selector: source and destination prefix, protocol (None: any), one port each
    side (None: any)."""

    src: str
    dst: str
    proto: int | None = None
    sport: int | None = None
    dport: int | None = None

    @property
    def family(self) -> int:
        """4 or 6."""
        return ipaddress.ip_network(self.src, strict=False).version


@dataclass(frozen=True, slots=True)
class Lifetime:
    """Limits of an SA (0: none): seconds since added, bytes, packets, seconds idle."""

    time: int = 0
    bytes: int = 0
    packets: int = 0
    idle: int = 0


@dataclass(frozen=True, slots=True)
class Encap:
    """UDP encapsulation of ESP (NAT traversal)."""

    sport: int
    dport: int
    oaddr: str | None = None


@dataclass(frozen=True, slots=True)
class Key:
    """An algorithm with its key: the kernel's algorithm name, the key bytes and the ICV or
    truncation length in bits (None where the algorithm has none). The key is kept out of
    reprs."""

    name: str
    key: bytes = field(repr=False)
    bits: int | None = None
    iana: int = 0


@dataclass(frozen=True, slots=True)
class SadEntry:
    """One SA to install: ``src``/``dst`` are the outer addresses (the tunnel's, or the
    selector's in transport mode)."""

    name: str
    reqid: int
    spi: int
    src: str
    dst: str
    mode: str
    selector: Selector
    encryption: Key | None = None  # cipher (non-AEAD)
    integrity: Key | None = None
    aead: Key | None = None
    esn: bool = True
    replay_window: int = 64
    soft: Lifetime = Lifetime()
    hard: Lifetime = Lifetime()
    encap: Encap | None = None
    copy_df: bool = False  # df-bit copy (else clear)
    copy_dscp: bool = True  # bypass-dscp: the inner DSCP goes to the outer header


@dataclass(frozen=True, slots=True)
class SpdEntry:
    """One policy to install (with one ESP template when it protects)."""

    name: str
    direction: str  # "in", "out" (the kernel's); an inbound policy is also put as "fwd"
    reqid: int
    selector: Selector
    action: str  # protect, bypass, discard
    mode: str = "transport"
    src: str | None = None  # the template's tunnel addresses (tunnel mode)
    dst: str | None = None
    index: int = 0  # position in the user-ordered list: the policy's priority


@dataclass(frozen=True, slots=True)
class IkelessConfig:
    """What the kernel must hold for the IKE-less case: SAs and policies by their names."""

    sad: Mapping[str, SadEntry] = field(default_factory=lambda: MappingProxyType({}))
    spd: Mapping[str, SpdEntry] = field(default_factory=lambda: MappingProxyType({}))

    def __bool__(self) -> bool:
        return bool(self.sad or self.spd)
