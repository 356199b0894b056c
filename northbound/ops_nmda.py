"""NMDA operations (RFC 8526): get-data on every datastore, with origins; edit-data."""

from __future__ import annotations

import copy
from typing import Any

from lxml import etree

from nf.edit import elements, qname
from nf.errors import InvalidValue, MissingElement, UnknownElement
from nf.nacm import write_checker
from nf.paths import schema_of
from nf.schema import NS
from nf.state import merge_state
from northbound import (
    defaults,
    filters,
    monitoring,
    narrow,
    notifications,
    push_state,
    replies,
    verbatim,
)
from northbound.context import ServerContext
from northbound.params import uint
from northbound.reading import WD, WD_MODES, config_roots

NMDA = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"
DS = "urn:ietf:params:xml:ns:yang:ietf-datastores"
OR = "urn:ietf:params:xml:ns:yang:ietf-origin"
CONVENTIONAL = ("running", "candidate", "startup", "intended")
ORIGINS = ("origin", "intended", "dynamic", "system", "learned", "default", "unknown")

# the namespaces of the server's own state trees (monitoring.state_roots): built for a read
# only when its filter may select one of them (the YANG library alone is ~1 ms to build)
SERVER_STATE = frozenset({monitoring.NCM, monitoring.YL, notifications.NMN, push_state.SN})


def _datastore(op: etree._Element) -> str:
    el = op.find(f"{{{NMDA}}}datastore")
    if el is None:
        raise MissingElement("<datastore> is required", type="protocol",
                             **{"bad-element": "datastore"})
    prefix, _, name = (el.text or "").strip().rpartition(":")
    if el.nsmap.get(prefix or None) != DS or name not in (*CONVENTIONAL, "operational"):
        raise InvalidValue(f"unknown datastore {el.text!r}", type="protocol",
                           **{"bad-element": "datastore"})
    return name


def _wd_alias(op: etree._Element) -> etree._Element:
    """get-data carries with-defaults in its own namespace: present it as get-config does."""
    wd = op.find(f"{{{NMDA}}}with-defaults")
    if wd is None:
        return op
    alias = etree.Element("op")
    etree.SubElement(alias, f"{{{WD}}}with-defaults").text = wd.text
    if (wd.text or "").strip() not in WD_MODES:
        raise InvalidValue("bad with-defaults value", type="protocol",
                           **{"bad-element": "with-defaults"})
    return alias


def _origin(el: etree._Element, value: str) -> None:
    el.set(f"{{{OR}}}origin", f"or:{value}")


def _origin_filter(op: etree._Element) -> bool | None:
    """Whether the configuration nodes (all from intended here) pass the origin-filter or
    negated-origin-filter of the request (RFC 8526 section 3.1.1); None if there is none."""
    found: dict[str, list[str]] = {}
    for name in ("origin-filter", "negated-origin-filter"):
        for el in op.iterfind(f"{{{NMDA}}}{name}"):
            prefix, _, ident = (el.text or "").strip().rpartition(":")
            if el.nsmap.get(prefix or None) != OR or ident not in ORIGINS:
                raise InvalidValue(f"{name}: unknown origin {el.text!r}",
                                   type="protocol", **{"bad-element": name})
            found.setdefault(name, []).append(ident)
    # 'intended' is matched by itself and by its base identity 'origin'
    if "origin-filter" in found:
        return any(i in ("intended", "origin") for i in found["origin-filter"])
    if "negated-origin-filter" in found:
        return not any(i in ("intended", "origin") for i in found["negated-origin-filter"])
    return None


def _only(el: etree._Element, sn: Any, want_config: bool) -> bool:
    """Keep only config (or only state) nodes under ``el``; True when something is left."""
    if sn is None:
        return not want_config  # monitoring data is all state
    if sn.kind in ("leaf", "leaf-list"):
        return sn.config == want_config
    keep = False
    for c in list(elements(el)):
        csn = schema_of(sn, c)
        if sn.kind == "list" and csn is not None and csn.name in sn.keys:
            continue
        if _only(c, csn, want_config):
            keep = True
        else:
            el.remove(c)
    return keep or (not len(el) and sn.config == want_config)


def _depth(el: etree._Element, limit: int) -> None:
    for c in list(elements(el)):
        if limit <= 1:
            el.remove(c)
        else:
            _depth(c, limit - 1)


