"""The RFC 8639 / RFC 8641 operations over NETCONF (RFC 8640): establish-, modify-, delete-,
kill- and resync-subscription. libyang has checked the input against the YANG modules
(types, identities, mandatory nodes, cases) before these run; what is left is what the
modules cannot say. Errors are invalid-value with the reason identity as error-app-tag
(RFC 8640 section 7)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from nf.edit import elements
from nf.errors import InvalidValue, OperationNotSupported, RpcError
from nf.nacm import prune_unreadable
from nf.observed import READ_MAX_AGE, StateSnapshot
from nf.state import merge_state
from northbound import push, replies
from northbound.context import ServerContext
from northbound.notifications import STREAM
from northbound.push_on_change import per_entry
from northbound.subscriptions import MAX_PER_SESSION, MIN_PERIOD, Reader, Spec, Subscription

SN, YP = push.SN, push.YP
DSNS = "urn:ietf:params:xml:ns:yang:ietf-datastores"
SUBSCRIBABLE = ("running", "intended", "operational")
STATE_MAX_AGE = READ_MAX_AGE  # seconds: how old a state snapshot an update may use


def _refused(reason: str, message: str, module: str = "ietf-subscribed-notifications",
             **info: str) -> RpcError:
    return InvalidValue(message, app_tag=f"{module}:{reason}", **info)


def _time(el: etree._Element | None) -> datetime | None:
    if el is None:
        return None
    t = datetime.fromisoformat((el.text or "").strip().replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _identity(el: etree._Element) -> tuple[str | None, str]:
    """An identityref value as (namespace, name)."""
    prefix, _, name = (el.text or "").strip().rpartition(":")
    return el.nsmap.get(prefix or None), name


def _xpath(el: etree._Element) -> tuple[str, tuple[tuple[str, str], ...]]:
    expr, nsmap = (el.text or "").strip(), push.xpath_namespaces(el)
    try:  # evaluated once: lxml lacks RFC 7950's XPath functions (re-match, deref...)
        etree.XPath(expr, namespaces=dict(nsmap))(etree.Element("probe"))
    except etree.XPathError as e:
        raise _refused("filter-unsupported", f"invalid XPath filter: {e}",
                       **{"bad-element": etree.QName(el).localname}) from None
    return expr, nsmap


def _find(op: etree._Element, ns: str, name: str) -> etree._Element | None:
    return op.find(f"{{{ns}}}{name}")


def _parse(op: etree._Element, old: Spec | None) -> Spec:
    """The terms of establish-subscription (``old`` None) or of modify-subscription (the
    terms given replace those of ``old``: filter, stop-time, period or dampening)."""
    stream_el = _find(op, SN, "stream")
    ds_el = _find(op, YP, "datastore")
    stream = (stream_el.text or "").strip() if stream_el is not None else None
    if old is not None:
        stream = old.stream if ds_el is None else None
        if (ds_el is None) != (old.datastore is None):
            raise InvalidValue("a subscription's target cannot change between an event "
                               "stream and a datastore", **{"bad-element": "target"})
    enc = _find(op, SN, "encoding")
    if enc is not None and _identity(enc) != (SN, "encode-xml"):
        raise _refused("encoding-unsupported", "only encode-xml is supported on NETCONF",
                       **{"bad-element": "encoding"})
    for name, ns in (("stream-filter-name", SN), ("selection-filter-ref", YP)):
        if _find(op, ns, name) is not None:
            raise _refused("filter-unavailable", "there are no configured filters",
                           **{"bad-element": name})
    stop = _time(_find(op, SN, "stop-time"))
    periodic, on_change = _find(op, YP, "periodic"), _find(op, YP, "on-change")
    now = datetime.now(UTC)
    if stream is not None:
        if stream != STREAM:
            raise _refused("stream-unavailable", f"no event stream {stream!r}",
                           **{"bad-element": "stream"})
        if periodic is not None or on_change is not None:
            raise InvalidValue("periodic and on-change apply to datastore subscriptions",
                               **{"bad-element": "periodic" if periodic is not None
                                  else "on-change"})
        replay = _time(_find(op, SN, "replay-start-time")) if old is None else old.replay_start
        if old is None and replay is not None and replay >= now:
            raise _refused("replay-unsupported", "replay-start-time must be in the past",
                           **{"bad-element": "replay-start-time"})
        if stop is not None and stop <= (replay or now):
            raise InvalidValue("stop-time must be later than replay-start-time, or in the "
                               "future", **{"bad-element": "stop-time"})
        subtree = _find(op, SN, "stream-subtree-filter")
        xp = _find(op, SN, "stream-xpath-filter")
        expr, nsmap = _xpath(xp) if xp is not None else (None, ())
        return Spec(stream=stream, stream_subtree=copy.deepcopy(subtree), stream_xpath=expr,
                    nsmap=nsmap, replay_start=replay, stop_time=stop)
    assert ds_el is not None  # libyang: the target choice is mandatory
    ns, datastore = _identity(ds_el)
    if ns != DSNS or datastore not in SUBSCRIBABLE:
        raise _refused("datastore-not-subscribable", f"{ds_el.text} cannot be subscribed to "
                       f"(only {', '.join(SUBSCRIBABLE)})", "ietf-yang-push",
                       **{"bad-element": "datastore"})
    if stop is not None and stop <= now:
        raise InvalidValue("stop-time must be in the future", **{"bad-element": "stop-time"})
    subtree = _find(op, YP, "datastore-subtree-filter")
    xp = _find(op, YP, "datastore-xpath-filter")
    if xp is not None:
        expr, nsmap = _xpath(xp)
        selection = push.Selection(xpath=expr, nsmap=nsmap)
    else:
        selection = push.Selection(subtree=copy.deepcopy(subtree))
    spec = Spec(datastore=datastore, selection=selection, stop_time=stop)
    if old is not None:  # the trigger stays of its kind; what is given replaces its terms
        if (periodic is not None and old.period is None) or (
                on_change is not None and not old.on_change):
            raise InvalidValue("a subscription cannot change between periodic and on-change",
                               **{"bad-element": "periodic" if periodic is not None
                                  else "on-change"})
        spec = Spec(**{**old.__dict__, "selection": selection, "stop_time": stop,
                       "datastore": datastore})
    if periodic is not None:
        period = int(periodic.findtext(f"{{{YP}}}period") or 0)
        if period < MIN_PERIOD:
            raise _refused("period-unsupported", f"the shortest period is {MIN_PERIOD} "
                           "centiseconds", "ietf-yang-push", **{"bad-element": "period"})
        return Spec(**{**spec.__dict__, "period": period,
                       "anchor": _time(periodic.find(f"{{{YP}}}anchor-time"))})
    if on_change is not None:
        damp = int(on_change.findtext(f"{{{YP}}}dampening-period") or 0)
        sync = on_change.findtext(f"{{{YP}}}sync-on-start")
        excluded = frozenset((e.text or "").strip()
                             for e in on_change.iterfind(f"{{{YP}}}excluded-change"))
        if old is not None:
            return Spec(**{**spec.__dict__, "dampening": damp})
        return Spec(**{**spec.__dict__, "on_change": True, "dampening": damp,
                       "sync_on_start": (sync or "true").strip() != "false",
                       "excluded": excluded})
    if old is None:
        raise InvalidValue("a datastore subscription needs periodic or on-change",
                           **{"bad-element": "update-trigger"})
    return spec


class View:
    """How a datastore subscription reads its selection for its receiver: running (with the
    operational state for operational), what NACM lets the user read, never a secret, then
    the selection filter. Called, the whole view; an on-change subscription on operational
    also reads it in parts (``northbound/push_on_change.py``)."""

    def __init__(self, ctx: ServerContext, session: Any, spec: Spec) -> None:
        self.ctx, self.session, self.spec = ctx, session, spec
        self.top = ctx.schema.state_top
        self.local = per_entry(spec.selection)

    async def __call__(self) -> list[etree._Element]:
        return (await self.read_state())[0]

    async def state(self) -> StateSnapshot | None:
        """The state snapshot this view holds (None: not operational, or no state engine)."""
        if self.spec.datastore != "operational" or self.ctx.state is None:
            return None
        return await self.ctx.state.snapshot(STATE_MAX_AGE)

    async def read_state(self) -> tuple[list[etree._Element], StateSnapshot | None]:
        """The whole view, and the state snapshot in it."""
        roots = [copy.deepcopy(r) for r in elements(self.ctx.ds.tree("running"))]
        snap = await self.state()
        if snap is not None:
            roots = merge_state(roots, dict(snap.tree))
        elif self.spec.datastore == "operational":  # a context without the state engine
            roots = merge_state(roots, await self.ctx.read_state())
        return self._select(roots), snap

    def part(self, tree: dict) -> list[etree._Element] | None:
        """The view of the ``/ike`` state members in ``tree`` alone, or None when the
        selection filter looks beyond a member or entry."""
        return self._select(merge_state([], tree)) if self.local else None

    def _select(self, roots: list[etree._Element]) -> list[etree._Element]:
        roots = prune_unreadable(self.ctx.access(self.session), roots, self.top)
        return self.spec.selection.apply(push.strip_secrets(roots, self.top), self.top)


def _reader(ctx: ServerContext, session: Any, spec: Spec) -> Reader | None:
    """The view of a datastore subscription (None for an event stream)."""
    return None if spec.datastore is None else View(ctx, session, spec)


def _engine(ctx: ServerContext) -> Any:
    if ctx.subscriptions is None:
        raise OperationNotSupported("subscriptions are not offered", type="protocol")
    return ctx.subscriptions


def _subscription(ctx: ServerContext, op: etree._Element, session: Any | None,
                  module: str = "ietf-subscribed-notifications",
                  reason: str = "no-such-subscription") -> Subscription:
    """The subscription named by <id>: one of ``session``'s (any, when None)."""
    subs = _engine(ctx)
    sid = int(op.findtext(f"{{{etree.QName(op).namespace}}}id") or 0)
    sub = subs.subs.get(sid)
    if sub is None or (session is not None and sub.session is not session):
        raise _refused(reason, f"no subscription {sid}"
                       + (" of this session" if session is not None else ""), module,
                       **{"bad-element": "id"})
    return sub


