"""A wire-level fake charon: a VICI server on a unix socket, with fault injection.

:class:`FakeCharon` listens on a unix socket and speaks the real VICI protocol (strongSwan's
``src/libcharon/plugins/vici/README.md``): every packet is a segment prefixed with its 32-bit
big-endian length; its first byte is the packet type, named packets (``CMD_REQUEST``,
``EVENT_REGISTER``, ``EVENT_UNREGISTER``, ``EVENT``) carry a 1-byte name length and the name,
and requests, responses and events carry an encoded message (sections, key/values, lists). The
message encoding is the ``vici`` package's own codec (:mod:`vici.protocol`); the server loop is
ours. Each client session is served by its own thread, so several sessions work in parallel, as
with charon.

The model (shared by all sessions, guarded by :attr:`FakeCharon.lock`) holds what the commands
manage: :attr:`~FakeCharon.conns` (load-conn payloads by name), :attr:`~FakeCharon.shared`
(load-shared payloads by unique id), :attr:`~FakeCharon.sas` (what list-sas streams, set by the
test), :attr:`~FakeCharon.stats` and :attr:`~FakeCharon.version`. Requests are decoded to
*text form*: values are ``str`` (``bytes`` if not UTF-8), lists of them and nested dicts;
values of secret keys (``data``, ``pin``, ``secret``, ``password``) are :class:`Secret` bytes,
whose ``repr`` never shows them. Replies mirror charon's shapes (``success: yes|no`` and
``errmsg`` with charon's own messages).

Fault injection: :meth:`~FakeCharon.refuse` (answer ``success: no``), :meth:`~FakeCharon.drop`
(close the client's connection instead of answering, as charon does on an oversized message)
and :meth:`~FakeCharon.hang` (never answer, like a SIGSTOPped charon, until
:meth:`~FakeCharon.resume`), each once or permanent, for any command or only for requests
matching a predicate. :meth:`~FakeCharon.restart` simulates a charon restart (sessions dropped,
state lost); :meth:`~FakeCharon.emit` pushes an event (``ike-updown``...) to its listeners.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from vici.protocol import FiniteStream, Message, Packet

#: charon's VICI_MESSAGE_SIZE_MAX: a longer segment makes charon close the connection.
MAX_MESSAGE_SIZE = 512 * 1024

#: Longest usable unix socket path (sun_path is 108 bytes with the terminating NUL).
MAX_SOCKET_PATH = 107

#: Events charon accepts registrations for (vici_query, vici_control, vici_logger plugins).
KNOWN_EVENTS = frozenset({
    "log", "control-log", "alert",
    "list-sa", "list-policy", "list-conn", "list-cert", "list-authority",
    "ike-updown", "ike-rekey", "ike-update", "child-updown", "child-rekey",
})

#: Request keys whose values are key material, kept as :class:`Secret`.
SECRET_KEYS = frozenset({"data", "pin", "secret", "password"})

#: Pseudo-commands naming event (un)registrations in rules; their message is ``{"event": name}``.
REGISTER = "register"
UNREGISTER = "unregister"

DEFAULT_VERSION: dict[str, str] = {
    "daemon": "charon", "version": "5.9.13", "sysname": "Linux",
    "release": "6.1.0-fake", "machine": "x86_64",
}

Predicate = Callable[[dict[str, Any]], bool]


class Secret(bytes):
    """Key material received from a client: bytes whose repr/str never show the value."""

    def __repr__(self) -> str:
        return "Secret(<redacted>)"

    __str__ = __repr__


class Call(NamedTuple):
    """One command request received: its name and its message in text form."""

    command: str
    message: dict[str, Any]


@dataclass
class Rule:
    """A fault-injection rule; see :meth:`FakeCharon.refuse`, :meth:`~FakeCharon.drop`,
    :meth:`~FakeCharon.hang`. ``hits`` counts the requests it caught; :meth:`cancel` disarms it.
    """

    action: str  # "refuse" | "drop" | "hang"
    command: str  # a command name, "register"/"unregister", or "*" for every request
    predicate: Predicate | None = None
    errmsg: str = ""
    once: bool = False
    hits: int = 0
    active: bool = True

    def matches(self, command: str, message: dict[str, Any]) -> bool:
        """Whether this rule catches ``command`` with ``message`` (predicate errors propagate)."""
        if not self.active or self.command not in ("*", command):
            return False
        return self.predicate is None or bool(self.predicate(message))

    def cancel(self) -> None:
        """Disarm the rule."""
        self.active = False


@dataclass(eq=False)
class _Session:
    """One client connection."""

    ident: int
    sock: socket.socket
    events: set[str] = field(default_factory=set)
    send_lock: threading.Lock = field(default_factory=threading.Lock)
    closed: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def send(self, ptype: int, name: str | None = None,
             message: Mapping[str, Any] | None = None) -> None:
        """Send one packet (length-prefixed segment); raises OSError if the client is gone."""
        body = bytes([ptype])
        if name is not None:
            raw = name.encode("utf-8")
            body += bytes([len(raw)]) + raw
        if message is not None:
            body += Message.serialize(message)
        with self.send_lock:
            self.sock.sendall(struct.pack("!I", len(body)) + body)

    def close(self) -> None:
        """Close the connection (idempotent); wakes the thread blocked reading it."""
        if self.closed.is_set():
            return
        self.closed.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()


def _text(value: Any, key: str | None = None) -> Any:
    """A decoded VICI value in text form (see the module docstring)."""
    if isinstance(value, Mapping):
        return {str(k): _text(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_text(v, key) for v in value]
    if isinstance(value, bytes):
        if key in SECRET_KEYS:
            return Secret(value)
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value


def _copy(value: Any) -> Any:
    """Copy nested dicts/lists, keeping leaves (and their types) as they are."""
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _reply(errmsg: str | None = None, **extra: Any) -> dict[str, Any]:
    """charon's ``success``/``errmsg`` reply shape."""
    out: dict[str, Any] = {"success": "no" if errmsg else "yes", **extra}
    if errmsg:
        out["errmsg"] = errmsg
    return out


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value.decode() if isinstance(value, bytes) else value)
    except (TypeError, ValueError, UnicodeDecodeError):
        return default


