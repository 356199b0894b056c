"""Without subscribers the state engine recomposes its tree only when read: a bulk load's
thousands of apply-status changes no longer recompose the whole tree every 0.25 s."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from southbound.state_engine import StateEngine


def _engine(composed: list[int]) -> StateEngine:
    async def read() -> tuple[dict[str, Any], datetime | None, bool]:
        return {"ike-sa": []}, datetime.now(UTC), False

    def compose(state: dict, read_at: Any, stale: bool) -> dict:
        composed.append(1)
        return {**state, "n": len(composed)}

    return StateEngine(read, compose=compose, recompose_delay=0.02)


def test_no_subscriber_no_recompose_until_read() -> None:
    composed: list[int] = []

    async def main() -> None:
        eng = _engine(composed)
        await eng.snapshot(max_age=60)
        first = len(composed)
        for _ in range(1000):  # a bulk load moving a thousand entries to applied
            eng.invalidate()
            await asyncio.sleep(0)
        await asyncio.sleep(0.1)  # five times the recompose delay
        assert len(composed) == first
        assert (await eng.snapshot(max_age=60)).tree["n"] == first + 1  # the reader's
    asyncio.run(main())


def test_a_subscriber_still_gets_the_recompose_within_the_delay() -> None:
    composed: list[int] = []

    async def main() -> None:
        eng = _engine(composed)
        await eng.snapshot(max_age=60)
        changes = eng.changes()
        first = len(composed)
        eng.invalidate()
        await asyncio.sleep(0.1)
        assert len(composed) == first + 1
        del changes
    asyncio.run(main())
