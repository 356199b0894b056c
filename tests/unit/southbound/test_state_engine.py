"""The state engine (southbound/state_engine.py) over the wire-level VICI fake: one read for
many readers, invalidation by SA events, sampling that publishes only changes, slow
subscribers, and a silent daemon."""

from __future__ import annotations

import asyncio
import copy
import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from nf.observed import StateChange, StateSource, same_content, steady
from southbound.charon_backend import DATAPLANES, CharonBackend
from southbound.events import SaEventListener
from southbound.state_engine import StateEngine
from southbound.state_reader import StateReader
from tests.fakes.vici_server import FakeCharon

SA = {"uniqueid": "1", "version": "2", "state": "ESTABLISHED", "local-host": "198.51.100.1",
      "remote-host": "198.51.100.2", "established": "5", "rekey-time": "1000",
      "child-sas": {"trunk-1": {"name": "trunk", "uniqueid": "1", "state": "INSTALLED",
                                "protocol": "ESP", "spi-in": "c0000001",
                                "spi-out": "d0000001", "bytes-in": "84",
                                "packets-in": "1", "install-time": "5"}}}


@pytest.fixture
def fake() -> Iterator[FakeCharon]:
    with FakeCharon() as f:
        f.sas = [{"vpn-a": copy.deepcopy(SA)}]
        yield f


def engine(fake: FakeCharon, timeout: float = 2.0, **kw: Any) -> StateEngine:
    backend = CharonBackend(fake.path, DATAPLANES["kernel-libipsec"])
    return StateEngine(StateReader(backend.read_state, timeout).read, **kw)


def reads(fake: FakeCharon) -> int:
    """Daemon reads done: each reads list-sas once."""
    return len(fake.calls_to("list-sas"))


async def take(changes: AsyncIterator[StateChange], n: int, timeout: float = 3.0
               ) -> list[StateChange]:
    return [await asyncio.wait_for(anext(changes), timeout) for _ in range(n)]


def test_it_implements_the_seam_as_declared() -> None:
    for name in ("snapshot", "changes", "expire"):
        assert (inspect.signature(getattr(StateEngine, name))
                == inspect.signature(getattr(StateSource, name))), name
    assert inspect.iscoroutinefunction(StateEngine.snapshot)
    assert not inspect.iscoroutinefunction(StateEngine.changes)  # registers at once


def test_concurrent_reads_share_one_daemon_read(fake: FakeCharon) -> None:
    async def main() -> None:
        eng = engine(fake)
        snaps = await asyncio.gather(*(eng.snapshot(max_age=10) for _ in range(50)))
        assert reads(fake) == 1
        assert len({id(s) for s in snaps}) == 1  # the same snapshot object for everyone
        snap = snaps[0]
        assert not snap.stale and snap.read_at is not None and snap.version == 1
        assert snap.tree["ike-sa"][0]["child-sa"][0]["spi-in"] == "c0000001"
        assert snap.tree["ike-sas"] == {"total": 1, "half-open": 0}
        assert snap.tree["task-processing"]["worker-threads"]["total"] == 16
        # one refresh is a handful of requests, whatever the SA count
        assert {c.command for c in fake.calls} == {"stats", "list-sas", "get-counters"}
        assert len(fake.calls) == 4
        # young enough: answered from the cache
        assert await eng.snapshot(max_age=10) is snap and reads(fake) == 1
        # too old for this reader: read again
        await asyncio.sleep(0.05)
        await eng.snapshot(max_age=0.01)
        assert reads(fake) == 2
    asyncio.run(main())


def test_readers_that_want_a_read_after_they_came_share_it(fake: FakeCharon) -> None:
    async def main() -> None:  # a reader asking max_age=0
        eng = engine(fake)
        first = asyncio.ensure_future(eng.snapshot(max_age=0))
        await asyncio.sleep(0)  # a read is under way when the others come
        rest = await asyncio.gather(*(eng.snapshot(max_age=0) for _ in range(50)))
        await first
        assert reads(fake) == 2  # the one under way, then one for all who came later
        assert len({id(s) for s in rest}) == 1
    asyncio.run(main())


def test_global_and_per_vpn_counters(fake: FakeCharon) -> None:
    fake.counters = {"": {"invalid": 4, "ike-init-in-req": 2}, "vpn-a": {"ike-init-in-req": 1},
                     "vpn-b": {"child-rekey": 3}}
    state = CharonBackend(fake.path, DATAPLANES["kernel-libipsec"]).read_state(2.0)
    assert state["counters"] == {"invalid": 4, "ike-init-in-req": 2}
    assert state["vpn-counters"] == [{"name": "vpn-a", "ike-init-in-req": 1},
                                     {"name": "vpn-b", "child-rekey": 3}]


