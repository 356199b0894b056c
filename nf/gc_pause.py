"""The cyclic garbage collector paused for one datastore operation.

A bulk edit or commit allocates millions of short-lived container objects while the server
holds every loaded VPN as Python objects: each full collection the allocations set off walks
that whole heap again (at 10,000 VPNs, a third of a later load's CPU in one process). Objects
freed by their reference count are freed as before; cyclic garbage made during the operation
waits for the next collection after it. What the operation leaves alive is then frozen
(nf/heap.py): the next passes do not walk it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from nf import heap
from nf.observed import unwalked

F = TypeVar("F", bound=Callable[..., Any])


def paused(fn: F) -> F:
    """Run ``fn`` with the cyclic collector off; it is turned on again after (only if it was
    on before: nested and concurrent pauses leave it as the outermost found it), what the
    operation left frozen first when it left many objects (:func:`nf.heap.freeze`)."""
    return unwalked(fn, then=_freeze_survivors)


def _freeze_survivors() -> None:
    # (no walk: what the operation left is mostly long-lived)
    if not heap.freeze():
        heap.changed()
