"""The seam between the reconciler and a data-plane backend (charon over VICI, later XFRM).

A backend declares the resource kinds it holds (:class:`ResourceKind`), the properties of its
data plane (:class:`DataPlane`), and opens sessions (:class:`BackendSession`) in which entries
are loaded, unloaded and read back. The reconciler (``southbound/reconciler.py``) is generic
over both: adding a kind is one more :class:`ResourceKind` in the backend's ``kinds`` plus its
load/unload/observe in the backend; adding a backend is one more class implementing
:class:`Backend`. Nothing here imports from ``nf/`` except the effective-config types.

Errors are classes: :class:`EntryRefused` means the daemon refused one entry (that entry is
marked ``failed``; the others go on); :class:`ReadBackFailed` that it refused a read-back
(tried again at the next sync); :class:`BackendUnavailable` means the session broke or the
daemon did not answer in time (reconnect, back off, observe again).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from nf.effective import EffectiveConfig

HealthStatus = Literal["up", "down", "unresponsive", "sockets-unbound", "starting"]


class BackendError(Exception):
    """Base class of backend failures."""


class EntryRefused(BackendError):
    """The daemon refused one entry; ``message`` is its own reason (no secrets)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ReadBackFailed(BackendError):
    """The daemon refused to show what it holds (the session is fine): the read-back is
    skipped and tried again at the next sync; applying goes on."""


class BackendUnavailable(BackendError):
    """The daemon cannot be reached, the session broke, or it did not answer in time."""


@dataclass(frozen=True)
class DataPlane:
    """What the data plane under a backend can do (differences are data, not flags in code)."""

    name: str  # e.g. "kernel-libipsec", "kernel-netlink"
    can_trap: bool  # the kernel raises acquires for trap policies (on-demand negotiation)
    esn: bool = True  # extended sequence numbers (libipsec: "IPsec SA: ESN not supported")
    ah: bool = True  # AH SAs (libipsec: "IPsec SA: protocol not supported")
    transport: bool = True  # transport mode SAs (libipsec: "IPsec SA: unsupported mode")
    # xfrm interfaces (route-based VPNs, /ike/svti): the kernel's ESP only; libipsec's ESP in
    # user space never sees a packet routed into one, and ignores if_id
    xfrm_interfaces: bool = True


@dataclass(frozen=True)
class Unsupported:
    """A setting of a VPN the backend cannot carry out: refused before it is committed.

    ``leaf`` are the steps from the VPN to the node as the VPN sees it (its effective
    parameters), e.g. ``("ipsec-policy", "esp-proposal[id='1']", "esn")``; nf.checks finds
    whether the VPN or its template holds it.
    """

    vpn: str
    leaf: tuple[str, ...]
    message: str


def dataplane_refusals(dp: DataPlane, effective: EffectiveConfig) -> list[Unsupported]:
    """The settings of the effective config's VPNs that ``dp`` cannot carry out: every CHILD
    SA using them would fail in the daemon (messages quoted from charon 5.9.8)."""
    out: list[Unsupported] = []
    for vpn in effective.vpns.values():
        actions = {sp.action or "esp" for sp in vpn.security_policies}
        for sp in vpn.security_policies:
            where = f"security-policy[name='{sp.name}']"
            action = sp.action or "esp"
            if action == "ah" and not dp.ah:
                out.append(Unsupported(vpn.name, (where, "action"), (
                    f"the {dp.name} backend cannot carry AH (charon: 'IPsec SA: protocol not "
                    "supported'); use ESP, or the kernel-netlink backend")))
            if action in ("esp", "ah") and sp.mode == "transport" and not dp.transport:
                out.append(Unsupported(vpn.name, (where, "mode"), (
                    f"the {dp.name} backend has no transport mode (charon: 'IPsec SA: "
                    "unsupported mode'); use tunnel, or the kernel-netlink backend")))
            if not dp.xfrm_interfaces:
                out += [Unsupported(vpn.name, (where, leaf), (
                    f"{leaf} (a route-based VPN): the {dp.name} backend has no xfrm "
                    "interfaces (its ESP runs in user space, outside the kernel's xfrm "
                    "interfaces); use the kernel-netlink backend"))
                    for leaf in ("svti-id-in", "svti-id-out")
                    if getattr(sp, leaf.replace("-", "_")) is not None]
        if not dp.ah and "ah" in actions:  # (unused AH proposals are never given to charon)
            out += [Unsupported(vpn.name, ("ipsec-policy", f"ah-proposal[id='{p.id}']"), (
                f"the {dp.name} backend cannot carry AH (charon: 'IPsec SA: protocol not "
                "supported'): remove the AH proposal, or use the kernel-netlink backend"))
                for p in vpn.ipsec.ah_proposals]
        if not dp.esn and "esp" in actions:
            out += [Unsupported(vpn.name, ("ipsec-policy", f"esp-proposal[id='{p.id}']", "esn"),
                                (f"the {dp.name} backend has no extended sequence numbers "
                                 "(charon: 'IPsec SA: ESN not supported'); set esn false, or "
                                 "use the kernel-netlink backend"))
                    for p in vpn.ipsec.esp_proposals if True in p.esn]
    return out


