"""The RFC 6241 base operations. Each handler takes (ctx, session, operation element)."""

from __future__ import annotations

from typing import Any

from lxml import etree

from nf.edit import elements, qname
from nf.errors import (
    BadAttribute,
    InvalidValue,
    MissingAttribute,
    MissingElement,
    OperationNotSupported,
)
from nf.nacm import write_checker
from nf.schema import NS
from nf.state import merge_state
from northbound import (
    defaults,
    filters,
    monitoring,
    narrow,
    notifications,
    ops_actions,
    ops_apply,
    ops_ca,
    ops_history,
    ops_nmda,
    ops_push,
    replies,
    verbatim,
)
from northbound.context import ServerContext
from northbound.params import uint
from northbound.reading import WD, config_roots, wd_mode

NC = replies.NC
NMDA = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"
DS = "urn:ietf:params:xml:ns:yang:ietf-datastores"
DEFAULT_OPS = ("merge", "replace", "none")
TEST_OPTIONS = ("test-then-set", "set", "test-only")
DATASTORES = ("running", "candidate", "startup")
ERROR_OPTIONS = ("stop-on-error", "continue-on-error", "rollback-on-error")


def _child(op: etree._Element, name: str) -> etree._Element | None:
    return op.find(f"{{{NC}}}{name}")


def _required(op: etree._Element, name: str) -> etree._Element:
    el = _child(op, name)
    if el is None:
        raise MissingElement(f"<{qname(op)[1]}> needs <{name}>", type="protocol",
                             **{"bad-element": name})
    return el


def _datastore(op: etree._Element, which: str, allowed: tuple[str, ...]) -> str:
    holder = _required(op, which)
    kids = list(elements(holder))
    if len(kids) != 1:
        raise MissingElement(f"<{which}> needs one datastore", type="protocol",
                             **{"bad-element": which})
    ns, name = qname(kids[0])
    if name == "url":
        raise OperationNotSupported(":url is not supported", type="protocol")
    if (ns, name) == (NMDA, "datastore"):  # RFC 8526 section 3.2: an NMDA datastore identity
        prefix, _, ident = (kids[0].text or "").strip().rpartition(":")
        ns = NC if kids[0].nsmap.get(prefix or None) == DS else ""
        name = ident
    if ns != NC or name not in allowed:
        raise InvalidValue(f"datastore {name!r} is not allowed in <{which}>", type="protocol",
                           **{"bad-element": name})
    return name


def _enum(op: etree._Element, name: str, allowed: tuple[str, ...], default: str) -> str:
    el = _child(op, name)
    if el is None:
        return default
    v = (el.text or "").strip()
    if v not in allowed:
        raise InvalidValue(f"<{name}> must be one of {', '.join(allowed)}", type="protocol",
                           **{"bad-element": name})
    return v


def _filtered(ctx: ServerContext, roots: list[etree._Element],
              op: etree._Element) -> etree._Element:
    f = _child(op, "filter")
    if f is None:
        return replies.data(*roots)
    ftype = f.get("type", "subtree")
    if ftype == "subtree":
        return replies.data(*filters.subtree(roots, f, owned=True))
    if ftype == "xpath":
        select = f.get("select")
        if select is None:
            raise MissingAttribute("an xpath filter needs a select attribute", type="protocol",
                                   **{"bad-attribute": "select", "bad-element": "filter"})
        return replies.data(*filters.xpath(roots, select, f.nsmap, ctx.schema.state_top))
    raise BadAttribute(f"unknown filter type {ftype!r}", type="protocol",
                       **{"bad-attribute": "type", "bad-element": "filter"})


async def get(ctx: ServerContext, session: Any, op: etree._Element) -> etree._Element:
    """<get>: running config plus the state read from the daemon."""
    spec = narrow.spec_of(op)
    state = narrow.state(await ctx.read_state(), spec, NS, "ike")
    extra = monitoring.state_roots(ctx) if narrow.may_select(spec, ops_nmda.SERVER_STATE) else []
    roots = config_roots(ctx, session, "running", op, lambda rs: monitoring.add_nacm_counters(
        ctx, merge_state(rs, state)) + extra, spec)
    return _filtered(ctx, roots, op)


async def get_config(ctx: ServerContext, session: Any,
                     op: etree._Element) -> etree._Element | replies.Verbatim:
    """<get-config> of running or candidate."""
    name = _datastore(op, "source", ("running", "candidate", "startup"))
    whole = verbatim.get_config(ctx, session, name, op)  # a whole read: no copy
    if whole is not None:
        return whole
    roots = config_roots(ctx, session, name, op, spec=narrow.spec_of(op))
    return _filtered(ctx, roots, op)


