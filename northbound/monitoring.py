"""Discovery data: ietf-netconf-monitoring (RFC 6022) state, get-schema, and ietf-yang-library."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from nf.errors import InvalidValue, MissingElement
from northbound import push_state
from northbound.context import ServerContext

NCM = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"
NACM = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
YL = "urn:ietf:params:xml:ns:yang:ietf-yang-library"
DS = "urn:ietf:params:xml:ns:yang:ietf-datastores"
DATASTORES = ("running", "candidate", "startup", "intended", "operational")
SCHEMA = "complete"  # libyang's name for the one schema
COUNTER32 = 2 ** 32  # yang:zero-based-counter32 wraps
YANG_CAP = "urn:ietf:params:netconf:capability:yang-library:1.1"


def now_iso() -> str:
    """The current time as an RFC 3339 UTC date-and-time."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def content_id(schema: Any) -> str:
    """A digest of the module set (modules, revisions and enabled features), changing whenever
    the set does (RFC 8525 section 3)."""
    mods = sorted((n, r, ns, tuple(schema.features(n))) for n, r, ns in schema.implemented())
    return hashlib.sha256(repr(mods).encode()).hexdigest()[:16]


def yang_library_capability(schema: Any) -> str:
    """The RFC 8526 hello capability naming the YANG library and its content-id."""
    return f"{YANG_CAP}?revision=2019-01-04&content-id={content_id(schema)}"


def yang_library(schema: Any) -> list[etree._Element]:
    """The ietf-yang-library tree (yang-library and the deprecated modules-state).

    The file locations libyang knows are paths on this host, no URL a client could retrieve
    a module from (RFC 8525 'location', RFC 7895 'schema'): they are left out, and clients use
    get-schema."""
    text = schema.yang_library(content_id(schema))
    root = etree.fromstring(f"<r>{text}</r>")
    for el in root.xpath("//y:location | //y:modules-state/y:module/y:schema",
                         namespaces={"y": YL}):
        el.getparent().remove(el)
    lib = root.find(f"{{{YL}}}yang-library")
    if lib is not None:
        _import_only(lib, root.find(f"{{{YL}}}modules-state"))
        _schemas_and_datastores(lib)
    return [c for c in root if isinstance(c.tag, str)]


# Modules libyang implements only because a leafref of ietf-subscribed-notifications points
# into them (source-interface, source-vrf: features we do not have), and what they augment:
# we implement none of their data, so they are announced as import-only.
NOT_IMPLEMENTED = ("ietf-interfaces", "ietf-network-instance", "ietf-ip")


def _import_only(lib: etree._Element, legacy: etree._Element | None) -> None:
    for mod in lib.xpath("y:module-set/y:module", namespaces={"y": YL}):
        if mod.findtext(f"{{{YL}}}name") in NOT_IMPLEMENTED:
            for c in mod.findall(f"{{{YL}}}feature") + mod.findall(f"{{{YL}}}deviation"):
                mod.remove(c)
            mod.tag = f"{{{YL}}}import-only-module"
            mod.getparent().append(mod)  # after the implemented ones
    for mod in legacy.iterfind(f"{{{YL}}}module") if legacy is not None else ():
        if mod.findtext(f"{{{YL}}}name") in NOT_IMPLEMENTED:
            ct = mod.find(f"{{{YL}}}conformance-type")
            if ct is not None:
                ct.text = "import"


def _schemas_and_datastores(lib: etree._Element) -> None:
    """RFC 8525 section 3: one entry per datastore we support, each with the schema of all our
    module sets (libyang gives the module sets and that schema, not the datastores)."""
    schema = lib.find(f"{{{YL}}}schema")
    if schema is None:
        schema = etree.Element(f"{{{YL}}}schema")
        etree.SubElement(schema, f"{{{YL}}}name").text = SCHEMA
        for m in lib.iterfind(f"{{{YL}}}module-set"):
            etree.SubElement(schema, f"{{{YL}}}module-set").text = m.findtext(f"{{{YL}}}name")
        lib.insert(len(lib.findall(f"{{{YL}}}module-set")), schema)
    at = lib.index(schema) + 1
    for i, ds in enumerate(DATASTORES):
        entry = etree.Element(f"{{{YL}}}datastore", nsmap={"ds": DS})
        etree.SubElement(entry, f"{{{YL}}}name").text = f"ds:{ds}"
        etree.SubElement(entry, f"{{{YL}}}schema").text = schema.findtext(f"{{{YL}}}name")
        lib.insert(at + i, entry)


def add_nacm_counters(ctx: ServerContext, roots: list[etree._Element]) -> list[etree._Element]:
    """The roots with RFC 8341's /nacm counters (config false) added into the /nacm
    container of the config, or into a new one."""
    c = ctx.nacm_counters
    nacm = next((r for r in roots if r.tag == f"{{{NACM}}}nacm"), None)
    if nacm is None:
        nacm = etree.Element(f"{{{NACM}}}nacm", nsmap={None: NACM})
        roots = [*roots, nacm]
    for name, value in (("denied-operations", c.denied_operations),
                        ("denied-data-writes", c.denied_data_writes),
                        ("denied-notifications", ctx.notifications.denied)):
        etree.SubElement(nacm, f"{{{NACM}}}{name}").text = str(value % COUNTER32)
    return roots


def state_roots(ctx: ServerContext) -> list[etree._Element]:
    """The server's own state trees of <get> and <operational>: netconf-state (RFC 6022), the
    YANG library (RFC 8525), the event streams (RFC 5277) and the streams and dynamic
    subscriptions (RFC 8639)."""
    return [netconf_state(ctx), *yang_library(ctx.schema), ctx.notifications.streams(),
            *push_state.state_roots(ctx.notifications, ctx.subscriptions)]


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
            _sub(se, k, counters.get(k, 0) % COUNTER32)
    stats = _sub(st, "statistics")
    ctx.stats["in-bad-hellos"] = ctx.registry.bad_hellos
    ctx.stats["out-notifications"] = ctx.notifications.sent
    for k, v in ctx.stats.items():
        _sub(stats, k, v % COUNTER32 if isinstance(v, int) else v)
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
        raise MissingElement("<get-schema> needs <identifier>", type="protocol",
                             **{"bad-element": "identifier"})
    version = (op.findtext(f"{{{NCM}}}version") or "").strip() or None
    fmt = (op.findtext(f"{{{NCM}}}format") or "yang").strip()
    if fmt.split(":")[-1] != "yang":
        raise InvalidValue(f"schema format {fmt!r} is not available",
                           **{"bad-element": "format"})
    text = ctx.schema.module_text(ident.strip(), version)
    if text is None:
        raise InvalidValue(f"no schema {ident!r}"
                           + (f" revision {version}" if version else ""),
                           **{"bad-element": "identifier"})
    d = etree.Element(f"{{{NCM}}}data", nsmap={None: NCM})
    d.text = text
    return d
