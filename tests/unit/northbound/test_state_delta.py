"""The comparison of two state snapshots entry by entry (northbound/state_delta.py), shared
by gNMI ON_CHANGE and YANG-Push on-change."""

from __future__ import annotations

from nf.paths import Step
from nf.schema import SNode
from northbound.state_delta import state_delta

NS = "urn:example:ike"
IKE = SNode("ike", NS, "ipsec-nf", "container", True, children={
    (NS, "ike-sa"): SNode("ike-sa", NS, "ipsec-nf", "list", False, keys=("unique-id",)),
    (NS, "counters"): SNode("counters", NS, "ipsec-nf", "container", False)})


def sa(uid: int, state: str = "established", age: int = 10) -> dict:
    return {"unique-id": uid, "vpn": f"v{uid}", "state": state, "established-time": age,
            "child-sa": [{"unique-id": uid + 5000, "bytes-in": 0, "use-in": age}]}


def table(n: int, age: int = 10, **changes: dict) -> dict:
    return {"ike-sa": [changes.get(str(i), sa(i, age=age)) for i in range(1, n + 1)],
            "counters": {"ike-rekey-init": 0}}


def path(*steps: tuple) -> tuple[Step, ...]:
    return tuple(Step("ipsec-nf", name, keys) for name, keys in steps)


def test_one_sa_changed_among_a_thousand_is_the_only_entry_rendered() -> None:
    old = table(1000)
    new = table(1000, age=15, **{"7": sa(7, state="rekeying", age=15)})
    d = state_delta(old, new, IKE)
    assert d is not None and d
    assert d.tree == {"ike-sa": [sa(7, state="rekeying", age=15)]}  # clock leaves alone: no change
    assert d.entries == {"ike-sa": ("unique-id", frozenset({"7"}))}
    assert d.members == frozenset()
    assert d.covers(path(("ike", ()), ("ike-sa", (("unique-id", "7"),)), ("state", ())))
    assert not d.covers(path(("ike", ()), ("ike-sa", (("unique-id", "8"),)), ("state", ())))
    assert not d.covers(path(("ike", ()), ("counters", ()), ("ike-rekey-init", ())))


def test_gone_and_new_entries_and_changed_members() -> None:
    old = table(3)
    new = {"ike-sa": [sa(1), sa(3), sa(4)], "counters": {"ike-rekey-init": 1}}
    d = state_delta(old, new, IKE)
    assert d is not None
    assert d.entries["ike-sa"][1] == frozenset({"2", "4"})  # 2 gone, 4 new
    assert d.tree == {"ike-sa": [sa(4)], "counters": {"ike-rekey-init": 1}}
    assert d.members == frozenset({"counters"})
    gone = state_delta(new, {"ike-sa": new["ike-sa"]}, IKE)
    assert gone is not None and gone.members == frozenset({"counters"}) and gone.tree == {}


def test_only_the_clock_moved_is_no_change() -> None:
    d = state_delta(table(50), table(50, age=99), IKE)
    assert d is not None and not d


def test_state_inside_config_entries_needs_the_whole_view() -> None:
    old = {**table(2), "vpn": [{"name": "a", "effective": {"x": 1}}]}
    new = {**table(2), "vpn": [{"name": "a", "effective": {"x": 2}}]}
    assert state_delta(old, new, IKE) is None
    assert state_delta(old, dict(old), IKE) is not None  # unchanged: not a reason