async def edit_config(ctx: ServerContext, session: Any, op: etree._Element) -> etree._Element:
    """<edit-config> on running or candidate."""
    target = _datastore(op, "target", ("running", "candidate"))
    default_op = _enum(op, "default-operation", DEFAULT_OPS, "merge")
    test = _enum(op, "test-option", TEST_OPTIONS, "test-then-set")
    error = _enum(op, "error-option", ERROR_OPTIONS, "stop-on-error")
    if _child(op, "url") is not None:
        raise OperationNotSupported(":url is not supported", type="protocol")
    config = defaults.untag(ctx.schema, _required(op, "config"), default_op)
    check = write_checker(ctx.access(session), ctx.schema.top, ctx.nacm_counters)
    ctx.ds.edit(target, config, session.session_id, default_op, test, error, check)
    return replies.ok()


async def copy_config(ctx: ServerContext, session: Any, op: etree._Element) -> etree._Element:
    """<copy-config> between datastores, or from an inline <config>."""
    target = _datastore(op, "target", ("running", "candidate", "startup"))
    # RFC 6243: with-defaults shapes what is copied to a file (:url, not supported); the
    # datastores hold explicit data, copied as it is. The mode must still be one we support.
    wd_mode(op.find(f"{{{WD}}}with-defaults"))
    check = write_checker(ctx.access(session), ctx.schema.top, ctx.nacm_counters)
    inline = _required(op, "source").find(f"{{{NC}}}config")
    if inline is not None:
        ctx.ds.copy_config(target, session.session_id,
                           config=defaults.untag(ctx.schema, inline, None), check=check)
    else:
        source = _datastore(op, "source", ("running", "candidate", "startup"))
        if source == target:
            raise InvalidValue("source and target are the same datastore", type="protocol")
        ctx.ds.copy_config(target, session.session_id, source=source, check=check)
    return replies.ok()


async def delete_config(ctx: ServerContext, session: Any, op: etree._Element) -> etree._Element:
    """<delete-config> (startup only)."""
    ctx.ds.delete_config(
        _datastore(op, "target", ("running", "candidate", "startup")), session.session_id
    )
    return replies.ok()


async def lock(ctx: ServerContext, session: Any, op: etree._Element) -> etree._Element:
    """<lock>."""
    ctx.ds.lock(_datastore(op, "target", DATASTORES), session.session_id)
    return replies.ok()


async def unlock(ctx: ServerContext, session: Any, op: etree._Element) -> etree._Element:
    """<unlock>."""
    ctx.ds.unlock(_datastore(op, "target", DATASTORES), session.session_id)
    return replies.ok()


async def validate(ctx: ServerContext, session: Any, op: etree._Element) -> etree._Element:
    """<validate> of a datastore or of an inline <config>."""
    src = _required(op, "source")
    inline = src.find(f"{{{NC}}}config")
    if inline is not None:
        ctx.ds.validate_config(defaults.untag(ctx.schema, inline, None))
    else:
        ctx.ds.validate_datastore(_datastore(op, "source", DATASTORES))
    return replies.ok()


async def commit(ctx: ServerContext, session: Any, op: etree._Element) -> etree._Element:
    """<commit>, optionally confirmed: candidate to running, then the southbound converges."""
    confirmed = _child(op, "confirmed") is not None
    timeout = uint(op.findtext(f"{{{NC}}}confirm-timeout") or "600", "confirm-timeout", 1)
    session.data["comment"] = op.findtext(f"{{{NS}}}comment") or ""
    persist = op.findtext(f"{{{NC}}}persist")
    persist_id = op.findtext(f"{{{NC}}}persist-id")
    ctx.confirmed.commit(session.session_id, confirmed, timeout, persist, persist_id)
    return replies.ok()


async def cancel_commit(ctx: ServerContext, session: Any, op: etree._Element) -> etree._Element:
    """<cancel-commit>: roll back a pending confirmed commit."""
    ctx.confirmed.cancel(session.session_id, op.findtext(f"{{{NC}}}persist-id"))
    return replies.ok()


async def discard_changes(ctx: ServerContext, session: Any,
                          op: etree._Element) -> etree._Element:
    """<discard-changes>."""
    ctx.ds.discard_changes(session.session_id)
    return replies.ok()