@dataclass(frozen=True)
class Health:
    """How a backend is doing, for the state tree and the log."""

    status: HealthStatus
    message: str | None = None


@dataclass(frozen=True)
class ResourceKind:
    """One kind of entry a backend holds, and how it is built from the effective config.

    ``name`` is the kind as shown in the apply-status state (``vpn``, ``pre-shared-key``);
    ``rank`` orders kinds: lower ranks are loaded first and unloaded last. ``select`` picks the
    kind's typed entries out of the effective config (name -> value); ``payload`` builds what is
    sent to the daemon; ``digest`` identifies a payload (equal digests: nothing to do).
    ``secret`` marks payloads that hold secrets (kept out of reprs; messages are masked).
    ``parallel`` allows bulk loads of this kind to be spread over several sessions.
    ``upkeep`` picks what :meth:`Backend.maintain` reads of a payload (kept for every entry,
    while the payloads themselves are released once applied); None: the whole payload.
    """

    name: str
    rank: int
    select: Callable[[EffectiveConfig], Mapping[str, Any]]
    payload: Callable[[Any, DataPlane], dict[str, Any]]
    digest: Callable[[Any, dict[str, Any]], str]
    secret: bool = False
    parallel: bool = False
    upkeep: Callable[[dict[str, Any]], Mapping[str, Any]] | None = None


class BackendSession(Protocol):
    """One session with the daemon; blocking calls, used from one thread at a time."""

    def load(self, kind: str, name: str, payload: Mapping[str, Any], replaced: bool) -> None:
        """Add or replace one entry (``replaced``: the backend held an older version).

        Raises :class:`EntryRefused` or :class:`BackendUnavailable`.
        """

    def unload(self, kind: str, name: str) -> None:
        """Remove one entry. Raises :class:`EntryRefused` or :class:`BackendUnavailable`."""

    def observe(self, kind: str, deep: bool) -> dict[str, str | None]:
        """What the daemon holds of ``kind``: name -> fingerprint of its content as the daemon
        reports it. The fingerprint is None when the daemon cannot show the content (e.g.
        secrets), or when ``deep`` is False (names only: cheaper, for large tables)."""

    def close(self) -> None:
        """End the session."""


class Backend(Protocol):
    """A data-plane backend driven by the reconciler."""

    name: str
    dataplane: DataPlane
    kinds: tuple[ResourceKind, ...]

    def open(self) -> BackendSession:
        """Open a session (blocking). Raises :class:`BackendUnavailable`."""

    def maintain(self, session: BackendSession,
                 desired: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[str]:
        """Periodic upkeep beyond loading entries, e.g. re-initiate a tunnel that should be up
        and is not (``desired``: kind -> name -> what the kind's ``upkeep`` picked of the
        entry's payload). Returns what it did, for the log."""

    def health(self) -> Health:
        """The daemon's health as the backend knows it (process, sockets)."""

    def read_state(self, timeout: float) -> dict[str, Any]:
        """Operational state read from the daemon within ``timeout`` seconds (blocking).

        Raises :class:`BackendUnavailable` when the daemon does not answer in time."""
