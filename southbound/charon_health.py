"""How one charon is doing: :class:`CharonHealth` (up, down, or running with IKE sockets it
could not bind), and the reading of charon's log that tells the last case."""

from __future__ import annotations

from dataclasses import dataclass

UP = "up"
DOWN = "down"
SOCKETS_UNBOUND = "sockets-unbound"


@dataclass(frozen=True)
class CharonHealth:
    """How one charon is doing (:meth:`CharonProcess.health`), for the state tree and logs.

    ``status`` is one of the strings:

    - ``"up"`` (:data:`UP`): running, its VICI socket answers and its IKE sockets (UDP
      ike-port and ike-nat-port, 500 and 4500 by default) are bound; ``message`` is None.
    - ``"down"`` (:data:`DOWN`): not running, or not answering VICI yet; ``message`` says why:
      ``"not started"``, ``"stopped"``, ``"starting"``, ``"exited with status 1"``,
      ``"killed by SIGKILL"``, or why the last start failed.
    - ``"sockets-unbound"`` (:data:`SOCKETS_UNBOUND`): running and answering VICI, but it could
      not bind some or all of its IKE sockets (typically another process holds UDP 500/4500),
      so it cannot negotiate; ``message`` is charon's own log lines joined by ``"; "``, e.g.
      ``"unable to bind socket: Address already in use; could not open IPv4 socket, IPv4
      disabled; could not create any sockets"``.
    """

    status: str
    message: str | None = None

    @property
    def ok(self) -> bool:
        """True when the status is ``"up"``."""
        return self.status == UP


# What charon 5.9.8's socket-default plugin logs (at start, before VICI is up) when it cannot
# bind its IKE sockets, seen with UDP 500/4500 held by another process of the namespace:
#   [NET] unable to bind socket: Address already in use
#   [NET] could not open IPv4 socket, IPv4 disabled     (port 500 of that family)
#   [NET] could not open IPv4 NAT-T socket              (port 4500 of that family)
#   [NET] could not create any sockets                  (neither family has a socket)
# charon keeps running and answers VICI. "could not open IPv6 socket, IPv6 disabled" without a
# bind failure is only a host without IPv6, not a fault.
_BIND_FAILURES = ("unable to bind socket", "NAT-T socket", "could not create any sockets",
                  "requires CAP_NET_BIND_SERVICE")
_SOCKET_CONTEXT = ("could not open",)


def socket_errors(log_text: str) -> str | None:
    """charon's messages about IKE sockets it could not bind, joined by ``"; "``, or None.

    ``log_text`` is what one charon start wrote to charon.log.
    """
    lines = [line.split("[NET] ", 1)[1].strip() for line in log_text.splitlines()
             if "[NET] " in line]
    if not any(f in line for line in lines for f in _BIND_FAILURES):
        return None
    picked = [line for line in lines if any(f in line for f in _BIND_FAILURES + _SOCKET_CONTEXT)]
    return "; ".join(dict.fromkeys(picked))
