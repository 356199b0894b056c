"""The replay log is bounded by its size in bytes as well as by its number of events: the
config-change events of bulk commits (one edit record per entry) do not pile up, and they are
kept as text, not as lxml trees (northbound/replay_log.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from lxml import etree

from northbound import notifications
from northbound.notifications import Notifications
from northbound.replay_log import LOG_BYTES, ReplayLog


def test_bulk_config_changes_do_not_pile_up_in_the_replay_log() -> None:
    n = Notifications()
    session = SimpleNamespace(user="admin", session_id=1)
    edits = [(f"/ipsec-nf:ike/ipsec-nf:vpn[ipsec-nf:name='vpn{i}']", "merge")
             for i in range(10_000)]
    for _ in range(20):
        n.publish(notifications.config_change(session, edits))
    assert n.log.bytes <= LOG_BYTES
    assert len(n.log) >= 2  # 10,000 edits are ~2 MiB of text: several fit
    assert n.log.aged_time is not None  # some were dropped: the log says it aged
    n.publish(notifications.session_start(session))
    assert len(n.log) >= 2


def test_small_events_are_bounded_by_count_and_come_back_equal() -> None:
    n = Notifications(size=5)
    session = SimpleNamespace(user="admin", session_id=1, source_host=None)
    sent = []
    for i in range(8):
        body = notifications.session_start(SimpleNamespace(**{**vars(session),
                                                              "session_id": i}))
        sent.append(etree.tostring(body))
        n.publish(body)
    assert len(n.log) == 5
    assert [etree.tostring(b) for _, b in n.log] == sent[3:]
    assert n.log.bytes == sum(len(x) for x in sent[3:])


def test_the_newest_event_is_kept_whatever_its_size_and_between_selects_by_time() -> None:
    log = ReplayLog(size=10, max_bytes=10)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    assert log.aged_time is None
    for i in range(3):
        el = etree.Element("event")
        el.text = str(i)
        log.append(t0 + timedelta(seconds=i), el)
    assert len(log) == 1 and log.dropped == 2
    assert log.aged_time == t0 + timedelta(seconds=2)
    assert [b.text for _, b in log.between(t0)] == ["2"]
    assert log.between(t0, t0 + timedelta(seconds=1)) == []
