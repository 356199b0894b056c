"""Shared fixtures: a ServerContext with real datastores and the dispatcher, no transport."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from lxml import etree

from nf.confirmed import ConfirmedCommits
from nf.datastore import Datastores
from nf.errors import RpcError
from nf.history import History
from nf.nacm import Access, parse_policy
from nf.schema import Schema
from northbound import ops
from northbound.context import ServerContext
from northbound.notifications import Notifications
from northbound.registry import SessionRegistry
from northbound.rpc import Dispatcher
from tests.support import DATA, NC, P

STATE = {"ike-sas": {"total": 1, "half-open": 0},
         "ike-sa": [{"unique-id": 1, "name": "siteA-siteB", "state": "established"}]}


def make_context(tmp: Path, **fields: Any) -> ServerContext:
    """A ServerContext on real datastores under ``tmp``; ``fields`` replace the defaults
    (the defaults of the other fields are built on the given ``schema`` and ``ds``)."""
    schema = fields["schema"] if "schema" in fields else Schema()
    ds = fields["ds"] if "ds" in fields else Datastores(schema, tmp)

    def access(session: Any) -> Access:
        return Access(parse_policy(ds.tree("running")), session.user, session.groups)

    async def read_state() -> dict[str, Any]:
        return STATE

    async def kill(sid: int, by: int) -> None:
        raise RpcError.of("invalid-value", f"no session {sid}", type="protocol",
                          **{"bad-element": "session-id"})

    async def wait_applied(timeout: float) -> tuple[str, list[dict[str, Any]]]:
        return "applied", []

    defaults: dict[str, Callable[[], Any]] = {
        "confirmed": lambda: ConfirmedCommits(ds),
        "history": lambda: History(tmp),
        "registry": SessionRegistry,
        "notifications": Notifications,
        "capabilities": lambda: ops.capabilities(schema),
        "stats": lambda: {"in-rpcs": 0, "in-bad-rpcs": 0, "out-rpc-errors": 0},
        "access": lambda: access,
        "read_state": lambda: read_state,
        "kill": lambda: kill,
        "wait_applied": lambda: wait_applied,
    }
    built = {k: make() for k, make in defaults.items() if k not in fields}
    return ServerContext(**{"schema": schema, "ds": ds, **built, **fields})


@pytest.fixture
def new_context(tmp_path: Path) -> Callable[..., ServerContext]:
    """make_context on the test's temporary directory."""
    return lambda **fields: make_context(tmp_path, **fields)


@pytest.fixture
def call(tmp_path: Path):
    d = Dispatcher(make_context(tmp_path), ops.TABLE)
    session = SimpleNamespace(session_id=1, closing=False, data={}, user="root",
                              groups=["admin"])

    def run(body: str | bytes, raw: bool = False) -> etree._Element:
        msg = body if raw else f'<rpc xmlns="{NC}" message-id="7">{body}</rpc>'
        out = asyncio.run(d.handle(session, msg.encode() if isinstance(msg, str) else msg))
        return etree.fromstring(out)

    site = (DATA / "site_a.xml").read_text()
    r = run(f"<edit-config><target><running/></target>{site}</edit-config>")
    assert r.find("nc:ok", P) is not None, etree.tostring(r)
    run.session = session
    run.ctx = d.ctx
    return run


