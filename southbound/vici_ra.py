"""The VICI commands of remote access (credentials and pools) on a :class:`ViciClient`:
load-cert, flush-certs, load-key/unload-key/get-keys,
load-authority/unload-authority/get-authorities, load-pool/unload-pool/get-pools. Errors are
the client's (:class:`ViciError`, :class:`ViciConnectionError`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from southbound.vici_client import ViciClient, _s


def _request(client: ViciClient, command: str, message: Mapping[str, Any] | None = None
             ) -> dict:
    return client._call(command, client._session.request, command, message)


def load_cert(client: ViciClient, cert: Mapping[str, Any]) -> None:
    """``load-cert`` (type x509 or x509crl, PEM or DER data)."""
    _request(client, "load-cert", dict(cert))


def flush_certs(client: ViciClient, cert_type: str) -> None:
    """``flush-certs`` of one type: charon's cache of verified certificates forgets them
    (e.g. ``x509crl``: the CRLs it checked a peer against)."""
    _request(client, "flush-certs", {"type": cert_type})


def load_key(client: ViciClient, key: Mapping[str, Any]) -> str:
    """``load-key``; charon's id of the key (hex SHA-1 of its public key)."""
    return _s(_request(client, "load-key", dict(key)).get("id", b""))


def unload_key(client: ViciClient, key_id: str) -> None:
    """``unload-key`` by id."""
    _request(client, "unload-key", {"id": key_id})


def get_keys(client: ViciClient) -> set[str]:
    """Ids of the private keys loaded over VICI."""
    return {_s(k) for k in _request(client, "get-keys").get("keys", [])}


def load_authority(client: ViciClient, name: str, authority: Mapping[str, Any]) -> None:
    """``load-authority`` (replaces one of the same name)."""
    _request(client, "load-authority", {name: dict(authority)})


def unload_authority(client: ViciClient, name: str) -> None:
    """``unload-authority``."""
    _request(client, "unload-authority", {"name": name})


def get_authorities(client: ViciClient) -> set[str]:
    """Names of the authorities loaded over VICI."""
    return {_s(n) for n in _request(client, "get-authorities").get("authorities", [])}


def load_pool(client: ViciClient, name: str, pool: Mapping[str, Any]) -> None:
    """``load-pool`` (a pool of the same name and range is updated in place)."""
    _request(client, "load-pool", {name: dict(pool)})


def unload_pool(client: ViciClient, name: str) -> None:
    """``unload-pool`` (charon refuses while leases are online)."""
    _request(client, "unload-pool", {"name": name})


def get_pools(client: ViciClient, leases: bool = False) -> dict[str, dict]:
    """``get-pools``: charon pool name -> base, size, online, offline (and ``leases``)."""
    reply = _request(client, "get-pools", {"leases": "yes"} if leases else None)
    return {_s(name): value for name, value in reply.items() if isinstance(value, Mapping)}
