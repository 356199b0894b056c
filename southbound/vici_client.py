"""Thin, typed wrapper over ``vici.Session`` talking to charon on a unix socket.

Every call is blocking; run it through ``asyncio.to_thread`` from async code. charon's
``success: no`` answers are raised as :class:`ViciError` carrying charon's errmsg; transport
problems (charon gone, socket missing, timeouts) surface as :class:`ViciConnectionError`.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import vici
from vici.exception import CommandException, SessionException
from vici.protocol import Message, Packet

DEFAULT_TIMEOUT = 30.0
# charon's VICI plugin refuses (closes the session on) any segment above 512 KiB; the README
# of the plugin says so and vici.protocol.Transport.MAX_SEGMENT holds the same number.
MAX_MESSAGE = 512 * 1024


class ViciError(Exception):
    """charon answered a command with ``success: no``; ``errmsg`` is charon's message."""

    def __init__(self, command: str, errmsg: str) -> None:
        super().__init__(f"{command}: {errmsg}")
        self.command = command
        self.errmsg = errmsg


class ViciConnectionError(ConnectionError):
    """The VICI socket could not be reached or the session broke."""


class ViciEncodingError(ValueError):
    """A message VICI cannot carry: a value longer than 65,535 bytes or a name over 255 (VICI
    encodes their lengths in 16 and 8 bits), or a whole message over :data:`MAX_MESSAGE`."""


def encode_request(command: str, message: Mapping[str, Any]) -> bytes:
    """The VICI packet (without the length header) sending ``message`` with ``command``.

    Raises :class:`ViciEncodingError` when charon could not take it."""
    try:
        packet = Packet.request(command, Message.serialize(message))
    except struct.error:
        raise ViciEncodingError(f"{command}: a value is longer than VICI's limit of 65535 "
                                "bytes (or a name longer than 255)") from None
    if len(packet) > MAX_MESSAGE:
        raise ViciEncodingError(f"{command} message is {len(packet)} bytes; charon's VICI "
                                f"accepts at most {MAX_MESSAGE} bytes per message")
    return packet


def request_size(command: str, message: Mapping[str, Any]) -> int:
    """Bytes of the VICI segment that sends ``message`` with ``command`` (header excluded)."""
    try:
        return len(Packet.request(command, Message.serialize(message)))
    except struct.error:
        raise ViciEncodingError(f"{command}: a value is longer than VICI's limit of 65535 "
                                "bytes (or a name longer than 255)") from None


