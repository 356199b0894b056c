"""The limits (``xfrm_lifetime_cfg``) and current use (``xfrm_lifetime_cur``) of an SA or policy.

``None`` means "no limit" (the kernel's XFRM_INF for bytes/packets, 0 for seconds)."""

from __future__ import annotations

from dataclasses import dataclass


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
