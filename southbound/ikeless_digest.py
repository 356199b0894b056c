"""Digests of XFRM states and policies, computed alike from what we ask and from what the
kernel reports, so a difference means the kernel holds something else (counters, read-only
fields left out; keys only as their hash)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from southbound.ikeless_convert import XFRM_STATE_NOPMTUDISC
from southbound.xfrm.types import XfrmPolicy, XfrmState


def _h(*parts: Any) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def _alg(a: Any) -> Any:
    if a is None:
        return None
    return (a.name, hashlib.sha256(a.key).hexdigest(), getattr(a, "trunc_bits", None),
            getattr(a, "icv_bits", None))


def state_digest(st: XfrmState) -> str:
    """What identifies an SA's content, from our request or from the kernel's dump alike
    (counters and read-only fields left out; keys only as their hash)."""
    return _h(str(st.src), str(st.dst), st.spi, int(st.proto), int(st.mode), st.reqid,
              _alg(st.enc), _alg(st.auth), _alg(st.aead), st.replay_window, st.esn,
              st.lifetime, st.encap, st.selector, st.flags & XFRM_STATE_NOPMTUDISC)


def policy_view(p: XfrmPolicy) -> Any:
    """What of a policy counts: selector, direction, action, priority, templates."""
    return (p.selector, int(p.direction), int(p.action), p.priority,
            tuple((str(t.src), str(t.dst), int(t.proto), int(t.mode), t.reqid)
                  for t in p.templates))


def policy_digest(policies: Iterable[XfrmPolicy]) -> str:
    """What identifies an SPD entry's policies (direction order does not matter)."""
    return _h(*sorted(map(repr, map(policy_view, policies))))
