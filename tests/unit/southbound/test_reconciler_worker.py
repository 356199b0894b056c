"""The reconciler and the charon backend against a wire-level fake charon (tests/fakes):
apply status, refusals that block nothing, retries, sessions that break on one entry, drift
repair, re-initiation, bounded state reads, wait-applied."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

import southbound.batch as batch
import southbound.status as status
from nf.effective import EffectiveConfig, PreSharedKey, TrafficSelector, Vpn
from southbound.charon_backend import DATAPLANES, PSK, VPN, CharonBackend
from southbound.reconciler import Reconciler
from southbound.status import EntryStatus
from southbound.vici_client import ViciClient
from tests.fakes.vici_server import FakeCharon
from tests.unit.southbound.test_convert import VPN as SITE_VPN


def vpn(name: str, subnet: str = "192.168.99.0/24", start: str = "trap") -> Vpn:
    """The site-to-site VPN under another name and remote subnet."""
    sp = replace(SITE_VPN.security_policies[0],
                 remote_ts=TrafficSelector(subnet=(subnet,)))
    return replace(SITE_VPN, name=name, security_policies=(sp,),
                   ipsec=replace(SITE_VPN.ipsec, start_action=start))


def effective(vpns: dict[str, Vpn], psks: dict[str, PreSharedKey] | None = None,
              enabled: bool = True) -> EffectiveConfig:
    base = EffectiveConfig.empty()
    return replace(base, enabled=enabled, vpns=vpns, psks=psks or {})


def many(n: int, **kw: Any) -> dict[str, Vpn]:
    return {f"v{i}": vpn(f"v{i}", **kw) for i in range(n)}


KEY = PreSharedKey(name="k", ids=("a.example.net",), secret="hunter2-secret")


@pytest.fixture
def charon() -> Iterator[FakeCharon]:
    with FakeCharon() as fake:
        yield fake


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(status, "RETRY_BASE", 0.1)
    monkeypatch.setattr(status, "RETRY_MAX", 0.4)


def make(charon: FakeCharon, sync: float = 30.0, **kw: Any) -> Reconciler:
    backend = CharonBackend(charon.path, DATAPLANES["kernel-netlink"], vici_timeout=2.0,
                            reinitiate_after=kw.pop("reinitiate_after", 30.0))
    return Reconciler(backend, sync_interval=sync, backoff_max=0.2, **kw)


def run(coro_fn: Any) -> None:
    """Run an async test body with the reconciler's worker started and always stopped."""
    async def main() -> None:
        await coro_fn()
    asyncio.run(main())


async def started(rec: Reconciler) -> asyncio.Task[None]:
    task = asyncio.create_task(rec.run())
    await asyncio.sleep(0)
    return task


