"""Actions on SAs as every front asks for them: one typed interface, its results and errors.

The RPCs ``initiate``, ``terminate``, ``rekey``, ``clear`` and ``reset-counters``
(``northbound/ops_actions.py``) reach the IKE daemon only through :class:`SaActions`; the
charon backend implements it (``southbound/sa_actions.py``) and the composition root wires it
(``tools/app.py``). Types only: this module imports nothing of the other packages, so the
southbound may use it like the effective-config types.

Errors are :class:`ActionError` subclasses whose messages are safe to show a client (no
secret); each front maps them to its own errors (NETCONF: ``invalid-value`` for
:class:`NoSuchTarget`, ``operation-failed`` for :class:`NotReady` and :class:`ActionFailed`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Target:
    """Which SAs an action acts on: those of ``vpn`` (only the CHILD SAs of its
    ``security_policy`` when given), one SA by the daemon's unique id, or (terminate) the IKE
    SAs of a peer by its IKE or EAP identity ``peer_id`` or by its ``virtual_ip``."""

    vpn: str | None = None
    security_policy: str | None = None
    ike_sa: int | None = None
    child_sa: int | None = None
    peer_id: str | None = None
    virtual_ip: str | None = None


@dataclass(frozen=True, slots=True)
class ActionResult:
    """The SAs an action affected (established, closed, or the new ones of a rekey), by
    unique id."""

    ike_sas: tuple[int, ...] = ()
    child_sas: tuple[int, ...] = ()


class ActionError(Exception):
    """An action could not be carried out. ``param`` names the input parameter at fault
    (``vpn``, ``security-policy``, ``ike-sa``, ``child-sa``), or None."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class NoSuchTarget(ActionError):
    """What the action names does not exist: no such VPN, security policy or SA."""


class NotReady(ActionError):
    """The VPN exists but the action cannot apply to it now: disabled, not yet applied to
    the daemon, or responder only (initiate)."""


class ActionFailed(ActionError):
    """The daemon refused or did not complete the action (the peer did not answer within the
    timeout...); the message carries the daemon's reason."""


class SaActions(Protocol):
    """Actions on the daemon's SAs; each waits at most ``timeout`` seconds."""

    async def initiate(self, vpn: str, security_policy: str | None,
                       timeout: float) -> ActionResult:
        """Bring up the VPN's IKE SA and the CHILD SA of every security policy (or of the one
        named); return the SAs established."""

    async def terminate(self, target: Target, force: bool, timeout: float) -> ActionResult:
        """Close the target's SAs; with ``force``, even if the peer does not answer."""

    async def rekey(self, target: Target, reauth: bool, timeout: float) -> ActionResult:
        """Rekey (or re-authenticate) the target's SAs and wait until they are replaced;
        return the new SAs."""

    async def clear(self, vpn: str | None, timeout: float) -> ActionResult:
        """Close every SA of ``vpn``, or of the gateway; return the IKE SAs closed."""

    async def reset_counters(self, vpn: str | None) -> None:
        """Reset the daemon's IKE event counters of ``vpn``, or all of them."""
