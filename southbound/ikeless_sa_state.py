"""RFC 9061's ``ipsec-sa-state`` of a kernel SA: its current lifetime and replay statistics."""

from __future__ import annotations

from typing import Any

from southbound.xfrm.types import XfrmState


def sa_state(st: XfrmState, now: float) -> dict[str, Any]:
    """RFC 9061's ``ipsec-sa-state`` of a kernel SA (lifetime-current, replay statistics)."""
    cur, stats = st.current, st.stats
    add = cur.add_time if cur else 0
    use = cur.use_time if cur else 0
    seq = stats.seq if stats else 0
    window = st.replay_window
    return {
        "sa-lifetime-current": {
            "time": max(0, int(now) - add) if add else 0,
            "bytes": cur.bytes if cur else 0, "packets": cur.packets if cur else 0,
            "idle": max(0, int(now) - use) if use else 0},
        "replay-stats": {
            "replay-window": {"w": window, "t": seq, "b": max(0, seq - window + 1) if seq
                              else 0},
            "packet-dropped": (stats.replay + stats.replay_window) if stats else 0,
            "failed": stats.integrity_failed if stats else 0,
            "seq-number-counter": stats.oseq if stats else 0}}
