"""Running one planned batch of operations against a backend, in worker threads.

The reconciler hands a :class:`Batch` (ops in plan order, their payloads and digests) to
:func:`run_batch`, which calls the backend session for each op and records the outcome of
each: done, refused (the daemon's message), or in flight when a session broke. It never
reorders across ranks: a run of at least :data:`PARALLEL_MIN` loads of one parallel kind is
spread over :data:`PARALLEL` sessions; so is such a run of unloads when the session can unload
in bulk (``unload_bulk``: e.g. one look for the SAs left for many connections instead of one
per connection); everything else runs one op at a time on the main session. Ops named
``solo`` run first, one at a time, so that a session that breaks on one of them breaks on
that one alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from southbound.backend import BackendSession, BackendUnavailable, EntryRefused
from southbound.plan import Op

log = logging.getLogger(__name__)

PARALLEL = 4  # sessions for bulk loads of a parallel kind
PARALLEL_MIN = 64  # below this many loads in a row, one session is as fast


@dataclass
class Batch:
    """Work handed to the backend threads; payloads may hold secrets, so not in the repr."""

    ops: list[Op]
    payloads: dict[Op, Mapping[str, Any]] = field(repr=False)
    digests: dict[Op, str]
    replaced: set[Op]
    solo: set[Op] = field(default_factory=set)
    done: list[Op] = field(default_factory=list)
    refused: dict[Op, str] = field(default_factory=dict)
    broke: dict[Op, str] = field(default_factory=dict)  # in flight when a session broke
    error: BackendUnavailable | None = None

    def not_run(self) -> list[Op]:
        """Ops that never got an answer (a session broke first)."""
        done = set(self.done)
        return [op for op in self.ops if op not in done and op not in self.refused]


def _segments(ops: list[Op], parallel: Callable[[Op], bool],
              bulk_unloads: bool = False) -> list[tuple[bool, list[Op]]]:
    """Consecutive ops grouped: (True, bulk loads, or with ``bulk_unloads`` bulk unloads, of
    one parallel kind) or (False, others)."""
    out: list[tuple[bool, list[Op]]] = []
    for op in ops:
        bulk = (op.action == "load" or bulk_unloads) and parallel(op)
        last = out[-1][1][-1] if out else None
        if out and out[-1][0] == bulk and (not bulk or (last is not None and last.kind == op.kind
                                                        and last.action == op.action)):
            out[-1][1].append(op)
        else:
            out.append((bulk, [op]))
    return [(bulk and len(seg) >= PARALLEL_MIN, seg) for bulk, seg in out]


def run_batch(session: BackendSession, open_session: Callable[[], BackendSession],
              batch: Batch, parallel: Callable[[Op], bool]) -> None:
    """Run ``batch`` (blocking; call it in a thread) and record every op's outcome in it."""
    solo = [op for op in batch.ops if op in batch.solo]
    _run(session, solo, batch)
    rest = [op for op in batch.ops if op not in batch.solo]
    for bulk, ops in _segments(rest, parallel, hasattr(session, "unload_bulk")):
        if batch.error is not None:
            return
        if not bulk:
            _run(session, ops, batch)
            continue
        chunks = [ops[i::PARALLEL] for i in range(PARALLEL)]
        with ThreadPoolExecutor(PARALLEL) as pool:
            list(pool.map(lambda chunk: _run_chunk(open_session, chunk, batch), chunks))


def _run_chunk(open_session: Callable[[], BackendSession], ops: list[Op], batch: Batch) -> None:
    try:
        session = open_session()
    except BackendUnavailable as exc:
        batch.error = exc
        return
    try:
        if ops and ops[0].action == "unload":  # a bulk segment is of one kind and action
            _run_unloads(session, ops, batch)
        else:
            _run(session, ops, batch)
    finally:
        session.close()


def _run(session: BackendSession, ops: list[Op], batch: Batch) -> None:
    for op in ops:
        if batch.error is not None:
            return
        try:
            if op.action == "load":
                session.load(op.kind, op.name, batch.payloads[op], op in batch.replaced)
            else:
                session.unload(op.kind, op.name)
        except EntryRefused as exc:
            batch.refused[op] = exc.message
            continue
        except BackendUnavailable as exc:
            batch.broke[op] = str(exc)
            batch.error = exc
            return
        except Exception as exc:  # a bug about one entry must not stop the others
            log.exception("%s failed unexpectedly", op)
            batch.refused[op] = f"internal error: {type(exc).__name__}"
            continue
        batch.done.append(op)


def _run_unloads(session: Any, ops: list[Op], batch: Batch) -> None:
    """Unloads of one kind through the session's ``unload_bulk``. When the session breaks,
    none of them is recorded: they stay to do and are planned again from what the daemon
    then holds."""
    if batch.error is not None:
        return
    try:
        outcome = session.unload_bulk(ops[0].kind, [op.name for op in ops])
    except BackendUnavailable as exc:
        batch.error = exc
        return
    for op in ops:
        message = outcome.get(op.name, "not unloaded")
        if message is None:
            batch.done.append(op)
        else:
            batch.refused[op] = message


def withhold_secret(message: str, payload: Mapping[str, Any]) -> str:
    """The daemon's message about an entry, withheld whole if it quotes a secret (a bytes value)
    of the entry's payload: masking it in place would still show a short secret's shape."""
    for value in payload.values():
        if isinstance(value, bytes) and value and value.decode("utf-8", "replace") in message:
            return "the daemon's message was withheld: it quoted the secret"
    return message
