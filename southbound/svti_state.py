"""The operational state of the ``/ike/svti`` interfaces (``/ike/svti[name]/state``).

For each configured SVTI entry, what the kernel holds of the xfrm interface of that name made
by this gateway (:data:`southbound.xfrm_interfaces.ALIAS`): ``oper-status`` (``up``,
``down``, or ``absent`` when the kernel has no such interface of ours), ``if-index``, the
kernel's ``mtu`` and the counters of ``IFLA_STATS64``, named as ietf-interfaces' statistics.

:func:`read` is one of the state engine's extra readers (``StateEngine(extra=...)``): a
blocking call, run in a thread beside the daemon's read. One dump of the links per read,
in the caller's network namespace (that of ``ipsec-nf serve``); no dump at all when no
``svti`` is configured. The tree goes under ``ipsec-nf:ike`` (merged by nf.state into the
configured entries, like another module's state).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pyroute2 import IPRoute

from southbound.xfrm_interfaces import _ours

MODULE_TOP = "ipsec-nf:ike"  # the state tree's key: merged into the configured svti entries
IFF_UP, IFF_RUNNING = 0x1, 0x40

#: leaf -> IFLA_STATS64 field
COUNTERS: dict[str, str] = {
    "in-octets": "rx_bytes", "in-packets": "rx_packets", "in-errors": "rx_errors",
    "out-octets": "tx_bytes", "out-packets": "tx_packets", "out-errors": "tx_errors",
}


def link_state(link: Any) -> dict[str, Any]:
    """The state of one interface from its rtnetlink link message (RTM_NEWLINK): ``up``
    when administratively up and the kernel passes traffic on it (IFF_UP and IFF_RUNNING)."""
    flags = link["flags"]
    up = bool(flags & IFF_UP) and bool(flags & IFF_RUNNING)
    stats = link.get_attr("IFLA_STATS64")
    out: dict[str, Any] = {"oper-status": "up" if up else "down",
                           "if-index": link["index"], "mtu": link.get_attr("IFLA_MTU")}
    if stats is not None:
        out["counters"] = {leaf: int(stats[field]) for leaf, field in COUNTERS.items()}
    return out


def read(names: Iterable[str], netns: str | None = None) -> dict[str, Any]:
    """The state of the svti entries ``names`` (configured), as the state tree's member
    :data:`MODULE_TOP`; ``{}`` when none. ``netns``: another network namespace (tests)."""
    wanted = sorted(names)
    if not wanted:
        return {}
    with IPRoute(**({"netns": netns} if netns else {})) as ipr:
        links = {link.get_attr("IFLA_IFNAME"): link for link in ipr.get_links() if _ours(link)}
    entries = [{"name": name, "state": link_state(links[name]) if name in links
                else {"oper-status": "absent"}} for name in wanted]
    return {MODULE_TOP: {"svti": entries}}
