"""The kernel's view for the state tree (``/ike/kernel``): XFRM statistics, SPD and SAD.

- ``statistics``: every counter of ``/proc/net/xfrm_stat``, under the names of the RouterOS
  manual's statistics menu (:data:`STAT_NAMES`; counters it does not list are named in its
  style; a counter unknown to us shows in ``other-counter`` under the kernel's name). Read on
  every backend: the kernel counts there whatever data plane is in use.
- ``policy`` / ``sa``: the kernel's SPD and SAD as our XFRM driver (:mod:`southbound.xfrm`)
  dumps them; keys are never put in the tree (only algorithm names and key sizes).

:class:`KernelStateReader` is one of the state engine's extra readers
(``StateEngine(extra=...)``): a blocking call, run in a thread beside the daemon's read.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from southbound.xfrm.api import XfrmError
from southbound.xfrm.netlink import XfrmNetlink
from southbound.xfrm.types import Lifetime, Selector, XfrmPolicy, XfrmState

log = logging.getLogger(__name__)

XFRM_STAT = Path("/proc/net/xfrm_stat")

#: /proc/net/xfrm_stat name -> leaf (RouterOS manual, IP/IPsec "Statistics"; the last seven
#: are not in the manual and are named in its style)
STAT_NAMES: dict[str, str] = {
    "XfrmInError": "in-errors",
    "XfrmInBufferError": "in-buffer-errors",
    "XfrmInHdrError": "in-header-errors",
    "XfrmInNoStates": "in-no-states",
    "XfrmInStateProtoError": "in-state-protocol-errors",
    "XfrmInStateModeError": "in-state-mode-errors",
    "XfrmInStateSeqError": "in-state-sequence-errors",
    "XfrmInStateExpired": "in-state-expired",
    "XfrmInStateMismatch": "in-state-mismatches",
    "XfrmInStateInvalid": "in-state-invalid",
    "XfrmInTmplMismatch": "in-template-mismatches",
    "XfrmInNoPols": "in-no-policies",
    "XfrmInPolBlock": "in-policy-blocked",
    "XfrmInPolError": "in-policy-errors",
    "XfrmOutError": "out-errors",
    "XfrmOutBundleGenError": "out-bundle-errors",
    "XfrmOutBundleCheckError": "out-bundle-check-errors",
    "XfrmOutNoStates": "out-no-states",
    "XfrmOutStateProtoError": "out-state-protocol-errors",
    "XfrmOutStateModeError": "out-state-mode-errors",
    "XfrmOutStateSeqError": "out-state-sequence-errors",
    "XfrmOutStateExpired": "out-state-expired",
    "XfrmOutPolBlock": "out-policy-blocked",
    "XfrmOutPolDead": "out-policy-dead",
    "XfrmOutPolError": "out-policy-errors",
    "XfrmFwdHdrError": "forward-header-errors",
    "XfrmOutStateInvalid": "out-state-invalid",
    "XfrmAcquireError": "acquire-errors",
    "XfrmOutStateDirError": "out-state-direction-errors",
    "XfrmInStateDirError": "in-state-direction-errors",
    "XfrmInIptfsError": "in-iptfs-errors",
    "XfrmOutNoQueueSpace": "out-no-queue-space",
}


class XfrmStatUnreadable(Exception):
    """/proc/net/xfrm_stat is missing or not in its format (a kernel without XFRM)."""


def parse_xfrm_stat(text: str) -> dict[str, int]:
    """The counters of a /proc/net/xfrm_stat text, by the kernel's names, in its order."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise XfrmStatUnreadable(f"unexpected line in xfrm_stat: {line!r}")
        out[parts[0]] = int(parts[1])
    return out


def statistics_tree(counters: dict[str, int]) -> dict[str, Any]:
    """``/ike/kernel/statistics`` of COUNTERS (kernel names -> values): every counter."""
    out: dict[str, Any] = {}
    other = []
    for name, value in counters.items():
        leaf = STAT_NAMES.get(name)
        if leaf is None:
            other.append({"name": name, "value": value})
        else:
            out[leaf] = value
    if other:
        out["other-counter"] = other
    return out


