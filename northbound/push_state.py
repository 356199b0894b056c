"""The operational data of ietf-subscribed-notifications (RFC 8639 section 3): the event
streams (/sn:streams) and the dynamic subscriptions with their receiver's counters
(/sn:subscriptions), for <get> and <get-data> of operational."""

from __future__ import annotations

from lxml import etree

from northbound import push
from northbound.notifications import STREAM, STREAM_DESCRIPTION, Notifications
from northbound.subscription_terms import describe
from northbound.subscriptions import Subscriptions

SN = push.SN


def _leaf(parent: etree._Element, name: str, text: object = None) -> etree._Element:
    el = etree.SubElement(parent, f"{{{SN}}}{name}")
    if text is not None:
        el.text = str(text)
    return el


def _ts(t: object) -> str:
    return t.isoformat(timespec="microseconds").replace("+00:00", "Z")  # type: ignore[attr-defined]


def streams(notifications: Notifications) -> etree._Element:
    """/sn:streams: the NETCONF stream, with its replay log's creation (and, once the log is
    full, aged) time."""
    root = etree.Element(f"{{{SN}}}streams", nsmap={None: SN})
    stream = _leaf(root, "stream")
    _leaf(stream, "name", STREAM)
    _leaf(stream, "description", STREAM_DESCRIPTION)
    _leaf(stream, "replay-support")
    _leaf(stream, "replay-log-creation-time", _ts(notifications.created))
    if (aged := notifications.log.aged_time) is not None:
        _leaf(stream, "replay-log-aged-time", _ts(aged))
    return root


def subscriptions(subs: Subscriptions) -> etree._Element:
    """/sn:subscriptions: each dynamic subscription's terms and its one receiver (the
    session), with the records sent and excluded (not queued while suspended) and its
    state."""
    root = etree.Element(f"{{{SN}}}subscriptions", nsmap={None: SN, "sn": SN})
    for sub in sorted(subs.subs.values(), key=lambda s: s.id):
        el = _leaf(root, "subscription")
        _leaf(el, "id", sub.id)
        describe(el, sub.spec)
        receiver = _leaf(_leaf(el, "receivers"), "receiver")
        _leaf(receiver, "name", f"session-{sub.session.session_id}")
        _leaf(receiver, "sent-event-records", sub.sent)
        _leaf(receiver, "excluded-event-records", sub.excluded_records)
        _leaf(receiver, "state", "suspended" if sub.suspended else "active")
    return root


def state_roots(notifications: Notifications, subs: Subscriptions | None
                ) -> list[etree._Element]:
    """The ietf-subscribed-notifications state trees (none without subscriptions)."""
    if subs is None:
        return []
    return [streams(notifications), subscriptions(subs)]
