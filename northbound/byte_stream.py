"""The byte streams a NETCONF session runs over (asyncio or asyncssh reader and writer), and
the error of a client that reads nothing of what is sent to it."""

from __future__ import annotations

from typing import Protocol


class ClientNotReading(ConnectionError):
    """The client took nothing of what was sent to it for ``send_timeout`` seconds."""


class ByteReader(Protocol):
    """What :meth:`northbound.session.NetconfSession.run` reads from (asyncio or asyncssh
    reader)."""

    async def read(self, n: int = -1) -> bytes: ...


class ByteWriter(Protocol):
    """What :meth:`northbound.session.NetconfSession.run` writes to (asyncio or asyncssh writer)."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...


def buffered(writer: ByteWriter) -> int | None:
    """Bytes the writer holds that the client has not taken, when it can tell."""
    fn = getattr(writer, "buffered", None)
    return int(fn()) if callable(fn) else None
