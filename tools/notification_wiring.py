"""The NETCONF event stream wired to the server's sources: sessions, commits, confirmed
commits (RFC 6470), each event filtered by the receiving session's NACM rights."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from lxml import etree

from nf.confirmed import ConfirmedCommits
from nf.datastore import Datastores
from nf.nacm import Access, may_read_path
from northbound import notifications
from northbound.registry import SessionRegistry
from northbound.rpc import module_of


def may_receive(access: Callable[[Any], Access], top: dict[tuple[str, str], Any]
                ) -> Callable[[Any, etree._Element], etree._Element | None]:
    """The event as a session may see it (NACM), or None: a config change shows only the
    edits whose targets the user may read (not even an entry's name otherwise)."""
    def authorize(session: Any, body: etree._Element) -> etree._Element | None:
        rights = access(session)
        q = etree.QName(body)
        if not rights.may_notify(module_of(q.namespace or ""), q.localname):
            return None
        if q.localname != "netconf-config-change" or rights.superuser:
            return body
        body = copy.deepcopy(body)
        for edit in body.findall(f"{{{q.namespace}}}edit"):
            target = edit.findtext(f"{{{q.namespace}}}target") or "/"
            if target != "/" and not may_read_path(rights, target, top):
                body.remove(edit)
        return body
    return authorize


def wire_notifications(n: notifications.Notifications, registry: SessionRegistry,
                       ds: Datastores, confirmed: ConfirmedCommits, stats: dict[str, Any],
                       access: Callable[[Any], Access], top: dict[tuple[str, str], Any]
                       ) -> None:
    """Publish session start/end, config changes and confirmed-commit events on ``n``, count
    sessions in ``stats`` (ietf-netconf-monitoring), and authorize each event per session."""
    n.authorize = may_receive(access, top)

    def count(session: Any, started: bool) -> None:
        if started:
            stats["in-sessions"] += 1
        elif not session.closing and "killed-by" not in session.data:
            stats["dropped-sessions"] += 1

    registry.on_start(lambda s: count(s, True))
    registry.on_close(lambda s: count(s, False))
    registry.on_start(lambda s: n.publish(notifications.session_start(s)))
    registry.on_close(lambda s: n.publish(notifications.session_end(s)))
    registry.on_close(n.session_ended)
    ds.on_change.append(lambda sid, edits, *_: n.publish(notifications.config_change(
        registry.get(sid), edits)))
    confirmed.on_event.append(lambda ev, sid, t: n.publish(notifications.confirmed_commit(
        registry.get(sid), ev, t)))
