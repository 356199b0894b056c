"""Sans-I/O NETCONF message framing (RFC 6242).

Two framings exist:

* base:1.0 -- end-of-message framing: every message is followed by ``]]>]]>``.
* base:1.1 -- chunked framing: a message is a sequence of chunks
  ``\\n#<size>\\n<size bytes>`` terminated by ``\\n##\\n``.

Both peers always start with end-of-message framing (the ``<hello>`` exchange)
and switch to chunked framing when both announced
``urn:ietf:params:netconf:base:1.1``.  :class:`Framer` does no I/O: the caller
feeds it received bytes and gets complete messages back, and asks it to encode
outgoing messages.
"""

from __future__ import annotations

EOM = b"]]>]]>"
"""The base:1.0 end-of-message marker."""

DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024
"""Largest message (in bytes) accepted by default: 64 MiB."""

MAX_CHUNK_SIZE = 4294967295
"""Largest chunk size allowed by RFC 6242 (2^32 - 1)."""

SEND_CHUNK_SIZE = 16 * 1024
"""Size of the chunks an outgoing message is cut into. A client that looks for the next
delimiter in all it has buffered (ncclient decodes its whole buffer again for every 4 KiB it
reads) does quadratic work on one large chunk: a 4.5 MB reply (the whole list of 10,000
VPNs) sent as one chunk took it seconds. Small chunks are consumed as they arrive."""

_MAX_SIZE_DIGITS = len(str(MAX_CHUNK_SIZE))
_WHITESPACE = b" \t\r\n"


class FramingError(Exception):
    """The peer violated the framing protocol; the session must be closed."""


class MessageTooBig(FramingError):
    """A message is larger than ``limit`` bytes: it is not read (RFC 6242 lets a server close
    the session; ours first answers with a ``too-big`` rpc-error, northbound/session.py)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"message exceeds maximum size ({limit} bytes)")
        self.limit = limit


class Framer:
    """Incremental RFC 6242 decoder and encoder for one NETCONF session."""

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        """Create a framer in base:1.0 (end-of-message) mode.

        ``max_message_size`` bounds the size of one decoded message; a larger
        message raises :class:`FramingError`.
        """
        if max_message_size < 1:
            raise ValueError("max_message_size must be positive")
        self.max_message_size = max_message_size
        self._chunked = False
        self._buf = bytearray()
        # base:1.0 state: offset from which to resume searching for EOM.
        self._search_from = 0
        # base:1.1 state: bytes still expected in the current chunk (0 when
        # a chunk header is expected) and the chunks of the current message.
        self._chunk_left = 0
        self._parts: list[bytes] = []
        self._msg_len = 0

    @property
    def chunked(self) -> bool:
        """True once :meth:`switch_to_chunked` was called."""
        return self._chunked

    @property
    def buffered(self) -> int:
        """Number of received bytes not yet returned as part of a message."""
        return len(self._buf) + self._msg_len

    def switch_to_chunked(self) -> None:
        """Use base:1.1 chunked framing from now on, in both directions.

        Bytes already buffered but not yet decoded are interpreted with the
        chunked framing; call ``feed(b"")`` to decode them.
        """
        self._chunked = True
        self._search_from = 0

    def encode(self, msg: bytes) -> bytes:
        """Frame one outgoing message for the current framing mode."""
        if not self._chunked:
            return bytes(msg) + EOM
        if not msg:
            raise ValueError("cannot send an empty message with chunked framing")
        if len(msg) <= SEND_CHUNK_SIZE:
            return b"\n#%d\n" % len(msg) + bytes(msg) + b"\n##\n"
        view = memoryview(msg)
        parts: list[bytes | memoryview] = []
        for i in range(0, len(view), SEND_CHUNK_SIZE):
            piece = view[i:i + SEND_CHUNK_SIZE]
            parts += (b"\n#%d\n" % len(piece), piece)
        parts.append(b"\n##\n")
        return b"".join(parts)

    def feed(self, data: bytes, limit: int | None = None) -> list[bytes]:
        """Add received bytes and return the complete messages now available.

        With ``limit`` at most that many messages are decoded; the remaining
        bytes stay buffered (useful to stop right after the ``<hello>`` and
        switch framing before decoding what follows).  Raises
        :class:`FramingError` on a protocol violation or an oversized message;
        the framer is then unusable.
        """
        self._buf += data
        out: list[bytes] = []
        while limit is None or len(out) < limit:
            msg = self._next_chunked() if self._chunked else self._next_eom()
            if msg is None:
                break
            out.append(msg)
        return out

    # -- base:1.0 ----------------------------------------------------------

    def _next_eom(self) -> bytes | None:
        while True:
            idx = self._buf.find(EOM, self._search_from)
            if idx < 0:
                if len(self._buf) > self.max_message_size + len(EOM):
                    raise MessageTooBig(self.max_message_size)
                self._search_from = max(0, len(self._buf) - len(EOM) + 1)
                return None
            if idx > self.max_message_size:
                raise MessageTooBig(self.max_message_size)
            msg = bytes(self._buf[:idx]).strip(_WHITESPACE)
            del self._buf[: idx + len(EOM)]
            self._search_from = 0
            if msg:  # whitespace between messages is not a message
                return msg

    # -- base:1.1 ----------------------------------------------------------

    def _next_chunked(self) -> bytes | None:
        buf = self._buf
        while True:
            if self._chunk_left:
                take = min(self._chunk_left, len(buf))
                if not take:
                    return None
                self._parts.append(bytes(buf[:take]))
                del buf[:take]
                self._chunk_left -= take
                continue
            # Expecting a chunk header "\n#<size>\n" or end-of-chunks "\n##\n".
            if not buf:
                return None
            if buf[0:1] != b"\n":
                raise FramingError("chunk header does not start with LF")
            if len(buf) < 2:
                return None
            if buf[1:2] != b"#":
                raise FramingError("chunk header: expected '#'")
            if len(buf) < 3:
                return None
            if buf[2:3] == b"#":
                if len(buf) < 4:
                    return None
                if buf[3:4] != b"\n":
                    raise FramingError("end-of-chunks marker not terminated by LF")
                del buf[:4]
                if not self._parts:
                    raise FramingError("end-of-chunks without any chunk")
                msg = b"".join(self._parts)
                self._parts = []
                self._msg_len = 0
                return msg
            size = self._parse_size(buf)
            if size is None:
                return None
            if self._msg_len + size > self.max_message_size:
                raise MessageTooBig(self.max_message_size)
            self._msg_len += size
            self._chunk_left = size

    def _parse_size(self, buf: bytearray) -> int | None:
        """Parse the chunk size after "\\n#"; consume the header when complete."""
        end = buf.find(b"\n", 2, 2 + _MAX_SIZE_DIGITS + 1)
        digits = bytes(buf[2:end]) if end >= 0 else bytes(buf[2 : 2 + _MAX_SIZE_DIGITS + 1])
        if not digits.isdigit() and digits:
            raise FramingError("chunk size is not a decimal number")
        if digits[:1] == b"0":
            raise FramingError("chunk size has a leading zero or is zero")
        if end < 0:
            if len(digits) > _MAX_SIZE_DIGITS:
                raise FramingError("chunk size too long")
            return None
        if not digits:
            raise FramingError("empty chunk size")
        size = int(digits)
        if size > MAX_CHUNK_SIZE:
            raise FramingError("chunk size exceeds 4294967295")
        del buf[: end + 1]
        return size
