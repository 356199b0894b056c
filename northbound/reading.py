"""Reading a conventional datastore for a user: NACM pruning and with-defaults (RFC 6243)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lxml import etree

from nf.edit import elements
from nf.errors import InvalidValue
from nf.nacm import prune_unreadable
from northbound import defaults, narrow
from northbound.context import ServerContext

WD = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults"
WD_MODES = ("explicit", "trim", "report-all", "report-all-tagged")
_XML = etree.XMLParser(remove_blank_text=True, resolve_entities=False)


def wd_mode(wd: etree._Element | None) -> str:
    """The with-defaults mode a <with-defaults> parameter asks for (our basic mode, explicit,
    when absent); invalid-value if we do not support it (RFC 6243 section 4.5.1)."""
    mode = (wd.text or "").strip() if wd is not None else "explicit"
    if mode not in WD_MODES:
        raise InvalidValue(f"with-defaults must be one of {', '.join(WD_MODES)}",
                           type="protocol", **{"bad-element": "with-defaults"})
    return mode


def config_roots(ctx: ServerContext, session: Any, name: str, op: etree._Element,
                 extra: Callable[[list[etree._Element]], list[etree._Element]] | None = None,
                 spec: etree._Element | None = None) -> list[etree._Element]:
    """Top-level nodes of a datastore in the with-defaults mode the request asks, plus what
    ``extra`` adds (state), keeping only what the user may read; with ``spec`` (the
    request's filter as ``narrow.spec_of`` gives it), only the part the filter can select."""
    root = ctx.ds.tree(name)
    tree = getattr(ctx.ds, name, None) if name in ("running", "candidate") else None
    mode = wd_mode(op.find(f"{{{WD}}}with-defaults"))
    roots = narrow.pick(root, tree if getattr(tree, "root", None) is root else None, spec,
                        ctx.schema.top, keep_containers=mode != "explicit")
    if mode != "explicit" and roots:
        text = ctx.schema.print_with_defaults(
            "".join(etree.tostring(r, encoding="unicode") for r in roots), mode)
        roots = defaults.retag(list(elements(etree.fromstring(f"<r>{text}</r>", _XML))))
    if extra is not None:
        roots = extra(roots)
    return prune_unreadable(ctx.access(session), roots, ctx.schema.state_top)