def test_a_thousand_sas_cost_one_list_sas(fake: FakeCharon) -> None:
    fake.sas = [{f"vpn-{i}": {**copy.deepcopy(SA), "uniqueid": str(i)}} for i in range(1000)]

    async def main() -> None:
        eng = engine(fake)
        snap = await eng.snapshot()
        assert len(snap.tree["ike-sa"]) == 1000
        assert reads(fake) == 1 and len(fake.calls) == 4
    asyncio.run(main())


def test_an_sa_event_invalidates_and_is_published_with_the_new_state(fake: FakeCharon) -> None:
    async def main() -> None:
        eng = engine(fake, reread=30)
        listener = SaEventListener(fake.path, eng.sa_event, asyncio.get_running_loop())
        listener.start()
        try:
            first = await eng.snapshot(max_age=60)
            changes = eng.changes()
            assert await asyncio.to_thread(fake.wait_registered, "ike-updown")
            with fake.lock:
                fake.sas.append({"vpn-b": {**copy.deepcopy(SA), "uniqueid": "2"}})
            fake.emit("ike-updown", {"up": "yes", "vpn-b": {"uniqueid": "2",
                                                            "remote-host": "192.0.2.9"}})
            (change,) = await take(changes, 1)
            assert change.reason == "sa-event"
            assert change.event == {"kind": "ike", "event": "up", "vpn": "vpn-b",
                                    "peer": "192.0.2.9", "unique-id": 2}
            assert [s["name"] for s in change.snapshot.tree["ike-sa"]] == ["vpn-a", "vpn-b"]
            assert change.snapshot.version == first.version + 1
            # the cache is current again: a reader within max_age does not read
            n = reads(fake)
            assert await eng.snapshot(max_age=60) is change.snapshot and reads(fake) == n
        finally:
            await asyncio.to_thread(listener.stop)
    asyncio.run(main())


def test_sa_events_are_never_merged_away(fake: FakeCharon) -> None:
    async def main() -> None:
        eng = engine(fake, reread=30)
        changes = eng.changes()
        for i in range(10):  # a burst: one read, ten changes
            eng.sa_event({"kind": "child", "event": "up", "vpn": "vpn-a", "unique-id": i})
        got = await take(changes, 10)
        assert [c.event["unique-id"] for c in got if c.event] == list(range(10))
        assert {c.reason for c in got} == {"sa-event"}
        assert reads(fake) == 1
    asyncio.run(main())


def test_a_change_of_the_composed_part_needs_no_daemon_read(fake: FakeCharon) -> None:
    status = {"a": "pending"}

    def compose(state: dict, read_at: Any, stale: bool) -> dict:
        return {**state, "apply-status": {"entry": [{"kind": "vpn", "name": "a",
                                                      "status": status["a"]}]}}

    async def main() -> None:
        eng = engine(fake, compose=compose)
        await eng.snapshot(max_age=60)
        changes = eng.changes()
        status["a"] = "failed"
        eng.apply_status("vpn", "a", "failed")
        (change,) = await take(changes, 1)
        assert change.reason == "apply-status"
        assert change.event == {"kind": "vpn", "name": "a", "status": "failed"}
        assert change.snapshot.tree["apply-status"]["entry"][0]["status"] == "failed"
        status["a"] = "applied"
        eng.invalidate()  # e.g. the status table moved: recomposed at the next read
        snap = await eng.snapshot(max_age=60)
        assert snap.tree["apply-status"]["entry"][0]["status"] == "applied"
        assert reads(fake) == 1
    asyncio.run(main())


def test_a_burst_of_invalidations_is_one_recompose(fake: FakeCharon) -> None:
    composed = []

    def compose(state: dict, read_at: Any, stale: bool) -> dict:
        composed.append(1)
        return {**state, "n": len(composed)}

    async def main() -> None:
        eng = engine(fake, compose=compose, recompose_delay=0.2)
        await eng.snapshot(max_age=60)
        changes = eng.changes()
        for _ in range(1000):  # e.g. a bulk load moving a thousand entries to applied
            eng.invalidate()
            await asyncio.sleep(0)
        (change,) = await take(changes, 1)
        assert change.reason == "refresh" and len(composed) == 2
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(changes), 0.4)
        assert len(composed) == 2
        eng.invalidate()  # a reader does not wait for the delay
        assert (await eng.snapshot(max_age=60)).tree["n"] == 3
    asyncio.run(main())


