"""Peers the IKE daemon refused, and why: read from charon's own log messages.

charon tells no one over VICI that it refused a peer: a road warrior whose certificate is
revoked, whose pre-shared key or EAP password is wrong, or that matches no VPN, never gets
an IKE SA, so the SA tables and events show nothing. Its log says it, per IKE SA, at level 1:
charon's filelog (``charon.log``, southbound/charon_conf.py) writes each of those lines with
the IKE SA's unique id and (once one was chosen) its connection's name. :class:`RefusedPeers`
follows each IKE SA being negotiated (the peer's address and port, its IKE and EAP
identities, the reason lines) and records a :class:`RefusedPeer` when charon answers with
AUTHENTICATION_FAILED, EAP failure or NO_PROPOSAL_CHOSEN; :class:`RefusedPeerLog` feeds it
from that file in a thread.

VICI's ``log`` event stream carries the same messages, but charon sends each one through its
VICI dispatcher while it answers requests: with a listener, 1,000 ``load-conn`` took
0.45-0.6 s instead of 0.3-0.4 (each load logs a line), and a bulk load waited for it.

The records hold identities, addresses and charon's reason line, never a secret (charon logs
none at level 1: a pre-shared key mismatch names the two identities, not the key).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from southbound.convert import vici_str
from southbound.log_follow import FollowedLog

log = logging.getLogger(__name__)
KEEP = 100  # refusals kept (the last ones)
TRACKED = 1000  # IKE SAs being negotiated followed at once (the oldest are forgotten)

# (reason, pattern of charon's message): the first one an IKE SA logs is its reason, except
# that a specific reason replaces a generic one (GENERIC) logged before it
_REASONS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (reason, re.compile(pattern)) for reason, pattern in (
        ("certificate-revoked", r"^certificate was revoked on "),
        ("certificate-invalid", r"certificate invalid \(valid from "),
        ("certificate-untrusted", r"^no issuer certificate found for "),
        ("certificate-untrusted", r"^constraint check failed: peer not authenticated by CA"),
        ("pre-shared-key-mismatch", r"^tried \d+ shared keys? for .* but MAC mismatched"),
        ("no-pre-shared-key", r"^no shared key found for "),
        ("radius-reject", r"^RADIUS authentication of .* failed"),
        ("radius-unreachable", r"^RADIUS .*timed out|^no RADIUS server "),
        ("eap-failed", r"^EAP method \S+ failed for peer "),
        ("no-matching-vpn", r"^no matching peer config found"),
        ("no-proposal-chosen", r"^no acceptable proposal found|^received proposals: "),
        ("authentication-failed", r"^no trusted \S+ public key found for "),
        ("authentication-failed", r"^verification of .* failed|^signature validation failed"),
    ))
GENERIC = frozenset({"authentication-failed", "eap-failed", "no-proposal-chosen"})
_PACKET = re.compile(r"^received packet: from (\S+)\[(\d+)\] to ")
_MATCHING = re.compile(r"^looking for peer configs matching \S+\.\.\.[^\[]+\[(.*)\]$")
_EAP_ID = re.compile(r"^received EAP identity '(.*)'$")
# charon's answer that ends a refused negotiation (a responder's IKE_SA_INIT or IKE_AUTH)
_REFUSED = re.compile(r"^generating IKE_(?:SA_INIT|AUTH) response \d+ \[ "
                      r"(?:N\((AUTH_FAILED|NO_PROP)\)|(EAP/FAIL))")
_DONE = re.compile(r"^IKE_SA \S+ established between |^IKE_SA deleted$")


@dataclass
class RefusedPeer:
    """One refused peer (``/ike/refused-peer`` entry)."""

    id: int
    time: str
    reason: str
    message: str
    remote_address: str | None = None
    remote_port: int | None = None
    remote_id: str | None = None
    remote_eap_id: str | None = None
    vpn: str | None = None

    def tree(self) -> dict[str, Any]:
        """The YANG shape (absent leaves left out)."""
        out = {"id": self.id, "time": self.time, "vpn": self.vpn,
               "remote-address": self.remote_address, "remote-port": self.remote_port,
               "remote-id": self.remote_id, "remote-eap-id": self.remote_eap_id,
               "reason": self.reason, "message": self.message}
        return {k: v for k, v in out.items() if v is not None}

    def summary(self) -> str:
        """One line for the server's log."""
        who = " ".join(f"{k} {v}" for k, v in (
            ("vpn", self.vpn), ("peer", self.remote_address), ("id", self.remote_id),
            ("eap-id", self.remote_eap_id)) if v is not None)
        return f"peer refused ({self.reason}): {who}: {self.message}"


@dataclass
class _Negotiation:
    address: str | None = None
    port: int | None = None
    remote_id: str | None = None
    eap_id: str | None = None
    vpn: str | None = None
    reason: str | None = None
    messages: list[str] = field(default_factory=list)


