"""Our commit-history operations: list-commits, show-commit-diff, rollback (like `rollback N`)."""

from __future__ import annotations

from typing import Any

from lxml import etree

from nf.edit import elements
from nf.errors import RpcError
from nf.history import diff
from nf.nacm import prune_unreadable, write_checker
from nf.schema import NS
from northbound import replies


def _n(op: etree._Element, default: int | None) -> int:
    raw = op.findtext(f"{{{NS}}}rollback")
    if raw is None:
        if default is None:
            raise RpcError.of("missing-element", "<rollback> is required", type="protocol",
                              **{"bad-element": "rollback"})
        return default
    if not raw.strip().isdigit():
        raise RpcError.of("invalid-value", "rollback must be a number", type="protocol",
                          **{"bad-element": "rollback"})
    return int(raw)


def _no_commit(n: int) -> RpcError:
    return RpcError.of("invalid-value", f"no commit {n} steps back", **{"bad-element": "rollback"})


def _readable(server: Any, session: Any, tree: etree._Element | None) -> etree._Element:
    out = etree.Element("config")
    if tree is not None:
        roots = [etree.fromstring(etree.tostring(r)) for r in elements(tree)]
        for r in prune_unreadable(server.access(session), roots, server.schema.top):
            out.append(r)
    return out


async def list_commits(server: Any, session: Any, op: etree._Element) -> list[etree._Element]:
    """<list-commits>: newest first."""
    out = []
    for back, c in enumerate(reversed(server.history.entries)):
        el = etree.Element(f"{{{NS}}}commit", nsmap={None: NS})
        for name, value in (("rollback", back), ("id", c.id), ("time", c.time),
                            ("user", c.user), ("session-id", c.session_id),
                            ("comment", c.comment)):
            etree.SubElement(el, f"{{{NS}}}{name}").text = str(value)
        out.append(el)
    return out or [replies.ok()]


async def show_commit_diff(server: Any, session: Any, op: etree._Element) -> etree._Element:
    """<show-commit-diff>: what rollback N changed compared to rollback N+1."""
    n = _n(op, 0)
    h = server.history
    new = h.by_back(n)
    if new is None:
        raise _no_commit(n)
    old = h.by_back(n + 1)
    text = diff(_readable(server, session, h.config(old) if old else None),
                _readable(server, session, h.config(new)),
                f"rollback {n + 1}", f"rollback {n}")
    el = etree.Element(f"{{{NS}}}diff", nsmap={None: NS})
    el.text = text
    return el


async def rollback(server: Any, session: Any, op: etree._Element) -> etree._Element:
    """<rollback>: load an earlier running config into the candidate; commit applies it."""
    n = _n(op, None)
    c = server.history.by_back(n)
    if c is None:
        raise _no_commit(n)
    server.ds.copy_config("candidate", session.session_id, config=server.history.config(c),
                          check=write_checker(server.access(session), server.schema.top))
    return replies.ok()


TABLE = {
    (NS, "list-commits"): list_commits,
    (NS, "show-commit-diff"): show_commit_diff,
    (NS, "rollback"): rollback,
}
