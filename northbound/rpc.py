"""One pipeline for every RPC: parse, look up the handler by (namespace, name), run, reply."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from lxml import etree

from nf.edit import elements, qname
from nf.errors import RpcError
from northbound import replies

log = logging.getLogger(__name__)
NC = replies.NC

Handler = Callable[[Any, Any, etree._Element], Awaitable[etree._Element]]
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, remove_blank_text=False, huge_tree=False
)


class Dispatcher:
    """Maps (namespace, operation) to a handler; turns every failure into an rpc-error."""

    def __init__(self, server: Any, table: dict[tuple[str, str], Handler]) -> None:
        self.server = server
        self.table = table

    async def handle(self, session: Any, message: bytes) -> bytes | None:
        """Answer one NETCONF message from ``session``."""
        try:
            doc = etree.fromstring(message, _PARSER)
        except etree.XMLSyntaxError as e:
            return replies.error_reply(
                {}, RpcError.of("malformed-message", f"not well-formed XML: {e}", type="rpc")
            )
        if doc.tag != f"{{{NC}}}rpc":
            return replies.error_reply(
                {}, RpcError.of("malformed-message", f"expected <rpc>, got {doc.tag}", type="rpc")
            )
        attrs = dict(doc.attrib)
        if "message-id" not in attrs:
            return replies.error_reply(
                attrs,
                RpcError.of(
                    "missing-attribute", "<rpc> has no message-id", type="rpc",
                    **{"bad-attribute": "message-id", "bad-element": "rpc"},
                ),
            )
        ops = list(elements(doc))
        if len(ops) != 1:
            return replies.error_reply(
                attrs,
                RpcError.of("malformed-message", "<rpc> must hold exactly one operation",
                            type="rpc"),
            )
        op = ops[0]
        handler = self.table.get(qname(op))
        if handler is None:
            ns, name = qname(op)
            return replies.error_reply(
                attrs,
                RpcError.of(
                    "operation-not-supported", f"operation {name!r} is not supported",
                    type="protocol", **{"bad-element": name},
                ),
            )
        try:
            result = await handler(self.server, session, op)
        except RpcError as e:
            return replies.error_reply(attrs, e)
        except Exception:  # a bug must not kill the session
            log.exception("operation %s failed", qname(op)[1])
            return replies.error_reply(
                attrs, RpcError.of("operation-failed", "internal error; see the server log")
            )
        return replies.reply(attrs, result)
