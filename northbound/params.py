"""Parsing RPC parameters strictly (ASCII digits, YANG ranges), with protocol errors."""

from __future__ import annotations

import re

from nf.errors import RpcError

UINT32_MAX = 0xFFFFFFFF


def uint(text: str | None, name: str, low: int = 0, high: int = UINT32_MAX) -> int:
    """An unsigned integer parameter within [low, high]; invalid-value otherwise."""
    raw = (text or "").strip()
    if not re.fullmatch(r"[0-9]{1,20}", raw) or not low <= int(raw) <= high:
        raise RpcError.of("invalid-value", f"{name} must be a number from {low} to {high}",
                          type="protocol", **{"bad-element": name})
    return int(raw)
