"""Loading, unloading and reading back the remote-access kinds in one VICI session (the cases
of :class:`southbound.charon_backend.CharonSession` for them).

============================= ==== ========================================== ================
kind                          rank loaded / unloaded with                     read back with
============================= ==== ========================================== ================
certificate-authority         12   load-authority (+ load-cert x509crl,       get-authorities
                                   flush-certs x509crl) / unload-authority
certificate                   14   load-cert + load-key / unload-key          get-keys
eap-key                       16   load-shared type EAP (``eap-key/NAME``) /  get-shared
                                   unload-shared
pool                          30   load-pool per address / unload-pool        get-pools
============================= ==== ========================================== ================

charon 5.9.8 has no unload-cert: a removed certificate's key is unloaded (it can no longer be
used to authenticate), its certificate stays in charon's memory until charon restarts; the
same holds for a removed CRL. A certificate is read back by its key's id (``KeyIds``: what
was loaded in this process; after a restart of the server everything is loaded again).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from southbound import vici_ra
from southbound.remote_access import EAP_PREFIX, pool_of
from southbound.vici_client import ViciClient, ViciError

AUTHORITY = "certificate-authority"
CERTIFICATE = "certificate"
EAP_KEY = "eap-key"
POOL = "pool"
KINDS = frozenset({AUTHORITY, CERTIFICATE, EAP_KEY, POOL})


class KeyIds(dict[str, str]):
    """certificate name -> charon's id of its key, as loaded by this process (shared by the
    backend's sessions); ``pools``: the pools loaded (the state read asks charon for pool
    usage only when there are some)."""

    def __init__(self) -> None:
        super().__init__()
        self.pools: set[str] = set()


def load(client: ViciClient, keys: KeyIds, kind: str, name: str,
         payload: Mapping[str, Any]) -> None:
    """Load (or replace) one entry. Raises ViciError / ViciConnectionError."""
    if kind == AUTHORITY:
        vici_ra.load_authority(client, name, payload["authority"])
        if "crl" in payload:
            vici_ra.load_cert(client, payload["crl"])
            # charon checks a peer against the first CRL of its issuer that is not stale,
            # and its cache of verified credentials (searched first) keeps the CRL it used
            # last: without the flush a newer CRL is ignored until the old one's nextUpdate
            vici_ra.flush_certs(client, "x509crl")
    elif kind == CERTIFICATE:
        old = keys.get(name)
        vici_ra.load_cert(client, payload["cert"])
        keys[name] = vici_ra.load_key(client, {"type": "any", "data": payload["key"]}) \
            or payload["key-id"]
        if old and old != keys[name] and old not in keys.values():
            _unload_key(client, old)
    elif kind == EAP_KEY:
        client.load_shared(EAP_PREFIX + name, payload)
    elif kind == POOL:
        for cname, pool in payload["pools"].items():
            vici_ra.load_pool(client, cname, pool)
        for cname in vici_ra.get_pools(client):
            if pool_of(cname) == name and cname not in payload["pools"]:
                vici_ra.unload_pool(client, cname)  # an address removed from the pool
        keys.pools.add(name)
    else:
        raise ValueError(f"unknown kind {kind!r}")


def _unload_key(client: ViciClient, key_id: str) -> None:
    try:
        vici_ra.unload_key(client, key_id)
    except ViciError as exc:
        if "not found" not in exc.errmsg:
            raise


def unload(client: ViciClient, keys: KeyIds, kind: str, name: str) -> None:
    """Remove one entry (already gone is what we want)."""
    try:
        if kind == AUTHORITY:
            vici_ra.unload_authority(client, name)
        elif kind == CERTIFICATE:
            key = keys.pop(name, None)
            if key and key not in keys.values():
                _unload_key(client, key)
        elif kind == EAP_KEY:
            client.unload_shared(EAP_PREFIX + name)
        elif kind == POOL:
            for cname in vici_ra.get_pools(client):
                if pool_of(cname) == name:
                    vici_ra.unload_pool(client, cname)
            keys.pools.discard(name)
    except ViciError as exc:
        if "not found" not in exc.errmsg:
            raise


def observe(client: ViciClient, keys: KeyIds, kind: str) -> dict[str, str | None]:
    """What charon holds of ``kind`` (names; no fingerprint: charon shows no content)."""
    if kind == AUTHORITY:
        return dict.fromkeys(vici_ra.get_authorities(client))
    if kind == CERTIFICATE:
        loaded = vici_ra.get_keys(client)
        return {n: None for n, k in keys.items() if k in loaded}
    if kind == EAP_KEY:
        return {n[len(EAP_PREFIX):]: None for n in client.get_shared()
                if n.startswith(EAP_PREFIX)}
    if kind == POOL:
        return dict.fromkeys(pool_of(c) for c in vici_ra.get_pools(client))
    raise ValueError(f"unknown kind {kind!r}")


def pool_usage(pools: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The ``pool`` state entries (``usage``) from ``get-pools leases=yes``: the charon pools
    of one model pool added up."""
    out: dict[str, dict[str, Any]] = {}
    for cname, p in sorted(pools.items()):
        usage = out.setdefault(pool_of(cname), {"size": 0, "online": 0, "offline": 0,
                                                 "lease": []})
        for key in ("size", "online", "offline"):
            try:
                usage[key] += int(p.get(key, b"0"))
            except ValueError:
                pass
        for lease in (p.get("leases") or {}).values():
            entry = {k: _text(lease.get(k)) for k in ("address", "identity", "status")
                     if lease.get(k) is not None}
            if "address" in entry:
                usage["lease"].append(entry)
    return [{"name": n, "usage": {k: v for k, v in u.items() if v != []}}
            for n, u in out.items()]


def _text(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
