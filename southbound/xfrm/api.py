"""The XFRM driver's protocol: what the rest of the gateway may rely on.

:class:`southbound.xfrm.netlink.XfrmNetlink` implements it over NETLINK_XFRM. All calls are
synchronous (netlink answers in microseconds); :meth:`XfrmDriver.events` gives a stream that
can be read blocking, iterated, or iterated with ``async for`` on an asyncio loop.

Errors are classes: :class:`XfrmError` (the kernel's errno and its text), with
:class:`XfrmNotFound` (ENOENT/ESRCH), :class:`XfrmExists` (EEXIST) and
:class:`XfrmUnsupported` (the kernel lacks the protocol, mode or algorithm: ESP without
esp4/esp6, an unknown algorithm name). Messages never contain keys.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Protocol, Self

from southbound.xfrm.types import (
    DEFAULT_GROUPS,
    Group,
    PolicyId,
    SaId,
    XfrmEvent,
    XfrmPolicy,
    XfrmState,
)


class XfrmError(Exception):
    """The kernel refused an XFRM request: ``errno`` and a message without secrets."""

    def __init__(self, errno: int, message: str) -> None:
        super().__init__(message)
        self.errno = errno
        self.message = message


class XfrmNotFound(XfrmError):
    """No such SA or policy."""


class XfrmExists(XfrmError):
    """The SA or policy is already there (add of an existing key)."""


class XfrmUnsupported(XfrmError):
    """The kernel cannot carry it: protocol (no ESP), mode or algorithm unknown to it."""


class XfrmEventStream(Protocol):
    """A subscription to XFRM multicast groups; close it (or use ``with``) when done."""

    def fileno(self) -> int:
        """The socket's descriptor (for select/poll or asyncio's add_reader)."""
        ...

    def read(self, timeout: float | None = None) -> list[XfrmEvent]:
        """The events that arrived; waits up to TIMEOUT seconds (None: until one arrives)
        and returns [] when none did."""
        ...

    def __iter__(self) -> Iterator[XfrmEvent]:
        """Events, blocking, until closed."""
        ...

    def __aiter__(self) -> AsyncIterator[XfrmEvent]:
        """Events on the running asyncio loop (the socket is read when readable)."""
        ...

    def close(self) -> None:
        """Leave the groups and close the socket."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


class XfrmDriver(Protocol):
    """The kernel's SAD and SPD in the network namespace the driver was opened in."""

    def add_state(self, state: XfrmState) -> None:
        """Install STATE (XFRM_MSG_NEWSA); XfrmExists if its (dst, spi, proto) is taken."""
        ...

    def update_state(self, state: XfrmState) -> None:
        """Replace the SA with STATE's key (XFRM_MSG_UPDSA); XfrmNotFound if absent."""
        ...

    def delete_state(self, sa: SaId) -> None:
        """Remove the SA (XFRM_MSG_DELSA); XfrmNotFound if absent."""
        ...

    def get_state(self, sa: SaId) -> XfrmState | None:
        """The SA with this key, with its current lifetime and statistics, or None."""
        ...

    def dump_states(self) -> list[XfrmState]:
        """Every SA of the SAD, with keys, current lifetimes and statistics."""
        ...

    def add_states(self, states: Iterable[XfrmState]) -> list[XfrmError | None]:
        """Install many SAs in one exchange (pipelined); one error or None per state, in order."""
        ...

    def add_policy(self, policy: XfrmPolicy) -> XfrmPolicy:
        """Install POLICY (XFRM_MSG_NEWPOLICY); returns it as the kernel holds it (with the
        index the kernel chose). XfrmExists if its selector/direction/if_id is taken."""
        ...

    def update_policy(self, policy: XfrmPolicy) -> XfrmPolicy:
        """Add or replace POLICY (XFRM_MSG_UPDPOLICY); returns it as the kernel holds it."""
        ...

    def delete_policy(self, policy: PolicyId) -> None:
        """Remove the policy (XFRM_MSG_DELPOLICY); XfrmNotFound if absent."""
        ...

    def get_policy(self, policy: PolicyId) -> XfrmPolicy | None:
        """The policy with this key (selector+direction+if_id, or index), or None."""
        ...

    def dump_policies(self) -> list[XfrmPolicy]:
        """Every policy of the SPD (socket policies excluded), with current lifetimes."""
        ...

    def add_policies(self, policies: Iterable[XfrmPolicy]) -> list[XfrmError | None]:
        """Install many policies in one exchange; one error or None per policy, in order."""
        ...

    def flush(self, states: Iterable[SaId] = (), policies: Iterable[PolicyId] = ()) -> int:
        """Remove exactly these SAs and policies (what we own; nothing else is touched), those
        already gone are skipped; returns how many were removed. Never XFRM_MSG_FLUSH*."""
        ...

    def events(self, groups: Iterable[Group] = DEFAULT_GROUPS) -> XfrmEventStream:
        """Subscribe to the kernel's XFRM events in GROUPS (a socket of its own)."""
        ...

    def close(self) -> None:
        """Close the driver's socket."""
        ...
