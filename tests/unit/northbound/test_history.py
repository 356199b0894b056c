"""Commit history: list, diff (secrets hidden from others), rollback into the candidate."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

from lxml import etree

from nf.history import History
from northbound import ops
from northbound.context import ServerContext
from northbound.rpc import Dispatcher

DATA = Path(__file__).resolve().parents[2] / "data"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS = "urn:ipsec-nf:yang:ipsec-nf"
P = {"nc": NC, "i": NS}


def test_history(tmp_path: Path, new_context: Callable[..., ServerContext]) -> None:
    ctx = new_context(history=History(tmp_path, keep=3))
    sessions: dict[int, SimpleNamespace] = {}
    ctx.ds.on_change.append(lambda sid, edits, before, after: ctx.history.record(
        before, after, sessions[sid].user, sid, sessions[sid].data.pop("comment", "")))
    d = Dispatcher(ctx, ops.TABLE)
    admin = SimpleNamespace(session_id=1, closing=False, data={}, user="root", groups=["admin"])
    other = SimpleNamespace(session_id=2, closing=False, data={}, user="olga", groups=[])
    sessions.update({1: admin, 2: other})

    def run(s, body: str) -> etree._Element:
        out = asyncio.run(d.handle(s, f'<rpc xmlns="{NC}" message-id="1">{body}</rpc>'.encode()))
        return etree.fromstring(out)

    site = (DATA / "site_a.xml").read_text()
    run(admin, f"<edit-config><target><candidate/></target>{site}</edit-config>")
    assert run(admin, f'<commit><comment xmlns="{NS}">first site</comment></commit>').find(
        "nc:ok", P) is not None
    for lid in ("b.example.net", "c.example.net"):
        run(admin, f'<edit-config><target><running/></target><config><ike xmlns="{NS}"><vpn>'
                   f"<name>siteA-siteB</name><local-id>{lid}</local-id></vpn></ike></config>"
                   "</edit-config>")
    r = run(admin, f'<list-commits xmlns="{NS}"/>')
    commits = r.findall("i:commit", P)
    assert [c.findtext("i:rollback", namespaces=P) for c in commits] == ["0", "1", "2"]
    assert commits[2].findtext("i:comment", namespaces=P) == "first site"
    assert commits[0].findtext("i:user", namespaces=P) == "root"

    d0 = run(admin, f'<show-commit-diff xmlns="{NS}"><rollback>0</rollback>'
                    "</show-commit-diff>").findtext("i:diff", namespaces=P)
    assert re.search(r"^-\s*<local-id>b\.example\.net</local-id>$", d0, re.M), d0
    assert re.search(r"^\+\s*<local-id>c\.example\.net</local-id>$", d0, re.M), d0
    first = run(admin, f'<show-commit-diff xmlns="{NS}"><rollback>2</rollback>'
                       "</show-commit-diff>").findtext("i:diff", namespaces=P)
    assert "0seaJ31" in first
    hidden = run(other, f'<show-commit-diff xmlns="{NS}"><rollback>2</rollback>'
                        "</show-commit-diff>").findtext("i:diff", namespaces=P)
    assert "0seaJ31" not in hidden and "siteA-siteB" in hidden

    assert run(admin, f'<rollback xmlns="{NS}"><rollback>1</rollback></rollback>').find(
        "nc:ok", P) is not None
    cand = run(admin, "<get-config><source><candidate/></source></get-config>")
    assert cand.findtext("nc:data/i:ike/i:vpn/i:local-id", namespaces=P) == "b.example.net"
    run(admin, "<commit/>")
    assert len(ctx.history.entries) == 3  # keeps the last 3
    r = run(admin, f'<rollback xmlns="{NS}"><rollback>9</rollback></rollback>')
    assert r.findtext("nc:rpc-error/nc:error-tag", namespaces=P) == "invalid-value"

    # read back by a new server: each commit's file says who, when and why (no index file)
    again = History(tmp_path, keep=3)
    assert again.entries == ctx.history.entries
    assert not (tmp_path / "history" / "index.json").exists()
    assert sorted(p.name for p in (tmp_path / "history").glob("*.xml")) == [
        f"{c.id}.xml" for c in again.entries]
    before, _ = again.images(again.entries[-1])
    assert before


def test_history_of_an_older_version_is_read_from_its_index(tmp_path: Path) -> None:
    import json

    hist = tmp_path / "history"
    hist.mkdir()
    (hist / "4.xml").write_bytes(b"<commit><entry top='ike' tag='' key='[]'><before/><after/>"
                                 b"</entry></commit>")
    (hist / "index.json").write_text(json.dumps([
        {"id": 3, "time": "2026-01-01T00:00:00Z", "user": "gone", "session_id": 1,
         "comment": ""},
        {"id": 4, "time": "2026-01-02T00:00:00Z", "user": "root", "session_id": 2,
         "comment": "old"}]))
    h = History(tmp_path)
    assert [(c.id, c.user, c.comment) for c in h.entries] == [(4, "root", "old")]
    c = h.record({}, {}, "admin", 5, "new")
    assert [e.id for e in History(tmp_path).entries] == [4, c.id] == [4, 5]
