"""Shared fixtures: a server object with real datastores and the dispatcher, no transport."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from lxml import etree

from nf.confirmed import ConfirmedCommits
from nf.datastore import Datastores
from nf.nacm import Access, parse_policy
from nf.schema import Schema
from northbound import ops
from northbound.rpc import Dispatcher
from northbound.session import SessionRegistry
from tests.support import DATA, NC, P


class FakeServer:
    def __init__(self, tmp: Path) -> None:
        self.schema = Schema()
        self.ds = Datastores(self.schema, tmp)
        self.capabilities = ops.capabilities(self.schema)
        self.stats = {"in-rpcs": 0, "in-bad-rpcs": 0, "out-rpc-errors": 0}
        self.registry = SessionRegistry()
        self.confirmed = ConfirmedCommits(self.ds)

    def access(self, session: Any) -> Access:
        return Access(parse_policy(self.ds.tree("running")), session.user, session.groups)

    async def read_state(self) -> dict[str, Any]:
        return {"ike-sas": {"total": 1, "half-open": 0},
                "ike-sa": [{"unique-id": 1, "name": "siteA-siteB", "state": "established"}]}


@pytest.fixture
def call(tmp_path: Path):
    server = FakeServer(tmp_path)
    d = Dispatcher(server, ops.TABLE)
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
    return run