def test_sampling_publishes_only_when_the_content_changed(fake: FakeCharon) -> None:
    async def main() -> None:
        eng = engine(fake, interval=0.05)
        first = await eng.snapshot()
        changes = eng.changes()
        task = asyncio.create_task(eng.run())
        try:
            await asyncio.sleep(0.4)  # several samples of an unchanged daemon
            assert reads(fake) >= 4
            # only the clock moved (countdowns): fresh values, but no change published
            with fake.lock:
                fake.sas[0]["vpn-a"]["established"] = "9"
                fake.sas[0]["vpn-a"]["rekey-time"] = "996"
            await asyncio.sleep(0.3)
            snap = await eng.snapshot(max_age=60)
            assert snap.tree["ike-sa"][0]["established-time"] == 9
            assert snap.version == first.version
            # traffic: the counters changed, one refresh change per change
            with fake.lock:
                fake.sas[0]["vpn-a"]["child-sas"]["trunk-1"]["bytes-in"] = "168"
            (change,) = await take(changes, 1)
            assert change.reason == "refresh" and change.event is None
            assert change.snapshot.version == first.version + 1
            assert change.snapshot.tree["ike-sa"][0]["child-sa"][0]["bytes-in"] == 168
            await asyncio.sleep(0.3)
            with pytest.raises(TimeoutError):  # nothing else changed, nothing else sent
                await asyncio.wait_for(anext(changes), 0.2)
        finally:
            task.cancel()
    asyncio.run(main())


def test_a_slow_subscriber_skips_refreshes_and_is_told_of_an_overflow(
        fake: FakeCharon) -> None:
    async def main() -> None:
        eng = engine(fake, queue_size=4, reread=30)
        slow, fast = eng.changes(), eng.changes()
        # refreshes: a newer one replaces those still queued
        got = []
        for i in range(3):
            with fake.lock:
                fake.sas[0]["vpn-a"]["child-sas"]["trunk-1"]["packets-in"] = str(10 + i)
            await eng.snapshot(max_age=0)
            got += await take(fast, 1)  # this one keeps up
        assert [c.reason for c in got] == ["refresh"] * 3
        (only,) = await take(slow, 1)
        assert only.snapshot is got[-1].snapshot  # skipped to the newest
        # events overflow the slow queue: it is told, with the newest snapshot
        got = []
        for i in range(10):
            eng.sa_event({"kind": "child", "event": "rekeyed", "vpn": "vpn-a",
                          "unique-id": i})
            await eng.snapshot(max_age=60)
            got += await take(fast, 1)  # a subscriber keeping up loses nothing
        assert [c.event["unique-id"] for c in got if c.event] == list(range(10))
        first = await take(slow, 1)
        rest: list[StateChange] = []
        while True:
            try:
                rest.append(await asyncio.wait_for(anext(slow), 0.1))
            except TimeoutError:
                break
        delivered = first + rest
        assert delivered[0].reason == "overflow"
        dropped = delivered[0].event["dropped"] if delivered[0].event else 0
        assert dropped + len(delivered) - 1 == 10  # every event is delivered or counted
        assert delivered[-1].snapshot is got[-1].snapshot
    asyncio.run(main())


def test_a_silent_daemon_gives_the_last_state_marked_stale(fake: FakeCharon) -> None:
    async def main() -> None:
        eng = engine(fake, timeout=0.3)
        good = await eng.snapshot()
        assert not good.stale
        fake.hang("list-sas", once=False)
        try:
            snap = await asyncio.wait_for(eng.snapshot(max_age=0), 3)
            assert snap.stale and snap.read_at == good.read_at
            assert snap.tree["ike-sa"] == good.tree["ike-sa"]
            # a silent daemon is not asked again by every reader: within max_age, cached
            n = len(fake.calls)
            assert (await eng.snapshot(max_age=60)).stale and len(fake.calls) == n
        finally:
            fake.clear_rules()
            fake.resume()
        await asyncio.sleep(0.05)
        back = await eng.snapshot(max_age=0)
        assert not back.stale and back.read_at is not None and back.read_at > good.read_at
    asyncio.run(main())


def test_a_subscriber_that_goes_away_is_forgotten(fake: FakeCharon) -> None:
    async def main() -> None:
        eng = engine(fake)
        changes = eng.changes()
        eng.sa_event({"kind": "ike", "event": "down", "vpn": "vpn-a"})
        await take(changes, 1)
        assert len(eng._feed) == 1
        await changes.aclose()  # type: ignore[attr-defined]
        assert len(eng._feed) == 0
    asyncio.run(main())