async def close_session(ctx: ServerContext, session: Any, op: etree._Element) -> etree._Element:
    """<close-session>: reply ok, then the transport closes the session."""
    session.closing = True
    return replies.ok()


async def kill_session(ctx: ServerContext, session: Any, op: etree._Element) -> etree._Element:
    """<kill-session>: end another session, releasing its locks."""
    sid = uint(_required(op, "session-id").text, "session-id", 1)
    if sid == session.session_id:
        raise InvalidValue("a session cannot kill itself", type="protocol",
                           **{"bad-element": "session-id"})
    await ctx.kill(sid, session.session_id)
    return replies.ok()


TABLE = {
    (NC, "get"): get,
    (NC, "get-config"): get_config,
    (NC, "edit-config"): edit_config,
    (NC, "copy-config"): copy_config,
    (NC, "delete-config"): delete_config,
    (NC, "lock"): lock,
    (NC, "unlock"): unlock,
    (NC, "validate"): validate,
    (NC, "commit"): commit,
    (NC, "cancel-commit"): cancel_commit,
    (NC, "discard-changes"): discard_changes,
    (NC, "close-session"): close_session,
    (NC, "kill-session"): kill_session,
    (monitoring.NCM, "get-schema"): monitoring.get_schema,
    (notifications.NOTIF, "create-subscription"): notifications.create_subscription,
    **ops_history.TABLE,
    **ops_apply.TABLE,
    **ops_actions.TABLE,
    **ops_ca.TABLE,
    **ops_nmda.TABLE,
    **ops_push.TABLE,
}

CAPABILITIES = [
    "urn:ietf:params:netconf:base:1.0",
    "urn:ietf:params:netconf:base:1.1",
    "urn:ietf:params:netconf:capability:writable-running:1.0",
    "urn:ietf:params:netconf:capability:candidate:1.0",
    "urn:ietf:params:netconf:capability:confirmed-commit:1.0",
    "urn:ietf:params:netconf:capability:confirmed-commit:1.1",
    "urn:ietf:params:netconf:capability:validate:1.0",
    "urn:ietf:params:netconf:capability:validate:1.1",
    "urn:ietf:params:netconf:capability:rollback-on-error:1.0",
    "urn:ietf:params:netconf:capability:xpath:1.0",
    "urn:ietf:params:netconf:capability:startup:1.0",
    "urn:ietf:params:netconf:capability:notification:1.0",
    "urn:ietf:params:netconf:capability:interleave:1.0",
    "urn:ietf:params:netconf:capability:with-defaults:1.0?basic-mode=explicit"
    "&also-supported=report-all,report-all-tagged,trim",
    "urn:ipsec-nf:yang:ipsec-nf?module=ipsec-nf&revision=2026-11-29",
    # RFC 9061 (the IKE case on charon: nf/i2nsf_ike.py; the IKE-less case in the kernel's
    # XFRM on kernel-netlink: nf/i2nsf_ikeless.py, southbound/ikeless_backend.py)
    "urn:ietf:params:xml:ns:yang:ietf-i2nsf-ikec?module=ietf-i2nsf-ikec&revision=2021-07-14",
    "urn:ietf:params:xml:ns:yang:ietf-i2nsf-ike?module=ietf-i2nsf-ike&revision=2021-07-14",
    "urn:ietf:params:xml:ns:yang:ietf-i2nsf-ikeless?module=ietf-i2nsf-ikeless"
    "&revision=2021-07-14&features=ikeless-notification",
    "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring?module=ietf-netconf-monitoring"
    "&revision=2010-10-04",
    "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda?module=ietf-netconf-nmda&revision=2019-01-07",
    "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults?module=ietf-netconf-with-defaults"
    "&revision=2011-06-01",
    # RFC 8639/8640/8641: dynamic subscriptions and YANG-Push, with the features we implement
    # (also in the YANG library: nf.yang_modules.FEATURES)
    "urn:ietf:params:xml:ns:yang:ietf-subscribed-notifications?module="
    "ietf-subscribed-notifications&revision=2019-09-09&features=encode-xml,replay,subtree,xpath",
    "urn:ietf:params:xml:ns:yang:ietf-yang-push?module=ietf-yang-push&revision=2019-09-09"
    "&features=on-change",
]


def capabilities(schema: Any) -> list[str]:
    """The hello capabilities, with the YANG library one (RFC 8526) for this module set."""
    return [*CAPABILITIES, monitoring.yang_library_capability(schema)]