async def establish_subscription(ctx: ServerContext, session: Any,
                                 op: etree._Element) -> list[etree._Element]:
    """<establish-subscription>: the new subscription's id (and, for a replay that starts
    before the oldest stored event, the time it starts from)."""
    subs = _engine(ctx)
    if session.session_id in ctx.notifications.subs:
        raise OperationNotSupported("this session has an RFC 5277 create-subscription "
                                    "subscription (RFC 8640 section 3)", type="protocol")
    if len(subs.of_session(session)) >= MAX_PER_SESSION:
        raise _refused("insufficient-resources",
                       f"a session may hold at most {MAX_PER_SESSION} subscriptions")
    spec = _parse(op, None)
    backlog, revision = [], None
    if spec.replay_start is not None:
        log = ctx.notifications.log
        oldest = log.aged_time or ctx.notifications.created  # what replay can still give
        if spec.replay_start < oldest:
            revision = oldest
        backlog = log.between(spec.replay_start, spec.stop_time)
    sub = subs.establish(session, spec, _reader(ctx, session, spec),
                         lambda body: ctx.notifications.authorize(session, body), backlog)
    out = etree.Element(f"{{{SN}}}id", nsmap={None: SN})
    out.text = str(sub.id)
    if revision is None:
        return [out]
    rev = etree.Element(f"{{{SN}}}replay-start-time-revision", nsmap={None: SN})
    rev.text = revision.isoformat(timespec="microseconds").replace("+00:00", "Z")
    return [out, rev]


