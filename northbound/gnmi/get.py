"""gNMI Capabilities and Get."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict

import grpc
from pygnmi.spec.v080 import gnmi_pb2 as pb

from nf.nacm import Access
from nf.observed import READ_MAX_AGE, READ_MAX_STALE, StateSnapshot, unwalked
from nf.paths import Step
from nf.schema import Schema, ffi
from northbound.gnmi import data, entries, paths
from northbound.gnmi.auth import GnmiSession
from northbound.gnmi.context import ENCODINGS, GnmiContext, now_ns
from northbound.gnmi.errors import GnmiError

GNMI_VERSION = "0.8.0"
STATE_MAX_AGE = READ_MAX_AGE  # seconds: a Get reads the daemon again when its state is older
# seconds: up to this old, a Get answers from the cached state while it is read again
# (stale-while-revalidate, nf/observed.py)
STATE_MAX_STALE = READ_MAX_STALE
#: Get answers remembered (a snapshot is read by many Gets within its second: a poller, or
#: several collectors; libyang's parse and print of 1,000 SAs is most of a Get's time)
ANSWERS_KEPT = 8
_ANSWERS: OrderedDict[tuple, tuple[StateSnapshot | None, list[pb.Notification]]] = OrderedDict()
DATATYPES = {
    pb.GetRequest.DataType.ALL: data.ALL,
    pb.GetRequest.DataType.CONFIG: data.CONFIG,
    pb.GetRequest.DataType.STATE: data.STATE,
    pb.GetRequest.DataType.OPERATIONAL: data.STATE,
}


def capabilities(g: GnmiContext) -> pb.CapabilityResponse:
    """Our modules with their revisions, JSON_IETF, the gNMI version."""
    models = []
    for mod in g.ctx.schema.modules:
        org = ffi.string(mod.cdata.org).decode() if mod.cdata.org else ""
        revision = next((str(r) for r in mod.revisions()), "")
        models.append(pb.ModelData(name=mod.name(), organization=org, version=revision))
    return pb.CapabilityResponse(supported_models=models,
                                 supported_encodings=[pb.Encoding.JSON_IETF],
                                 gNMI_version=GNMI_VERSION)


def check_encoding(encoding: int) -> None:
    """JSON_IETF (and JSON, the same bytes) only."""
    if encoding not in ENCODINGS:
        raise GnmiError(grpc.StatusCode.UNIMPLEMENTED,
                        f"encoding {pb.Encoding.Name(encoding)} is not supported: use JSON_IETF")


def typed(val: object, encoding: int) -> pb.TypedValue:
    """A JSON value as a TypedValue in the encoding asked."""
    raw = data.encode(val)
    if encoding == pb.Encoding.JSON:
        return pb.TypedValue(json_val=raw)
    return pb.TypedValue(json_ietf_val=raw)


async def read(g: GnmiContext, session: GnmiSession, which: str,
               snapshot: StateSnapshot | None = None,
               wanted: list[tuple[Step, ...]] | None = None) -> list:
    """The top-level nodes the caller may read: running, the state, or both (only what the
    ``wanted`` paths can select, when given)."""
    # the state of config list entries (a VPN's effective parameters) lives in those entries:
    # STATE reads running too, then keeps only the state and the keys leading to it
    running = g.ctx.ds.tree("running")
    if snapshot is None and which in (data.STATE, data.ALL):
        snapshot = await g.state.snapshot(STATE_MAX_AGE)
    if which == data.CONFIG:
        snapshot = None
    tops = data.roots(running, snapshot, g.access(session), g.ctx.schema.state_top, wanted)
    return data.state_only(tops, g.ctx.schema.state_top) if which == data.STATE else tops


async def get(g: GnmiContext, session: GnmiSession, req: pb.GetRequest) -> pb.GetResponse:
    """One notification per path, one update per node it selects (its whole subtree as one
    JSON_IETF value); a path without wildcards that selects nothing is NOT_FOUND."""
    check_encoding(req.encoding)
    if req.use_models:
        names = {m.name() for m in g.ctx.schema.modules}
        unknown = [m.name for m in req.use_models if m.name not in names]
        if unknown:
            raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT,
                            f"unknown models: {', '.join(unknown)}")
    top = g.ctx.schema.state_top
    prefix = req.prefix if req.HasField("prefix") else None
    try:
        wanted = [(p, paths.parse(prefix, p, top)) for p in (req.path or [pb.Path()])]
    except paths.PathError as e:
        raise GnmiError(grpc.StatusCode.INVALID_ARGUMENT, str(e)) from None
    which = DATATYPES.get(req.type, data.ALL)
    snapshot = (await g.state.snapshot(STATE_MAX_AGE, STATE_MAX_STALE)
                if which != data.CONFIG else None)
    # the same request by the same user on the same snapshot and running: the same answer
    # (NACM rules are in running); only the timestamps are new
    key = (req.SerializeToString(deterministic=True), session.user, tuple(session.groups),
           g.ctx.ds.version)
    hit = _ANSWERS.get(key)
    if hit is not None and hit[0] is snapshot:
        _ANSWERS.move_to_end(key)
        return pb.GetResponse(notification=_restamped(hit[1]))
    out = None
    ids = [entries.table_path(steps, top) for _, steps in wanted]
    if which != data.CONFIG and all(i is not None for i in ids):
        # the SA table alone (a poller's Get): rendered and remembered entry by entry
        reader = (session.user, tuple(session.groups), g.ctx.ds.version)
        out = await asyncio.to_thread(_table_answer, g, g.access(session), reader, snapshot,
                                      wanted, ids, prefix, req.encoding)
    if out is None:
        tops = await read(g, session, which, snapshot, wanted=[steps for _, steps in wanted])
        # libyang's parse and print of the copies run in a thread: the event loop stays free
        out = await asyncio.to_thread(_answer, g.ctx.schema, tops, wanted, prefix,
                                      req.encoding)
    _ANSWERS[key] = (snapshot, out)  # holding the snapshot: compared by identity
    while len(_ANSWERS) > ANSWERS_KEPT:
        _ANSWERS.popitem(last=False)
    return pb.GetResponse(notification=out)


def _restamped(notifications: list[pb.Notification]) -> list[pb.Notification]:
    now = now_ns()
    out = []
    for n in notifications:
        copy = pb.Notification()
        copy.CopyFrom(n)
        copy.timestamp = now
        out.append(copy)
    return out


def _answer(schema: Schema, tops: list, wanted: list[tuple[pb.Path, tuple[Step, ...]]],
            prefix: pb.Path | None, encoding: int) -> list[pb.Notification]:
    """The notifications of a Get: one per path, one update per node it selects (on private
    copies of the data: safe in a thread)."""
    out = []
    with data.parsed(schema, tops) as tree:
        for path, steps in wanted:
            origin = path.origin or (prefix.origin if prefix is not None else "")
            updates = []
            if not steps:
                updates.append(pb.Update(path=pb.Path(origin=origin),
                                         val=typed(data.whole(tree), encoding)))
            for node in data.select(tree, steps) if steps else []:
                updates.append(pb.Update(
                    path=paths.to_gnmi(data.node_steps(node), origin),
                    val=typed(data.value(node), encoding)))
            if not updates and steps and not paths.has_wildcards(steps, schema.state_top):
                raise GnmiError(grpc.StatusCode.NOT_FOUND,
                                f"no data at {paths.text(path)}")
            out.append(pb.Notification(timestamp=now_ns(), update=updates,
                                       prefix=_echo(prefix)))
    return out


@unwalked
def _table_answer(g: GnmiContext, access: Access, reader: tuple,
                  snapshot: StateSnapshot | None,
                  wanted: list[tuple[pb.Path, tuple[Step, ...]]], ids: list[str],
                  prefix: pb.Path | None, encoding: int) -> list[pb.Notification] | None:
    """The notifications of a Get of SA table paths (``ids``: the unique-id each path asks,
    "" for all) from the entries remembered per reader (northbound/gnmi/entries.py); None
    when the general path must answer (unique-ids not unique, an entry asked not there:
    its NOT_FOUND or a key libyang would read differently)."""
    tree = snapshot.tree if snapshot is not None else None
    table = g.entries.entries(g.ctx.schema, access, reader, tree)
    if table is None:
        return None
    out = []
    for (path, _), want in zip(wanted, ids, strict=True):
        origin = path.origin or (prefix.origin if prefix is not None else "")
        chosen = [r for r in table if not want
                  or dict(r.steps[-1].keys).get(entries.KEY) == want]
        if want and not chosen:
            return None
        updates = _updates(reader, origin, encoding, chosen)
        out.append(pb.Notification(timestamp=now_ns(), update=updates, prefix=_echo(prefix)))
    return out


#: the Update messages of the last table answers, per (reader, origin, encoding): an entry
#: whose remembered value is the same object is sent as the same Update (its path and its
#: JSON encoding were ~75 ms of a Get of 1,000 entries that rendered nothing)
_UPDATES: OrderedDict[tuple, dict[int, tuple[object, tuple, pb.Update]]] = OrderedDict()
_UPDATES_LOCK = threading.Lock()  # (table answers are made in threads)


def _updates(reader: tuple, origin: str, encoding: int,
             chosen: list[entries.Rendered]) -> list[pb.Update]:
    """The Updates of ``chosen`` entries, made again only for values not sent before (the
    Update is copied into each response: one kept is never changed)."""
    key = (reader, origin, encoding)
    with _UPDATES_LOCK:
        old = _UPDATES.pop(key, {})
    # an entry's path stays while its value moves (a new Update holds a copy of it)
    paths_kept = {steps: u.path for _, steps, u in old.values()}
    new: dict[int, tuple[object, tuple, pb.Update]] = {}
    out = []
    for r in chosen:
        hit = old.get(id(r.value))
        # (the value is held: its id is not reused while remembered)
        if hit is None or hit[0] is not r.value or hit[1] != r.steps:
            was = paths_kept.get(r.steps)
            path = was if was is not None else paths.to_gnmi(r.steps, origin)
            text = r.text if r.text is not None else data.encode(r.value)
            val = (pb.TypedValue(json_val=text) if encoding == pb.Encoding.JSON
                   else pb.TypedValue(json_ietf_val=text))
            hit = (r.value, r.steps, pb.Update(path=path, val=val))
        new[id(r.value)] = hit
        out.append(hit[2])
    with _UPDATES_LOCK:
        # a Get of one entry keeps the table it was taken from
        _UPDATES[key] = new if len(chosen) > 1 or not old else {**old, **new}
        while len(_UPDATES) > ANSWERS_KEPT:
            _UPDATES.popitem(last=False)
    return out


def _echo(prefix: pb.Path | None) -> pb.Path | None:
    """The target of the request's prefix, given back (paths in updates are whole)."""
    if prefix is None or not prefix.target:
        return None
    return pb.Path(target=prefix.target)
