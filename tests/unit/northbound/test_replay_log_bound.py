"""The replay log is bounded by its size in nodes as well as by its number of events: the
config-change events of bulk commits (one edit record per entry) do not pile up."""

from __future__ import annotations

from types import SimpleNamespace

from northbound import notifications
from northbound.notifications import LOG_NODES, Notifications


def test_bulk_config_changes_do_not_pile_up_in_the_replay_log() -> None:
    n = Notifications()
    session = SimpleNamespace(user="admin", session_id=1)
    edits = [(f"/ipsec-nf:ike/ipsec-nf:vpn[ipsec-nf:name='vpn{i}']", "merge")
             for i in range(10_000)]
    for _ in range(20):
        n.publish(notifications.config_change(session, edits))
    nodes = sum(1 for _, body in n.log for _ in body.iter())
    assert nodes <= LOG_NODES
    assert len(n.log) >= 1  # the newest event is always kept, however large
    n.publish(notifications.session_start(session))
    assert len(n.log) >= 2


def test_small_events_are_bounded_by_count() -> None:
    n = Notifications(size=5)
    session = SimpleNamespace(user="admin", session_id=1, source_host=None)
    for _ in range(8):
        n.publish(notifications.session_start(session))
    assert len(n.log) == 5
    assert n._log_nodes == sum(1 for _, body in n.log for _ in body.iter())
