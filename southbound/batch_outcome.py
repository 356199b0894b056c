"""What the outcome of a batch means for the reconciler's records: what the daemon holds
(:mod:`southbound.holdings`), each entry's apply status, the payloads still kept
(:mod:`southbound.desired`) and the entries that broke sessions
(:mod:`southbound.breakers`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from southbound.backend import ResourceKind
from southbound.batch import Batch, withhold_secret
from southbound.breakers import SessionBreakers
from southbound.desired import DesiredSet
from southbound.holdings import Holdings
from southbound.plan import Op
from southbound.status import ApplyStatus

log = logging.getLogger("southbound.reconciler")


class BatchOutcome:
    """The reconciler's bookkeeping around one batch (planned ops in, results recorded)."""

    def __init__(self, kinds: Mapping[str, ResourceKind], desired: DesiredSet,
                 holdings: Holdings, status: ApplyStatus, breakers: SessionBreakers) -> None:
        self.kinds = kinds
        self.desired = desired
        self.holdings = holdings
        self.status = status
        self.breakers = breakers

    def settle(self, kind: str, name: str) -> None:
        """Nothing was sent for the entry: the backend already agrees with it."""
        self.breakers.settled((kind, name))
        st = self.status.get(kind, name)
        if name in self.desired.invalid[kind]:
            return  # stays failed: its request cannot be built
        if name in self.desired.digests[kind]:
            if st is None or st.status != "applied":
                self.status.applied(kind, name)
        elif st is not None:
            self.status.removed(kind, name)

    def make_batch(self, ops: list[Op]) -> Batch:
        """The work of ``ops``: each load's payload (kept or rebuilt) and digest, whether it
        replaces what the daemon holds, which ops run alone."""
        payloads: dict[Op, Mapping[str, Any]] = {}
        digests: dict[Op, str] = {}
        replaced: set[Op] = set()
        for op in ops:
            if op.action == "load":
                payloads[op] = self.desired.payload(op.kind, op.name)
                digests[op] = self.desired.digests[op.kind][op.name]
                if op.name in self.holdings.observed[op.kind]:  # ours or not: SAs may run under it
                    replaced.add(op)
        solo = {op for op in ops if (op.kind, op.name) in self.breakers.solo}
        return Batch(ops, payloads, digests, replaced, solo)

    def current(self, op: Op, batch: Batch) -> bool:
        """The op still carries the intent (no commit changed the entry while it ran)."""
        if op.action == "load":
            return self.desired.digests[op.kind].get(op.name) == batch.digests[op]
        return op.name not in self.desired.digests[op.kind]

    def record(self, batch: Batch) -> None:
        """What the daemon did with each op of ``batch``: holdings, apply status (when the
        op still carries the intent), payloads no longer kept, session breakers."""
        for op in batch.done:
            key = (op.kind, op.name)
            self.breakers.finished(key)
            if op.action == "load":
                digest = batch.digests[op]
                self.holdings.loaded(op.kind, op.name, digest)
                self.desired.release(op.kind, op.name, digest)
                if self.current(op, batch):
                    self.status.applied(*key)
            else:
                self.holdings.unloaded(op.kind, op.name)
                if self.current(op, batch):
                    self.status.removed(*key)
        for op, message in batch.refused.items():
            key = (op.kind, op.name)
            self.breakers.finished(key)
            if self.current(op, batch):  # else a newer change is already on its way
                if self.kinds[op.kind].secret:
                    message = withhold_secret(message, batch.payloads.get(op) or {})
                self.status.failed_with(*key, message)
        several = len(batch.broke) > 1
        for op, why in batch.broke.items():
            log.warning("session broke during %s (%s)", op, why)
            self.breakers.broke((op.kind, op.name), self.current(op, batch), several)
