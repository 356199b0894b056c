"""Make charon's loaded connections and secrets match the effective config.

:func:`plan` is pure: given desired and loaded digests it returns the VICI operations, secrets
loaded before connections, removals after loads. :class:`Reconciler` keeps the desired state,
marks what changed dirty in :meth:`Reconciler.set_desired` (work proportional to the change),
and one asyncio worker task applies the plans, doing blocking VICI calls in a thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from southbound.convert import ike_sa_state
from southbound.vici_client import ViciClient, ViciConnectionError, ViciError
from southbound.world import World

log = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class LoadShared:
    """Load (or replace) a shared secret."""

    name: str


@dataclass(frozen=True, order=True)
class LoadConn:
    """Load (or replace) a connection."""

    name: str


@dataclass(frozen=True, order=True)
class UnloadConn:
    """Unload a connection (and terminate its SAs)."""

    name: str


@dataclass(frozen=True, order=True)
class UnloadShared:
    """Unload a shared secret."""

    name: str


Op = LoadShared | LoadConn | UnloadConn | UnloadShared


def plan(desired_conns: Mapping[str, str], desired_shared: Mapping[str, str],
         loaded_conns: Mapping[str, str | None],
         loaded_shared: Mapping[str, str | None]) -> list[Op]:
    """Operations turning ``loaded`` into ``desired`` (name -> digest; None = unknown digest).

    Order: LoadShared, LoadConn, UnloadConn, UnloadShared; names sorted within each group.
    """
    ops: list[Op] = []
    ops += [LoadShared(n) for n in sorted(desired_shared)
            if n not in loaded_shared or loaded_shared[n] != desired_shared[n]]
    ops += [LoadConn(n) for n in sorted(desired_conns)
            if n not in loaded_conns or loaded_conns[n] != desired_conns[n]]
    ops += [UnloadConn(n) for n in sorted(loaded_conns) if n not in desired_conns]
    ops += [UnloadShared(n) for n in sorted(loaded_shared) if n not in desired_shared]
    return ops


PARALLEL = 4  # VICI sessions for bulk connection loads
PARALLEL_MIN = 64  # below this many loads, one session is as fast


@dataclass
class _Batch:
    """Work handed to the VICI thread; payloads hold secrets, so they stay out of repr."""

    ops: list[Op]
    payloads: dict[Op, dict] = field(repr=False)
    restart: dict[str, list[str]] = field(default_factory=dict)  # conn -> children to start
    digests: dict[Op, str | None] = field(default_factory=dict)  # what each load carried
    done: list[Op] = field(default_factory=list)
    failed: dict[Op, str] = field(default_factory=dict)
    error: Exception | None = None


class Reconciler:
    """Drive one charon over VICI towards the desired effective config.

    ``trap_as_start`` must be True with the kernel-libipsec backend, which cannot negotiate on
    demand (see :func:`southbound.convert.conn_for`).
    """

    def __init__(self, socket_path: str | Path, trap_as_start: bool = False,
                 backoff_max: float = 5.0, vici_timeout: float = 30.0) -> None:
        self.socket_path = str(socket_path)
        self.backoff_max = backoff_max
        self.vici_timeout = vici_timeout
        self.world = World(trap_as_start)
        self.loaded_conns: dict[str, str | None] = {}
        self.loaded_shared: dict[str, str | None] = {}
        self.errors: dict[str, str] = {}  # "conn:NAME"/"psk:NAME" -> charon's errmsg
        self.connected = False
        self.resyncs = 0
        self._client: ViciClient | None = None
        self._force_resync = True
        self._busy = False
        self._wake: asyncio.Event | None = None
        self._converged: asyncio.Event | None = None

    def __repr__(self) -> str:
        return (f"Reconciler({self.socket_path!r}, conns={len(self.world.conns)}, "
                f"dirty={len(self.world.dirty_conns) + len(self.world.dirty_shared)})")

    # -- events ----------------------------------------------------------------------------

    def _events(self) -> tuple[asyncio.Event, asyncio.Event]:
        if self._wake is None or self._converged is None:
            self._wake, self._converged = asyncio.Event(), asyncio.Event()
        return self._wake, self._converged

    def _kick(self) -> None:
        if self._wake is None:
            return
        wake, converged = self._events()
        if self.world.dirty_conns or self.world.dirty_shared or self._force_resync:
            converged.clear()
        wake.set()

    # -- public API ------------------------------------------------------------------------

    def set_desired(self, effective: Mapping[str, Any],
                    vpns_changed: Iterable[str] | None = None,
                    psks_changed: Iterable[str] | None = None) -> None:
        """Take a new effective config; mark changed VPNs/PSKs dirty and wake the worker.

        Payloads are only built for entries that differ from those given last time (identity
        or ``==``): pass new dicts for changed entries rather than mutating old ones in place.
        ``vpns_changed``/``psks_changed`` optionally name the only entries to look at.
        """
        self.world.update(effective, vpns_changed, psks_changed)
        self._kick()

    def resync(self) -> None:
        """Forget what charon has loaded and re-push everything (charon was restarted)."""
        self._force_resync = True
        self._kick()

    async def wait_converged(self, timeout: float) -> bool:
        """Wait until everything desired is applied; False on timeout."""
        _, converged = self._events()
        try:
            await asyncio.wait_for(converged.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        """Worker loop: apply dirty keys; reconnect with backoff when charon is unreachable."""
        wake, converged = self._events()
        backoff = 0.1
        wake.set()
        while True:
            await wake.wait()
            wake.clear()
            try:
                if self._client is None:
                    await asyncio.to_thread(self._connect)
                if self._force_resync:
                    await self._do_resync()
                while self.world.dirty_conns or self.world.dirty_shared:
                    await self._apply_dirty()
                    if self._force_resync:
                        break
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the worker must outlive any failure
                if not isinstance(exc, ViciConnectionError | OSError):
                    log.exception("reconciler pass failed; resyncing")
                self._disconnect()
                self._force_resync = True
                log.warning("charon unreachable (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.backoff_max)
                wake.set()
                continue
            if not (self.world.dirty_conns or self.world.dirty_shared or self._force_resync):
                converged.set()

    async def read_state(self) -> dict[str, Any]:
        """Operational state: ``{"ike-sas": {...}, "ike-sa": [...]}`` from a separate session."""
        def read() -> tuple[dict, list[dict]]:
            with ViciClient(self.socket_path, self.vici_timeout) as client:
                return client.stats(), client.list_sas()
        stats, sas = await asyncio.to_thread(read)
        ikesas = stats.get("ikesas") or {}
        return {
            "ike-sas": {"total": int(ikesas.get("total", b"0")),
                        "half-open": int(ikesas.get("half-open", b"0"))},
            "ike-sa": [ike_sa_state(e) for e in sas],
        }

    # -- worker internals ------------------------------------------------------------------

    def _connect(self) -> None:
        self._client = ViciClient(self.socket_path, self.vici_timeout)
        self.connected = True

    def _disconnect(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None
        self.connected = False
        # The next session may reach a new charon (restarted, or lost state): push everything.
        self._force_resync = True

    async def _do_resync(self) -> None:
        """Forget loaded digests; reload every desired key, unload what charon has extra."""
        client = self._client
        assert client is not None
        conns = await asyncio.to_thread(client.get_conns)
        shared = await asyncio.to_thread(client.get_shared)
        self.loaded_conns = dict.fromkeys(conns)
        self.loaded_shared = dict.fromkeys(shared)
        self.world.mark_all_dirty(extra_conns=conns, extra_shared=shared)
        self._force_resync = False
        self.resyncs += 1
        log.info("resync: charon has %d conns, %d secrets", len(conns), len(shared))

    async def _apply_dirty(self) -> None:
        world = self.world
        conn_keys, shared_keys = world.take_dirty()
        try:
            batch = self._make_batch(conn_keys, shared_keys)
            await asyncio.to_thread(self._apply, batch)
        except BaseException:
            world.dirty_conns |= conn_keys
            world.dirty_shared |= shared_keys
            raise
        for op in batch.done:
            self._record(op, batch.digests.get(op))
        # Whatever did not run (connection lost midway) stays dirty.
        left = [op for op in batch.ops if op not in batch.done and op not in batch.failed]
        for op in left:
            (world.dirty_shared if isinstance(op, LoadShared | UnloadShared)
             else world.dirty_conns).add(op.name)
        for op, msg in batch.failed.items():
            kind = "psk" if isinstance(op, LoadShared | UnloadShared) else "conn"
            self.errors[f"{kind}:{op.name}"] = msg
        if batch.error is not None:
            raise batch.error

    def _record(self, op: Op, digest: str | None) -> None:
        """Remember what charon now holds: the digest of the payload that was sent (a change
        made while the batch ran stays different, so it is applied next)."""
        kind = "psk" if isinstance(op, LoadShared | UnloadShared) else "conn"
        self.errors.pop(f"{kind}:{op.name}", None)
        if isinstance(op, LoadShared):
            self.loaded_shared[op.name] = digest
        elif isinstance(op, LoadConn):
            self.loaded_conns[op.name] = digest
        elif isinstance(op, UnloadConn):
            self.loaded_conns.pop(op.name, None)
        else:
            self.loaded_shared.pop(op.name, None)

    def _make_batch(self, conn_keys: set[str], shared_keys: set[str]) -> _Batch:
        w = self.world
        ops = plan({k: w.conn_digests[k] for k in conn_keys if k in w.conn_digests},
                   {k: w.shared_digests[k] for k in shared_keys if k in w.shared_digests},
                   {k: self.loaded_conns[k] for k in conn_keys if k in self.loaded_conns},
                   {k: self.loaded_shared[k] for k in shared_keys if k in self.loaded_shared})
        payloads: dict[Op, dict] = {}
        restart: dict[str, list[str]] = {}
        digests: dict[Op, str | None] = {}
        for op in ops:
            if isinstance(op, LoadShared):
                payloads[op] = w.shared_payloads[op.name]
                digests[op] = w.shared_digests.get(op.name)
            elif isinstance(op, LoadConn):
                payloads[op] = conn = w.conn_payloads[op.name]
                digests[op] = w.conn_digests.get(op.name)
                if self.loaded_conns.get(op.name) is not None:  # a change, not a (re)load
                    restart[op.name] = [c for c, v in conn["children"].items()
                                        if v.get("mode") in ("tunnel", "transport")
                                        and v.get("start_action") in ("start", "trap")]
        return _Batch(ops, payloads, restart, digests)

    def _apply(self, batch: _Batch) -> None:
        """Run a batch in the VICI thread, in plan order; stop at the first connection error.

        Many connection loads in a row are spread over a few extra VICI sessions, so that
        encoding one request overlaps charon's work on the others (bulk loads)."""
        client = self._client
        assert client is not None
        ops = batch.ops
        loads = [op for op in ops if isinstance(op, LoadConn)]
        if len(loads) < PARALLEL_MIN:
            self._run_ops(client, ops, batch)
            return
        first, last = ops.index(loads[0]), ops.index(loads[-1])
        self._run_ops(client, ops[:first], batch)
        if batch.error is None:
            chunks = [loads[i::PARALLEL] for i in range(PARALLEL)]
            with ThreadPoolExecutor(PARALLEL) as pool:
                list(pool.map(lambda chunk: self._run_chunk(chunk, batch), chunks))
        if batch.error is None:
            self._run_ops(client, ops[last + 1:], batch)

    def _run_chunk(self, ops: list[Op], batch: _Batch) -> None:
        try:
            with ViciClient(self.socket_path, self.vici_timeout) as client:
                self._run_ops(client, ops, batch)
        except (ViciConnectionError, OSError) as exc:
            batch.error = exc

    def _run_ops(self, client: ViciClient, ops: list[Op], batch: _Batch) -> None:
        try:
            for op in ops:
                if batch.error is not None:
                    return
                try:
                    self._apply_op(client, op, batch)
                except ViciError as exc:
                    log.error("%s %s failed: %s", type(op).__name__, op.name, exc.errmsg)
                    batch.failed[op] = exc.errmsg
                    continue
                batch.done.append(op)
        except (ViciConnectionError, OSError) as exc:
            batch.error = exc

    def _apply_op(self, client: ViciClient, op: Op, batch: _Batch) -> None:
        if isinstance(op, LoadShared):
            client.load_shared(op.name, batch.payloads[op])
        elif isinstance(op, UnloadShared):
            client.unload_shared(op.name)
        elif isinstance(op, LoadConn):
            conn = batch.payloads[op]
            client.load_conn(op.name, conn)
            if op.name in batch.restart:
                self._restart_sas(client, op.name, conn, batch.restart[op.name])
        else:
            client.unload_conn(op.name)
            self._terminate(client, op.name)

    def _restart_sas(self, client: ViciClient, name: str, conn: dict,
                     children: list[str]) -> None:
        """After a changed load-conn: re-negotiate so the new parameters take effect."""
        had_sa = bool(client.list_sas(ike=name))
        starts = [c for c in children if conn["children"][c].get("start_action") == "start"]
        if not had_sa and not starts:
            return
        self._terminate(client, name)
        for child in starts or children[:1]:
            try:
                client.initiate(child=child, ike=name, timeout_ms=-1)
            except ViciError as exc:
                log.warning("initiate %s/%s: %s", name, child, exc.errmsg)

    @staticmethod
    def _terminate(client: ViciClient, name: str) -> None:
        if not client.list_sas(ike=name):
            return
        try:
            client.terminate(name, timeout_ms=2000, force=True)
        except ViciError as exc:
            log.info("terminate %s: %s", name, exc.errmsg)