def read_statistics(path: Path = XFRM_STAT) -> dict[str, Any]:
    """``/ike/kernel/statistics`` read from PATH now."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise XfrmStatUnreadable(f"{path}: {exc.strerror}") from exc
    return statistics_tree(parse_xfrm_stat(text))


def _time(seconds: int) -> str | None:
    if not seconds:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def selector_tree(sel: Selector) -> dict[str, Any]:
    """``selector`` of a policy or SA."""
    return {
        "src-address": str(sel.src),
        "dst-address": str(sel.dst),
        "protocol": sel.proto,
        "src-port": sel.sport,
        "dst-port": sel.dport,
        "interface-index": sel.ifindex,
    }


def lifetime_tree(lft: Lifetime) -> dict[str, Any]:
    """``lifetime``: the limits that are set (none: an empty container, left out)."""
    return _drop_none({
        "soft-bytes": lft.soft_bytes,
        "hard-bytes": lft.hard_bytes,
        "soft-packets": lft.soft_packets,
        "hard-packets": lft.hard_packets,
        "soft-add-seconds": lft.soft_add_seconds,
        "hard-add-seconds": lft.hard_add_seconds,
        "soft-use-seconds": lft.soft_use_seconds,
        "hard-use-seconds": lft.hard_use_seconds,
    })


def policy_tree(p: XfrmPolicy) -> dict[str, Any]:
    """One ``/ike/kernel/policy`` entry."""
    out: dict[str, Any] = {
        "index": p.index,
        "direction": p.direction.name.lower(),
        "action": p.action.name.lower(),
        "priority": p.priority,
        "if-id": p.if_id or None,
        "selector": selector_tree(p.selector),
        "template": [
            _drop_none({
                "position": i,
                "src-address": str(t.src) if t.src is not None else None,
                "dst-address": str(t.dst) if t.dst is not None else None,
                "protocol": t.proto.name.lower(),
                "mode": t.mode.name.lower(),
                "reqid": t.reqid,
                "spi": t.spi or None,
                "optional": t.optional,
            })
            for i, t in enumerate(p.templates, start=1)
        ],
        "lifetime": lifetime_tree(p.lifetime),
    }
    if p.current is not None:
        out["add-time"] = _time(p.current.add_time)
        out["use-time"] = _time(p.current.use_time)
    return {k: v for k, v in out.items() if v not in (None, [], {})}


def sa_tree(s: XfrmState) -> dict[str, Any]:
    """One ``/ike/kernel/sa`` entry: everything but the keys."""
    out: dict[str, Any] = {
        "spi": s.spi,
        "dst-address": str(s.dst),
        "protocol": s.proto.name.lower(),
        "src-address": str(s.src),
        "mode": s.mode.name.lower(),
        "reqid": s.reqid,
        "if-id": s.if_id or None,
        "replay-window": s.replay_window,
        "esn": s.esn,
        "lifetime": lifetime_tree(s.lifetime),
    }
    if s.enc is not None:
        out["enc-algorithm"] = s.enc.name
        out["enc-key-size"] = len(s.enc.key) * 8
    if s.auth is not None:
        out["auth-algorithm"] = s.auth.name
        out["auth-key-size"] = len(s.auth.key) * 8
        out["auth-truncation"] = s.auth.trunc_bits
    if s.aead is not None:
        out["aead-algorithm"] = s.aead.name
        out["aead-key-size"] = len(s.aead.key) * 8
        out["aead-icv-length"] = s.aead.icv_bits
    if s.encap is not None:
        out["encapsulation"] = {"src-port": s.encap.sport, "dst-port": s.encap.dport}
    if s.selector is not None:
        out["selector"] = selector_tree(s.selector)
    if s.current is not None:
        out["current-bytes"] = s.current.bytes
        out["current-packets"] = s.current.packets
        out["add-time"] = _time(s.current.add_time)
        out["use-time"] = _time(s.current.use_time)
    if s.stats is not None:
        out["replay-window-drops"] = s.stats.replay_window
        out["replay-drops"] = s.stats.replay
        out["integrity-failures"] = s.stats.integrity_failed
        out["out-sequence"] = s.stats.oseq
        out["in-sequence"] = s.stats.seq
    return {k: v for k, v in out.items() if v not in (None, {})}


class KernelStateReader:
    """Reads ``/ike/kernel`` (a blocking call, for the state engine's extra readers).

    ``tables``: also dump the SPD and SAD (the statistics are read on every backend).
    A part that cannot be read is left out of the tree (absent, never shown empty), and
    the reason is logged once per change of reason.
    """

    def __init__(self, tables: bool = True, netns: str | None = None,
                 stat_path: Path = XFRM_STAT) -> None:
        self.tables = tables
        self.netns = netns
        self.stat_path = stat_path
        self._driver: XfrmNetlink | None = None
        self.failure: str | None = None  # why the last read left a part out

    def _note(self, failure: str | None) -> None:
        if failure != self.failure and failure is not None:
            log.warning("kernel state: %s", failure)
        self.failure = failure

    def read(self) -> dict[str, Any]:
        """``{"kernel": {...}}`` for the state tree (``{}`` when nothing could be read)."""
        kernel: dict[str, Any] = {}
        failures = []
        try:
            kernel["statistics"] = read_statistics(self.stat_path)
        except XfrmStatUnreadable as exc:
            failures.append(str(exc))
        if self.tables:
            try:
                if self._driver is None:
                    self._driver = XfrmNetlink(self.netns)
                policies = self._driver.dump_policies()
                states = self._driver.dump_states()
            except (XfrmError, OSError, ValueError, KeyError) as exc:
                # a netlink failure, or an entry our codec cannot read (a protocol or mode
                # unknown to it): the tables are left out, the statistics stay
                failures.append(f"XFRM dump: {type(exc).__name__}: {exc}")
                if self._driver is not None:
                    self._driver.close()
                    self._driver = None
            else:
                kernel["policy"] = [policy_tree(p) for p in
                                    sorted(policies, key=lambda p: p.index)]
                kernel["sa"] = [sa_tree(s) for s in
                                sorted(states, key=lambda s: (s.spi, str(s.dst), s.proto))]
        self._note("; ".join(failures) or None)
        return {"kernel": kernel} if kernel else {}

    def close(self) -> None:
        """Close the netlink socket."""
        if self._driver is not None:
            self._driver.close()
            self._driver = None
