"""Each VPN's ``load-conn`` payload built once per change, not three times, and its request
encoded once.

A change of N VPNs needs each VPN's payload at edit-config (the size check of
``charon_backend.refusals``), again at commit (the same check on the same values) and once
more in the reconciler (its digest, and the request it sends). Building it
(``convert.conn_for``) and encoding it is most of the backend's share of a bulk commit, so the
payload and its encoded request (whose length the size check reads) are kept here, keyed by
the effective VPN's value (a frozen dataclass: equal values give equal payloads), from the
first check until the reconciler takes them. The request of a payload taken is kept by the
payload's identity (:func:`request`) until it is sent (:func:`sent`): its digest is the
request's, and the bytes sent are those the size check counted. (Before: the size counted
in a pass of its own, the digest from a JSON text, and the request encoded again when sent,
~100 ms per 1,000 VPNs against ~30.) :func:`clear` drops what is left; at most :data:`LIMIT`
entries are kept in any case (the oldest go first).

Payloads are shared by the checks and the reconciler's desired set: nobody modifies one.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from typing import Any

from nf.effective import Vpn
from southbound.convert import conn_for
from southbound.vici_client import checked_size, encoded_request

LIMIT = 50_000  # entries: above one bulk edit of the largest configs measured (10,000 VPNs)

_lock = threading.Lock()


class _Key:
    """(vpn, trap_as_start) with its hash computed once: hashing a Vpn walks every nested
    value, and the checks at edit-config and at commit and the reconciler look it up in turn."""

    __slots__ = ("hash", "trap", "vpn")

    def __init__(self, vpn: Vpn, trap_as_start: bool) -> None:
        self.vpn, self.trap = vpn, trap_as_start
        self.hash = hash((vpn, trap_as_start))  # TypeError if a value cannot be hashed

    def __hash__(self) -> int:
        return self.hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Key) and self.trap == other.trap and (
            self.vpn is other.vpn or self.vpn == other.vpn)


_built: dict[_Key, list[Any]] = {}  # (vpn, trap_as_start) -> [payload, request or None]
# the same by the Vpn object's identity: the three users are mostly given the very same object
# (nf.templates keeps each change's VPNs), found then without hashing its values
_by_id: dict[tuple[int, bool], tuple[Vpn, _Key, list[Any]]] = {}
# a taken payload's load-conn request by the payload's identity: (payload, name, request)
_requests: dict[int, tuple[Mapping[str, Any], str, bytes]] = {}
SWEEP_MIN = 1024  # requests kept before the first look for payloads nobody else holds
_sweep_at = SWEEP_MIN
_UNUSED = 2  # sys.getrefcount of a payload held only by _requests (its tuple, the call)


def _key(vpn: Vpn, trap_as_start: bool) -> _Key | None:
    """The cache key of a VPN, or None if a value in it cannot be hashed."""
    try:
        return _Key(vpn, trap_as_start)
    except TypeError:
        return None


def _same_object(vpn: Vpn, trap_as_start: bool) -> tuple[Vpn, _Key, list[Any]] | None:
    hit = _by_id.get((id(vpn), trap_as_start))
    return hit if hit is not None and hit[0] is vpn else None


def _entry(vpn: Vpn, trap_as_start: bool) -> list[Any]:
    with _lock:
        hit = _same_object(vpn, trap_as_start)
    if hit is not None:
        return hit[2]
    key = _key(vpn, trap_as_start)
    if key is None:
        return [conn_for(vpn, trap_as_start), None]
    with _lock:
        found = _built.get(key)
    if found is None:
        found = [conn_for(vpn, trap_as_start), None]  # (raises before anything is kept)
    with _lock:
        _built[key] = found
        _by_id[(id(vpn), trap_as_start)] = (vpn, key, found)  # (vpn kept: its id stays its own)
        while len(_built) > LIMIT:
            del _built[next(iter(_built))]
        while len(_by_id) > LIMIT:
            del _by_id[next(iter(_by_id))]
    return found


def payload(vpn: Vpn, trap_as_start: bool = False) -> dict[str, Any]:
    """``conn_for(vpn, trap_as_start)``, built once and kept for the next caller."""
    return _entry(vpn, trap_as_start)[0]


def size(vpn: Vpn, trap_as_start: bool = False) -> int:
    """The bytes of the VPN's ``load-conn`` request (``vici_client.request_size``), encoded
    once and kept. Raises ViciEncodingError (not kept) like ``request_size``."""
    entry = _entry(vpn, trap_as_start)
    if entry[1] is None:
        entry[1] = encoded_request("load-conn", {vpn.name: entry[0]})
    return len(entry[1])


def take(vpn: Vpn, trap_as_start: bool = False) -> dict[str, Any]:
    """The payload for the reconciler: the one the checks built (no longer kept; its request,
    if encoded, kept for :func:`request`), or a new one."""
    found = None
    with _lock:
        hit = _same_object(vpn, trap_as_start)
        if hit is not None:
            del _by_id[(id(vpn), trap_as_start)]
            if _built.get(hit[1]) is hit[2]:
                del _built[hit[1]]
                found = hit[2]
    if found is None:
        key = _key(vpn, trap_as_start)
        if key is not None:
            with _lock:
                found = _built.pop(key, None)
    if found is None:
        return conn_for(vpn, trap_as_start)
    if found[1] is not None:
        _keep_request(found[0], vpn.name, found[1])
    return found[0]


def _keep_request(payload: Mapping[str, Any], name: str, packet: bytes) -> None:
    global _sweep_at
    with _lock:
        _requests[id(payload)] = (payload, name, packet)  # (payload kept: its id stays its own)
        if len(_requests) > _sweep_at:
            # a payload only this holds was never sent (the reconciler took a newer one): gone
            for ident in [i for i, r in _requests.items() if sys.getrefcount(r[0]) <= _UNUSED]:
                del _requests[ident]
            _sweep_at = max(SWEEP_MIN, 2 * len(_requests))
        while len(_requests) > LIMIT:
            del _requests[next(iter(_requests))]


def request(name: str, payload: Mapping[str, Any]) -> bytes:
    """The ``load-conn`` request of connection ``name`` with ``payload``: the one encoded for
    the size check if ``payload`` came from :func:`take`, else encoded now and kept until
    :func:`sent` (the digest and the request sent share it). Raises ViciEncodingError when
    charon could not take it."""
    with _lock:
        hit = _requests.get(id(payload))
    if hit is not None and hit[0] is payload and hit[1] == name:
        return checked_size("load-conn", hit[2])
    packet = checked_size("load-conn", encoded_request(
        "load-conn", {name: payload if type(payload) is dict else dict(payload)}))
    _keep_request(payload, name, packet)
    return packet


def sent(payload: Mapping[str, Any]) -> None:
    """``payload``'s request was sent: no longer kept."""
    with _lock:
        hit = _requests.get(id(payload))
        if hit is not None and hit[0] is payload:
            del _requests[id(payload)]


def clear() -> None:
    """Forget every payload kept (the reconciler has taken what a commit changed)."""
    with _lock:
        _built.clear()
        _by_id.clear()
        _requests.clear()


def kept() -> int:
    """How many payloads are kept (for tests)."""
    return len(_built)


def requests_kept() -> int:
    """How many requests of taken payloads are kept (for tests)."""
    return len(_requests)
