"""The state engine's targeted reads after SA events and its stale-while-revalidate rule
(southbound/state_engine.py, state_merge.py, charon_state.py), over the wire-level VICI fake
(the real CharonBackend and StateReader) or, for the timing, a read function of the test."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Iterator
from typing import Any

import pytest

from southbound.charon_backend import DATAPLANES, CharonBackend
from southbound.state_engine import StateEngine
from southbound.state_merge import merge
from southbound.state_reader import StateReader
from tests.fakes.vici_server import FakeCharon
from tests.unit.southbound.test_state_engine import SA, take


def sa(uid: int, vpn: str, bytes_in: int = 84) -> dict[str, Any]:
    entry = copy.deepcopy(SA)
    entry["uniqueid"] = str(uid)
    entry["child-sas"]["trunk-1"]["bytes-in"] = str(bytes_in)
    return {vpn: entry}


@pytest.fixture
def fake() -> Iterator[FakeCharon]:
    with FakeCharon() as f:
        f.sas = [sa(i, f"vpn-{i}") for i in range(1, 41)]
        f.counters = {"": {"invalid": 1}, "vpn-1": {"ike-init-in-req": 1},
                      "vpn-2": {"ike-init-in-req": 2}}
        yield f


def engine(fake: FakeCharon, timeout: float = 2.0, **kw: Any) -> StateEngine:
    backend = CharonBackend(fake.path, DATAPLANES["kernel-libipsec"])
    reader = StateReader(backend.read_state, timeout, backend.read_sas)
    return StateEngine(reader.read, read_sas=reader.read_sas, reread=30, **kw)


def full_reads(fake: FakeCharon) -> int:
    return sum(1 for m in fake.calls_to("list-sas") if "ike-id" not in m)


def by_id(tree: Any) -> dict[int, dict[str, Any]]:
    return {e["unique-id"]: e for e in tree["ike-sa"]}


def test_an_event_reads_only_its_ike_sa_and_keeps_the_others_as_they_were(
        fake: FakeCharon) -> None:
    async def main() -> None:
        eng = engine(fake)
        first = await eng.snapshot(max_age=60)
        assert full_reads(fake) == 1 and len(first.tree["ike-sa"]) == 40
        changes = eng.changes()
        fake.calls.clear()
        with fake.lock:  # SA 7 counted traffic, SA 9 went away
            fake.sas = [sa(i, f"vpn-{i}", 100 if i == 7 else 84)
                        for i in range(1, 41) if i != 9]
            fake.counters["vpn-7"] = {"info-in-req": 3}
        eng.sa_event({"kind": "child", "event": "rekeyed", "vpn": "vpn-7", "unique-id": 7})
        eng.sa_event({"kind": "ike", "event": "down", "vpn": "vpn-9", "unique-id": 9})
        got = await take(changes, 2)
        assert [c.reason for c in got] == ["sa-event", "sa-event"]
        snap = got[-1].snapshot
        # two list-sas by ike-id, the stats and counters of those VPNs: no whole table
        assert full_reads(fake) == 0
        assert sorted(m["ike-id"] for m in fake.calls_to("list-sas")) == ["7", "9"]
        assert {m.get("name") for m in fake.calls_to("get-counters")} == {
            None, "vpn-7", "vpn-9"}
        assert not any(m.get("all") for m in fake.calls_to("get-counters"))
        new, old = by_id(snap.tree), by_id(first.tree)
        assert 9 not in new and new[7]["bytes-in"] == 100
        assert [e["unique-id"] for e in snap.tree["ike-sa"]] == sorted(new)
        # every other entry is the very object of the last reading (per-entry caches hit)
        assert all(new[u] is old[u] for u in new if u != 7)
        assert snap.tree["vpn-counters"] == [{"name": "vpn-1", "ike-init-in-req": 1},
                                             {"name": "vpn-2", "ike-init-in-req": 2},
                                             {"name": "vpn-7", "info-in-req": 3}]
        assert snap.tree["vpn-counters"][0] is first.tree["vpn-counters"][0]
        assert snap.read_at == first.read_at  # the oldest part's time: the full read's
        assert eng.reads == 1 and eng.targeted_reads == 1
        # a reader after the events got what they changed without waiting for a full read
        assert await eng.snapshot(max_age=60) is snap
    asyncio.run(main())


def test_an_ike_rekey_replaces_the_old_sa_with_the_new(fake: FakeCharon) -> None:
    async def main() -> None:
        eng = engine(fake)
        await eng.snapshot(max_age=60)
        with fake.lock:
            fake.sas = [e for e in fake.sas if "vpn-3" not in e] + [sa(41, "vpn-3")]
        eng.sa_event({"kind": "ike", "event": "rekeyed", "vpn": "vpn-3", "unique-id": 41,
                      "old-unique-id": 3})
        snap = await eng.snapshot(max_age=60)  # a reader after the event waits for its read
        ids = [e["unique-id"] for e in snap.tree["ike-sa"]]
        assert 3 not in ids and ids[-1] == 41 and len(ids) == 40
        assert full_reads(fake) == 1 and eng.targeted_reads == 1
    asyncio.run(main())


def test_the_reread_after_the_last_event_is_targeted_too(fake: FakeCharon) -> None:
    async def main() -> None:
        eng = engine(fake)
        eng.reread = 0.1
        await eng.snapshot(max_age=60)
        eng.sa_event({"kind": "ike", "event": "down", "vpn": "vpn-5", "unique-id": 5})
        await eng.snapshot(max_age=60)
        with fake.lock:  # charon lists an SA being deleted for a moment after its event
            fake.sas = [e for e in fake.sas if "vpn-5" not in e]
        await asyncio.sleep(0.3)
        snap = await eng.snapshot(max_age=60)
        assert 5 not in by_id(snap.tree)
        assert [m["ike-id"] for m in fake.calls_to("list-sas") if "ike-id" in m] == ["5", "5"]
        assert full_reads(fake) == 1
    asyncio.run(main())


def test_a_full_read_when_targeting_would_not_pay_or_cannot_be(fake: FakeCharon) -> None:
    async def main() -> None:
        eng = engine(fake, targeted_min=4)
        await eng.snapshot(max_age=60)
        for i in range(1, 12):  # more than a quarter of the 40 SAs named: one full read
            eng.sa_event({"kind": "ike", "event": "up", "vpn": f"vpn-{i}", "unique-id": i})
        await eng.snapshot(max_age=60)
        assert full_reads(fake) == 2 and eng.targeted_reads == 0
        eng.sa_event({"kind": "ike", "event": "up", "vpn": "vpn-1"})  # no unique-id
        await eng.snapshot(max_age=60)
        assert full_reads(fake) == 3 and eng.targeted_reads == 0
    asyncio.run(main())


def test_a_targeted_read_that_fails_leaves_the_state_stale_then_reads_it_all(
        fake: FakeCharon) -> None:
    async def main() -> None:
        eng = engine(fake, timeout=0.5)
        good = await eng.snapshot(max_age=60)
        fake.hang("list-sas", once=True)
        eng.sa_event({"kind": "ike", "event": "down", "vpn": "vpn-5", "unique-id": 5})
        snap = await asyncio.wait_for(eng.snapshot(max_age=60), 5)
        assert snap.stale and snap.read_at == good.read_at and eng.reads == 1
        fake.resume()
        for _ in range(100):  # the full read asked on that doubt, in the background
            if eng.reads == 2 and not eng._due():
                break
            await asyncio.sleep(0.05)
        assert eng.reads == 2
        snap = await eng.snapshot(max_age=0)  # (the background one may have met the hang)
        assert not snap.stale and snap.read_at > good.read_at
    asyncio.run(main())


def test_merge_keeps_what_it_did_not_read_and_what_did_not_change() -> None:
    a, b, c = ({"unique-id": u, "name": f"v{u}", "bytes-in": 1} for u in (1, 2, 3))
    state = {"ike-sa": [a, b, c], "counters": {"invalid": 1}, "kernel": {"x": 1},
             "vpn-counters": [{"name": "v1", "invalid": 1}, {"name": "v2", "invalid": 0}],
             "ike-sas": {"total": 3, "half-open": 0}}
    part = {"ike-sa": [{**b}, {"unique-id": 4, "name": "v4"}], "counters": {"invalid": 1},
            "vpn-counters": [{"name": "v4", "invalid": 5}],
            "ike-sas": {"total": 3, "half-open": 0}, "task-processing": {}}
    out = merge(state, part, [2, 3, 4], ["v2", "v4"])
    assert out["ike-sa"] == [a, b, {"unique-id": 4, "name": "v4"}]
    assert out["ike-sa"][0] is a and out["ike-sa"][1] is b  # equal: the old object
    assert out["vpn-counters"] == [{"name": "v1", "invalid": 1}, {"name": "v4", "invalid": 5}]
    assert out["counters"] is state["counters"] and out["kernel"] is state["kernel"]
    # no counters plugin in the answer: none in the merged state either (as a full read)
    out = merge(state, {k: v for k, v in part.items() if k != "counters"}, [2], [])
    assert "counters" not in out and "vpn-counters" not in out


def test_stale_while_revalidate() -> None:
    spans: list[tuple[float, float]] = []
    slow = {"s": 0.2}

    async def read() -> tuple[dict, Any, bool]:
        t = time.monotonic()
        await asyncio.sleep(slow["s"])
        spans.append((t, time.monotonic()))
        return {"n": len(spans)}, time.time(), False

    async def main() -> None:
        eng = StateEngine(read, read_pause=0)
        first = await eng.snapshot(max_age=0.05, max_stale=5)  # never read: waits
        assert first.tree["n"] == 1
        await asyncio.sleep(0.1)
        t = time.monotonic()
        again = await eng.snapshot(max_age=0.05, max_stale=5)
        assert time.monotonic() - t < 0.1 and again is first  # at once, from the cache
        # one revalidation in the background, shared by the readers meanwhile
        rest = await asyncio.gather(*(eng.snapshot(max_age=0.05, max_stale=5)
                                      for _ in range(20)))
        assert all(s is first for s in rest)
        await asyncio.sleep(0.1)
        assert len(spans) == 1  # it starts once the reader is served (revalidate_after)
        await asyncio.sleep(0.4)
        assert len(spans) == 2
        fresh = await eng.snapshot(max_age=0.05, max_stale=5)
        assert fresh.tree["n"] == 2
        # out of date (an action): the reader waits, whatever the age
        eng.expire()
        assert (await eng.snapshot(max_age=0.05, max_stale=5)).tree["n"] == 3
        # older than max_stale: the reader waits
        await asyncio.sleep(0.25)
        assert (await eng.snapshot(max_age=0.05, max_stale=0.2)).tree["n"] == 4
        # without max_stale (the default), as before: waits once older than max_age
        await asyncio.sleep(0.1)
        assert (await eng.snapshot(max_age=0.05)).tree["n"] == 5
    asyncio.run(main())


def test_without_subscribers_events_are_read_by_the_next_reader_not_at_once(
        fake: FakeCharon) -> None:
    async def main() -> None:
        eng = engine(fake)
        first = await eng.snapshot(max_age=60)
        fake.calls.clear()
        with fake.lock:  # SA 4 went away, SA 6 counted traffic
            fake.sas = [sa(i, f"vpn-{i}", 100 if i == 6 else 84)
                        for i in range(1, 41) if i != 4]
        for uid in (4, 6):  # a storm of events with nobody following the changes
            eng.sa_event({"kind": "ike", "event": "down", "vpn": f"vpn-{uid}", "unique-id": uid})
        await asyncio.sleep(0.2)  # ten times the coalescing delay: no read for nobody
        assert fake.calls_to("list-sas") == [] and eng.targeted_reads == 0
        assert eng._pending == []  # nothing kept to publish
        snap = await eng.snapshot(max_age=60)  # the reader waits for the read of the events
        assert sorted(m["ike-id"] for m in fake.calls_to("list-sas")) == ["4", "6"]
        new = by_id(snap.tree)
        assert 4 not in new and new[6]["bytes-in"] == 100 and snap.read_at == first.read_at
        changes = eng.changes()  # a subscriber: the next event is read at once
        eng.sa_event({"kind": "ike", "event": "up", "vpn": "vpn-8", "unique-id": 8})
        got = await take(changes, 1)
        assert got[0].reason == "sa-event" and eng.targeted_reads == 2
    asyncio.run(main())


def test_events_naming_too_many_sas_to_keep_ask_readers_for_a_full_read(
        fake: FakeCharon) -> None:
    async def main() -> None:
        eng = engine(fake, targets_max=3)
        await eng.snapshot(max_age=60)
        for uid in range(1, 6):
            eng.sa_event({"kind": "child", "event": "up", "vpn": f"vpn-{uid}", "unique-id": uid})
        assert len(eng._targets) == 3
        await eng.snapshot(max_age=60)
        assert full_reads(fake) == 2 and eng.targeted_reads == 0 and eng._targets == {}
    asyncio.run(main())
