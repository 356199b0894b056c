"""Thin, typed wrapper over ``vici.Session`` talking to charon on a unix socket.

Every call is blocking; run it through ``asyncio.to_thread`` from async code. charon's
``success: no`` answers are raised as :class:`ViciError` carrying charon's errmsg; transport
problems (charon gone, socket missing, timeouts) surface as :class:`ViciConnectionError`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import vici
from vici.exception import CommandException, SessionException
from vici.protocol import Message, Packet

from southbound import vici_encode
from southbound.vici_stream import answer, requested, streamed

DEFAULT_TIMEOUT = 30.0
# charon's VICI plugin refuses (closes the session on) any segment above 512 KiB; the README
# of the plugin says so and vici.protocol.Transport.MAX_SEGMENT holds the same number.
MAX_MESSAGE = 512 * 1024


class ViciError(Exception):
    """charon answered a command with ``success: no``; ``errmsg`` is charon's message and
    ``logs`` the ``control-log`` messages it streamed meanwhile (initiate, terminate)."""

    def __init__(self, command: str, errmsg: str, logs: tuple[str, ...] = ()) -> None:
        super().__init__(f"{command}: {errmsg}")
        self.command = command
        self.errmsg = errmsg
        self.logs = logs


class ViciConnectionError(ConnectionError):
    """The VICI socket could not be reached or the session broke."""


class ViciEncodingError(ValueError):
    """A message VICI cannot carry: a value longer than 65,535 bytes or a name over 255 (VICI
    encodes their lengths in 16 and 8 bits), or a whole message over :data:`MAX_MESSAGE`."""


def encoded_request(command: str, message: Mapping[str, Any]) -> bytes:
    """The VICI packet (without the length header) sending ``message`` with ``command``,
    whatever its size. Raises :class:`ViciEncodingError` where VICI cannot encode a name or
    a value."""
    try:
        return vici_encode.request(command, message)  # vici.Packet.request's bytes, faster
    except vici_encode.ViciTooLong:
        raise ViciEncodingError(f"{command}: a value is longer than VICI's limit of 65535 "
                                "bytes (or a name longer than 255)") from None


def checked_size(command: str, packet: bytes) -> bytes:
    """``packet`` if charon's VICI takes a message of its size, else
    :class:`ViciEncodingError`."""
    if len(packet) > MAX_MESSAGE:
        raise ViciEncodingError(f"{command} message is {len(packet)} bytes; charon's VICI "
                                f"accepts at most {MAX_MESSAGE} bytes per message")
    return packet


def encode_request(command: str, message: Mapping[str, Any]) -> bytes:
    """The VICI packet (without the length header) sending ``message`` with ``command``.

    Raises :class:`ViciEncodingError` when charon could not take it."""
    return checked_size(command, encoded_request(command, message))


def request_size(command: str, message: Mapping[str, Any]) -> int:
    """Bytes of the VICI segment that sends ``message`` with ``command`` (header excluded).
    Raises :class:`ViciEncodingError` where VICI cannot encode a name or a value."""
    return len(encoded_request(command, message))


def _s(value: Any) -> str:
    """Decode a VICI value (bytes) to str."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _ints(values: Any) -> dict[str, int]:
    # int() reads ASCII digits from bytes itself (get-counters all=yes: 21 per VPN)
    return {_s(k): int(v) if type(v) is bytes else int(_s(v))
            for k, v in (values or {}).items()}


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

    def read_counters(self) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
        """The counters plugin's IKE message counters in two requests: the global ones, and
        ``{conn: {counter: value}}`` of every connection (get-counters all=yes). Raises
        :class:`ViciError` without the plugin."""
        total = self.counters()
        # decoded by vici_stream (vici's own decoder was most of this request's time)
        per_conn = self._call("get-counters", lambda: requested(
            self._session, self._sock, "get-counters", {"all": "yes"}))
        return total, {_s(c): _ints(v) for c, v in (per_conn.get("counters") or {}).items()}

    def counters_answer(self) -> bytes:
        """get-counters all=yes's answer as charon sent it, not decoded (decoded by
        ``vici_stream.checked``; see ``southbound/sa_packets.py``)."""
        return self._call("get-counters", lambda: answer(
            self._session, self._sock, "get-counters", {"all": "yes"}))

    def counters(self, name: str | None = None) -> dict[str, int]:
        """The counters plugin's IKE message counters, global or of connection ``name`` (one
        get-counters). Raises :class:`ViciError` without the plugin, or when ``name`` has
        none yet ("no counters found for this connection")."""
        reply = self._call("get-counters", self._session.get_counters,
                           {"name": name} if name else {})
        return _ints((reply.get("counters") or {}).get(name or ""))  # section names are str

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
        # decoded by vici_stream (plain dicts, not the package's OrderedDicts): the
        # package's decoder was most of the deep read-back of 10,000 connections
        return self._call("list-conns", lambda: streamed(self._session, self._sock,
                                                         "list-conns", "list-conn", filters))

    def list_sas(self, ike: str | None = None, ike_id: int | None = None) -> list[dict]:
        """``list-sas`` entries, each ``{ike_name: {...}}`` with bytes values (of connection
        ``ike``, or only the IKE SA with unique id ``ike_id``)."""
        filters: dict[str, str] | None = {"ike": ike} if ike is not None else None
        if ike_id is not None:
            filters = {**(filters or {}), "ike-id": str(ike_id)}
        # decoded by vici_stream: vici's own decoder was most of a read of 1,000 SAs
        return self._call("list-sas", lambda: streamed(self._session, self._sock, "list-sas",
                                                       "list-sa", filters))

    def list_sas_packets(self, each: Callable[[bytes], Any] | None = None) -> list[Any]:
        """Every IKE SA's ``list-sas`` message as charon sent it, not decoded (see
        ``southbound/sa_packets.py``); passed to ``each`` as it comes, when given."""
        return self._call("list-sas", lambda: streamed(self._session, self._sock, "list-sas",
                                                       "list-sa", None, each, raw=True))

    def initiate(self, child: str | None = None, ike: str | None = None,
                 timeout_ms: int = 10000) -> list[dict[str, str]]:
        """Initiate a CHILD SA (and its IKE SA); wait at most ``timeout_ms`` (-1: don't wait).

        Returns charon's ``control-log`` events (each with ``msg``, ``ikesa-name``,
        ``ikesa-uniqueid``... as text); a failure raises :class:`ViciError` carrying them."""
        if child is None and ike is None:
            raise ValueError("initiate needs a child or an ike name")
        msg: dict[str, Any] = {"timeout": str(timeout_ms), "init-limits": "no"}
        if child is not None:
            msg["child"] = child
        if ike is not None:
            msg["ike"] = ike
        return self._control("initiate", msg, timeout_ms)[1]

    def terminate(self, ike: str | None = None, timeout_ms: int = 5000, force: bool = False,
                  *, child: str | None = None, ike_id: int | None = None,
                  child_id: int | None = None) -> int:
        """Terminate the IKE SAs of connection ``ike`` (or the CHILD SAs named ``child``, or
        the IKE SA ``ike_id``, or the CHILD SA ``child_id``; selectors combine); wait at most
        ``timeout_ms`` (-1: don't). Returns how many SAs were terminated."""
        msg = _selector(ike, child, ike_id, child_id)
        msg.update({"timeout": str(timeout_ms), "force": "yes" if force else "no"})
        reply, _ = self._control("terminate", msg, timeout_ms)
        return int(_s(reply.get("terminated", b"0")) or 0)

    def trap_policies(self) -> list[tuple[str, str]]:
        """(connection, CHILD SA config) of every trap policy charon has installed."""
        out = []
        for entry in self._stream("list-policies", self._session.list_policies,
                                  {"trap": "yes"}):
            for key, pol in entry.items():
                ike, _, child = _s(key).partition("/")
                out.append((_s(pol.get("ike", ike)), _s(pol.get("child", child))))
        return out

    def uninstall(self, ike: str, child: str) -> None:
        """Uninstall the trap policy of CHILD SA config ``child`` of connection ``ike``."""
        self._call("uninstall", self._session.uninstall, {"ike": ike, "child": child})

    def rekey(self, ike: str | None = None, *, child: str | None = None,
              ike_id: int | None = None, child_id: int | None = None,
              reauth: bool = False) -> int:
        """Start rekeying the matching SAs (selectors as :meth:`terminate`; ``reauth``: an
        IKE SA is re-authenticated instead). charon does not wait for the exchange. Returns
        how many SAs matched."""
        msg = _selector(ike, child, ike_id, child_id)
        if reauth:
            msg["reauth"] = "yes"
        reply = self._call("rekey", self._session.rekey, msg)
        return int(_s(reply.get("matches", b"0")) or 0)

    def reset_counters(self, name: str | None = None) -> None:
        """Reset the counters of connection ``name``, or every counter: those of every
        connection (``all``) and the global ones (no name), which charon resets apart."""
        for msg in ([{"name": name}] if name is not None else [{"all": "yes"}, {}]):
            self._call("reset-counters", self._session.reset_counters, msg)

    def _control(self, command: str, message: Mapping[str, Any],
                 timeout_ms: int) -> tuple[dict, list[dict[str, str]]]:
        """A command streaming ``control-log`` events (initiate, terminate): its reply and the
        events, kept also when charon answers ``success: no`` (then in the ViciError)."""
        packet = encode_request(command, message)
        events: list[dict[str, str]] = []

        def run() -> dict:
            session = self._session
            session._register_unregister("control-log", True)
            try:
                session.transport.send(packet)
                while True:
                    response = Packet.parse(session.transport.receive())
                    if response.response_type != Packet.EVENT:
                        break
                    event = Message.deserialize(response.payload)
                    events.append({_s(k): _s(v) for k, v in event.items()})
            finally:
                session._register_unregister("control-log", False)
            if response.response_type != Packet.CMD_RESPONSE:
                raise SessionException(f"unexpected response type {response.response_type}")
            return Message.deserialize(response.payload)

        reply = self._with_timeout(timeout_ms, lambda: self._call(command, run))
        if reply.get("success", b"yes") != b"yes":
            raise ViciError(command, _s(reply.get("errmsg", b"")),
                            tuple(e.get("msg", "") for e in events))
        return reply, events

    def _with_timeout(self, timeout_ms: int, fn: Any) -> Any:
        """Run ``fn`` with the socket timeout raised above charon's own ``timeout_ms``."""
        if timeout_ms > 0:
            self._sock.settimeout(max(self.timeout, timeout_ms / 1000 + 5))
        try:
            return fn()
        finally:
            self._sock.settimeout(self.timeout)


def _selector(ike: str | None, child: str | None, ike_id: int | None,
              child_id: int | None) -> dict[str, Any]:
    """The SA selector of terminate and rekey; at least one is needed."""
    msg: dict[str, Any] = {}
    for key, value in (("ike", ike), ("child", child), ("ike-id", ike_id),
                       ("child-id", child_id)):
        if value is not None:
            msg[key] = str(value)
    if not msg:
        raise ValueError("an SA selector is needed: ike, child, ike_id or child_id")
    return msg