def _str(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class FakeCharon:
    """An in-process VICI server on the unix socket ``path`` (see the module docstring).

    ``path=None`` creates a private temporary directory (removed by :meth:`close`); a given
    path must fit in a unix socket address (107 bytes). The server starts listening at once
    unless ``start=False``. Use as a context manager or call :meth:`close`.

    Public state (read it freely; mutate under :attr:`lock` while clients may be running):

    * ``conns``: ``{name: load-conn payload}``, ``shared``: ``{id: load-shared payload}``;
    * ``sas``: list of list-sas entries ``{ike_name: {..., "child-sas": {...}}}`` to stream;
    * ``stats``: the stats reply, or None for a default one counting ``sas``;
    * ``version``: the version reply;
    * ``calls``: every command request received, in order, as :class:`Call`;
    * ``initiated`` / ``terminated``: the messages of the initiate/terminate requests served;
    * ``establish``: when true, a served initiate adds an established IKE SA (or uses the
      connection's) with an installed CHILD SA to ``sas``; ``initiate_failure``: (errmsg, log
      lines) to answer every initiate with, after streaming the lines as control-log events;
    * ``rekeyed``: the messages of the rekey requests served (a rekeyed IKE SA gets a new
      unique id, a rekeyed CHILD SA a new unique id and new SPIs);
    * ``counters``: the counters plugin's ``{conn: {counter: value}}`` (``""``: global),
      for get-counters and reset-counters;
    * ``known_events``: event names clients may register for;
    * ``errors``: exceptions raised inside the server (a test can assert it stays empty);
    * ``connections``: how many client sessions were accepted so far.
    """

    def __init__(self, path: str | Path | None = None, *, start: bool = True) -> None:
        self._own_dir: str | None = None
        if path is None:
            self._own_dir = tempfile.mkdtemp(prefix="vici-")
            path = Path(self._own_dir) / "charon.vici"
        self.path = str(path)
        if len(os.fsencode(self.path)) > MAX_SOCKET_PATH:
            raise ValueError(f"unix socket path too long ({len(self.path)} bytes): {self.path}")
        self.lock = threading.RLock()
        self.conns: dict[str, dict[str, Any]] = {}
        self.shared: dict[str, dict[str, Any]] = {}
        self.sas: list[dict[str, Any]] = []
        self.stats: dict[str, Any] | None = None
        self.version: dict[str, str] = dict(DEFAULT_VERSION)
        self.calls: list[Call] = []
        self.initiated: list[dict[str, Any]] = []
        self.terminated: list[dict[str, Any]] = []
        self.establish = False
        self.initiate_failure: tuple[str, list[str]] | None = None
        self.rekeyed: list[dict[str, Any]] = []
        self.counters: dict[str, dict[str, int]] = {}
        self._next_id = 1000
        self.known_events: set[str] = set(KNOWN_EVENTS)
        self.errors: list[BaseException] = []
        self.connections = 0
        self._rules: list[Rule] = []
        self._sessions: dict[int, _Session] = {}
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._cond = threading.Condition(self.lock)
        self._resume_gen = 0
        self._started_at = time.time()
        self._handlers: dict[str, Callable[[_Session, dict[str, Any]], dict[str, Any]]] = {
            "version": self._version,
            "stats": self._stats,
            "load-conn": self._load_conn,
            "unload-conn": self._unload_conn,
            "get-conns": self._get_conns,
            "list-conns": self._list_conns,
            "load-shared": self._load_shared,
            "unload-shared": self._unload_shared,
            "get-shared": self._get_shared,
            "list-sas": self._list_sas,
            "initiate": self._initiate,
            "terminate": self._terminate,
            "rekey": self._rekey,
            "list-policies": self._list_policies,
            "uninstall": self._uninstall,
            "get-counters": self._get_counters,
            "reset-counters": self._reset_counters,
        }
        self._remote_access_handlers()
        if start:
            self.start()

    def __repr__(self) -> str:
        state = "listening" if self.listening else "stopped"
        return (f"FakeCharon({self.path!r}, {state}, {len(self.conns)} conns, "
                f"{len(self.shared)} shared, {len(self.sas)} sas, {len(self.calls)} calls)")

    def __enter__(self) -> FakeCharon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- life cycle -------------------------------------------------------------------------

    @property
    def listening(self) -> bool:
        """Whether the socket accepts connections."""
        return self._listener is not None

    @property
    def sessions(self) -> int:
        """Number of client sessions currently open."""
        with self.lock:
            return len(self._sessions)

    def start(self) -> None:
        """Bind the socket (replacing a stale file) and accept clients."""
        if self._listener is not None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        listener.listen(64)
        self._listener = listener
        self._started_at = time.time()
        self._accept_thread = threading.Thread(
            target=self._accept_loop, args=(listener,), name="fake-charon-accept", daemon=True)
        self._accept_thread.start()

    def stop(self) -> None:
        """Stop listening (the socket file disappears) and drop every client session.

        The model is kept: :meth:`start` serves it again.
        """
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                listener.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        if self._accept_thread is not None:
            self._accept_thread.join(2)
            self._accept_thread = None
        self.disconnect_all()

    def disconnect_all(self) -> None:
        """Close every client session (as if charon died), keeping the model and the socket."""
        with self.lock:
            sessions = list(self._sessions.values())
        for sess in sessions:
            sess.close()
        with self.lock:
            self._cond.notify_all()  # wake hung requests: their session is gone
        for sess in sessions:
            if sess.thread is not None and sess.thread is not threading.current_thread():
                sess.thread.join(2)

    def restart(self, *, keep_calls: bool = True) -> None:
        """Simulate a charon restart: sessions dropped, conns/shared/sas/stats lost, socket
        re-created. Rules stay armed; ``calls`` are kept unless ``keep_calls=False``."""
        self.stop()
        with self.lock:
            self.conns.clear()
            self.shared.clear()
            self.sas = []
            self.stats = None
            if not keep_calls:
                self.calls.clear()
                self.initiated.clear()
                self.terminated.clear()
        self.start()

    def close(self) -> None:
        """Stop serving for good and remove the socket (and the private directory, if any)."""
        self.stop()
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None

    # -- fault injection --------------------------------------------------------------------

    def refuse(self, command: str, predicate: Predicate | None = None,
               errmsg: str = "refused by fake charon", *, once: bool = False) -> Rule:
        """Answer matching requests with ``success: no`` and ``errmsg`` (nothing changes).

        ``command`` is a command name, ``"register"``/``"unregister"`` (answered with
        EVENT_UNKNOWN) or ``"*"``; ``predicate`` gets the request in text form.
        """
        return self._add_rule(Rule("refuse", command, predicate, errmsg, once))

    def drop(self, command: str, predicate: Predicate | None = None, *,
             once: bool = False) -> Rule:
        """Close the client's connection instead of answering matching requests."""
        return self._add_rule(Rule("drop", command, predicate, "", once))

    def hang(self, command: str, predicate: Predicate | None = None, *,
             once: bool = False) -> Rule:
        """Never answer matching requests, nor anything later on that session (like a
        SIGSTOPped charon), until :meth:`resume` or the client goes away."""
        return self._add_rule(Rule("hang", command, predicate, "", once))

    def resume(self) -> None:
        """SIGCONT: disarm every hang rule and let hung requests be served normally."""
        with self.lock:
            for rule in self._rules:
                if rule.action == "hang":
                    rule.cancel()
            self._resume_gen += 1
            self._cond.notify_all()

    def clear_rules(self) -> None:
        """Disarm every rule (hung requests stay hung until :meth:`resume`)."""
        with self.lock:
            for rule in self._rules:
                rule.cancel()
            self._rules.clear()

    @property
    def rules(self) -> list[Rule]:
        """The armed rules, in the order they are tried."""
        with self.lock:
            return [r for r in self._rules if r.active]

    def _add_rule(self, rule: Rule) -> Rule:
        with self.lock:
            self._rules.append(rule)
        return rule

    def _match(self, command: str, message: dict[str, Any]) -> Rule | None:
        """The first armed rule catching the request (a once rule is disarmed by it)."""
        with self.lock:
            for rule in self._rules:
                try:
                    hit = rule.matches(command, message)
                except Exception as exc:  # a broken predicate is the test's bug: report it
                    self.errors.append(exc)
                    hit = False
                if hit:
                    rule.hits += 1
                    if rule.once:
                        rule.cancel()
                    self._rules = [r for r in self._rules if r.active]
                    return rule
        return None

    # -- events and helpers for tests -------------------------------------------------------

    def emit(self, event: str, message: Mapping[str, Any]) -> int:
        """Send event ``event`` with ``message`` to every session registered for it.

        Returns how many sessions it reached. Unknown event names raise ValueError.
        """
        if event not in self.known_events:
            raise ValueError(f"unknown VICI event {event!r}")
        with self.lock:
            targets = [s for s in self._sessions.values() if event in s.events]
        sent = 0
        for sess in targets:
            try:
                sess.send(Packet.EVENT, event, message)
                sent += 1
            except OSError:
                sess.close()
        return sent

    def listeners(self, event: str) -> int:
        """How many sessions are registered for ``event``."""
        with self.lock:
            return sum(event in s.events for s in self._sessions.values())

    def wait_for(self, condition: Callable[[], bool], timeout: float = 2.0) -> bool:
        """Poll ``condition`` until true or ``timeout`` seconds passed; return its last value."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() >= deadline:
                return condition()
            time.sleep(0.005)
        return True

    def wait_registered(self, event: str, count: int = 1, timeout: float = 2.0) -> bool:
        """Wait until at least ``count`` sessions listen to ``event``."""
        return self.wait_for(lambda: self.listeners(event) >= count, timeout)

    def wait_calls(self, command: str, count: int = 1, timeout: float = 2.0) -> bool:
        """Wait until ``count`` requests of ``command`` were received (answered or not)."""
        return self.wait_for(lambda: len(self.calls_to(command)) >= count, timeout)

    def calls_to(self, command: str) -> list[dict[str, Any]]:
        """Messages of the requests of ``command`` received so far, in order."""
        with self.lock:
            return [c.message for c in self.calls if c.command == command]

    # -- server loop ------------------------------------------------------------------------

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return  # listener shut down by stop()
            sock.settimeout(None)
            with self.lock:
                if self._listener is not listener:
                    sock.close()
                    return
                self.connections += 1
                sess = _Session(self.connections, sock)
                self._sessions[sess.ident] = sess
                sess.thread = threading.Thread(target=self._serve, args=(sess,),
                                               name=f"fake-charon-{sess.ident}", daemon=True)
            sess.thread.start()

    def _recv_exact(self, sess: _Session, count: int) -> bytes | None:
        data = b""
        while len(data) < count:
            chunk = sess.sock.recv(count - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def _serve(self, sess: _Session) -> None:
        try:
            while not sess.closed.is_set():
                header = self._recv_exact(sess, 4)
                if header is None:
                    break
                (length,) = struct.unpack("!I", header)
                if length > MAX_MESSAGE_SIZE:
                    break  # charon: "vici message length exceeds limit", connection closed
                data = self._recv_exact(sess, length)
                if data is None or not self._dispatch(sess, data):
                    break
        except OSError:
            pass
        except Exception as exc:
            self.errors.append(exc)
        finally:
            sess.close()
            with self.lock:
                self._sessions.pop(sess.ident, None)

    def _dispatch(self, sess: _Session, data: bytes) -> bool:
        """Handle one packet; False closes the session."""
        if not data:
            return True
        ptype = data[0]
        if ptype not in (Packet.CMD_REQUEST, Packet.EVENT_REGISTER, Packet.EVENT_UNREGISTER):
            return True  # charon logs "unsupported vici operation" and ignores it
        if len(data) < 2 or len(data) < 2 + data[1]:
            return True  # charon: "invalid vici request message", ignored
        name = data[2:2 + data[1]].decode("utf-8", "replace")
        body = data[2 + data[1]:]
        if ptype == Packet.CMD_REQUEST:
            return self._request(sess, name, body)
        return self._registration(sess, name, register=ptype == Packet.EVENT_REGISTER)

    def _apply(self, sess: _Session, rule: Rule | None) -> bool | None:
        """Carry out ``rule``: None to go on serving the request, else the session's fate."""
        if rule is None:
            return None
        if rule.action == "drop":
            return False
        if rule.action == "hang":
            return None if self._hang(sess) else False
        return True  # refuse: the caller answers

    def _request(self, sess: _Session, command: str, body: bytes) -> bool:
        try:
            message = _text(Message.deserialize(FiniteStream(body)))
        except Exception:
            message = None
        with self.lock:
            self.calls.append(Call(command, message if message is not None else {}))
        if message is None:
            sess.send(Packet.CMD_RESPONSE, None, _reply("parsing request failed"))
            return True
        rule = self._match(command, message)
        fate = self._apply(sess, rule)
        if fate is False:
            return False
        if fate is True and rule is not None:
            sess.send(Packet.CMD_RESPONSE, None, _reply(rule.errmsg))
            return True
        handler = self._handlers.get(command)
        if handler is None:
            sess.send(Packet.CMD_UNKNOWN)
            return True
        sess.send(Packet.CMD_RESPONSE, None, handler(sess, message))
        return True

    def _registration(self, sess: _Session, event: str, register: bool) -> bool:
        rule = self._match(REGISTER if register else UNREGISTER, {"event": event})
        fate = self._apply(sess, rule)
        if fate is False:
            return False
        if fate is True:
            sess.send(Packet.EVENT_UNKNOWN)
            return True
        with self.lock:
            if register and event in self.known_events:
                sess.events.add(event)
                ok = True
            elif not register and event in sess.events:
                sess.events.discard(event)
                ok = True
            else:
                ok = False
        sess.send(Packet.EVENT_CONFIRM if ok else Packet.EVENT_UNKNOWN)
        return True

    def _hang(self, sess: _Session) -> bool:
        """Block until :meth:`resume` (True) or until the session or server goes (False)."""
        with self.lock:
            generation = self._resume_gen
        while True:
            with self.lock:
                if self._resume_gen != generation:
                    return True
                if sess.closed.is_set():
                    return False
                self._cond.wait(0.05)
                if self._resume_gen != generation:
                    return True
            try:  # notice a client that gave up and closed its socket
                if sess.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                    return False
            except BlockingIOError:
                pass
            except OSError:
                return False

    def _stream(self, sess: _Session, event: str, message: Mapping[str, Any]) -> None:
        """Raise ``event`` for the requesting session only (if it registered), as charon."""
        if event in sess.events:
            sess.send(Packet.EVENT, event, message)

    # -- commands ---------------------------------------------------------------------------

    def _version(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return dict(self.version)

    def _stats(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if self.stats is not None:
                return _copy(self.stats)
            total = len(self.sas)
        running = int(time.time() - self._started_at)
        prios = ("critical", "high", "medium", "low")
        return {
            "uptime": {"running": f"{running} seconds",
                       "since": time.strftime("%b %d %H:%M:%S %Y",
                                              time.localtime(self._started_at))},
            "workers": {"total": "16", "idle": "11",
                        "active": {p: "1" if p != "critical" else "4" for p in prios}},
            "queues": dict.fromkeys(prios, "0"),
            "scheduled": "0",
            "ikesas": {"total": str(total), "half-open": "0"},
            "plugins": ["random", "nonce", "openssl", "kernel-netlink", "socket-default",
                        "vici", "updown"],
        }

    def _load_conn(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        if any(not isinstance(v, dict) for v in msg.values()):
            return _reply("parsing request failed")
        with self.lock:
            for name, conn in msg.items():
                self.conns[name] = _copy(conn)
        return _reply()

    def _unload_conn(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        name = msg.get("name")
        if not isinstance(name, str):
            return _reply("unload: missing connection name")
        with self.lock:
            if self.conns.pop(name, None) is None:
                return _reply(f"unload: connection '{name}' not found")
        return _reply()

    def _get_conns(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return {"conns": list(self.conns)}

    def _list_conns(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        ike = msg.get("ike")
        with self.lock:
            conns = [(n, _copy(c)) for n, c in self.conns.items() if ike is None or n == ike]
        for name, conn in conns:  # the loaded payload, not charon's reformatted view
            self._stream(sess, "list-conn", {name: conn})
        return {}

    def _load_shared(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        kind = msg.get("type")
        if not isinstance(kind, str):
            return _reply("shared key type missing")
        if kind.lower() not in ("ike", "eap", "xauth", "ntlm", "ppk"):
            return _reply(f"invalid shared key type: {kind}")
        if not msg.get("data"):
            return _reply("shared key data missing")
        if not isinstance(msg.get("owners", []), list):
            return _reply("parsing shared key owners failed")
        ident = msg.get("id")
        if isinstance(ident, str):  # without an id charon keeps it, but get-shared omits it
            with self.lock:
                self.shared[ident] = _copy(msg)
        return _reply()

    def _unload_shared(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        ident = msg.get("id")
        if not isinstance(ident, str):
            return _reply("unique identifier missing")
        with self.lock:
            self.shared.pop(ident, None)  # charon does not complain about unknown ids
        return _reply()

    def _get_shared(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return {"keys": list(self.shared)}

    # -- remote access: credentials and pools (kept by name, checked lightly) ---------------

    def _remote_access_handlers(self) -> None:
        self.certs: list[dict[str, Any]] = []
        self.keys: dict[str, dict[str, Any]] = {}
        self.authorities: dict[str, dict[str, Any]] = {}
        self.pools: dict[str, dict[str, Any]] = {}
        self._handlers.update({
            "load-cert": self._load_cert, "load-key": self._load_key,
            "unload-key": self._unload_key, "get-keys": self._get_keys,
            "load-authority": self._load_authority, "unload-authority": self._unload_authority,
            "get-authorities": self._get_authorities, "load-pool": self._load_pool,
            "unload-pool": self._unload_pool, "get-pools": self._get_pools,
        })

    def _load_cert(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        if not msg.get("data") or msg.get("type") not in ("x509", "x509crl", "x509ca"):
            return _reply("parsing certificate failed")
        with self.lock:
            self.certs.append(_copy(msg))
        return _reply()

    def _load_key(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        data = msg.get("data")
        if not data:
            return _reply("loading private key failed")
        raw = data.encode() if isinstance(data, str) else bytes(data)
        ident = hashlib.sha1(raw).hexdigest()  # noqa: S324 - an id, as charon's is
        with self.lock:
            self.keys[ident] = _copy(msg)
        return {**_reply(), "id": ident}

    def _unload_key(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if self.keys.pop(str(msg.get("id")), None) is None:
                return _reply(f"key '{msg.get('id')}' not found")
        return _reply()

    def _get_keys(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return {"keys": list(self.keys)}

    def _load_authority(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            for name, value in msg.items():
                self.authorities[name] = _copy(value)
        return _reply()

    def _unload_authority(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if self.authorities.pop(str(msg.get("name")), None) is None:
                return _reply(f"unloading authority '{msg.get('name')}' failed: not found")
        return _reply()

    def _get_authorities(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return {"authorities": list(self.authorities)}

    def _load_pool(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            for name, value in msg.items():
                if not isinstance(value, dict) or "addrs" not in value:
                    return _reply(f"missing addrs for pool '{name}'")
                self.pools[name] = _copy(value)
        return _reply()

    def _unload_pool(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if self.pools.pop(str(msg.get("name")), None) is None:
                return _reply(f"unloading pool '{msg.get('name')}' failed: not found")
        return _reply()

    def _get_pools(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return {name: {"base": "0.0.0.0", "size": "1", "online": "0", "offline": "0"}
                    for name in self.pools}

    def _list_sas(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        ike, ike_id = msg.get("ike"), _int(msg.get("ike-id"))
        with self.lock:
            entries = [_copy(e) for e in self.sas]
        for entry in entries:
            for name, sa in entry.items():
                if ike is not None and name != ike:
                    continue
                if ike_id and _int(sa.get("uniqueid")) != ike_id:
                    continue
                self._stream(sess, "list-sa", {name: sa})
        return {}

    def _list_policies(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        """Trap policies: ``self.traps`` holds (conn, child) pairs (none unless a test adds)."""
        with self.lock:
            traps = list(getattr(self, "traps", []))
        for ike, child in traps:
            self._stream(sess, "list-policy", {f"{ike}/{child}": {"ike": ike, "child": child,
                                                                    "mode": "TUNNEL"}})
        return {}

    def _uninstall(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        pair = (_str(msg.get("ike")), _str(msg.get("child")))
        with self.lock:
            traps = getattr(self, "traps", [])
            if pair not in traps:
                return _reply(f"policy '{pair[1]}' not found")
            traps.remove(pair)
        return _reply()

    def _log(self, sess: _Session, msg: dict[str, Any], text: str, ike: str | None) -> None:
        """A control-log event for initiate/terminate (charon sends them when timeout >= 0)."""
        if _int(msg.get("timeout"), 0) < 0:
            return
        event: dict[str, Any] = {"group": "CFG", "level": "1"}
        if ike:
            event["ikesa-name"] = ike
        event["msg"] = text
        self._stream(sess, "control-log", event)

    def _initiate(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        child, ike = msg.get("child"), msg.get("ike")
        if not child and not ike:
            return _reply("missing configuration name")
        kind, name = ("CHILD_SA", child) if child else ("IKE_SA", ike)
        with self.lock:
            if child:
                found = next((n for n, c in self.conns.items()
                              if (ike is None or n == ike)
                              and child in (c.get("children") or {})), None)
            else:
                found = ike if ike in self.conns else None
            if found is None:
                return _reply(f"{kind} config '{name}' not found")
            self.initiated.append(_copy(msg))
            failure = self.initiate_failure
            if failure is None and self.establish and child:
                self._establish(found, child)
        self._log(sess, msg, f"initiating {kind} '{name}' (fake charon)", found)
        if failure is not None:
            for line in failure[1]:
                self._log(sess, msg, line, found)
            return _reply(failure[0])
        return _reply()

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _establish(self, ike: str, child: str) -> None:
        """An installed CHILD SA ``child`` in an established IKE SA of ``ike`` (caller locks)."""
        sa = next((e[ike] for e in self.sas if ike in e), None)
        if sa is None:
            sa = {"uniqueid": str(self._new_id()), "state": "ESTABLISHED", "child-sas": {}}
            self.sas.append({ike: sa})
        cid = self._new_id()
        sa.setdefault("child-sas", {})[f"{child}-{cid}"] = {
            "name": child, "uniqueid": str(cid), "state": "INSTALLED",
            "spi-in": f"c{cid:07x}", "spi-out": f"d{cid:07x}"}

    def _rekey(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        child, ike = msg.get("child"), msg.get("ike")
        child_id, ike_id = _int(msg.get("child-id")), _int(msg.get("ike-id"))
        if not (child or ike or child_id or ike_id):
            return _reply("missing rekey selector")
        found = 0
        with self.lock:
            self.rekeyed.append(_copy(msg))
            for entry in self.sas:
                for name, sa in entry.items():
                    if (ike and name != ike) or (ike_id and _int(sa.get("uniqueid")) != ike_id):
                        continue
                    if not (child or child_id):
                        sa["uniqueid"] = str(self._new_id())
                        found += 1
                        continue
                    children = sa.get("child-sas") or {}
                    for key, csa in list(children.items()):
                        if child and _str(csa.get("name", key)) != child:
                            continue
                        if child_id and _int(csa.get("uniqueid")) != child_id:
                            continue
                        cid = self._new_id()
                        del children[key]
                        children[f"{_str(csa.get('name', key))}-{cid}"] = {
                            **csa, "uniqueid": str(cid), "spi-in": f"c{cid:07x}",
                            "spi-out": f"d{cid:07x}"}
                        found += 1
        if not found:
            return _reply("no matching SAs to rekey found", matches="0")
        return _reply(matches=str(found))

    def _get_counters(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        # as charon 5.9.8's counters plugin: all=yes gives every connection's (not the global
        # ones), a name that connection's, neither the global ones (under "")
        name = msg.get("name")
        with self.lock:
            if msg.get("all") == "yes":
                picked = {k: v for k, v in self.counters.items() if k}
            elif name is not None and name not in self.counters:
                return _reply(f"no counters found for '{name}'")
            else:
                picked = {name or "": self.counters.get(name or "", {})}
            return _reply(counters={k: {c: str(n) for c, n in v.items()}
                                    for k, v in picked.items()})

    def _reset_counters(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        # as charon's counters plugin: all=yes resets every connection's (not the global
        # ones), a name that connection's, neither the global ones (kept under "")
        everyone, name = msg.get("all") == "yes", msg.get("name")
        with self.lock:
            for conn, values in self.counters.items():
                if (everyone and conn) or (not everyone and (name or "") == conn):
                    self.counters[conn] = dict.fromkeys(values, 0)
        return _reply()

    def _terminate(self, sess: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        child, ike = msg.get("child"), msg.get("ike")
        child_id, ike_id = _int(msg.get("child-id")), _int(msg.get("ike-id"))
        if not (child or ike or child_id or ike_id):
            return _reply("missing terminate selector")
        done: list[str] = []
        with self.lock:
            self.terminated.append(_copy(msg))
            kept: list[dict[str, Any]] = []
            for entry in self.sas:
                entry = _copy(entry)
                for name, sa in list(entry.items()):
                    if (ike and name != ike) or (ike_id and _int(sa.get("uniqueid")) != ike_id):
                        continue
                    if not (child or child_id):
                        done.append(f"IKE_SA '{name}'")
                        del entry[name]
                        continue
                    children = sa.get("child-sas") or {}
                    for key, csa in list(children.items()):
                        if child and _str(csa.get("name", key)) != child:
                            continue
                        if child_id and _int(csa.get("uniqueid")) != child_id:
                            continue
                        done.append(f"CHILD_SA '{_str(csa.get('name', key))}'")
                        del children[key]
                if entry:
                    kept.append(entry)
            self.sas = kept
        for what in done:
            self._log(sess, msg, f"closing {what} (fake charon)", ike)
        count = str(len(done))
        if not done:
            return _reply("no matching SAs to terminate found", matches="0", terminated="0")
        return _reply(matches=count, terminated=count)
