"""The handlers' ServerContext: frozen, keyword-only, built by the App; northbound stays
independent of tools/."""

from __future__ import annotations

import ast
import asyncio
import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest
from lxml import etree

from northbound.context import ServerContext
from tests.support import NC, P

NORTHBOUND = Path(__file__).resolve().parents[3] / "northbound"


def test_context_is_frozen_and_keyword_only(new_context) -> None:
    ctx = new_context()
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.ds = None  # type: ignore[misc]
    assert all(f.kw_only for f in dataclasses.fields(ServerContext))
    with pytest.raises(TypeError):
        ServerContext(*[getattr(ctx, f.name) for f in dataclasses.fields(ServerContext)])
    assert {f.name for f in dataclasses.fields(ServerContext)} >= {
        "schema", "ds", "confirmed", "history", "registry", "notifications", "capabilities",
        "stats", "access", "read_state", "kill"}


def test_northbound_does_not_import_tools() -> None:
    for py in NORTHBOUND.glob("*.py"):
        for node in ast.walk(ast.parse(py.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "tools" or n.startswith("tools.") for n in names), py


def test_app_builds_the_context(tmp_path: Path) -> None:
    from tools.app import App

    app = App(tmp_path / "state")
    ctx = app.dispatcher.ctx
    assert isinstance(ctx, ServerContext) and ctx is app.context
    assert ctx.ds is app.ds and ctx.schema is app.schema and ctx.history is app.history
    assert ctx.registry is app.registry and ctx.notifications is app.notifications
    assert ctx.confirmed is app.confirmed and ctx.stats is app.stats
    assert ctx.capabilities is app.capabilities

    root = SimpleNamespace(session_id=1, closing=False, data={}, user="root", groups=["admin"])

    def run(body: str) -> etree._Element:
        msg = f'<rpc xmlns="{NC}" message-id="3">{body}</rpc>'.encode()
        return etree.fromstring(asyncio.run(app.dispatcher.handle(root, msg)))

    # kill-session reaches App.kill through the context: no such session
    r = run("<kill-session><session-id>9</session-id></kill-session>")
    assert r.findtext("nc:rpc-error/nc:error-tag", namespaces=P) == "invalid-value"
    assert "no session 9" in r.findtext("nc:rpc-error/nc:error-message", namespaces=P)
    assert run("<get-config><source><running/></source></get-config>").find(
        "nc:data", P) is not None
    assert app.stats["in-rpcs"] == 2 and app.stats["out-rpc-errors"] == 1
