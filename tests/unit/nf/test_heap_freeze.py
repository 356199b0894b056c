"""Long-lived objects frozen after a bulk datastore operation (nf/heap.py): collections then
walk only what was made since; cyclic garbage among the frozen objects is freed once settled
(thawed, collected, frozen again)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from nf import heap
from nf.datastore import Datastores
from nf.gc_pause import paused
from nf.schema import Schema

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS = "urn:ipsec-nf:yang:ipsec-nf"


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    heap.thaw()
    yield
    heap.thaw(collect=True)  # nothing frozen is left to the other tests


class Node:
    """An object in a reference cycle (only the cyclic collector frees it)."""

    def __init__(self) -> None:
        self.me = self


def _bulk_config(n: int) -> etree._Element:
    tpl = ("<ike-policy-template><name>t</name><ike-proposal><id>1</id>"
           "<enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha256</auth-alg>"
           "<dh-group>modp2048</dh-group></ike-proposal></ike-policy-template>"
           "<ipsec-policy-template><name>p</name><esp-proposal><id>1</id>"
           "<enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha256</auth-alg></esp-proposal>"
           "</ipsec-policy-template>")
    vpns = "".join(f"<vpn><name>v{i}</name><ike-policy><template>t</template></ike-policy>"
                   f"<ipsec-policy><template>p</template></ipsec-policy>"
                   f"<remote-address>203.0.113.{i % 250 + 1}</remote-address></vpn>"
                   for i in range(n))
    return etree.fromstring(f'<config xmlns="{NC}"><ike xmlns="{NS}">{tpl}{vpns}</ike></config>')


def test_a_bulk_commit_freezes_what_it_leaves_a_small_one_does_not(schema: Schema,
                                                                     tmp_path: Path) -> None:
    ds = Datastores(schema, tmp_path)
    ds.edit("candidate", _bulk_config(800), sid=1)  # a bulk edit: ~8,000 objects left
    assert heap.frozen() > heap.FREEZE_MIN
    heap.thaw()
    gc.collect()  # young generation empty: a one-entry change makes few objects
    ds.commit(sid=1)
    heap.thaw()
    gc.collect()
    small = etree.fromstring(f'<config xmlns="{NC}"><ike xmlns="{NS}"><vpn><name>one</name>'
                             f'<ike-policy><template>t</template></ike-policy>'
                             f'<ipsec-policy><template>p</template></ipsec-policy>'
                             f'<remote-address>203.0.113.9</remote-address></vpn></ike>'
                             f'</config>')
    ds.edit("candidate", small, sid=1)
    ds.commit(sid=1)
    assert heap.frozen() == 0
    assert gc.isenabled()


def test_frozen_cyclic_garbage_is_freed_once_thawed_and_collected() -> None:
    node = Node()
    ref = weakref.ref(node)
    assert heap.freeze(least=0)
    del node
    gc.collect()
    assert ref() is not None  # frozen: no collection walks it
    heap.thaw(collect=True)
    assert ref() is None and heap.frozen() == 0


def test_paused_freezes_only_above_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    keep: list[object] = []
    monkeypatch.setattr(heap, "FREEZE_MIN", 10**9)
    gc.collect()
    paused(lambda: keep.extend([i] for i in range(50_000)))()
    assert heap.frozen() == 0
    gc.collect()
    # the default threshold: an operation leaving 50,000 containers is a bulk one
    monkeypatch.undo()
    paused(lambda: keep.extend([i] for i in range(50_000)))()
    assert heap.frozen() >= 50_000 and gc.isenabled()


def test_settled_when_quiet_and_applied_not_before() -> None:
    """Once quiet and applied: the frozen cyclic garbage is collected and the survivors are
    frozen again (later passes do not walk the loaded configuration)."""
    node = Node()
    ref = weakref.ref(node)
    keep = [[i] for i in range(1000)]
    assert heap.freeze(least=0)
    del node
    settled = [False]

    async def run() -> tuple[bool, bool]:
        task = asyncio.create_task(heap.thaw_when_quiet(lambda: settled[0], quiet=0.05,
                                                         every=0.01))
        await asyncio.sleep(0.15)
        before = ref() is not None  # quiet, but the backend has not applied everything
        settled[0] = True
        await asyncio.sleep(0.1)
        task.cancel()
        return before, ref() is not None

    assert asyncio.run(run()) == (True, False)
    assert heap.frozen() >= len(keep) and heap._frozen_at is None


def test_small_operations_are_settled_at_most_every_settle_every() -> None:
    heap.settle()
    node = Node()
    ref = weakref.ref(node)
    heap.freeze(least=0)  # (as if frozen by the last bulk operation, settled since)
    heap._frozen_at = None
    del node
    heap.changed()

    async def run(settle_every: float) -> bool:
        task = asyncio.create_task(heap.thaw_when_quiet(lambda: True, quiet=0.02, every=0.01,
                                                         settle_every=settle_every))
        await asyncio.sleep(0.1)
        task.cancel()
        return ref() is not None

    assert asyncio.run(run(3600)) is True  # settled a moment ago: not yet
    assert asyncio.run(run(0)) is False


def test_collected_after_a_removal_is_applied() -> None:
    node = Node()
    ref = weakref.ref(node)
    heap.freeze(least=0)
    del node

    async def run() -> bool:
        applied = asyncio.Event()
        task = asyncio.create_task(heap.collected_after(applied.wait()))
        await asyncio.sleep(0.01)
        alive = ref() is not None
        applied.set()
        await task
        return alive

    assert asyncio.run(run()) and ref() is None
