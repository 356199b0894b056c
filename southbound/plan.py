"""The reconciler's pure plan: which loads and unloads turn what a backend holds into intent.

Works on any resource kind. ``desired`` and ``observed`` map a kind's name to
``{entry name: digest}``; an observed digest of ``None`` means "the backend holds an entry of
that name, but what it holds is unknown or not ours", so it is loaded again.

Order (declared by each kind's rank): loads by ascending rank (secrets and certificates before
the connections that use them), then unloads by descending rank (connections go before the
secrets they used). Names are sorted within a kind, so a plan is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Digests = Mapping[str, str]
Observed = Mapping[str, str | None]


@dataclass(frozen=True, order=True)
class Op:
    """One backend operation on one entry: ``load`` (add or replace) or ``unload``."""

    action: Literal["load", "unload"]
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.action} {self.kind} {self.name!r}"


def plan(desired: Mapping[str, Digests], observed: Mapping[str, Observed],
         ranks: Mapping[str, int],
         scope: Mapping[str, Iterable[str]] | None = None) -> list[Op]:
    """Operations turning ``observed`` into ``desired`` for every kind in ``ranks``.

    ``scope`` optionally limits each kind to the given names (the dirty keys); a kind missing
    from ``scope`` is left alone. Pure and total: any pair of inputs gives a plan.
    """
    kinds = sorted(ranks, key=lambda k: (ranks[k], k))
    loads: list[Op] = []
    unloads: list[Op] = []
    for kind in kinds:
        want = desired.get(kind, {})
        have = observed.get(kind, {})
        if scope is None:
            names: Iterable[str] = want.keys() | have.keys()
        elif kind in scope:
            names = scope[kind]
        else:
            continue
        for name in sorted(set(names)):
            if name in want:
                if have.get(name) != want[name]:
                    loads.append(Op("load", kind, name))
            elif name in have:
                unloads.append(Op("unload", kind, name))
    unloads.sort(key=lambda op: (-ranks[op.kind], op.kind, op.name))
    return loads + unloads


def simulate(observed: Mapping[str, Observed], desired: Mapping[str, Digests],
             ops: Iterable[Op]) -> dict[str, dict[str, str | None]]:
    """What a backend holds after ``ops`` succeed (a model for tests and dry runs)."""
    out = {kind: dict(names) for kind, names in observed.items()}
    for op in ops:
        held = out.setdefault(op.kind, {})
        if op.action == "load":
            held[op.name] = desired[op.kind][op.name]
        else:
            held.pop(op.name, None)
    return out
