"""The reconciler's worker against an in-memory charon: bulk loads over several sessions,
changes made during a batch, and survival of unexpected errors."""

from __future__ import annotations

import asyncio
import copy
import threading
from typing import Any

import pytest

import southbound.reconciler as reconciler
from tests.unit.southbound.test_convert import VPN


class FakeCharon:
    """What charon holds, shared by every session (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.conns: dict[str, dict] = {}
        self.shared: dict[str, bytes] = {}
        self.sessions = 0
        self.fail_once: dict[str, Exception] = {}


class FakeClient:
    """Speaks to a FakeCharon with the ViciClient methods the reconciler uses."""

    charon: FakeCharon

    def __init__(self, path: str, timeout: float = 30) -> None:
        with self.charon.lock:
            self.charon.sessions += 1

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *a: Any) -> None:
        self.close()

    def close(self) -> None:
        pass

    def _maybe_fail(self, cmd: str) -> None:
        with self.charon.lock:
            exc = self.charon.fail_once.pop(cmd, None)
        if exc is not None:
            raise exc

    def get_conns(self) -> set[str]:
        self._maybe_fail("get-conns")
        return set(self.charon.conns)

    def get_shared(self) -> set[str]:
        return set(self.charon.shared)

    def load_conn(self, name: str, conn: dict) -> None:
        with self.charon.lock:
            self.charon.conns[name] = copy.deepcopy(conn)

    def unload_conn(self, name: str) -> None:
        with self.charon.lock:
            self.charon.conns.pop(name, None)

    def load_shared(self, ident: str, secret: dict) -> None:
        with self.charon.lock:
            self.charon.shared[ident] = bytes(secret["data"])

    def unload_shared(self, ident: str) -> None:
        with self.charon.lock:
            self.charon.shared.pop(ident, None)

    def list_sas(self, ike: str | None = None) -> list:
        return []

    def terminate(self, *a: Any, **kw: Any) -> None:
        pass

    def initiate(self, **kw: Any) -> None:
        pass


@pytest.fixture
def charon(monkeypatch: pytest.MonkeyPatch) -> FakeCharon:
    c = FakeCharon()
    FakeClient.charon = c
    monkeypatch.setattr(reconciler, "ViciClient", FakeClient)
    return c


def vpns(n: int, subnet: str = "192.168.99.0/24") -> dict[str, dict]:
    out = {}
    for i in range(n):
        v = copy.deepcopy(VPN)
        v["name"] = f"v{i}"
        v["security-policy"][0]["remote-ts"]["subnet"] = subnet
        out[v["name"]] = v
    return out


def effective(v: dict, psks: dict | None = None) -> dict:
    return {"enabled": True, "global-options": {}, "vpns": v, "psks": psks or {}}


def test_bulk_load_uses_several_sessions(charon: FakeCharon) -> None:
    async def run() -> None:
        rec = reconciler.Reconciler("/nonexistent")
        task = asyncio.create_task(rec.run())
        rec.set_desired(effective(vpns(200), {"k": {"name": "k", "id": [], "secret": "abc"}}))
        assert await rec.wait_converged(10)
        assert set(charon.conns) == {f"v{i}" for i in range(200)}
        assert charon.shared == {"k": b"abc"}
        assert charon.sessions >= 1 + reconciler.PARALLEL
        rec.set_desired(effective({}))
        assert await rec.wait_converged(10)
        assert charon.conns == {} and charon.shared == {}
        task.cancel()
    asyncio.run(run())


def test_worker_survives_an_unexpected_error(charon: FakeCharon) -> None:
    async def run() -> None:
        charon.fail_once["get-conns"] = RuntimeError("garbled answer")
        rec = reconciler.Reconciler("/nonexistent", backoff_max=0.1)
        task = asyncio.create_task(rec.run())
        rec.set_desired(effective(vpns(2)))
        assert await rec.wait_converged(10)
        assert set(charon.conns) == {"v0", "v1"}
        assert not task.done()
        task.cancel()
    asyncio.run(run())