async def get_data(ctx: ServerContext, session: Any,
                   op: etree._Element) -> etree._Element | replies.Verbatim:
    """<get-data>: one datastore, optionally filtered, with origins for operational."""
    name = _datastore(op)
    source = "running" if name in ("intended", "operational") else name
    operational = name == "operational"
    with_origin = op.find(f"{{{NMDA}}}with-origin") is not None
    if with_origin and not operational:
        raise InvalidValue("with-origin applies to operational only",
                           type="protocol", **{"bad-element": "with-origin"})
    origin_params = [e for e in elements(op) if qname(e) in (
        (NMDA, "origin-filter"), (NMDA, "negated-origin-filter"))]
    if origin_params and not operational:  # their 'when' is false: RFC 7950 section 8.3.1
        bad = qname(origin_params[0])[1]
        raise UnknownElement(f"{bad} applies to operational only",
                             type="protocol", **{"bad-element": bad})
    if operational and op.find(f"{{{NMDA}}}with-defaults") is not None:
        # RFC 8526 section 3.1.1: only with the :with-operational-defaults capability
        raise InvalidValue("with-defaults is not supported for operational",
                           type="protocol", **{"bad-element": "with-defaults"})
    cf = op.findtext(f"{{{NMDA}}}config-filter")
    if cf is not None and cf.strip() not in ("true", "false"):
        raise InvalidValue("config-filter must be true or false",
                           type="protocol", **{"bad-element": "config-filter"})
    if not operational and cf is None and op.find(f"{{{NMDA}}}max-depth") is None and \
            op.find(f"{{{NMDA}}}xpath-filter") is None:  # a whole read: printed, not copied
        whole = verbatim.read(ctx, session, source, _wd_alias(op),
                              op.find(f"{{{NMDA}}}subtree-filter"), verbatim.GET_DATA)
        if whole is not None:
            return whole
    keep_config = _origin_filter(op) if operational else None
    state = await ctx.read_state() if operational else {}

    def add_state(roots: list[etree._Element]) -> list[etree._Element]:
        roots = monitoring.add_nacm_counters(ctx, merge_state(roots, state))
        # RFC 8342 section 5.3.4 / ietf-origin: origins are for configuration nodes only,
        # given on the top ones and inherited below; state data has none
        for r in roots if with_origin else []:
            sn = schema_of(ctx.schema.top, r)
            if sn is not None and sn.config:
                _origin(r, "intended")
        return roots + (monitoring.state_roots(ctx) if narrow.may_select(spec, SERVER_STATE)
                        else [])

    spec = narrow.spec_of(op)
    if operational:
        state = narrow.state(state, spec, NS, "ike")
    roots = config_roots(ctx, session, source, _wd_alias(op),
                         add_state if operational else None, spec)
    if keep_config is False:
        roots = [r for r in roots if _only(r, schema_of(ctx.schema.state_top, r), False)]
    if cf is not None:
        want = cf.strip() == "true"
        roots = [r for r in roots if _only(r, schema_of(ctx.schema.state_top, r), want)]
    sub = op.find(f"{{{NMDA}}}subtree-filter")
    xp = op.find(f"{{{NMDA}}}xpath-filter")
    if sub is not None:
        roots = filters.subtree(roots, sub, owned=True)
    elif xp is not None:
        roots = filters.xpath(roots, (xp.text or "").strip(), xp.nsmap, ctx.schema.state_top)
    md = (op.findtext(f"{{{NMDA}}}max-depth") or "unbounded").strip()
    if md != "unbounded":
        depth = uint(md, "max-depth", 1, 65535)
        roots = [copy.deepcopy(r) for r in roots]
        for r in roots:
            _depth(r, depth)
    d = etree.Element(f"{{{NMDA}}}data", nsmap={None: NMDA, "or": OR})
    for r in roots:
        d.append(r)
    return d


async def edit_data(ctx: ServerContext, session: Any, op: etree._Element) -> etree._Element:
    """<edit-data> on running or candidate (same operations as edit-config)."""
    name = _datastore(op)
    if name not in ("running", "candidate"):
        raise InvalidValue(f"{name} cannot be edited", type="protocol",
                           **{"bad-element": "datastore"})
    dop = (op.findtext(f"{{{NMDA}}}default-operation") or "merge").strip()
    if dop not in ("merge", "replace", "none"):
        raise InvalidValue("bad default-operation", type="protocol",
                           **{"bad-element": "default-operation"})
    config = op.find(f"{{{NMDA}}}config")
    if config is None:
        raise MissingElement("<config> is required", type="protocol",
                             **{"bad-element": "config"})
    config = defaults.untag(ctx.schema, config, dop)
    check = write_checker(ctx.access(session), ctx.schema.top, ctx.nacm_counters)
    ctx.ds.edit(name, config, session.session_id, dop, check=check)
    return replies.ok()


TABLE = {(NMDA, "get-data"): get_data, (NMDA, "edit-data"): edit_data}
