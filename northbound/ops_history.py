"""Our commit-history operations: list-commits, show-commit-diff, rollback (like `rollback N`)."""

from __future__ import annotations

import copy
from typing import Any

from lxml import etree

from nf.errors import InvalidValue, MissingElement, RpcError
from nf.history import diff
from nf.nacm import prune_unreadable, write_checker
from nf.schema import NS
from northbound import replies
from northbound.context import ServerContext
from northbound.params import uint


def _n(op: etree._Element, default: int | None) -> int:
    raw = op.findtext(f"{{{NS}}}rollback")
    if raw is None:
        if default is None:
            raise MissingElement("<rollback> is required", type="protocol",
                                 **{"bad-element": "rollback"})
        return default
    return uint(raw, "rollback")


def _no_commit(n: int) -> RpcError:
    return InvalidValue(f"no commit {n} steps back", **{"bad-element": "rollback"})


def _readable(ctx: ServerContext, session: Any, images: dict) -> dict:
    """The images the user may read, each wrapped in its top container (for NACM paths)."""
    out = {}
    for key, img in images.items():
        if img is None:
            out[key] = None
            continue
        wrapper = etree.Element(key[0], nsmap={None: etree.QName(key[0]).namespace})
        wrapper.append(copy.deepcopy(img))
        root = wrapper[0] if key[1] is None else wrapper
        kept = prune_unreadable(ctx.access(session), [root], ctx.schema.top)
        out[key] = (kept[0] if key[1] is None else kept[0][0] if kept and len(kept[0]) else None
                    ) if kept else None
    return out


async def list_commits(ctx: ServerContext, session: Any,
                       op: etree._Element) -> list[etree._Element]:
    """<list-commits>: newest first."""
    out = []
    for back, c in enumerate(reversed(ctx.history.entries)):
        el = etree.Element(f"{{{NS}}}commit", nsmap={None: NS})
        for name, value in (("rollback", back), ("id", c.id), ("time", c.time),
                            ("user", c.user), ("session-id", c.session_id),
                            ("comment", c.comment)):
            etree.SubElement(el, f"{{{NS}}}{name}").text = str(value)
        out.append(el)
    return out or [replies.ok()]


async def show_commit_diff(ctx: ServerContext, session: Any,
                           op: etree._Element) -> etree._Element:
    """<show-commit-diff>: what the commit N steps back changed."""
    n = _n(op, 0)
    c = ctx.history.by_back(n)
    if c is None:
        raise _no_commit(n)
    before, after = ctx.history.images(c)
    text = diff(_readable(ctx, session, before), _readable(ctx, session, after),
                f"rollback {n + 1}", f"rollback {n}")
    el = etree.Element(f"{{{NS}}}diff", nsmap={None: NS})
    el.text = text
    return el


async def rollback(ctx: ServerContext, session: Any, op: etree._Element) -> etree._Element:
    """<rollback>: load the config of N commits ago into the candidate; commit applies it."""
    n = _n(op, None)
    if n > len(ctx.history.entries):
        raise _no_commit(n)
    old = ctx.history.undo(ctx.ds.tree("running"), ctx.schema.top, n)
    ctx.ds.copy_config("candidate", session.session_id, config=old,
                       check=write_checker(ctx.access(session), ctx.schema.top,
                                           ctx.nacm_counters))
    return replies.ok()


TABLE = {
    (NS, "list-commits"): list_commits,
    (NS, "show-commit-diff"): show_commit_diff,
    (NS, "rollback"): rollback,
}