async def until(cond: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        await asyncio.sleep(0.02)
    return cond()


def test_bulk_load_uses_several_sessions_and_reports_applied(charon: FakeCharon) -> None:
    async def body() -> None:
        rec = make(charon)
        task = await started(rec)
        rec.set_desired(effective(many(200), {"k": KEY}))
        assert rec.status.counts["pending"] == 201
        assert await rec.wait_converged(10)
        assert set(charon.conns) == {f"v{i}" for i in range(200)} and "k" in charon.shared
        assert charon.connections >= 1 + batch.PARALLEL
        assert rec.status.counts == {"applied": 201, "pending": 0, "failed": 0}
        rec.set_desired(effective({}))
        assert await rec.wait_converged(10)
        assert charon.conns == {} and charon.shared == {}
        assert len(rec.status) == 0
        task.cancel()
    run(body)


def test_refused_entry_fails_alone_is_retried_and_a_fixing_commit_applies_it(
        charon: FakeCharon) -> None:
    events: list[tuple[str, str, str | None]] = []

    async def body() -> None:
        charon.refuse("load-conn", lambda m: "bad" in m, errmsg="invalid proposal 'foo'")
        rec = make(charon)
        rec.status.observe(lambda new, old: events.append((new.name, new.status, new.message)))
        task = await started(rec)
        vpns = {**many(3), "bad": vpn("bad", "10.9.9.0/24")}
        rec.set_desired(effective(vpns))
        assert await rec.wait_applied(5)
        st = rec.status.get(VPN, "bad")
        assert st is not None and st.status == "failed"
        assert st.message == "invalid proposal 'foo'"
        assert set(charon.conns) == {"v0", "v1", "v2"}  # the others are not blocked
        assert rec.health().status == "up"
        # Retried with backoff, announced once.
        assert await until(lambda: len(charon.calls_to("load-conn")) >= 4 + 2)
        st2 = rec.status.get(VPN, "bad")
        assert st2 is not None and st2.attempts >= 2
        assert events == [("bad", "failed", "invalid proposal 'foo'")]
        # A later commit made acceptable (here: the daemon stops refusing and the entry
        # changes) is applied at once and the recovery is announced.
        charon.clear_rules()
        rec.set_desired(effective({**vpns, "bad": vpn("bad", "10.9.8.0/24")}), {VPN: ["bad"]})
        assert rec.status.get(VPN, "bad").status == "pending"  # type: ignore[union-attr]
        assert await rec.wait_applied(5)
        assert rec.status.get(VPN, "bad").status == "applied"  # type: ignore[union-attr]
        assert events[-1][:2] == ("bad", "applied")
        task.cancel()
    run(body)


def test_a_session_broken_by_one_entry_fails_that_entry_only(charon: FakeCharon) -> None:
    async def body() -> None:
        charon.drop("load-conn", lambda m: "poison" in m)
        rec = make(charon)
        task = await started(rec)
        rec.set_desired(effective({**many(3), "poison": vpn("poison", "10.1.1.0/24")}))
        assert await rec.wait_applied(10)
        st = rec.status.get(VPN, "poison")
        assert st is not None and st.status == "failed"
        assert "dropped the session" in (st.message or "")
        assert {"v0", "v1", "v2"} <= set(charon.conns)
        # A small VPN committed afterwards is applied.
        rec.set_desired(effective({**many(4), "poison": vpn("poison", "10.1.1.0/24")}),
                        {VPN: ["v3"]})
        assert await rec.wait_applied(10)
        assert "v3" in charon.conns
        task.cancel()
    run(body)


def test_an_oversized_entry_is_refused_before_sending(charon: FakeCharon) -> None:
    async def body() -> None:
        rec = make(charon)
        task = await started(rec)
        huge = replace(vpn("huge"), remote_id="x" * (600 * 1024))
        rec.set_desired(effective({"huge": huge, "ok": vpn("ok")}))
        assert await rec.wait_applied(5)
        st = rec.status.get(VPN, "huge")
        assert st is not None and st.status == "failed"
        assert "65535" in (st.message or "")
        assert not any("huge" in m for m in charon.calls_to("load-conn"))
        assert "ok" in charon.conns
        task.cancel()
    run(body)


def test_refusal_messages_never_show_the_secret(charon: FakeCharon) -> None:
    async def body() -> None:
        charon.refuse("load-shared", errmsg="bad key hunter2-secret for a.example.net")
        rec = make(charon)
        task = await started(rec)
        rec.set_desired(effective({}, {"k": KEY}))
        assert await rec.wait_applied(5)
        st = rec.status.get(PSK, "k")
        assert st is not None and st.status == "failed"
        assert "hunter2" not in (st.message or "") and "withheld" in (st.message or "")
        task.cancel()
    run(body)


def test_drift_behind_our_back_is_repaired_within_one_period(charon: FakeCharon) -> None:
    async def body() -> None:
        rec = make(charon, sync=0.3)
        task = await started(rec)
        rec.set_desired(effective(many(2), {"k": KEY}))
        assert await rec.wait_converged(5)
        await until(lambda: rec.syncs >= 2)
        with ViciClient(charon.path) as other:  # someone else, over VICI
            other.unload_conn("v0")
            other.unload_shared("k")
            other.load_conn("intruder", {"version": "2"})
            other.load_conn("v1", {"version": "1"})  # replaced under the same name
        assert await until(lambda: "v0" in charon.conns and "k" in charon.shared
                           and "intruder" not in charon.conns
                           and charon.conns["v1"].get("version") == "2", 3)
        assert rec.drift_repairs >= 4
        assert rec.last_full_sync is not None
        assert await rec.wait_converged(3)
        task.cancel()
    run(body)


def test_restarted_daemon_gets_everything_back(charon: FakeCharon) -> None:
    async def body() -> None:
        rec = make(charon, sync=0.3)
        task = await started(rec)
        rec.set_desired(effective(many(3), {"k": KEY}))
        assert await rec.wait_converged(5)
        # Restarted by someone else: found at the next periodic read-back.
        charon.restart()
        assert await until(lambda: len(charon.conns) == 3 and "k" in charon.shared, 5)
        assert await rec.wait_converged(5)
        # Restarted by our supervisor, which calls resync(): at once, whatever the period.
        rec.sync_interval = 60.0
        await asyncio.sleep(0.4)
        charon.restart()
        rec.resync()
        assert await until(lambda: len(charon.conns) == 3 and "k" in charon.shared, 5)
        task.cancel()
    run(body)


def test_missing_tunnel_that_should_be_up_is_initiated_again(charon: FakeCharon) -> None:
    async def body() -> None:
        rec = make(charon, sync=0.2, reinitiate_after=0.3)
        task = await started(rec)
        rec.set_desired(effective({"up": vpn("up", start="start"), "lazy": vpn("lazy")}))
        assert await rec.wait_converged(5)
        assert await until(lambda: any(m.get("child") == "trunk" and m.get("ike") == "up"
                                       for m in charon.initiated), 3)
        assert not any(m.get("ike") == "lazy" for m in charon.initiated)
        task.cancel()
    run(body)


def test_state_reads_are_bounded_and_stale_when_the_daemon_hangs(charon: FakeCharon) -> None:
    async def body() -> None:
        rec = make(charon, state_timeout=0.5)
        task = await started(rec)
        state, at, stale = await rec.read_state()
        assert not stale and at is not None and state["ike-sas"]["total"] == 0
        charon.hang("list-sas")
        t0 = time.monotonic()
        results = await asyncio.gather(rec.read_state(), rec.read_state())
        assert time.monotonic() - t0 < 2.0
        for state2, at2, stale2 in results:
            assert stale2 and at2 == at and state2 == state
        assert rec.health().status == "unresponsive"
        charon.clear_rules()
        charon.resume()
        _, _, stale3 = await rec.read_state()
        assert not stale3, rec.health()
        assert rec.health().status == "up"
        task.cancel()
    run(body)


def test_wait_applied_reports_the_last_change(charon: FakeCharon) -> None:
    async def body() -> None:
        charon.hang("load-conn", lambda m: "slow" in m, once=True)
        rec = make(charon)
        task = await started(rec)
        rec.set_desired(effective({"slow": vpn("slow")}))
        assert not await rec.wait_applied(0.3)  # still pending
        assert rec.last_change == {VPN: {"slow"}}
        charon.resume()
        assert await rec.wait_applied(8)
        task.cancel()
    run(body)


def test_disabled_ike_removes_everything(charon: FakeCharon) -> None:
    async def body() -> None:
        rec = make(charon)
        task = await started(rec)
        rec.set_desired(effective(many(2), {"k": KEY}))
        assert await rec.wait_converged(5)
        rec.set_desired(effective(many(2), {"k": KEY}, enabled=False))
        assert await rec.wait_converged(5)
        assert charon.conns == {} and charon.shared == {}
        task.cancel()
    run(body)


def test_status_table_counts_and_repr_hide_secrets() -> None:
    table = status.ApplyStatus()
    seen: list[EntryStatus] = []
    table.observe(lambda new, old: seen.append(new))
    table.pending(VPN, "a")
    table.failed_with(VPN, "a", "no")
    table.failed_with(VPN, "a", "no")
    assert table.counts == {"applied": 0, "pending": 0, "failed": 1}
    assert [s.status for s in seen] == ["failed"]  # once, not per retry
    table.pending(VPN, "a")
    table.applied(VPN, "a")
    assert [s.status for s in seen] == ["failed", "applied"]
    table.pending(VPN, "a", removing=True)
    table.removed(VPN, "a")
    assert len(table) == 0 and table.counts == {"applied": 0, "pending": 0, "failed": 0}
    assert status.retry_delay(1) == status.RETRY_BASE
    assert status.retry_delay(100) == status.RETRY_MAX


# -- defects found by review -------------------------------------------------------------

def test_a_fix_committed_while_the_refused_load_runs_is_not_marked_failed(
        charon: FakeCharon) -> None:
    def slow_refusal(m: dict) -> bool:
        if "bad" in m and m["bad"].get("children", {}).get("trunk", {}).get(
                "remote_ts") == ["10.9.9.0/24"]:
            time.sleep(0.5)  # the daemon takes its time before refusing
            return True
        return False

    async def body() -> None:
        charon.refuse("load-conn", slow_refusal, errmsg="invalid proposal 'foo'")
        rec = make(charon)
        task = await started(rec)
        rec.set_desired(effective({"bad": vpn("bad", "10.9.9.0/24")}))
        await asyncio.sleep(0.2)  # the refused load is in flight
        rec.set_desired(effective({"bad": vpn("bad", "10.9.8.0/24")}), {VPN: ["bad"]})
        t0 = time.monotonic()
        assert await rec.wait_applied(5, rec.last_change)
        st = rec.status.get(VPN, "bad")
        assert st is not None and st.status == "applied", (st, time.monotonic() - t0)
        task.cancel()
    run(body)


def test_an_entry_whose_request_cannot_be_built_fails_alone(charon: FakeCharon) -> None:
    async def body() -> None:
        rec = make(charon)
        task = await started(rec)
        bad = PreSharedKey(name="bad", ids=("x",), secret="0xzz")  # not what YANG lets by
        changes = rec.set_desired(effective(many(2), {"bad": bad, "k": KEY}))
        assert "bad" in changes[PSK]
        assert await rec.wait_applied(5, rec.last_change)
        st = rec.status.get(PSK, "bad")
        assert st is not None and st.status == "failed"
        assert "cannot build" in (st.message or "") and "zz" not in (st.message or "")
        assert set(charon.conns) == {"v0", "v1"} and "k" in charon.shared
        # fixed, then removed: it leaves the table
        rec.set_desired(effective(many(2), {"k": KEY}))
        assert await rec.wait_converged(5)
        assert rec.status.get(PSK, "bad") is None
        task.cancel()
    run(body)


def test_wait_converged_does_not_spin_when_the_last_change_is_settled(
        charon: FakeCharon) -> None:
    async def body() -> None:
        charon.hang("load-conn", once=True)
        rec = make(charon)
        task = await started(rec)
        rec.set_desired(effective(many(1)))
        await asyncio.sleep(0.1)
        rec.set_desired(effective(many(1)))  # changes nothing
        asyncio.get_running_loop().call_later(0.3, charon.resume)
        assert await rec.wait_converged(6)
        task.cancel()
    run(body)


def test_a_refused_read_back_does_not_stop_applying(charon: FakeCharon) -> None:
    async def body() -> None:
        charon.refuse("list-conns", errmsg="no")
        charon.refuse("get-shared", errmsg="no")
        rec = make(charon, sync=0.2)
        task = await started(rec)
        rec.set_desired(effective(many(2), {"k": KEY}))
        assert await rec.wait_converged(5)
        assert rec.health().status == "up"
        assert rec.sync_error and "reading back" in rec.sync_error
        assert charon.connections <= 3  # no reconnect loop
        task.cancel()
    run(body)


def test_a_session_breaking_entry_in_a_bulk_load_fails_alone(charon: FakeCharon) -> None:
    async def body() -> None:
        charon.drop("load-conn", lambda m: "a-poison" in m)
        rec = make(charon)
        task = await started(rec)
        rec.set_desired(effective({**many(300), "a-poison": vpn("a-poison", "10.1.1.0/24")}))
        assert await rec.wait_applied(20)
        failed = [e.name for e in rec.status.failed()]
        assert failed == ["a-poison"], failed
        assert len(charon.conns) == 300
        # not retried by itself (it may crash the daemon each time)
        n = len([m for m in charon.calls_to("load-conn") if "a-poison" in m])
        await asyncio.sleep(0.6)
        assert len([m for m in charon.calls_to("load-conn") if "a-poison" in m]) == n
        task.cancel()
    run(body)


def test_removing_a_failed_entry_clears_the_failure(charon: FakeCharon) -> None:
    seen: list[tuple[str, str]] = []

    async def body() -> None:
        charon.refuse("load-conn", lambda m: "bad" in m, errmsg="no")
        rec = make(charon)
        rec.status.observe(lambda new, old: seen.append((new.name, new.status)))
        task = await started(rec)
        rec.set_desired(effective({"bad": vpn("bad")}))
        assert await rec.wait_applied(5)
        rec.set_desired(effective({}))
        assert await rec.wait_applied(5)
        assert seen == [("bad", "failed"), ("bad", "removed")]
        assert len(rec.status) == 0
        task.cancel()
    run(body)


async def _restored_after_a_replacement(charon: FakeCharon, start: str):  # noqa: ANN202
    """A VPN of start action ``start``, up, replaced behind our back and restored by the
    reconciler; its (reconciler, task)."""
    rec = make(charon, sync=0.2)
    task = await started(rec)
    rec.set_desired(effective({"up": vpn("up", start=start)}))
    assert await rec.wait_converged(5)
    await until(lambda: rec.syncs >= 2)
    with charon.lock:
        charon.sas = [{"up": {"uniqueid": "1", "state": "ESTABLISHED", "child-sas": {}}}]
    with ViciClient(charon.path) as other:
        other.load_conn("up", {"version": "1"})
    assert await until(lambda: charon.conns["up"].get("version") == "2", 3)
    return rec, task


def test_a_connection_restored_after_a_replacement_is_renegotiated(
        charon: FakeCharon) -> None:
    """A trap connection's SA is re-negotiated by us (charon only installs the trap again;
    a ``start`` one charon closes and initiates itself: tests/integration, the charon pair)."""
    async def body() -> None:
        _, task = await _restored_after_a_replacement(charon, "trap")
        assert await until(lambda: len(charon.terminated) >= 1, 3)
        task.cancel()
    run(body)


def test_a_start_connection_restored_after_a_replacement_is_left_to_charon(
        charon: FakeCharon) -> None:
    """charon 5.9's load-conn closes and initiates a changed ``start`` child itself: a
    terminate and initiate of ours on top raced with it (a peer kept an SA this side had
    destroyed while connecting)."""
    async def body() -> None:
        rec, task = await _restored_after_a_replacement(charon, "start")
        assert await rec.wait_converged(3)
        assert charon.terminated == [] and charon.calls_to("initiate") == []
        task.cancel()
    run(body)


def test_secret_quoted_by_the_daemon_is_withheld_even_when_short(charon: FakeCharon) -> None:
    async def body() -> None:
        charon.refuse("load-shared", errmsg="loading shared key failed: invalid owners")
        rec = make(charon)
        task = await started(rec)
        rec.set_desired(effective({}, {"k": PreSharedKey(name="k", ids=("a",), secret="e")}))
        assert await rec.wait_applied(5)
        st = rec.status.get(PSK, "k")
        assert st is not None and "withheld" in (st.message or "")
        task.cancel()
    run(body)


def test_bulk_removal_uses_several_sessions_and_one_look_per_session(
        charon: FakeCharon) -> None:
    """Removing many VPNs: unloads spread over the bulk sessions, and the SAs and trap
    policies left looked up once per session, not once per VPN (10,000 removals took 40-80 s
    with three round trips each)."""
    async def body() -> None:
        rec = make(charon)
        task = await started(rec)
        rec.set_desired(effective(many(200)))
        assert await rec.wait_converged(10)
        charon.sas = [{"v7": {"uniqueid": "1", "state": "ESTABLISHED", "child-sas": {}}}]
        charon.traps = [("v9", "trunk")]
        before = charon.connections
        rec.set_desired(effective({"v0": vpn("v0")}))
        assert await rec.wait_converged(10)
        assert set(charon.conns) == {"v0"} and charon.sas == [] and charon.traps == []
        assert charon.connections >= before + batch.PARALLEL
        assert len(charon.calls_to("list-sas")) <= batch.PARALLEL + 1
        assert len(charon.calls_to("list-policies")) <= batch.PARALLEL
        assert rec.status.counts == {"applied": 1, "pending": 0, "failed": 0}
        task.cancel()
    run(body)
