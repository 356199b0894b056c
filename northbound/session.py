"""One NETCONF session over a byte stream, independent of the SSH layer.

:class:`NetconfSession` performs the ``<hello>`` exchange (RFC 6241 section
8.1), selects the framing (RFC 6242) and then hands every received message to
an injected async *handler* that returns the complete ``<rpc-reply>`` to send.
The handler implements the operations; this module only moves bytes.

The registry of live sessions is in :mod:`northbound.registry`; the hello and error messages
in :mod:`northbound.session_messages`; the stream protocols in :mod:`northbound.byte_stream`.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from nf.errors import TooBig
from northbound.byte_stream import ByteReader, ByteWriter, ClientNotReading, buffered
from northbound.framing import DEFAULT_MAX_MESSAGE_SIZE, Framer, FramingError, MessageTooBig
from northbound.replies import error_reply
from northbound.session_messages import operation_failed, read_client_hello, server_hello

if TYPE_CHECKING:
    from northbound.registry import SessionRegistry

log = logging.getLogger(__name__)

READ_SIZE = 65536
HELLO_TIMEOUT = 30.0
"""Seconds a client has, from the start of the session, to send its ``<hello>``."""
SEND_TIMEOUT = 60.0
"""Seconds a reply or notification may wait for a client that reads nothing."""

Handler = Callable[["NetconfSession", bytes], Awaitable[bytes | None]]
"""``async handler(session, message) -> reply-bytes | None``."""
CloseCallback = Callable[["NetconfSession"], Any]
"""Called (awaited if it returns an awaitable) when a session ends."""

MAX_MESSAGE_SIZE = DEFAULT_MAX_MESSAGE_SIZE  # the largest NETCONF message read, in bytes


class NetconfSession:
    """State of one NETCONF session.

    Attributes useful to handlers: ``session_id``, ``user``, ``groups``,
    ``source_host``, ``login_time`` (ISO 8601 UTC), ``client_capabilities``,
    ``base11`` (chunked framing negotiated), ``registry`` and ``data`` (a free
    dict for per-session state of the operations layer).  A handler sets
    ``closing = True`` when processing ``<close-session>``: the channel is
    closed right after the reply is sent.

    Limits: a client that has not sent its ``<hello>`` ``hello_timeout``
    seconds after the session started is dropped, and so is one that takes
    nothing of a reply or notification for ``send_timeout`` seconds (None: no
    limit). A message over ``max_message_size`` bytes (``MAX_MESSAGE_SIZE``,
    64 MiB) is not read: the client gets a ``too-big`` rpc-error (without a
    message-id: the message was not parsed) and the session is closed, as RFC
    6242 allows.
    """

    max_message_size: int = MAX_MESSAGE_SIZE

    def __init__(
        self,
        session_id: int,
        user: str,
        groups: list[str],
        handler: Handler,
        capabilities: list[str],
        registry: SessionRegistry | None = None,
        source_host: str | None = None,
        hello_timeout: float | None = HELLO_TIMEOUT,
        send_timeout: float | None = SEND_TIMEOUT,
    ) -> None:
        """Create a session; it starts talking when :meth:`run` is awaited."""
        self.session_id = session_id
        self.user = user
        self.groups = list(groups)
        self.handler = handler
        self.capabilities = list(capabilities)
        self.registry = registry
        self.source_host = source_host
        self.hello_timeout = hello_timeout
        self.send_timeout = send_timeout
        self.login_time = (
            datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()
        ).replace("+00:00", "Z")
        self.client_capabilities: list[str] = []
        self.base11 = False
        self.closing = False
        self.killed = False
        self.in_rpcs = 0
        self.data: dict[str, Any] = {}
        self._writer: ByteWriter | None = None
        self._framer: Framer | None = None
        self._task: asyncio.Task[Any] | None = None
        self._in_handler = False
        self._finishing = False
        self._started = False
        self._dropped = False
        self._done = asyncio.Event()

    def __repr__(self) -> str:
        return f"<NetconfSession id={self.session_id} user={self.user!r}>"

    @property
    def closed(self) -> bool:
        """True once the session has ended and its callbacks have run."""
        return self._done.is_set()

    def hello(self) -> bytes:
        """Return the server ``<hello>`` message (without framing)."""
        return server_hello(self.capabilities, self.session_id)

    async def run(self, reader: ByteReader, writer: ByteWriter) -> None:
        """Serve the session until EOF, close-session, kill or a framing error.

        Always closes ``writer`` and unregisters the session on return.
        """
        if self._started:
            raise RuntimeError("session already started")
        self._started = True
        self._writer = writer
        self._task = asyncio.current_task()
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            if not (self.killed or self._dropped):
                raise
            if self._task is not None:
                self._task.uncancel()
        except FramingError as exc:
            log.info("session %d: framing error: %s", self.session_id, exc)
        except ClientNotReading:
            pass  # logged by _drain
        except (ConnectionError, OSError, EOFError) as exc:
            log.info("session %d: connection lost: %s", self.session_id, exc)
        except Exception:  # asyncssh errors (BreakReceived, ...) and the like
            log.warning("session %d: ended by an error", self.session_id, exc_info=True)
        finally:
            self._finishing = True
            self._close_writer()
            try:
                if self.registry is not None:
                    await self.registry._session_closed(self)
            finally:
                self._done.set()
                log.info("session %d (%s) closed", self.session_id, self.user)

    async def kill(self) -> None:
        """End this session on behalf of another one (``kill-session``).

        The channel is closed and the ``on_close`` callbacks have run when this
        returns.  An operation the session is executing is not interrupted
        half-way: kill waits for that handler call to finish and drops its
        reply.  Calling it from the session's own task only marks it closing.
        """
        if self.closed:
            return
        self.killed = True
        self.closing = True
        if not self._started:
            self._close_writer()
            if self.registry is not None:
                await self.registry._session_closed(self)
            self._done.set()
            return
        if self._task is asyncio.current_task():
            return
        self._close_writer()
        if not (self._in_handler or self._finishing) and self._task is not None:
            self._task.cancel()
        await self._done.wait()

    async def wait_closed(self) -> None:
        """Wait until the session has ended."""
        await self._done.wait()

    # -- internals ----------------------------------------------------------

    def _close_writer(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:  # already closed / connection gone
                log.debug("session %d: close failed", self.session_id, exc_info=True)

    async def send_notification(self, msg: bytes) -> bool:
        """Send a <notification> between replies; False when the session cannot take it."""
        if self._writer is None or self._framer is None or self.closing or self.killed:
            return False
        if self._done.is_set():
            return False
        try:
            await self._send(self._writer, self._framer, msg)
        except Exception:  # connection gone: the reader side will end the session
            log.debug("session %d: notification not sent", self.session_id, exc_info=True)
            return False
        return True

    async def _send(self, writer: ByteWriter, framer: Framer, msg: bytes) -> None:
        writer.write(framer.encode(msg))
        await self._drain(writer)

    async def _drain(self, writer: ByteWriter) -> None:
        """Wait until the client takes what was written; drop a client that takes nothing.

        A client still reading, however slowly, is waited for: the session is
        dropped only when ``send_timeout`` seconds pass without the writer's
        buffer shrinking (or in all, when the writer cannot tell its buffer).
        """
        if self.send_timeout is None:
            await writer.drain()
            return
        before = buffered(writer)
        while True:
            try:
                async with asyncio.timeout(self.send_timeout):
                    await writer.drain()
                return
            except TimeoutError:
                now = buffered(writer)
                if now is not None and before is not None and now < before:
                    before = now
                    continue
            self._drop(f"the client read nothing for {self.send_timeout:g} s")
            raise ClientNotReading(self.session_id)

    def _drop(self, reason: str) -> None:
        """End the session at once for a misbehaving client (its unread data is discarded)."""
        if self._dropped or self._done.is_set():
            return
        log.warning("session %d (%s from %s) dropped: %s", self.session_id, self.user,
                    self.source_host, reason)
        self._dropped = True
        self.closing = True
        abort = getattr(self._writer, "abort", None)
        if callable(abort):
            try:
                abort()
            except Exception:  # connection already gone
                log.debug("session %d: abort failed", self.session_id, exc_info=True)
        else:
            self._close_writer()
        if (self._task is not None and self._task is not asyncio.current_task()
                and not (self._in_handler or self._finishing)):
            self._task.cancel()

    async def _serve(self, reader: ByteReader, writer: ByteWriter) -> None:
        framer = Framer(self.max_message_size)
        pending: list[bytes] = []
        try:
            async with asyncio.timeout(self.hello_timeout):
                await self._send(writer, framer, self.hello())
                while not pending:
                    data = await reader.read(READ_SIZE)
                    if not data:
                        return
                    pending = framer.feed(data, limit=1)
        except TimeoutError:
            log.warning("session %d (%s from %s): no <hello> within %g s; closed",
                        self.session_id, self.user, self.source_host, self.hello_timeout)
            return
        if not self._accept_hello(pending[0]):
            if self.registry is not None:
                self.registry.bad_hellos += 1
            return
        if self.base11:
            framer.switch_to_chunked()
        self._framer = framer
        if self.registry is not None:
            await self.registry._session_started(self)
        pending = await self._feed(writer, framer, b"")  # what came with the hello
        while True:
            for msg in pending:
                if self.closing:
                    return
                self.in_rpcs += 1
                self._in_handler = True
                try:
                    reply = await self._call_handler(msg)
                finally:
                    self._in_handler = False
                if self.killed:
                    return
                if reply:
                    await self._send(writer, framer, reply)
                if self.closing:
                    return
            data = await reader.read(READ_SIZE)
            if not data:
                return
            pending = await self._feed(writer, framer, data)

    async def _feed(self, writer: ByteWriter, framer: Framer, data: bytes) -> list[bytes]:
        """The messages ``data`` completes; a message over the size limit is answered with a
        too-big rpc-error, then the session is closed (RFC 6242 section 3)."""
        try:
            return framer.feed(data)
        except MessageTooBig as exc:
            await self._send(writer, framer, error_reply({}, TooBig(
                f"a NETCONF message over {exc.limit} bytes is not read: the session is "
                "closed", type="rpc")))
            raise

    def _accept_hello(self, msg: bytes) -> bool:
        """Validate the client hello; False closes the session (RFC 6241 8.1)."""
        hello = read_client_hello(msg, self.capabilities)
        self.client_capabilities = hello.capabilities
        if hello.refused is not None:
            log.info("session %d: %s", self.session_id, hello.refused)
            return False
        self.base11 = hello.base11
        return True

    async def _call_handler(self, msg: bytes) -> bytes | None:
        try:
            return await self.handler(self, msg)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("session %d: handler failed", self.session_id)
            return operation_failed(msg)