def _s(value: Any) -> str:
    """Decode a VICI value (bytes) to str."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _errmsg(exc: CommandException) -> str:
    msg = str(exc)
    prefix = "Command failed: "
    return msg[len(prefix):] if msg.startswith(prefix) else msg


class _BoundedSocket(socket.socket):
    """A socket whose timeout cannot be lifted: ``vici.Transport`` sets it to None while it
    reads the rest of a message, so a daemon that stops midway would block the reader for
    ever."""

    def settimeout(self, value: float | None) -> None:
        if value is not None:
            super().settimeout(value)


class ViciClient:
    """A VICI session on ``socket_path``; use as a context manager or call :meth:`close`."""

    def __init__(self, socket_path: str | Path, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.socket_path = str(socket_path)
        self.timeout = timeout
        sock = _BoundedSocket(socket.AF_UNIX)
        sock.settimeout(timeout)
        try:
            sock.connect(self.socket_path)
        except OSError as exc:
            sock.close()
            raise ViciConnectionError(f"cannot connect to {self.socket_path}: {exc}") from exc
        self._sock = sock
        self._session = vici.Session(sock)

    def __repr__(self) -> str:
        return f"ViciClient({self.socket_path!r})"

    def __enter__(self) -> ViciClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the session."""
        try:
            self._sock.close()
        except OSError:
            pass

    # -- plumbing ---------------------------------------------------------------------------

    def _call(self, command: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except CommandException as exc:
            raise ViciError(command, _errmsg(exc)) from None
        except (OSError, SessionException) as exc:
            raise ViciConnectionError(f"{command}: {exc}") from exc

    def _stream(self, command: str, fn: Any, *args: Any) -> list[dict]:
        def consume() -> list[dict]:
            return list(fn(*args))
        return self._call(command, consume)

    # -- commands ---------------------------------------------------------------------------

    def version(self) -> dict[str, str]:
        """charon's version information."""
        return {k: _s(v) for k, v in self._call("version", self._session.version).items()}

    def stats(self) -> dict:
        """charon's statistics (raw VICI dict with bytes values)."""
        return self._call("stats", self._session.stats)

    def _checked_request(self, command: str, message: Mapping[str, Any]) -> None:
        """A command whose message is encoded once, refused (:class:`ViciEncodingError`)
        before sending when charon could not take it."""
        packet = encode_request(command, message)

        def send() -> None:
            # vici.Session.request would encode the message a second time
            response = self._session._communicate(packet)
            if response.response_type != Packet.CMD_RESPONSE:
                raise SessionException(f"unexpected response type {response.response_type}")
            reply = Message.deserialize(response.payload)
            if reply.get("success", b"yes") != b"yes":
                raise CommandException("Command failed: " + _s(reply.get("errmsg", b"")))
        self._call(command, send)

    def reload_settings(self) -> None:
        """``reload-settings``: charon reads strongswan.conf again."""
        self._call("reload-settings", self._session.reload_settings)

    def load_conn(self, name: str, conn: Mapping[str, Any]) -> None:
        """Load (or replace) connection ``name`` with the load-conn payload ``conn``.

        Raises :class:`ViciEncodingError` (nothing sent) when charon could not take it."""
        self._checked_request("load-conn", {name: dict(conn)})

    def unload_conn(self, name: str) -> None:
        """Unload connection ``name``."""
        self._call("unload-conn", self._session.unload_conn, {"name": name})

    def load_shared(self, ident: str, secret: Mapping[str, Any]) -> None:
        """Load (or replace) the shared secret with unique id ``ident``.

        Raises :class:`ViciEncodingError` (nothing sent) when charon could not take it."""
        self._checked_request("load-shared", {"id": ident, **secret})

    def unload_shared(self, ident: str) -> None:
        """Unload the shared secret with unique id ``ident``."""
        self._call("unload-shared", self._session.unload_shared, {"id": ident})

    def get_conns(self) -> set[str]:
        """Names of the connections loaded over VICI."""
        reply = self._call("get-conns", self._session.get_conns)
        return {_s(n) for n in reply.get("conns", [])}

    def get_shared(self) -> set[str]:
        """Unique ids of the shared secrets loaded over VICI."""
        reply = self._call("get-shared", self._session.get_shared)
        return {_s(n) for n in reply.get("keys", [])}

    def list_conns(self, ike: str | None = None) -> list[dict]:
        """``list-conns`` entries, each ``{name: {...}}`` with bytes values."""
        filters = {"ike": ike} if ike is not None else None
        return self._stream("list-conns", self._session.list_conns, filters)

    def list_sas(self, ike: str | None = None) -> list[dict]:
        """``list-sas`` entries, each ``{ike_name: {...}}`` with bytes values."""
        filters = {"ike": ike} if ike is not None else None
        return self._stream("list-sas", self._session.list_sas, filters)

    def initiate(self, child: str | None = None, ike: str | None = None,
                 timeout_ms: int = 10000) -> None:
        """Initiate a CHILD SA (and its IKE SA); wait at most ``timeout_ms`` (-1: don't wait)."""
        if child is None and ike is None:
            raise ValueError("initiate needs a child or an ike name")
        msg: dict[str, Any] = {"timeout": str(timeout_ms), "init-limits": "no"}
        if child is not None:
            msg["child"] = child
        if ike is not None:
            msg["ike"] = ike
        self._with_timeout(timeout_ms, lambda: self._stream(
            "initiate", self._session.initiate, msg))

    def terminate(self, ike: str, timeout_ms: int = 5000, force: bool = False) -> None:
        """Terminate the IKE SAs of connection ``ike``; wait at most ``timeout_ms`` (-1: don't)."""
        msg = {"ike": ike, "timeout": str(timeout_ms), "force": "yes" if force else "no"}
        self._with_timeout(timeout_ms, lambda: self._stream(
            "terminate", self._session.terminate, msg))

    def _with_timeout(self, timeout_ms: int, fn: Any) -> None:
        """Run ``fn`` with the socket timeout raised above charon's own ``timeout_ms``."""
        if timeout_ms > 0:
            self._sock.settimeout(max(self.timeout, timeout_ms / 1000 + 5))
        try:
            fn()
        finally:
            self._sock.settimeout(self.timeout)
