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
from tools.check_output import policy_view, vpn_view


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
        # per VPN: its effective value and its entry of the vpn list
        self._views: dict[str, tuple[Any, dict[str, Any]]] = {}
        # the vpn list with the effective config's VPN mapping it was made from: readings
        # compose the tree again and again with the same VPNs (the tree is read-only: one
        # list is shared; at 10,000 VPNs it was 10,000 names sorted and dicts made per reading)
        self._vpn_list: tuple[Any, list[dict[str, Any]]] | None = None
        # one rendering of each policy many VPNs share: VPNs made from one template mostly
        # hold the very same IkePolicy / IpsecPolicy value, and their views' policy parts
        # were ~60% of the views (the tree is read-only: sharing a dict is safe)
        self._policies: dict[tuple[str, str | None, Any], dict[str, Any]] = {}

    def __call__(self, sas: dict[str, Any], read_at: Any, stale: bool) -> dict[str, Any]:
        """The state tree of a reading (``sas``: the daemon's tables, read at ``read_at``)."""
        vpns = self.effective().vpns
        if self._vpn_list is None or self._vpn_list[0] is not vpns:
            self._vpn_list = (vpns, self._vpn_entries(vpns))
        out = self._vpn_list[1]
        refused = self.refused_peers.tree()
        return {**sas, "apply-status": apply_status_tree(self.reconciler, read_at, stale),
                "vpn": out, **({"refused-peer": refused} if refused else {}),
                **i2nsf_ike_state.state_tree(self.config(), sas, vpns)}

    def _vpn_entries(self, vpns: Any) -> list[dict[str, Any]]:
        """The ``vpn`` list of the VPNs ``vpns`` (the effective config's mapping), each
        entry kept while its VPN's effective value is the same object."""
        views = self._views
        out = []
        for name in sorted(vpns):
            hit = views.get(name)
            if hit is None or hit[0] is not vpns[name]:
                view = self._view(vpns[name])
                hit = views[name] = (vpns[name], {"name": name, "effective": view})
            out.append(hit[1])
        gone = [n for n in views if n not in vpns]
        for name in gone:
            del views[name]
        if gone and len(self._policies) > 2 * len(vpns) + 64:
            self._policies.clear()  # what the views still use stays in them
        return out

    def _view(self, vpn: Any) -> dict[str, Any]:
        """A VPN's effective view, its policy parts shared with other VPNs' equal ones."""
        view = vpn_view(vpn, self._policy)
        view.pop("name", None)
        return view

    def _policy(self, key: str, template: str | None, policy: Any) -> dict[str, Any]:
        """One rendering of each (part, template, policy value): rendered once, shared."""
        try:
            hit = self._policies.get((key, template, policy))
        except TypeError:  # a value that cannot be hashed: its own rendering
            return policy_view(key, template, policy)
        if hit is None:
            hit = self._policies[(key, template, policy)] = policy_view(key, template, policy)
        return hit
