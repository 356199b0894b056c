"""An SA of the kernel's SAD (``xfrm_usersa_info``): its protocol, mode, algorithms (keys never
in ``repr``), encapsulation, identity and counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from southbound.xfrm.types.lifetime import Lifetime, LifetimeCurrent
from southbound.xfrm.types.selector import IPAddress, Selector, XfrmValueError, family_of


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
