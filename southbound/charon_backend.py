"""The charon backend: strongSwan's IKE daemon driven over VICI.

Resource kinds (see :class:`southbound.backend.ResourceKind`):

============== ==== ============================ ============================ =================
kind           rank payload (VICI)               loaded / unloaded with       read back with
============== ==== ============================ ============================ =================
pre-shared-key 10   ``load-shared`` (secret)     load-shared / unload-shared  get-shared (ids)
vpn            50   ``load-conn`` (conn + child) load-conn / unload-conn      list-conns
============== ==== ============================ ============================ =================

and the remote-access kinds (certificate-authority 12, certificate 14, eap-key 16, pool 30:
:mod:`southbound.ra_session`), and svti 60: the kernel's xfrm interfaces of route-based VPNs,
made over rtnetlink rather than VICI (:mod:`southbound.xfrm_interfaces`).

What this backend refuses in a config is in :mod:`southbound.charon_refusals`; reading the
state back in :mod:`southbound.charon_state`; re-initiating tunnels that should be up in
:mod:`southbound.charon_upkeep`.

A connection's fingerprint is a digest of what ``list-conns`` reports for it, so one replaced
behind our back is noticed. A shared secret is only observed by its id (charon never shows a
secret): one deleted behind our back is noticed and loaded again, one replaced is not.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from nf.effective import EffectiveConfig
from southbound import (
    charon_state,
    charon_upkeep,
    conn_cache,
    ra_session,
    sa_state,
    vici_stream,
    xfrm_interfaces,
)
from southbound.backend import (
    BackendUnavailable,
    DataPlane,
    EntryRefused,
    Health,
    ReadBackFailed,
    ResourceKind,
)
from southbound.charon_refusals import AUTH_METHODS, EntryUnsupported, refusals
from southbound.convert import shared_digest, shared_for, vici_str
from southbound.remote_access import (
    EAP_PREFIX,
    authority_payload,
    certificate_digest,
    certificate_payload,
    eap_digest,
    eap_shared,
    pool_payload,
)
from southbound.vici_client import (
    ViciClient,
    ViciConnectionError,
    ViciEncodingError,
    ViciError,
    encode_request,
)

__all__ = ["AUTH_METHODS", "DATAPLANES", "KINDS", "PSK", "VPN", "CharonBackend",
           "CharonSession", "EntryUnsupported", "refusals"]  # (the refusals: charon_refusals)
log = logging.getLogger(__name__)

PSK = "pre-shared-key"
VPN = "vpn"
# what each data plane can do, found by trying with charon 5.9.8 (the messages are charon's,
# tests/integration/southbound/test_dataplane_limits.py)
DATAPLANES = {
    "kernel-libipsec": DataPlane("kernel-libipsec", can_trap=False, esn=False, ah=False,
                                 transport=False, xfrm_interfaces=False),
    "kernel-netlink": DataPlane("kernel-netlink", can_trap=True),
}


def _enabled(eff: EffectiveConfig, items: Mapping[str, Any]) -> Mapping[str, Any]:
    return items if eff.enabled else {}


def _upkeep(conn: Mapping[str, Any]) -> Mapping[str, Any]:
    """What :meth:`CharonBackend.maintain` reads of a ``load-conn`` payload."""
    return {"children": {name: {k: child[k] for k in ("start_action", "mode") if k in child}
                         for name, child in conn.get("children", {}).items()}}


KINDS = (
    ResourceKind(PSK, 10, select=lambda eff: _enabled(eff, eff.psks),
                 payload=lambda psk, _dp: shared_for(psk),
                 digest=lambda psk, _payload: shared_digest(psk), secret=True),
    ResourceKind(VPN, 50, select=lambda eff: _enabled(eff, eff.vpns),
                 payload=lambda vpn, dp: conn_cache.take(vpn, trap_as_start=not dp.can_trap),
                 digest=lambda vpn, payload: request_digest(vpn.name, payload), parallel=True,
                 upkeep=_upkeep),
    # remote access (southbound/ra_session.py)
    ResourceKind(ra_session.AUTHORITY, 12, select=lambda eff: _enabled(eff, eff.authorities),
                 payload=lambda ca, _dp: authority_payload(ca),
                 digest=lambda _ca, payload: conn_payload_digest(payload)),
    ResourceKind(ra_session.CERTIFICATE, 14,
                 select=lambda eff: _enabled(eff, eff.certificates),
                 payload=lambda cert, _dp: certificate_payload(cert),
                 digest=lambda cert, _payload: certificate_digest(cert), secret=True),
    ResourceKind(ra_session.EAP_KEY, 16, select=lambda eff: _enabled(eff, eff.eap_keys),
                 payload=lambda key, _dp: eap_shared(key),
                 digest=lambda key, _payload: eap_digest(key), secret=True),
    ResourceKind(ra_session.POOL, 30, select=lambda eff: _enabled(eff, eff.pools),
                 payload=lambda pool, _dp: {"pools": pool_payload(pool)},
                 digest=lambda _pool, payload: conn_payload_digest(payload)),
    # route-based VPNs' xfrm interfaces (southbound/xfrm_interfaces.py), after the connections
    # whose SAs carry their if_id and removed before them: no packet routed into one meets a
    # policy whose SA is gone (the kernel's acquire would leave a larval SA)
    ResourceKind(xfrm_interfaces.KIND, 60, select=lambda eff: _enabled(eff, eff.svtis),
                 payload=lambda svti, _dp: xfrm_interfaces.payload(svti),
                 digest=lambda _svti, payload: xfrm_interfaces.digest(payload)),
)


def request_digest(name: str, payload: Mapping[str, Any]) -> str:
    """Digest of a VPN's load-conn request: of the bytes sent (``conn_cache.request``), or of
    the payload when charon could not take it (such a VPN is refused before its commit)."""
    try:
        return hashlib.sha256(conn_cache.request(name, payload)).hexdigest()
    except ViciEncodingError:
        return conn_payload_digest(payload)


def conn_payload_digest(payload: Mapping[str, Any]) -> str:
    """Stable digest of a load-conn payload (equal payloads, equal digests)."""
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _request(client: ViciClient, command: str, message: Mapping[str, Any]) -> None:
    """``load-conn``/``load-shared``/``unload-conn``/``unload-shared`` as ViciClient's methods
    send them (same bytes, refusals and errors), encoded by :mod:`southbound.vici_encode`."""
    _send(client, command, encode_request(command, message))  # ViciEncodingError


def _send(client: ViciClient, command: str, packet: bytes) -> None:
    """Send an encoded request (``vici_client.encode_request``'s bytes); check the answer."""
    client._call(command, lambda: vici_stream.checked(
        vici_stream.exchange(client._session, client._sock, command, packet)))


def fingerprint(entry: Any) -> str:
    """A stable digest of one ``list-conns`` entry as charon reports it."""
    return hashlib.sha256(repr(entry).encode()).hexdigest()


class CharonSession:
    """One VICI session implementing :class:`southbound.backend.BackendSession`."""

    def __init__(self, client: ViciClient, keys: ra_session.KeyIds | None = None) -> None:
        self.client = client
        self.keys = keys if keys is not None else ra_session.KeyIds()

    def __repr__(self) -> str:
        return f"CharonSession({self.client!r})"

    def close(self) -> None:
        """End the session."""
        self.client.close()

    def load(self, kind: str, name: str, payload: Mapping[str, Any], replaced: bool) -> None:
        """load-shared or load-conn; a replaced connection with SAs is re-negotiated."""
        try:
            if kind == xfrm_interfaces.KIND:  # the kernel's, not charon's
                xfrm_interfaces.load(name, payload)
            elif kind in ra_session.KINDS:
                ra_session.load(self.client, self.keys, kind, name, payload)
            elif kind == PSK:
                _request(self.client, "load-shared", {"id": name, **payload})
            else:
                _send(self.client, "load-conn", conn_cache.request(name, payload))
                conn_cache.sent(payload)
                if replaced:
                    try:
                        self._restart_sas(name, payload)
                    except ViciError as exc:  # loaded all the same: not the entry's failure
                        log.warning("re-negotiating %s after its change: %s", name, exc.errmsg)
        except ViciEncodingError as exc:
            raise EntryRefused(str(exc)) from None
        except ViciError as exc:
            raise EntryRefused(exc.errmsg) from None
        except ViciConnectionError as exc:
            raise BackendUnavailable(str(exc)) from exc

    def unload(self, kind: str, name: str) -> None:
        """unload-shared, or unload-conn and terminate its SAs."""
        try:
            if kind == xfrm_interfaces.KIND:
                xfrm_interfaces.unload(name)
            elif kind in ra_session.KINDS:
                ra_session.unload(self.client, self.keys, kind, name)
            elif kind == PSK:
                _request(self.client, "unload-shared", {"id": name})
            else:
                try:
                    _request(self.client, "unload-conn", {"name": name})
                except ViciError as exc:
                    if "not found" not in exc.errmsg:  # already gone is what we want
                        raise
                self._terminate(name)
                self._uninstall_traps(name)
        except ViciError as exc:
            raise EntryRefused(exc.errmsg) from None
        except ViciConnectionError as exc:
            raise BackendUnavailable(str(exc)) from exc

    def unload_bulk(self, kind: str, names: list[str]) -> dict[str, str | None]:
        """Unload many entries of ``kind`` as :meth:`unload` would each: name -> None when
        done, or charon's refusal. For connections, all the ``unload-conn`` first, then one
        ``list-sas`` and one ``list-policies`` for the whole lot (terminating and uninstalling
        what is left of them), instead of both per connection: 10,000 removals took 40-80 s
        that way. Once its connection is unloaded no new SA of it can come up, so one look
        after all the unloads sees every SA left. Raises :class:`BackendUnavailable`."""
        if kind != VPN:
            out: dict[str, str | None] = {}
            for name in names:
                try:
                    self.unload(kind, name)
                    out[name] = None
                except EntryRefused as exc:
                    out[name] = exc.message
            return out
        try:
            out = {}
            for name in names:
                try:
                    _request(self.client, "unload-conn", {"name": name})
                    out[name] = None
                except ViciError as exc:  # already gone is what we want
                    out[name] = None if "not found" in exc.errmsg else exc.errmsg
            gone = {name for name, refused in out.items() if refused is None}
            with_sas = {vici_str(ike) for entry in self.client.list_sas()
                        for ike in entry} & gone
            for name in sorted(with_sas):
                try:
                    self.client.terminate(name, timeout_ms=2000, force=True)
                except ViciError as exc:
                    log.info("terminate %s: %s", name, exc.errmsg)
            for ike, child in self.client.trap_policies():
                if ike in gone:
                    try:
                        self.client.uninstall(ike, child)
                    except ViciError as exc:
                        log.info("uninstall %s/%s: %s", ike, child, exc.errmsg)
            return out
        except ViciError as exc:  # list-sas or list-policies refused: each on its own then
            log.warning("bulk unload: %s; unloading one by one", exc.errmsg)
            out = {}
            for name in names:
                try:
                    self.unload(kind, name)
                    out[name] = None
                except EntryRefused as exc2:
                    out[name] = exc2.message
            return out
        except ViciConnectionError as exc:
            raise BackendUnavailable(str(exc)) from exc

    def _uninstall_traps(self, name: str) -> None:
        """unload-conn removes the trap policies of a `trap` start action only: those a
        close or DPD action `trap` installed (the peer closed the CHILD SA) would stay in the
        kernel's SPD for ever (tests/kernel, kernel-netlink). Remove every trap of ``name``."""
        for ike, child in self.client.trap_policies():
            if ike == name:
                try:
                    self.client.uninstall(ike, child)
                except ViciError as exc:
                    log.info("uninstall %s/%s: %s", ike, child, exc.errmsg)

    def observe(self, kind: str, deep: bool) -> dict[str, str | None]:
        """Names charon holds; with ``deep``, connections with a fingerprint of their content
        (``list-conns``: about 0.2 ms a connection, against 2 µs for names only)."""
        try:
            if kind == xfrm_interfaces.KIND:
                return xfrm_interfaces.observe(deep)
            if kind in ra_session.KINDS:
                return ra_session.observe(self.client, self.keys, kind)
            if kind == PSK:  # (EAP secrets are in the same table, under their prefix)
                return dict.fromkeys(n for n in self.client.get_shared()
                                     if not n.startswith(EAP_PREFIX))
            if not deep:
                return dict.fromkeys(self.client.get_conns())
            out: dict[str, str | None] = {}
            for entry in self.client.list_conns():
                for name, conn in entry.items():
                    out[vici_str(name)] = fingerprint(conn)
            return out
        except ViciError as exc:
            raise ReadBackFailed(f"cannot read back {kind}: {exc.errmsg}") from None
        except ViciConnectionError as exc:
            raise BackendUnavailable(str(exc)) from exc

    def _restart_sas(self, name: str, conn: Mapping[str, Any]) -> None:
        """After a changed load-conn: re-negotiate so the new parameters take effect.

        charon 5.9's load-conn does it itself for children with start action ``start``: it
        closes their SAs and initiates them again ("closing IKE_SA", "initiating"). Doing it
        a second time here raced with charon's own: our terminate destroyed its IKE SA while
        its IKE_AUTH was on the wire ("destroying IKE_SA in state CONNECTING without
        notification"), and the peer kept that SA, whose policy then sent its traffic into
        an SA this side never had (tests/kernel, test_aes_gcm). For ``trap`` children charon
        only installs the trap again and the SA it brought up keeps the old parameters:
        those are re-negotiated here."""
        actions = {c: v.get("start_action") for c, v in conn["children"].items()
                   if v.get("mode") in ("tunnel", "transport")}
        traps = [c for c, action in actions.items() if action == "trap"]
        if "start" in actions.values() or not traps or not self._terminate(name):
            return
        try:
            self.client.initiate(child=traps[0], ike=name, timeout_ms=-1)
        except ViciError as exc:
            log.warning("initiate %s/%s: %s", name, traps[0], exc.errmsg)

    def _terminate(self, name: str) -> bool:
        """Terminate the SAs of connection ``name``; whether it had any."""
        if not self.client.list_sas(ike=name):
            return False
        try:
            self.client.terminate(name, timeout_ms=2000, force=True)
        except ViciError as exc:
            log.info("terminate %s: %s", name, exc.errmsg)
        return True


class CharonBackend:
    """charon over VICI, implementing :class:`southbound.backend.Backend`.

    ``process_health`` tells how the charon process is doing (started, could not bind its
    sockets...); ``reinitiate_after`` is how long a tunnel that should be up (start action
    ``start``) may miss its CHILD SA before :meth:`maintain` initiates it again.
    """

    name = "charon"
    kinds = KINDS

    def __init__(self, socket_path: str | Path, dataplane: DataPlane,
                 process_health: Callable[[], Health] | None = None,
                 vici_timeout: float = 30.0, reinitiate_after: float = 30.0) -> None:
        self.socket_path = str(socket_path)
        self.dataplane = dataplane
        self.process_health = process_health
        self.vici_timeout = vici_timeout
        self.reinitiate_after = reinitiate_after
        self._missing: dict[tuple[str, str], float] = {}  # (conn, child) -> missing since
        self._keys = ra_session.KeyIds()  # certificate -> its key's id, for every session
        self._ike_sas = sa_state.IkeSaConverter()  # converts only the SAs that changed

    def __repr__(self) -> str:
        return f"CharonBackend({self.socket_path!r}, {self.dataplane.name})"

    def open(self) -> CharonSession:
        """A new VICI session."""
        try:
            return CharonSession(ViciClient(self.socket_path, self.vici_timeout), self._keys)
        except ViciConnectionError as exc:
            raise BackendUnavailable(str(exc)) from exc

    def health(self) -> Health:
        """The charon process's health (up when nothing is known against it)."""
        if self.process_health is None:
            return Health("up")
        return self.process_health()

    def maintain(self, session: Any,
                 desired: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[str]:
        """Initiate CHILD SAs that should be up (start action ``start``) and have been missing
        for ``reinitiate_after`` seconds while no IKE SA of their connection is being set up.

        This also covers an initiator that started before its peer was ready: charon gives up
        after its keying tries and never retries by itself."""
        return charon_upkeep.reinitiate(session.client, desired.get(VPN, {}), self._missing,
                                        self.reinitiate_after)

    def read_state(self, timeout: float) -> dict[str, Any]:
        """The daemon's state in the YANG shapes (``ike-sas``, ``task-processing``,
        ``counters``, ``vpn-counters``, ``ike-sa``, ``pool``) from a separate session, within
        ``timeout``: four VICI requests whatever the number of SAs
        (:func:`southbound.charon_state.read_all`)."""
        return charon_state.read_all(self.socket_path, timeout, self._ike_sas,
                                     bool(self._keys.pools))

    def read_sas(self, unique_ids: Collection[int], vpns: Collection[str],
                 timeout: float) -> dict[str, Any]:
        """The IKE SAs ``unique_ids`` (those charon still has), the ``vpns``' counters and
        the small tables, within ``timeout``: the targeted read after SA events
        (:func:`southbound.charon_state.read_some`)."""
        return charon_state.read_some(self.socket_path, timeout, self._ike_sas,
                                      bool(self._keys.pools), unique_ids, vpns)
