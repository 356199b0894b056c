"""What an RPC handler may use: a narrow, typed view of the server, built by the composition root.

Every handler is called as ``handler(ctx, session, op)`` with the one ``ServerContext`` the
``Dispatcher`` was given. Handlers reach the server through these fields and nothing else.
Fields are keyword-only: add new ones (with a default when they are optional) anywhere.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from nf.actions import SaActions
from nf.ca import CertificateAuthority
from nf.confirmed import ConfirmedCommits
from nf.datastore import Datastores
from nf.history import History
from nf.nacm import Access, NacmCounters
from nf.observed import StateSource
from nf.schema import Schema
from northbound.notifications import Notifications
from northbound.registry import SessionRegistry
from northbound.subscriptions import Subscriptions


@dataclass(frozen=True, kw_only=True)
class ServerContext:
    """The services handed to RPC handlers (frozen: the references never change)."""

    schema: Schema
    """The YANG schema: libyang context and its Python mirror."""
    ds: Datastores
    """running, candidate, startup; locks; edit, copy, delete, validate, discard."""
    confirmed: ConfirmedCommits
    """commit and confirmed commit, cancel-commit."""
    history: History
    """The commit history (list-commits, show-commit-diff, rollback)."""
    registry: SessionRegistry
    """The live NETCONF sessions (netconf-monitoring)."""
    notifications: Notifications
    """The NETCONF event stream (create-subscription, out-notifications)."""
    capabilities: list[str]
    """The hello capabilities (netconf-monitoring)."""
    stats: dict[str, Any]
    """The RFC 6022 global statistics; a mutable dict the dispatcher counts into."""
    access: Callable[[Any], Access]
    """The NACM rights of a session's user under the rules in running."""
    read_state: Callable[[], Awaitable[dict[str, Any]]]
    """The observed (operational) IKE state; {} when it cannot be read."""
    state: StateSource | None = None
    """The operational state engine every front reads (nf.observed: snapshot and change
    feed); ``read_state`` is its snapshot's tree. None: no engine (tests)."""
    kill: Callable[[int, int], Awaitable[None]]
    """kill-session: ``kill(session_id, killed_by)``; raises RpcError for no such session."""
    wait_applied: Callable[[float], Awaitable[tuple[str, list[dict[str, Any]]]]]
    """wait-applied: wait at most N seconds for the last commit's entries to leave pending;
    returns ``(result, entries)``: result applied|failed|timeout, each entry a dict with kind,
    name, status (applied|pending|failed|removed) and message."""
    nacm_counters: NacmCounters = field(default_factory=NacmCounters)
    """The RFC 8341 denial counters (/nacm/denied-*), since the server started; the dispatcher
    counts refused operations, the write checks refused writes (the event stream counts the
    notifications it drops itself: Notifications.denied)."""
    ca: CertificateAuthority | None = None
    """The gateway's certificate authority (nf/ca.py; the ca-* RPCs); None: not offered
    (the RPCs answer operation-not-supported). It never hands out the CA's private key."""
    actions: SaActions | None = None
    """Actions on the daemon's SAs (initiate, terminate, rekey, clear, reset-counters); None
    when the server has no daemon to act on (the action RPCs then answer
    operation-not-supported)."""
    subscriptions: Subscriptions | None = None
    """RFC 8639/8641 dynamic subscriptions and YANG-Push (None: not offered)."""
