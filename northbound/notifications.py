"""Event notifications (RFC 5277): the NETCONF stream, replay log, subscriptions, and the
RFC 6470 base events. Notification bodies never carry secrets: config changes name paths only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lxml import etree

from nf.errors import (
    BadAttribute,
    BadElement,
    InvalidValue,
    MissingElement,
    OperationFailed,
    OperationNotSupported,
)
from nf.paths import prefixes
from nf.schema import NAMESPACES, NS
from northbound import filters, replies
from northbound.replay_log import LOG_BYTES, LOG_SIZE, ReplayLog

if TYPE_CHECKING:  # context.py imports this module
    from northbound.context import ServerContext

log = logging.getLogger(__name__)
NOTIF = "urn:ietf:params:xml:ns:netconf:notification:1.0"
NCN = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"
NMN = "urn:ietf:params:xml:ns:netmod:notification"
STREAM = "NETCONF"
STREAM_DESCRIPTION = ("The default NETCONF event stream: the RFC 6470 base events and the "
                      "ipsec-nf events (IKE and CHILD SA up, down and rekeyed; apply status)")


def _ts(t: datetime) -> str:
    return t.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _parse_time(text: str, name: str) -> datetime:
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadElement(f"{name} is not a date-and-time", type="protocol",
                         **{"bad-element": name}) from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


@dataclass
class Subscription:
    """One session's subscription to the NETCONF stream.

    ``backlog`` holds the stored events to replay, taken when the subscription was made;
    ``queue`` every event published since, delivered in order once the replay is done."""

    session: Any
    filt: etree._Element | None
    start: datetime | None
    stop: datetime | None
    backlog: list[tuple[datetime, etree._Element]] = field(default_factory=list)
    queue: asyncio.Queue[tuple[datetime, etree._Element]] = field(
        default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None


def render(event_time: datetime, body: etree._Element) -> bytes:
    """A complete <notification> message."""
    n = etree.Element(f"{{{NOTIF}}}notification", nsmap={None: NOTIF})
    etree.SubElement(n, f"{{{NOTIF}}}eventTime").text = _ts(event_time)
    n.append(body)
    return etree.tostring(n, encoding="utf-8", xml_declaration=True)


class Notifications:
    """The NETCONF event stream: a bounded replay log and the live subscriptions."""

    def __init__(self, size: int = LOG_SIZE, max_bytes: int = LOG_BYTES) -> None:
        self.log = ReplayLog(size, max_bytes)
        self.created = datetime.now(UTC)  # replayLogCreationTime (RFC 5277 section 3.2.5)
        self.subs: dict[int, Subscription] = {}
        self.sent = 0
        self.denied = 0  # RFC 8341 /nacm/denied-notifications
        # access control (NACM): the body this session may receive, or None
        self.authorize: Callable[[Any, etree._Element], etree._Element | None] = (
            lambda session, body: body)
        # other consumers of every published event (RFC 8639 subscriptions), called in order
        self.taps: list[Callable[[datetime, etree._Element], None]] = []

    def publish(self, body: etree._Element) -> None:
        """Record an event and queue it for every subscription (a replaying one gets it once
        its replay is complete, in order)."""
        t = datetime.now(UTC)
        self.log.append(t, body)
        for sub in list(self.subs.values()):
            sub.queue.put_nowait((t, body))
        for tap in self.taps:
            tap(t, body)

    def streams(self) -> etree._Element:
        """The RFC 5277 /netconf/streams tree (nc-notifications): our one stream."""
        root = etree.Element(f"{{{NMN}}}netconf", nsmap={None: NMN})
        stream = etree.SubElement(etree.SubElement(root, f"{{{NMN}}}streams"),
                                  f"{{{NMN}}}stream")
        for name, text in (("name", STREAM), ("description", STREAM_DESCRIPTION),
                           ("replaySupport", "true"),
                           ("replayLogCreationTime", _ts(self.created))):
            etree.SubElement(stream, f"{{{NMN}}}{name}").text = text
        return root

    async def _deliver(self, sub: Subscription, t: datetime, body: etree._Element) -> None:
        """Send one event if the subscription's filter selects it and NACM lets the session
        see it. The filter is applied to what the session may see (a filter must not reveal
        what NACM hides); an event NACM drops counts as denied if the filter selects it."""
        allowed = self.authorize(sub.session, body)
        if allowed is None:
            if sub.filt is None or _selected(body, sub.filt):
                self.denied += 1
            return
        if sub.filt is not None and not _selected(allowed, sub.filt):
            return
        await self._send(sub, t, allowed)

    async def _send(self, sub: Subscription, t: datetime, body: etree._Element) -> None:
        if await sub.session.send_notification(render(t, body)):
            self.sent += 1
            counters = sub.session.data.setdefault("counters", {})
            counters["out-notifications"] = counters.get("out-notifications", 0) + 1

    def subscribe(self, session: Any, op: etree._Element) -> None:
        """<create-subscription>; replay and the stop timer start after the reply is sent."""
        if session.session_id in self.subs:
            raise OperationFailed("this session already has a subscription", type="protocol")
        stream = (op.findtext(f"{{{NOTIF}}}stream") or STREAM).strip()
        if stream != STREAM:
            raise InvalidValue(f"no stream {stream!r}", type="protocol",
                               **{"bad-element": "stream"})
        start_el, stop_el = op.find(f"{{{NOTIF}}}startTime"), op.find(f"{{{NOTIF}}}stopTime")
        start = _parse_time(start_el.text or "", "startTime") if start_el is not None else None
        stop = _parse_time(stop_el.text or "", "stopTime") if stop_el is not None else None
        now = datetime.now(UTC)
        if stop is not None and start is None:
            raise MissingElement("stopTime needs a startTime", type="protocol",
                                 **{"bad-element": "startTime"})
        if start is not None and start > now:
            raise BadElement("startTime is in the future", type="protocol",
                             **{"bad-element": "startTime"})
        if stop is not None and start is not None and stop < start:
            raise BadElement("stopTime is before startTime", type="protocol",
                             **{"bad-element": "stopTime"})
        filt = op.find(f"{{{NOTIF}}}filter")
        if filt is None:  # the base namespace, as ncclient sends it
            filt = op.find(f"{{{replies.NC}}}filter")
        if filt is not None:
            _check_filter(filt)
        # The stored events to replay and the queue of later ones are split here, with no
        # await in between: every event is replayed or queued, exactly once.
        backlog = self.log.between(start, stop) if start is not None else []
        sub = Subscription(session, filt, start, stop, backlog)
        self.subs[session.session_id] = sub
        sub.task = asyncio.get_running_loop().create_task(self._run(sub))

    async def _run(self, sub: Subscription) -> None:
        """Replay, then replayComplete, then the live events in order; at stopTime,
        notificationComplete ends the subscription."""
        if sub.start is not None:
            backlog, sub.backlog = sub.backlog, []
            for t, body in backlog:
                await self._deliver(sub, t, body)
            await self._send(sub, datetime.now(UTC), _event(NMN, "replayComplete"))
        while True:
            wait = None if sub.stop is None else (sub.stop - datetime.now(UTC)).total_seconds()
            if wait is not None and wait <= 0:
                break
            try:
                t, body = await asyncio.wait_for(sub.queue.get(), wait)
            except TimeoutError:
                break
            if sub.stop is not None and t > sub.stop:
                break
            await self._deliver(sub, t, body)
        while not sub.queue.empty():  # published before stopTime, not yet sent
            t, body = sub.queue.get_nowait()
            if sub.stop is not None and t <= sub.stop:
                await self._deliver(sub, t, body)
        await self._send(sub, datetime.now(UTC), _event(NMN, "notificationComplete"))
        if self.subs.get(sub.session.session_id) is sub:
            del self.subs[sub.session.session_id]

    def session_ended(self, session: Any) -> None:
        """Forget the subscription of a session that ended."""
        sub = self.subs.pop(session.session_id, None)
        if sub is not None and sub.task is not None:
            sub.task.cancel()


def _filter_attr(filt: etree._Element, name: str, default: str | None = None) -> str | None:
    """A filter attribute, unqualified (RFC 6241) or in the base namespace (RFC 5277's
    example writes netconf:type)."""
    return filt.get(name, filt.get(f"{{{replies.NC}}}{name}", default))


def _check_filter(filt: etree._Element) -> None:
    """Refuse a filter that could not be applied (RFC 5277 2.1.1: the subscription fails)."""
    ftype = _filter_attr(filt, "type", "subtree")
    if ftype == "xpath":
        try:
            etree.XPath(_filter_attr(filt, "select", "") or "",
                        namespaces={k: v for k, v in filt.nsmap.items() if k})
        except etree.XPathError as e:
            raise InvalidValue(f"invalid XPath filter: {e}", type="protocol",
                               **{"bad-element": "filter"}) from None
    elif ftype != "subtree":
        raise BadAttribute(f"unknown filter type {ftype!r}", type="protocol",
                           **{"bad-attribute": "type", "bad-element": "filter"})


def _selected(body: etree._Element, filt: etree._Element) -> bool:
    if _filter_attr(filt, "type", "subtree") == "xpath":
        return bool(filters.xpath([body], _filter_attr(filt, "select", "/") or "/",
                                  filt.nsmap, {}))
    return bool(filters.subtree([body], filt))


def _event(ns: str, event: str, /, **leaves: Any) -> etree._Element:
    el = etree.Element(f"{{{ns}}}{event}", nsmap={None: ns})
    for k, v in leaves.items():
        if v is not None:
            etree.SubElement(el, f"{{{ns}}}{k}").text = str(v)
    return el


def _changed_by(session: Any) -> etree._Element:
    cb = etree.Element(f"{{{NCN}}}changed-by")
    if session is None:
        etree.SubElement(cb, f"{{{NCN}}}server")
        return cb
    etree.SubElement(cb, f"{{{NCN}}}username").text = session.user
    etree.SubElement(cb, f"{{{NCN}}}session-id").text = str(session.session_id)
    if getattr(session, "source_host", None):
        etree.SubElement(cb, f"{{{NCN}}}source-host").text = session.source_host
    return cb


def config_change(session: Any, edits: list[tuple[str, str]]) -> etree._Element:
    """RFC 6470 netconf-config-change: who changed running, and which paths (no values)."""
    el = _event(NCN, "netconf-config-change")
    el.append(_changed_by(session))
    etree.SubElement(el, f"{{{NCN}}}datastore").text = "running"
    for path, op in edits:
        edit = etree.SubElement(el, f"{{{NCN}}}edit")
        # an instance-identifier: every module prefix of the path is declared
        used = sorted(prefixes(path) & NAMESPACES.keys())
        target = etree.SubElement(edit, f"{{{NCN}}}target",
                                  nsmap={p: NAMESPACES[p] for p in used} or None)
        target.text = path
        etree.SubElement(edit, f"{{{NCN}}}operation").text = op
    return el


def confirmed_commit(session: Any, event: str, timeout: str | None) -> etree._Element:
    """RFC 6470 netconf-confirmed-commit."""
    el = _event(NCN, "netconf-confirmed-commit")
    if session is not None:
        for child in _changed_by(session):
            el.append(child)
    etree.SubElement(el, f"{{{NCN}}}confirm-event").text = event
    if timeout is not None and event in ("start", "extend"):
        etree.SubElement(el, f"{{{NCN}}}timeout").text = timeout
    return el


def session_start(session: Any) -> etree._Element:
    """RFC 6470 netconf-session-start."""
    el = _event(NCN, "netconf-session-start")
    for child in _changed_by(session):
        el.append(child)
    return el


def session_end(session: Any) -> etree._Element:
    """RFC 6470 netconf-session-end, with the termination reason."""
    el = _event(NCN, "netconf-session-end")
    for child in _changed_by(session):
        el.append(child)
    killed_by = session.data.get("killed-by")
    if killed_by is not None:
        etree.SubElement(el, f"{{{NCN}}}killed-by").text = str(killed_by)
    reason = ("killed" if killed_by is not None else "closed" if session.closing
              else "dropped")
    etree.SubElement(el, f"{{{NCN}}}termination-reason").text = reason
    return el


def sa_event(kind: str, event: str, vpn: str, peer: str | None, unique_id: int | None,
             policy: str | None = None) -> etree._Element:
    """Our ike-sa-event / child-sa-event notification."""
    el = _event(NS, f"{kind}-sa-event", event=event, vpn=vpn, peer=peer,
                **{"unique-id": unique_id})
    if policy is not None:
        etree.SubElement(el, f"{{{NS}}}security-policy").text = policy
    return el


def apply_status_change(entry: Any) -> etree._Element:
    """Our apply-status-change notification: an entry failed (with the daemon's reason,
    secrets already masked) or was applied after failing."""
    leaves = {"kind": entry.kind, "name": entry.name, "status": entry.status,
              "message": entry.message,
              "attempts": entry.attempts if entry.status == "failed" else None}
    return _event(NS, "apply-status-change", **leaves)


def global_options_applied(method: str) -> etree._Element:
    """Our global-options-applied notification: charon took new global options by ``method``
    (``reload`` or ``restart``)."""
    return _event(NS, "global-options-applied", method=method)


async def create_subscription(ctx: ServerContext, session: Any,
                              op: etree._Element) -> etree._Element:
    """<create-subscription> (RFC 5277 section 2.1.1)."""
    if ctx.subscriptions is not None and ctx.subscriptions.of_session(session):
        # RFC 8640 section 3: not on a session with RFC 8639 subscriptions
        raise OperationNotSupported("this session has subscriptions made with "
                                    "establish-subscription", type="protocol")
    ctx.notifications.subscribe(session, op)
    return replies.ok()
