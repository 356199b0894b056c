"""NETCONF over SSH (RFC 6242) server built on asyncssh: the gateway's front door.

Only the ``netconf`` subsystem is accepted; shells, exec requests, other
subsystems and forwarding are refused.  A PTY request is accepted (clients run
``ssh -tt -s netconf``) but the channel stays raw: no echo, no line editing, no
CR/LF translation.  Users authenticate with a password or a public key from
:mod:`northbound.users`; unknown users and bad credentials are refused by SSH,
before any NETCONF message is exchanged.  Each accepted channel becomes a
:class:`~northbound.session.NetconfSession` registered in the given
:class:`~northbound.registry.SessionRegistry`.

Protection (defaults in :class:`Limits`, described in ``docs/security.md``):

- only today's safe SSH algorithms are offered (:data:`KEX_ALGS`,
  :data:`ENCRYPTION_ALGS`, :data:`MAC_ALGS`, :data:`SIGNATURE_ALGS`);
- password checks run in a small thread pool (scrypt, 128 MiB each), never in
  the event loop, and failed ones are throttled per source address and per
  user with a growing delay (:class:`Throttle`);
- unauthenticated connections are limited in number (in all and per source)
  and in time (login grace time); an authenticated connection must open its
  NETCONF channel, and the channel must send ``<hello>``, in time; a user has
  a bounded number of sessions;
- a client that stops answering (keepalives) or stops reading its replies is
  dropped, so it holds neither a session nor memory for ever.

Here :func:`start_server` listens; :mod:`northbound.ssh_connection` handles one connection
(admission, authentication, channels), :mod:`northbound.ssh_channel` one NETCONF channel,
:mod:`northbound.ssh_host_key` the host key.
"""

from __future__ import annotations

import logging
from pathlib import Path

import asyncssh

from northbound.frontdoor import (
    ENCRYPTION_ALGS,
    KEX_ALGS,
    MAC_ALGS,
    SIGNATURE_ALGS,
    FrontDoor,
    Limits,
    doors,
)
from northbound.registry import SessionRegistry
from northbound.session import Handler
from northbound.ssh_connection import NetconfSSHServer
from northbound.ssh_host_key import load_or_create_host_key

log = logging.getLogger(__name__)


async def start_server(
    host: str,
    port: int,
    host_key_path: Path,
    state_dir: Path,
    handler: Handler,
    capabilities: list[str],
    registry: SessionRegistry,
    limits: Limits | None = None,
) -> asyncssh.SSHAcceptor:
    """Start the NETCONF SSH server; return the asyncssh acceptor.

    ``host`` is bound exactly (``127.0.0.1``: IPv4 loopback only, ``::``: IPv6
    only); ``port`` 0 picks a free port, read it with ``acceptor.get_port()``.
    The host key at ``host_key_path`` is created (ed25519, mode 0600) when
    missing.  Every message of every session goes to
    ``await handler(session, message)``.  ``limits`` (default :class:`Limits`
    ()) bounds unauthenticated connections, login and hello time, sessions per
    user and password guessing; servers started with the same ``registry``
    (one per listening address) share these counters.  Stop with ``acceptor.close()``,
    ``await acceptor.wait_closed()`` and ``await registry.close_all()``.
    """
    key = load_or_create_host_key(host_key_path)
    state = Path(state_dir)
    caps = list(capabilities)
    door = doors.get(registry)
    if door is None or (limits is not None and limits != door.limits):
        door = doors[registry] = FrontDoor(limits)

    def factory() -> NetconfSSHServer:
        return NetconfSSHServer(state, handler, caps, registry, door)

    acceptor = await asyncssh.create_server(
        factory,
        host,
        port,
        server_host_keys=[key],
        kex_algs=list(KEX_ALGS),
        encryption_algs=list(ENCRYPTION_ALGS),
        mac_algs=list(MAC_ALGS),
        signature_algs=list(SIGNATURE_ALGS),
        # our own timer closes first, with a reason; asyncssh's is a backstop
        login_timeout=door.limits.login_grace_time + 5,
        keepalive_interval=door.limits.keepalive_interval,
        keepalive_count_max=door.limits.keepalive_count_max,
        line_editor=False,
        agent_forwarding=False,
        x11_forwarding=False,
        allow_scp=False,
        reuse_address=True,
    )
    log.info("NETCONF SSH server listening on %s port %d", host, acceptor.get_port())
    return acceptor
