"""One pipeline for every RPC: parse, look up the handler by (namespace, name), run, reply."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from lxml import etree

from nf.edit import elements, qname
from nf.errors import RpcError
from nf.schema import NAMESPACES
from northbound import params, replies
from northbound.context import ServerContext

log = logging.getLogger(__name__)
NC = replies.NC

# (context, session, operation element) -> the reply's content: one element or a list, or
# the reply's content already printed (replies.Verbatim)
Handler = Callable[[ServerContext, Any, etree._Element],
                   Awaitable[etree._Element | replies.Verbatim | list[etree._Element]]]
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, remove_blank_text=False, huge_tree=False
)


OTHER_MODULES = {NC: "ietf-netconf", "urn:ietf:params:xml:ns:netconf:notification:1.0":
                 "notifications"}


def module_of(ns: str) -> str:
    """The YANG module name of an operation's namespace (for NACM rules)."""
    if ns in OTHER_MODULES:
        return OTHER_MODULES[ns]
    return next((m for m, n in NAMESPACES.items() if n == ns), ns)


class BadRpc(Exception):
    """The message is not a well-formed <rpc> (counted as in-bad-rpcs)."""

    def __init__(self, attrs: dict[str, str], error: RpcError) -> None:
        super().__init__(str(error))
        self.attrs = attrs
        self.error = error


def parse_rpc(message: bytes) -> tuple[dict[str, str], etree._Element]:
    """The attributes and the single operation element of an <rpc>; raise BadRpc."""
    try:
        doc = etree.fromstring(message, _PARSER)
    except etree.XMLSyntaxError as e:
        raise BadRpc({}, RpcError.of("malformed-message", f"not well-formed XML: {e}",
                                     type="rpc")) from None
    if doc.tag != f"{{{NC}}}rpc":
        raise BadRpc({}, RpcError.of("malformed-message", f"expected <rpc>, got {doc.tag}",
                                     type="rpc"))
    attrs = dict(doc.attrib)
    if "message-id" not in attrs:
        raise BadRpc(attrs, RpcError.of(
            "missing-attribute", "<rpc> has no message-id", type="rpc",
            **{"bad-attribute": "message-id", "bad-element": "rpc"}))
    ops = list(elements(doc))
    if len(ops) != 1:
        raise BadRpc(attrs, RpcError.of(
            "malformed-message", "<rpc> must hold exactly one operation", type="rpc"))
    return attrs, ops[0]


class Dispatcher:
    """Maps (namespace, operation) to a handler; turns every failure into an rpc-error."""

    def __init__(self, ctx: ServerContext, table: dict[tuple[str, str], Handler]) -> None:
        self.ctx = ctx
        self.table = table

    def _count(self, session: Any, key: str) -> None:
        counters = getattr(session, "data", {}).setdefault("counters", {})
        counters[key] = counters.get(key, 0) + 1
        if key in self.ctx.stats:
            self.ctx.stats[key] += 1

    async def handle(self, session: Any, message: bytes) -> bytes | None:
        """Answer one NETCONF message from ``session``."""
        try:
            attrs, op = parse_rpc(message)
        except BadRpc as e:
            self._count(session, "in-bad-rpcs")
            self._count(session, "out-rpc-errors")
            return replies.error_reply(e.attrs, e.error)
        self._count(session, "in-rpcs")
        try:
            handler = self.table.get(qname(op))
            access = self.ctx.access(session)
            module = module_of(qname(op)[0])
            if not access.may_exec(module, qname(op)[1]):
                self.ctx.nacm_counters.denied_operations += 1
                # RFC 8341 section 3.4.4: the error-path identifies the operation
                raise access.denied(f"{qname(op)[1]!r} is not allowed for this user",
                                    f"/ietf-netconf:rpc/{module}:{qname(op)[1]}")
            if handler is None:
                raise RpcError.of(
                    "operation-not-supported", f"operation {qname(op)[1]!r} is not supported",
                    type="protocol", **{"bad-element": qname(op)[1]})
            params.check_input(self.ctx.schema, op)
            params.validate_input(self.ctx.schema, op)
            result = await handler(self.ctx, session, op)
        except RpcError as e:
            self._count(session, "out-rpc-errors")
            return replies.error_reply(attrs, e)
        except Exception:  # a bug must not kill the session
            log.exception("operation %s failed", qname(op)[1])
            self._count(session, "out-rpc-errors")
            return replies.error_reply(
                attrs, RpcError.of("operation-failed", "internal error; see the server log"))
        return replies.reply(attrs, *(result if isinstance(result, list) else [result]))
