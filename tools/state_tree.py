"""The operational state tree the state engine serves (southbound/state_engine.py's
``compose``): the daemon's tables as read, with what the gateway itself knows beside them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nf import i2nsf_ike_state
from nf.effective import EffectiveConfig
from southbound.apply_state import apply_status_tree
from southbound.peer_refusals import RefusedPeers
from southbound.reconciler import Reconciler
from tools.check_output import vpn_view


class StateTree:
    """Composes the state tree from a reading of the daemon: the apply status, each VPN's
    effective parameters (rendered once per changed VPN: the view is kept while the VPN's
    effective value is the same object), the peers charon refused, and RFC 9061's IKE-case
    state of the conn-entries, from the same reading."""

    def __init__(self, reconciler: Reconciler, refused_peers: RefusedPeers,
                 config: Callable[[], dict[str, Any]],
                 effective: Callable[[], EffectiveConfig]) -> None:
        self.reconciler = reconciler
        self.refused_peers = refused_peers
        self.config = config  # running, as libyang's dict
        self.effective = effective
        self._views: dict[str, tuple[Any, dict[str, Any]]] = {}

    def __call__(self, sas: dict[str, Any], read_at: Any, stale: bool) -> dict[str, Any]:
        """The state tree of a reading (``sas``: the daemon's tables, read at ``read_at``)."""
        views, vpns = self._views, self.effective().vpns
        out = []
        for name in sorted(vpns):
            hit = views.get(name)
            if hit is None or hit[0] is not vpns[name]:
                view = vpn_view(vpns[name])
                view.pop("name", None)
                hit = views[name] = (vpns[name], view)
            out.append({"name": name, "effective": hit[1]})
        for name in [n for n in views if n not in vpns]:
            del views[name]
        refused = self.refused_peers.tree()
        return {**sas, "apply-status": apply_status_tree(self.reconciler, read_at, stale),
                "vpn": out, **({"refused-peer": refused} if refused else {}),
                **i2nsf_ike_state.state_tree(self.config(), sas, vpns)}
