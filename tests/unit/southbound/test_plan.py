"""The reconciler's pure plan: order, scope, and (hypothesis) convergence and idempotence."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from southbound.plan import Op, plan, simulate

RANKS = {"pre-shared-key": 10, "certificate": 20, "vpn": 50}


def test_plan_empty() -> None:
    assert plan({}, {}, RANKS) == []


def test_plan_order_and_only_differences() -> None:
    ops = plan(
        {"vpn": {"a": "1", "b": "2", "c": "3"}, "pre-shared-key": {"k1": "x", "k2": "y"}},
        {"vpn": {"a": "1", "b": "old", "z": "9"}, "pre-shared-key": {"k1": "x", "k9": "q"}},
        RANKS,
    )
    assert ops == [Op("load", "pre-shared-key", "k2"), Op("load", "vpn", "b"),
                   Op("load", "vpn", "c"), Op("unload", "vpn", "z"),
                   Op("unload", "pre-shared-key", "k9")]


def test_plan_unknown_digest_reloads() -> None:
    ops = plan({"vpn": {"a": "1"}, "pre-shared-key": {"k": "x"}},
               {"vpn": {"a": None}, "pre-shared-key": {"k": None}}, RANKS)
    assert ops == [Op("load", "pre-shared-key", "k"), Op("load", "vpn", "a")]


def test_plan_remove_everything_connections_first() -> None:
    assert plan({}, {"vpn": {"b": "1", "a": None}, "pre-shared-key": {"k": "x"},
                     "certificate": {"c": "1"}}, RANKS) == [
        Op("unload", "vpn", "a"), Op("unload", "vpn", "b"), Op("unload", "certificate", "c"),
        Op("unload", "pre-shared-key", "k")]


def test_plan_scope_limits_the_work() -> None:
    desired = {"vpn": {"a": "1", "b": "2"}, "pre-shared-key": {"k": "x"}}
    observed = {"vpn": {"z": "9"}}
    assert plan(desired, observed, RANKS, scope={"vpn": ["b"]}) == [Op("load", "vpn", "b")]
    # A name in scope that is neither desired nor held needs nothing.
    assert plan(desired, observed, RANKS, scope={"vpn": ["gone"]}) == []
    assert plan(desired, observed, RANKS, scope={"vpn": ["z"]}) == [Op("unload", "vpn", "z")]


def test_op_str_names_the_entry() -> None:
    assert str(Op("load", "vpn", "a")) == "load vpn 'a'"


# -- properties over any desired/observed pair ---------------------------------------------

names = st.sampled_from(["a", "b", "c", "d", "e"])
digests = st.sampled_from(["1", "2", "3"])
kinds = st.sampled_from(sorted(RANKS))
desired_st = st.dictionaries(kinds, st.dictionaries(names, digests, max_size=5), max_size=3)
observed_st = st.dictionaries(kinds, st.dictionaries(names, st.none() | digests, max_size=5),
                              max_size=3)


@given(desired_st, observed_st)
def test_plan_converges_in_one_pass(desired: dict, observed: dict) -> None:
    ops = plan(desired, observed, RANKS)
    after = simulate(observed, desired, ops)
    assert plan(desired, after, RANKS) == []
    # The result holds exactly what is desired.
    for kind in RANKS:
        assert {n: d for n, d in after.get(kind, {}).items()} == desired.get(kind, {})


@given(desired_st, observed_st)
def test_plan_applied_twice_is_a_no_op(desired: dict, observed: dict) -> None:
    ops = plan(desired, observed, RANKS)
    once = simulate(observed, desired, ops)
    twice = simulate(once, desired, ops)
    assert twice == once
    assert plan(desired, observed, RANKS) == ops  # deterministic


@given(desired_st, observed_st)
def test_plan_loads_by_rank_then_unloads_by_reverse_rank(desired: dict, observed: dict) -> None:
    ops = plan(desired, observed, RANKS)
    actions = [op.action for op in ops]
    assert actions == sorted(actions)  # every load before every unload
    loads = [RANKS[op.kind] for op in ops if op.action == "load"]
    unloads = [RANKS[op.kind] for op in ops if op.action == "unload"]
    assert loads == sorted(loads) and unloads == sorted(unloads, reverse=True)


@given(desired_st, observed_st, st.dictionaries(kinds, st.lists(names, max_size=3)))
def test_scoped_plan_is_the_full_plan_restricted(desired: dict, observed: dict,
                                                 scope: dict) -> None:
    full = plan(desired, observed, RANKS)
    scoped = plan(desired, observed, RANKS, scope)
    assert scoped == [op for op in full if op.name in scope.get(op.kind, [])]
