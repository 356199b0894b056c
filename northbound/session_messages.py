"""The messages a NETCONF session itself writes and reads: the server's ``<hello>``, the
client's ``<hello>`` checked (RFC 6241 section 8.1), and the rpc-error for an operation whose
handler failed."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
BASE_1_0 = "urn:ietf:params:netconf:base:1.0"
BASE_1_1 = "urn:ietf:params:netconf:base:1.1"


def safe_parser() -> etree.XMLParser:
    """An XML parser for client messages: no entities resolved, no network, no comments."""
    return etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)


def server_hello(capabilities: list[str], session_id: int) -> bytes:
    """The server ``<hello>`` message (without framing)."""
    root = etree.Element(f"{{{NC_NS}}}hello", nsmap={None: NC_NS})
    caps = etree.SubElement(root, f"{{{NC_NS}}}capabilities")
    for cap in capabilities:
        etree.SubElement(caps, f"{{{NC_NS}}}capability").text = cap
    etree.SubElement(root, f"{{{NC_NS}}}session-id").text = str(session_id)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@dataclass(frozen=True)
class ClientHello:
    """A client ``<hello>`` as read: its capabilities, whether base:1.1 framing is chosen,
    and ``refused`` (why the session must close; None: accepted)."""

    capabilities: list[str]
    base11: bool = False
    refused: str | None = None


def read_client_hello(msg: bytes, ours: list[str]) -> ClientHello:
    """The client's ``<hello>`` MSG checked against our capabilities OURS."""
    try:
        root = etree.fromstring(msg, parser=safe_parser())
    except etree.XMLSyntaxError:
        return ClientHello([], refused="client hello is not XML")
    if root.tag != f"{{{NC_NS}}}hello":
        return ClientHello([], refused=f"expected <hello>, got {root.tag}")
    if root.find(f"{{{NC_NS}}}session-id") is not None:
        return ClientHello([], refused="client hello contains a session-id")
    caps = [
        (c.text or "").strip()
        for c in root.iterfind(f"{{{NC_NS}}}capabilities/{{{NC_NS}}}capability")
    ]
    if BASE_1_0 not in caps and BASE_1_1 not in caps:
        return ClientHello(caps, refused="client hello has no base capability")
    base11 = BASE_1_1 in caps and BASE_1_1 in ours
    if not base11 and BASE_1_0 not in ours:
        return ClientHello(caps, refused="no common base capability")
    return ClientHello(caps, base11)


def operation_failed(msg: bytes) -> bytes | None:
    """Generic rpc-error for a handler crash, echoing the rpc's attributes."""
    try:
        rpc = etree.fromstring(msg, parser=safe_parser())
    except etree.XMLSyntaxError:
        return None
    reply = etree.Element(f"{{{NC_NS}}}rpc-reply", nsmap={None: NC_NS})
    for k, v in rpc.attrib.items():
        reply.set(k, v)
    err = etree.SubElement(reply, f"{{{NC_NS}}}rpc-error")
    for tag, text in (
        ("error-type", "application"),
        ("error-tag", "operation-failed"),
        ("error-severity", "error"),
        ("error-message", "internal error"),
    ):
        etree.SubElement(err, f"{{{NC_NS}}}{tag}").text = text
    return etree.tostring(reply, encoding="UTF-8")
