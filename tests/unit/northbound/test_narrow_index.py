"""Reads by key among 3,000 entries (northbound/narrow.py's index path) answer what the
generic path (the whole datastore read, then filtered) answers, NACM-denied entries stay
hidden, and only what the filter can select is built: the selected entries' state, not every
VPN's, and the server's own state trees only when the filter may select them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from northbound import monitoring, narrow, ops, ops_nmda
from northbound.context import ServerContext
from northbound.rpc import Dispatcher
from tests.support import NC, NS
from tests.unit.northbound.test_narrow import CONFIG, DS, NMDA, _vpn

N = 3_000  # 10,000 in bench/reads.py: here the test-time budget (the path is the same)
ADMIN, OP = ("root", ("admin",)), ("op", ("ops",))  # RULES: op may not read vpn3
STATE = {"ike-sas": {"total": 0, "half-open": 0},
         "vpn": [{"name": f"vpn{i}", "apply-status": {"state": "applied"}} for i in range(N)]}


@pytest.fixture(scope="module")
def read(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., bytes]:
    from tests.unit.northbound.conftest import make_context

    async def state() -> dict:
        return STATE

    ctx: ServerContext = make_context(tmp_path_factory.mktemp("idx"), read_state=state)
    d = Dispatcher(ctx, ops.TABLE)

    def run(body: str, user: tuple[str, tuple[str, ...]] = ADMIN) -> bytes:
        s = SimpleNamespace(session_id=3, closing=False, data={}, user=user[0],
                            groups=list(user[1]))
        return asyncio.run(d.handle(s, f'<rpc xmlns="{NC}" message-id="1">{body}</rpc>'
                                    .encode()))

    vpns = "".join(_vpn(i).replace(f"10.0.{i}.0/24", f"10.{i // 256}.{i % 256}.0/24")
                   .replace(f"203.0.113.{i + 1}<", f"203.0.113.{i % 250 + 1}<")
                   for i in range(N))
    config = CONFIG.replace("".join(_vpn(i) for i in range(8)), vpns)
    r = run(f"<edit-config><target><running/></target>{config}</edit-config>")
    assert b"<ok/>" in r, r[:2000]
    return run


def _bodies(key: str) -> list[str]:
    sub = f'<ike xmlns="{NS}"><vpn><name>{key}</name></vpn></ike>'
    return [f'<get-config><source><running/></source><filter type="subtree">{sub}</filter>'
            "</get-config>",
            f'<get-config><source><running/></source><filter type="xpath" xmlns:i="{NS}" '
            f"select=\"/i:ike/i:vpn[i:name='{key}']\"/></get-config>",
            f'<get><filter type="subtree">{sub}</filter></get>',
            f'<get-data xmlns="{NMDA}" xmlns:ds="{DS}"><datastore>ds:operational</datastore>'
            f"<subtree-filter>{sub}</subtree-filter></get-data>"]


def test_key_reads_among_3000_equal_the_generic_path(read, monkeypatch) -> None:
    cases = [(b, ADMIN) for b in _bodies("vpn2345")] + [(b, OP) for b in _bodies("vpn3")]
    narrowed = {case: read(*case) for case in cases}
    with monkeypatch.context() as m:
        m.setattr(narrow, "spec_of", lambda op: None)
        for (b, u), got in narrowed.items():
            assert got == read(b, u), b
    assert b"<name>vpn2345</name>" in narrowed[cases[2]]
    assert b"applied" in narrowed[cases[2]]  # the entry's own state, merged in
    for b in _bodies("vpn3"):
        assert b"<name>vpn3</name>" in read(b, ADMIN)
        assert b"vpn3" not in narrowed[(b, OP)]  # NACM-denied: hidden on the index path too


def test_only_the_selected_entries_state_is_merged(read, monkeypatch) -> None:
    seen: list[int] = []
    real = ops.merge_state

    def spy(roots, state):  # noqa: ANN001, ANN202
        seen.append(len(state.get("vpn", [])))
        return real(roots, state)

    monkeypatch.setattr(ops, "merge_state", spy)
    read(_bodies("vpn42")[2])
    read(f'<get><filter type="subtree"><ike xmlns="{NS}"><vpn><name>vpn42</name></vpn>'
         "<vpn><name>vpn7</name></vpn></ike></filter></get>")
    read(f'<get><filter type="subtree"><ike xmlns="{NS}"><vpn><local-id/></vpn></ike>'
         "</filter></get>")
    assert seen == [1, 2, N]


def test_server_state_built_only_when_the_filter_may_select_it(read, monkeypatch) -> None:
    built: list[set[str]] = []
    real = monitoring.state_roots

    def spy(ctx):  # noqa: ANN001, ANN202
        roots = real(ctx)
        built.append({r.tag[1:].partition("}")[0] for r in roots})
        return roots

    monkeypatch.setattr(monitoring, "state_roots", spy)
    read(_bodies("vpn1")[2])
    read(_bodies("vpn1")[3])
    assert built == []
    ncm = f'<netconf-state xmlns="{monitoring.NCM}"><sessions/></netconf-state>'
    r = read(f'<get><filter type="subtree">{ncm}</filter></get>')
    assert b"<sessions" in r
    read('<get><filter type="subtree"><netconf-state xmlns=""/></filter></get>')  # any ns
    read(f'<get-data xmlns="{NMDA}" xmlns:ds="{DS}"><datastore>ds:operational</datastore>'
         f"<subtree-filter>{ncm}</subtree-filter></get-data>")
    assert len(built) == 3
    assert set().union(*built) <= ops_nmda.SERVER_STATE  # every tree it builds is covered


def test_state_entries_by_key_come_from_an_index_of_the_reading(read, monkeypatch) -> None:
    """A get of VPNs by key takes their state from an index of the reading's list, built
    once per reading (a published reading is never changed), in the list's order."""
    narrow._indexed.clear()
    built: list[int] = []
    real = narrow._index

    def spy(name, key, items):  # noqa: ANN001, ANN202
        hit = narrow._indexed.get(name)
        if hit is None or hit[0] is not items:
            built.append(len(items))
        return real(name, key, items)

    monkeypatch.setattr(narrow, "_index", spy)
    two = (f'<get><filter type="subtree"><ike xmlns="{NS}"><vpn><name>vpn42</name></vpn>'
           "<vpn><name>vpn7</name></vpn></ike></filter></get>")
    for _ in range(3):
        out = read(two)
    assert built == [N]
    assert out.index(b"<name>vpn7</name>") < out.index(b"<name>vpn42</name>")
    assert out.count(b"applied") == 2
    monkeypatch.setitem(STATE, "vpn", [dict(v) for v in STATE["vpn"]])  # a new reading
    STATE["vpn"][7]["apply-status"] = {"state": "failed"}
    out = read(two)
    assert built == [N, N] and b"failed" in out
