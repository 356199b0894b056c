"""Discovery data: ietf-netconf-monitoring (RFC 6022) state, get-schema, and ietf-yang-library."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from nf.errors import RpcError
from northbound.context import ServerContext

NCM = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"
YANG_CAP = "urn:ietf:params:netconf:capability:yang-library:1.1"


def now_iso() -> str:
    """The current time as an RFC 3339 UTC date-and-time."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def content_id(schema: Any) -> str:
    """A digest of the module set, changing whenever the set does."""
    h = hashlib.sha256(repr(sorted(schema.implemented())).encode())
    return h.hexdigest()[:16]


def yang_library_capability(schema: Any) -> str:
    """The RFC 8526 hello capability naming the YANG library and its content-id."""
    return f"{YANG_CAP}?revision=2019-01-04&content-id={content_id(schema)}"


def yang_library(schema: Any) -> list[etree._Element]:
    """The ietf-yang-library tree (yang-library and the deprecated modules-state)."""
    text = schema.yang_library(content_id(schema))
    root = etree.fromstring(f"<r>{text}</r>")
    return [c for c in root if isinstance(c.tag, str)]


def _sub(parent: etree._Element, name: str, text: Any = None) -> etree._Element:
    el = etree.SubElement(parent, f"{{{NCM}}}{name}")
    if text is not None:
        el.text = str(text)
    return el


def netconf_state(ctx: ServerContext) -> etree._Element:
    """The /netconf-state tree: capabilities, datastores, schemas, sessions, statistics."""
    st = etree.Element(f"{{{NCM}}}netconf-state", nsmap={None: NCM})
    caps = _sub(st, "capabilities")
    for c in ctx.capabilities:
        _sub(caps, "capability", c)
    dss = _sub(st, "datastores")
    for name in ("running", "candidate", "startup"):
        ds = _sub(dss, "datastore")
        _sub(ds, "name", name)
        holder = ctx.ds.locks.get(name)
        if holder is not None:
            gl = _sub(_sub(ds, "locks"), "global-lock")
            _sub(gl, "locked-by-session", holder)
            _sub(gl, "locked-time", ctx.ds.lock_times.get(name, now_iso()))
    schemas = _sub(st, "schemas")
    for name, rev, ns in ctx.schema.implemented():
        sc = _sub(schemas, "schema")
        _sub(sc, "identifier", name)
        _sub(sc, "version", rev)
        _sub(sc, "format", "yang")
        _sub(sc, "namespace", ns)
        _sub(sc, "location", "NETCONF")
    sessions = _sub(st, "sessions")
    for s in ctx.registry.sessions():
        se = _sub(sessions, "session")
        _sub(se, "session-id", s.session_id)
        _sub(se, "transport", "ncm:netconf-ssh")
        _sub(se, "username", s.user)
        if s.source_host:
            _sub(se, "source-host", s.source_host)
        _sub(se, "login-time", s.login_time)
        counters = s.data.get("counters", {})
        for k in ("in-rpcs", "in-bad-rpcs", "out-rpc-errors", "out-notifications"):
            _sub(se, k, counters.get(k, 0))
    stats = _sub(st, "statistics")
    ctx.stats["in-bad-hellos"] = ctx.registry.bad_hellos
    ctx.stats["out-notifications"] = ctx.notifications.sent
    for k, v in ctx.stats.items():
        _sub(stats, k, v)
    return _with_ncm_prefix(st)


def _with_ncm_prefix(st: etree._Element) -> etree._Element:
    """Re-root so that the 'ncm' prefix used by identityref values is declared."""
    out = etree.Element(f"{{{NCM}}}netconf-state", nsmap={None: NCM, "ncm": NCM})
    for c in st:
        out.append(c)
    return out


async def get_schema(ctx: ServerContext, session: Any, op: etree._Element) -> etree._Element:
    """<get-schema> (RFC 6022 section 3.1): the YANG text of a module we implement."""
    ident = op.findtext(f"{{{NCM}}}identifier")
    if not ident:
        raise RpcError.of("missing-element", "<get-schema> needs <identifier>", type="protocol",
                          **{"bad-element": "identifier"})
    version = (op.findtext(f"{{{NCM}}}version") or "").strip() or None
    fmt = (op.findtext(f"{{{NCM}}}format") or "yang").strip()
    if fmt.split(":")[-1] != "yang":
        raise RpcError.of("invalid-value", f"schema format {fmt!r} is not available",
                          **{"bad-element": "format"})
    text = ctx.schema.module_text(ident.strip(), version)
    if text is None:
        raise RpcError.of("invalid-value", f"no schema {ident!r}"
                          + (f" revision {version}" if version else ""),
                          **{"bad-element": "identifier"})
    d = etree.Element(f"{{{NCM}}}data", nsmap={None: NCM})
    d.text = text
    return d
