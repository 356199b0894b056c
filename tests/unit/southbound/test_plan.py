"""Pure tests of the reconciler's plan and of the desired-state bookkeeping."""

from __future__ import annotations

import copy

from southbound.reconciler import LoadConn, LoadShared, UnloadConn, UnloadShared, plan
from southbound.world import World


def test_plan_empty() -> None:
    assert plan({}, {}, {}, {}) == []


def test_plan_order_and_only_differences() -> None:
    ops = plan(
        desired_conns={"a": "1", "b": "2", "c": "3"},
        desired_shared={"k1": "x", "k2": "y"},
        loaded_conns={"a": "1", "b": "old", "z": "9"},
        loaded_shared={"k1": "x", "k9": "q"},
    )
    assert ops == [LoadShared("k2"), LoadConn("b"), LoadConn("c"), UnloadConn("z"),
                   UnloadShared("k9")]


def test_plan_unknown_digest_reloads() -> None:
    ops = plan({"a": "1"}, {"k": "x"}, {"a": None}, {"k": None})
    assert ops == [LoadShared("k"), LoadConn("a")]


def test_plan_remove_everything() -> None:
    assert plan({}, {}, {"b": "1", "a": None}, {"k": "x"}) == [
        UnloadConn("a"), UnloadConn("b"), UnloadShared("k")]


def _vpn(name: str, subnet: str = "10.0.0.0/24") -> dict:
    return {"name": name, "remote-address": "192.0.2.1",
            "ike": {"version": 2}, "ipsec": {"start-action": "trap"},
            "security-policy": [{"name": "p", "local-ts": {"subnet": subnet},
                                 "remote-ts": {"subnet": "10.9.0.0/24"}}]}


def _eff(vpns: dict, psks: dict | None = None, enabled: bool = True) -> dict:
    return {"enabled": enabled, "vpns": vpns, "psks": psks or {}}


PSK = {"name": "k", "id": ["a"], "secret": "0x0102"}


def test_world_marks_only_changes() -> None:
    w = World()
    vpns = {f"v{i}": _vpn(f"v{i}") for i in range(5)}
    w.update(_eff(vpns, {"k": PSK}))
    assert w.take_dirty() == ({"v0", "v1", "v2", "v3", "v4"}, {"k"})
    # Same config again: nothing dirty.
    w.update(_eff(copy.deepcopy(vpns), {"k": dict(PSK)}))
    assert w.take_dirty() == (set(), set())
    # One VPN changed, one removed, the key changed.
    vpns2 = dict(vpns)
    vpns2["v1"] = _vpn("v1", "10.1.0.0/24")
    del vpns2["v3"]
    w.update(_eff(vpns2, {"k": {**PSK, "secret": "other"}}))
    assert w.take_dirty() == ({"v1", "v3"}, {"k"})
    assert "v3" not in w.conn_digests and "v3" not in w.conn_payloads
    assert w.conn_payloads["v1"]["children"]["p"]["local_ts"] == ["10.1.0.0/24"]


def test_world_hints_limit_the_work() -> None:
    w = World()
    w.update(_eff({"a": _vpn("a")}))
    w.take_dirty()
    changed = {"a": _vpn("a", "10.7.0.0/24"), "b": _vpn("b")}
    w.update(_eff(changed), vpns_changed=["b"])
    assert w.take_dirty() == ({"b"}, set())
    assert w.conn_payloads["a"]["children"]["p"]["local_ts"] == ["10.0.0.0/24"]


def test_world_disabled_removes_everything() -> None:
    w = World()
    w.update(_eff({"a": _vpn("a")}, {"k": PSK}))
    w.take_dirty()
    w.update(_eff({"a": _vpn("a")}, {"k": PSK}, enabled=False))
    assert w.take_dirty() == ({"a"}, {"k"})
    assert w.conn_digests == {} and w.shared_digests == {}


def test_world_mark_all_dirty_and_repr_hides_secrets() -> None:
    w = World()
    w.update(_eff({"a": _vpn("a")}, {"k": {**PSK, "secret": "hunter2"}}))
    w.take_dirty()
    w.mark_all_dirty(extra_conns=["stale"], extra_shared=["old"])
    assert w.take_dirty() == ({"a", "stale"}, {"k", "old"})
    assert "hunter2" not in repr(w) and "hunter2" not in repr(w.shared_payloads)
