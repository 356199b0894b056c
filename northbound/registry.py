"""The live NETCONF sessions of one server: :class:`SessionRegistry` allocates session-ids,
lets a handler find another session (``kill-session``) and runs ``on_start`` / ``on_close``
callbacks (e.g. to release locks) when a session starts or ends."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator
from typing import Any

from northbound.session import (
    HELLO_TIMEOUT,
    SEND_TIMEOUT,
    CloseCallback,
    Handler,
    NetconfSession,
)

log = logging.getLogger(__name__)


class SessionRegistry:
    """The live sessions of one server, by session-id.

    Session-ids are allocated from 1 upward and never reused while the
    registry lives.  Callbacks registered with :meth:`on_close` run (in
    registration order) whenever a session ends, after it was removed.
    """

    def __init__(self) -> None:
        """Create an empty registry."""
        self._sessions: dict[int, NetconfSession] = {}
        self._next_id = 1
        self._on_close: list[CloseCallback] = []
        self._on_start: list[CloseCallback] = []
        self.bad_hellos = 0

    def on_close(self, callback: CloseCallback) -> None:
        """Register ``callback(session)``, run when any session ends."""
        self._on_close.append(callback)

    def on_start(self, callback: CloseCallback) -> None:
        """Register ``callback(session)``, run when a session completed its hello."""
        self._on_start.append(callback)

    async def _session_started(self, session: NetconfSession) -> None:
        await _run_callbacks(self._on_start, session, "on_start")

    def create(
        self,
        user: str,
        groups: list[str],
        handler: Handler,
        capabilities: list[str],
        source_host: str | None = None,
        hello_timeout: float | None = HELLO_TIMEOUT,
        send_timeout: float | None = SEND_TIMEOUT,
    ) -> NetconfSession:
        """Allocate a session-id and register a new (not yet running) session."""
        sid = self._allocate()
        session = NetconfSession(sid, user, groups, handler, capabilities, self, source_host,
                                 hello_timeout, send_timeout)
        self._sessions[sid] = session
        return session

    def _allocate(self) -> int:
        sid = self._next_id
        self._next_id = sid + 1 if sid < 0xFFFFFFFF else 1
        while sid in self._sessions:  # only after 2^32 sessions
            sid = self._next_id
            self._next_id += 1
        return sid

    def attach(self, session: Any) -> None:
        """Give a caller of another protocol (a gNMI Set: ``user``, ``groups``,
        ``source_host``, ``data``) a session-id and make it findable by :meth:`get` while it
        edits, so the commit history and netconf-config-change name it. Attach and
        :meth:`detach` without awaiting in between: no one lists it or runs callbacks."""
        session.session_id = self._allocate()
        self._sessions[session.session_id] = session

    def detach(self, session: Any) -> None:
        """Forget a session given by :meth:`attach` (no callbacks run)."""
        if self._sessions.get(session.session_id) is session:
            del self._sessions[session.session_id]

    def get(self, session_id: int) -> NetconfSession | None:
        """Return the live session with this id, or None."""
        return self._sessions.get(session_id)

    def sessions(self) -> list[NetconfSession]:
        """Return the live sessions ordered by session-id."""
        return [self._sessions[k] for k in sorted(self._sessions)]

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._sessions

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[NetconfSession]:
        return iter(self.sessions())

    async def close_all(self) -> None:
        """Kill every live session (server shutdown)."""
        for session in self.sessions():
            await session.kill()

    async def _session_closed(self, session: NetconfSession) -> None:
        if self._sessions.get(session.session_id) is not session:
            return
        del self._sessions[session.session_id]
        await _run_callbacks(self._on_close, session, "on_close")


async def _run_callbacks(callbacks: list[CloseCallback], session: NetconfSession,
                         what: str) -> None:
    """Run each callback (awaiting those that return awaitables); one failing spares the rest."""
    for callback in list(callbacks):
        try:
            result = callback(session)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("%s callback failed for session %d", what, session.session_id)