def test_an_action_makes_the_cache_out_of_date(fake: FakeCharon) -> None:
    async def main() -> None:
        eng = engine(fake)
        first = await eng.snapshot(max_age=60)
        assert await eng.snapshot(max_age=60) is first and reads(fake) == 1
        fake.sas = []  # e.g. a terminate action answered
        eng.expire()
        snap = await eng.snapshot(max_age=60)
        assert reads(fake) == 2 and snap.tree["ike-sa"] == [] and snap.version == 2
    asyncio.run(main())


def test_same_content_is_steady_equality_without_a_copy() -> None:
    a = {"ike-sa": [{"unique-id": 1, "rekey-time": 10, "child-sa": [{"bytes-in": 5,
                                                                     "use-in": 1}]}],
         "vpn": [{"name": "x", "effective": {"mtu": 1400}}]}
    cases = [
        ({**a, "ike-sa": [{**a["ike-sa"][0], "rekey-time": 9}]}, True),  # the clock moved
        ({**a, "ike-sa": [{**a["ike-sa"][0], "unique-id": 2}]}, False),
        ({**a, "ike-sa": []}, False),
        ({**a, "extra": 1}, False),
        ({k: v for k, v in a.items() if k != "vpn"}, False),
        ({**a, "ike-sa": [{**a["ike-sa"][0], "child-sa": [{"bytes-in": 6, "use-in": 1}]}]},
         False),
        ({**a, "vpn": {"name": "x"}}, False),
        (copy.deepcopy(a), True),
        # the same keys in the same order (compared as lists of values, clocks out)
        ({**a, "ike-sa": [{**a["ike-sa"][0], "child-sa": [{"bytes-in": 5, "use-in": 7}]}]},
         True),
        ({**a, "ike-sa": [{**a["ike-sa"][0], "child-sa": [{"bytes-in": 5, "use-in": 1},
                                                           {"bytes-in": 5}]}]}, False),
        ({**a, "ike-sa": [{**a["ike-sa"][0], "child-sa": {"bytes-in": 5}}]}, False),
        ({**a, "ike-sa": [{**a["ike-sa"][0], "rekey-time": None}]}, True),
        # keys in another order, a clock leaf only in one
        ({"vpn": a["vpn"], "ike-sa": [{"child-sa": [{"use-in": 3, "bytes-in": 5}],
                                       "unique-id": 1}]}, True),
        ({"vpn": a["vpn"], "ike-sa": [{"child-sa": [{"use-in": 3, "bytes-in": 5}],
                                       "unique-id": 3}]}, False),
    ]
    for b, same in cases:
        assert same_content(a, b) is same, b
        assert same_content(b, a) is same, b
        assert (steady(a) == steady(b)) is same, b


def test_reads_during_an_event_storm_leave_the_daemon_as_much_time_as_they_take() -> None:
    import time

    spans: list[tuple[float, float]] = []

    async def slow_read() -> tuple[dict, float, bool]:
        t = time.monotonic()
        await asyncio.sleep(0.2)  # a list-sas of many SAs on a busy daemon
        spans.append((t, time.monotonic()))
        return {}, time.time(), False

    async def main() -> None:
        eng = StateEngine(slow_read, reread=30, read_pause=1.0)
        changes = eng.changes()
        for i in range(12):  # a storm: an event every 50 ms for 0.6 s
            eng.sa_event({"kind": "child", "event": "up", "vpn": "vpn-a", "unique-id": i})
            await asyncio.sleep(0.05)
        got = await take(changes, 12)
        assert [c.event["unique-id"] for c in got] == list(range(12))  # none merged away
        assert got[-1].snapshot.read_at is not None
    asyncio.run(main())
    assert len(spans) >= 2
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start - end >= 0.19, spans  # paced: idle at least as long as the read took


def test_no_sampling_without_subscribers(fake: FakeCharon) -> None:
    async def main() -> None:
        eng = engine(fake, interval=0.05)
        await eng.snapshot()
        task = asyncio.create_task(eng.run())
        try:
            before = reads(fake)
            await asyncio.sleep(0.4)  # a reader reads on demand: nobody needs the samples
            assert reads(fake) == before
            changes = eng.changes()  # a subscriber: sampling starts
            await asyncio.sleep(0.4)
            assert reads(fake) >= before + 3
            del changes
        finally:
            task.cancel()
    asyncio.run(main())