async def modify_subscription(ctx: ServerContext, session: Any,
                              op: etree._Element) -> etree._Element:
    """<modify-subscription> of one of this session's subscriptions."""
    sub = _subscription(ctx, op, session)
    spec = _parse(op, sub.spec)
    _engine(ctx).modify(sub, spec, _reader(ctx, session, spec))
    return replies.ok()


async def delete_subscription(ctx: ServerContext, session: Any,
                              op: etree._Element) -> etree._Element:
    """<delete-subscription> of one of this session's subscriptions."""
    _engine(ctx).remove(_subscription(ctx, op, session))
    return replies.ok()


async def kill_subscription(ctx: ServerContext, session: Any,
                            op: etree._Element) -> etree._Element:
    """<kill-subscription> of any session's subscription (nacm:default-deny-all): its
    receiver gets subscription-terminated (no-such-subscription, RFC 8639 section 2.7.4)."""
    _engine(ctx).remove(_subscription(ctx, op, None), "no-such-subscription")
    return replies.ok()


async def resync_subscription(ctx: ServerContext, session: Any,
                              op: etree._Element) -> etree._Element:
    """<resync-subscription> (RFC 8641 section 5.2): a full push-update of an on-change
    subscription of this session."""
    sub = _subscription(ctx, op, session, "ietf-yang-push", "no-such-subscription-resync")
    if not sub.spec.on_change:
        raise _refused("no-such-subscription-resync", f"subscription {sub.id} is not "
                       "on-change", "ietf-yang-push", **{"bad-element": "id"})
    _engine(ctx).resync(sub)
    return replies.ok()


TABLE = {
    (SN, "establish-subscription"): establish_subscription,
    (SN, "modify-subscription"): modify_subscription,
    (SN, "delete-subscription"): delete_subscription,
    (SN, "kill-subscription"): kill_subscription,
    (YP, "resync-subscription"): resync_subscription,
}
