"""<wait-applied>: wait until what the last commit changed is in force in the daemon."""

from __future__ import annotations

from typing import Any

from lxml import etree

from nf.schema import NS
from northbound.context import ServerContext
from northbound.params import uint

MAX_WAIT = 3600


async def wait_applied(ctx: ServerContext, session: Any,
                       op: etree._Element) -> list[etree._Element]:
    """Wait (at most ``timeout`` seconds, default 30) for the last commit's entries; return the
    outcome and each entry's status."""
    # unknown and repeated parameters are refused before (northbound.params.check_input)
    found = op.find(f"{{{NS}}}timeout")
    timeout = uint(found.text, "timeout", 0, MAX_WAIT) if found is not None else 30
    result, entries = await ctx.wait_applied(float(timeout))
    out = [etree.Element(f"{{{NS}}}result", nsmap={None: NS})]
    out[0].text = result
    for e in entries:
        el = etree.Element(f"{{{NS}}}entry", nsmap={None: NS})
        for leaf in ("kind", "name", "status", "message"):
            if e.get(leaf) is not None:
                etree.SubElement(el, f"{{{NS}}}{leaf}").text = str(e[leaf])
        out.append(el)
    return out


TABLE = {(NS, "wait-applied"): wait_applied}