class RefusedPeers:
    """The last :data:`KEEP` refusals, from charon's log events (thread-safe)."""

    def __init__(self, keep: int = KEEP, now: Callable[[], datetime] | None = None) -> None:
        self._lock = threading.Lock()
        self._open: OrderedDict[str, _Negotiation] = OrderedDict()
        self._done: deque[RefusedPeer] = deque(maxlen=keep)
        self._next = 1
        self._now = now or (lambda: datetime.now(UTC))

    def feed(self, event: Mapping[str, Any]) -> RefusedPeer | None:
        """One VICI ``log`` event (``ikesa-uniqueid``, ``ikesa-name``, ``msg``); the refusal
        it completes, if any."""
        sa = vici_str(event.get("ikesa-uniqueid", b""))
        if not sa:
            return None
        name = vici_str(event.get("ikesa-name", b""))
        named = bool(name) and name != "(unnamed)"
        with self._lock:
            n = self._open.get(sa)
            if n is None and named:  # an SA with a VPN already: ours as initiator, or
                return None  # established (most messages: left at once)
            msg = vici_str(event.get("msg", b"")).strip()
            if _DONE.match(msg):
                self._open.pop(sa, None)
                return None
            if n is None:
                n = self._open[sa] = _Negotiation()  # a peer starts one with us
                while len(self._open) > TRACKED:
                    self._open.popitem(last=False)
            if named:
                n.vpn = name
            self._note(n, msg)
            end = _REFUSED.match(msg)
            if end is None:
                return None
            del self._open[sa]
            reason = n.reason or ("no-proposal-chosen" if end.group(1) == "NO_PROP" else
                                  "eap-failed" if end.group(2) else "authentication-failed")
            refusal = RefusedPeer(
                id=self._next, time=self._now().isoformat().replace("+00:00", "Z"),
                reason=reason, message="; ".join(n.messages) or msg,
                remote_address=n.address, remote_port=n.port, remote_id=n.remote_id,
                remote_eap_id=n.eap_id, vpn=n.vpn)
            self._next += 1
            self._done.append(refusal)
            return refusal

    @staticmethod
    def _note(n: _Negotiation, msg: str) -> None:
        if m := _PACKET.match(msg):
            n.address, n.port = m.group(1), int(m.group(2))
        elif m := _MATCHING.match(msg):
            n.remote_id = m.group(1)
        elif m := _EAP_ID.match(msg):
            n.eap_id = m.group(1)
        elif msg.startswith("issuer is ") and n.reason == "certificate-untrusted":
            n.messages.append(msg)  # the authority that is not trusted
        else:
            for reason, pattern in _REASONS:
                if pattern.search(msg):
                    if n.reason is None or (n.reason in GENERIC and reason not in GENERIC):
                        n.reason = reason
                    if len(n.messages) < 4:  # the lines that say why, in order
                        n.messages.append(msg)
                    break

    def tree(self) -> list[dict[str, Any]]:
        """``/ike/refused-peer`` (oldest first)."""
        with self._lock:
            return [r.tree() for r in self._done]


# a line of charon.log (southbound/charon_conf.py: time_format "%b %e %T", ike_name: " <name|
# unique id>" or, before a VPN was chosen, " <unique id>"), e.g.
# "Nov 30 19:00:00 06[NET] <3> received packet: from ..."
_LINE = re.compile(r"^(?:\w{3} [ \d]\d \d\d:\d\d:\d\d )?\d+\[\w+\] <(?:(.*)\|)?(\d+)> (.*)$")


def log_event(line: str) -> dict[str, str] | None:
    """A line of charon.log as the ``log`` event :meth:`RefusedPeers.feed` reads, or
    None for a line without an IKE SA."""
    m = _LINE.match(line)
    if m is None:
        return None
    return {"ikesa-name": m.group(1) or "(unnamed)", "ikesa-uniqueid": m.group(2),
            "msg": m.group(3)}


class RefusedPeerLog:
    """charon.log (``CharonProcess.log_path``) fed to a :class:`RefusedPeers`, in a thread;
    ``on_refusal`` runs on ``loop`` for each refusal."""

    def __init__(self, path: str | Path, refusals: RefusedPeers,
                 on_refusal: Callable[[RefusedPeer], None],
                 loop: asyncio.AbstractEventLoop) -> None:
        self.refusals = refusals
        self.on_refusal = on_refusal
        self.loop = loop
        self._log = FollowedLog(path, self.handle, "charon-peer-log")

    def start(self) -> None:
        """Follow the log from its present end."""
        self._log.start()

    def stop(self) -> None:
        """Stop following it."""
        self._log.stop()

    def handle(self, line: str) -> None:
        """One line: a refusal it completes goes to ``on_refusal`` on the loop."""
        event = log_event(line)
        refusal = self.refusals.feed(event) if event is not None else None
        if refusal is not None:
            self.loop.call_soon_threadsafe(self.on_refusal, refusal)
