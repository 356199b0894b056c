"""One NETCONF channel of an SSH connection: only the ``netconf`` subsystem (and a raw PTY) is
accepted, and its bytes are written through :class:`ChannelWriter`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncssh
from asyncssh.stream import SSHServerStreamSession

SUBSYSTEM = "netconf"


class ChannelWriter:
    """Byte writer over an asyncssh server channel; close() sends exit-status 0."""

    def __init__(self, writer: asyncssh.SSHWriter[bytes]) -> None:
        self._writer = writer

    def write(self, data: bytes) -> None:
        """Queue DATA for the client."""
        self._writer.write(data)

    async def drain(self) -> None:
        """Wait until the client has taken what was written."""
        await self._writer.drain()

    def buffered(self) -> int:
        """Bytes written but not yet taken by the client."""
        return int(self._writer.channel.get_write_buffer_size())

    def close(self) -> None:
        """End the channel with exit-status 0."""
        chan = self._writer.channel
        if isinstance(chan, asyncssh.SSHServerChannel):
            chan.exit(0)
        else:  # pragma: no cover - server channels always are
            chan.close()

    def abort(self) -> None:
        """Close the channel at once, dropping what the client did not read."""
        self._writer.channel.abort()


class NetconfChannelSession(SSHServerStreamSession):  # type: ignore[type-arg]
    """Stream session accepting only the netconf subsystem (and a PTY, kept raw).

    asyncssh has no public hook to refuse shell/exec per channel when a plain
    coroutine is used as session handler, hence this subclass of its stream
    session (``asyncssh.stream`` is stable since 2.0).
    """

    def __init__(self, handler: Any, on_lost: Callable[[], None]) -> None:
        super().__init__(handler)
        self._on_lost = on_lost

    def pty_requested(self, term_type: str, term_size: Any, term_modes: Any) -> bool:
        # OpenSSH run as `ssh -tt -s netconf` treats a refused PTY as fatal.  No terminal is
        # allocated and the server is created with line_editor=False: bytes pass unchanged.
        return True

    def shell_requested(self) -> bool:
        return False

    def exec_requested(self, command: str) -> bool:
        return False

    def subsystem_requested(self, subsystem: str) -> bool:
        return subsystem == SUBSYSTEM

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            super().connection_lost(exc)
        finally:
            self._on_lost()
