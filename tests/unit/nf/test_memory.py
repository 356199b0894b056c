"""nf/memory.py: a trim follows a removal once it has settled, never a load."""

from __future__ import annotations

import asyncio

from nf import memory


def test_trim_follows_removals_only(monkeypatch) -> None:
    trims: list[int] = []
    sizes = iter([10, 10, 5000, 5000, 20, 20, 20, 20, 20])
    current = [10]

    def size() -> int:
        current[0] = next(sizes, current[0])
        return current[0]

    async def settled() -> None:
        return None

    monkeypatch.setattr(memory, "trim", lambda: trims.append(current[0]) or True)

    async def run() -> None:
        task = asyncio.create_task(memory.trim_after_changes(size, settled, every=0.001))
        for _ in range(200):
            await asyncio.sleep(0.001)
            if trims:
                break
        await asyncio.sleep(0.02)
        task.cancel()

    asyncio.run(run())
    assert trims == [20]  # once, after 5,000 went down to 20; not after 10 went up to 5,000
