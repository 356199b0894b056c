"""Each VPN's ``load-conn`` payload built once per change, not three times.

A change of N VPNs needs each VPN's payload at edit-config (the size check of
``charon_backend.refusals``), again at commit (the same check on the same values) and once
more in the reconciler (the request it sends). Building it (``convert.conn_for``) and counting
its bytes is most of the backend's share of a bulk commit, so the payload and its size are
kept here, keyed by the effective VPN's value (a frozen dataclass: equal values give equal
payloads), from the first check until the reconciler takes them. :func:`clear` drops what is
left once the reconciler has taken a commit's payloads, so nothing stays beyond one change:
at most :data:`LIMIT` entries are kept in any case (the oldest go first).

Payloads are shared by the checks and the reconciler's desired set: nobody modifies one.
"""

from __future__ import annotations

import threading
from typing import Any

from nf.effective import Vpn
from southbound.convert import conn_for
from southbound.vici_client import request_size

LIMIT = 50_000  # entries: above one bulk edit of the largest configs measured (10,000 VPNs)

_Key = tuple[Vpn, bool]
_lock = threading.Lock()
_built: dict[_Key, list[Any]] = {}  # (vpn, trap_as_start) -> [payload, size or None]


def _key(vpn: Vpn, trap_as_start: bool) -> _Key | None:
    """The cache key of a VPN, or None if a value in it cannot be hashed."""
    try:
        hash(vpn)
    except TypeError:
        return None
    return vpn, trap_as_start


def _entry(vpn: Vpn, trap_as_start: bool) -> list[Any]:
    key = _key(vpn, trap_as_start)
    if key is None:
        return [conn_for(vpn, trap_as_start), None]
    with _lock:
        found = _built.get(key)
    if found is not None:
        return found
    entry = [conn_for(vpn, trap_as_start), None]  # (raises before anything is kept)
    with _lock:
        _built[key] = entry
        while len(_built) > LIMIT:
            del _built[next(iter(_built))]
    return entry


def payload(vpn: Vpn, trap_as_start: bool = False) -> dict[str, Any]:
    """``conn_for(vpn, trap_as_start)``, built once and kept for the next caller."""
    return _entry(vpn, trap_as_start)[0]


def size(vpn: Vpn, trap_as_start: bool = False) -> int:
    """The bytes of the VPN's ``load-conn`` request (``vici_client.request_size``), counted
    once. Raises ViciEncodingError (not kept) like ``request_size``."""
    entry = _entry(vpn, trap_as_start)
    if entry[1] is None:
        entry[1] = request_size("load-conn", {vpn.name: entry[0]})
    return entry[1]


def take(vpn: Vpn, trap_as_start: bool = False) -> dict[str, Any]:
    """The payload for the reconciler: the one the checks built (no longer kept), or a new
    one."""
    key = _key(vpn, trap_as_start)
    if key is not None:
        with _lock:
            found = _built.pop(key, None)
        if found is not None:
            return found[0]
    return conn_for(vpn, trap_as_start)


def clear() -> None:
    """Forget every payload kept (the reconciler has taken what a commit changed)."""
    with _lock:
        _built.clear()


def kept() -> int:
    """How many payloads are kept (for tests)."""
    return len(_built)
