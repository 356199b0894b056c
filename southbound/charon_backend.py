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

A connection's fingerprint is a digest of what ``list-conns`` reports for it, so a connection
replaced behind our back is noticed. charon never shows a secret back, so a shared secret is
only observed by its id: one deleted behind our back is noticed and loaded again, one replaced
under the same id is not (VICI cannot tell).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nf.effective import EffectiveConfig, Vpn
from southbound import charon_state, conn_cache, ra_session, sa_state, xfrm_interfaces
from southbound.backend import (
    BackendUnavailable,
    DataPlane,
    EntryRefused,
    Health,
    ReadBackFailed,
    ResourceKind,
    Unsupported,
    dataplane_refusals,
)
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
    MAX_MESSAGE,
    ViciClient,
    ViciConnectionError,
    ViciEncodingError,
    ViciError,
)

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
# authentication methods this backend can load what they need for (certificates and keys,
# authorities, EAP secrets, RADIUS servers: the remote-access kinds); eap-radius only for the
# peer (charon is a RADIUS client for the EAP of its peers, never for its own)
AUTH_METHODS = frozenset({"pre-shared-key", "certificate", "eap-mschapv2", "eap-md5",
                          "eap-radius"})
_EAP = frozenset({"eap-mschapv2", "eap-md5", "eap-radius"})
_CHILD_UP = {"INSTALLING", "INSTALLED", "UPDATING", "REKEYING", "REKEYED"}
_IKE_BUSY = {"CREATED", "CONNECTING", "DELETING", "DESTROYING"}


def _enabled(eff: EffectiveConfig, items: Mapping[str, Any]) -> Mapping[str, Any]:
    return items if eff.enabled else {}


KINDS = (
    ResourceKind(PSK, 10, select=lambda eff: _enabled(eff, eff.psks),
                 payload=lambda psk, _dp: shared_for(psk),
                 digest=lambda psk, _payload: shared_digest(psk), secret=True),
    ResourceKind(VPN, 50, select=lambda eff: _enabled(eff, eff.vpns),
                 payload=lambda vpn, dp: conn_cache.take(vpn, trap_as_start=not dp.can_trap),
                 digest=lambda _vpn, payload: conn_payload_digest(payload), parallel=True),
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
    # route-based VPNs: xfrm interfaces in the kernel (southbound/xfrm_interfaces.py), made
    # after the connections whose SAs carry their if_id (only a number to charon) and removed
    # before them: no packet routed into an interface meets a policy whose SA is gone (the
    # kernel's acquire would leave a larval SA behind)
    ResourceKind(xfrm_interfaces.KIND, 60, select=lambda eff: _enabled(eff, eff.svtis),
                 payload=lambda svti, _dp: xfrm_interfaces.payload(svti),
                 digest=lambda _svti, payload: xfrm_interfaces.digest(payload)),
)


@dataclass(frozen=True)
class EntryUnsupported:
    """A refused entry outside the VPNs (nf.checks takes its ready ``path``)."""

    message: str
    path: str
    vpn: str = ""
    leaf: tuple[str, ...] = ()


def _quoted(value: str) -> str:
    return f"'{value}'" if "'" not in value else f'"{value}"'


def refusals(dp: DataPlane, effective: EffectiveConfig
             ) -> list[Unsupported | EntryUnsupported]:
    """What the charon backend on data plane ``dp`` cannot carry out in ``effective``: the
    data plane's limits, authentication methods whose credentials it cannot load, and VPNs
    too big for one VICI message."""
    out: list[Unsupported | EntryUnsupported] = [*dataplane_refusals(dp, effective)]
    for vpn in effective.vpns.values():
        for side in ("local", "remote"):
            method = getattr(vpn.ike, f"{side}_auth_method")
            if method is not None and method not in AUTH_METHODS:
                out.append(Unsupported(vpn.name, ("ike-policy", f"{side}-auth-method"), (
                    f"{side}-auth-method {method} is not supported by the charon backend")))
        out.extend(_remote_access_refusals(vpn, effective))
        out.extend(_too_big(vpn, dp))
    out.extend(EntryUnsupported(  # (EAP secrets share charon's table under that prefix)
        f"a pre-shared key name may not begin with {EAP_PREFIX!r}: the charon backend keeps "
        "the EAP keys under it", f"/ipsec-nf:ike/ipsec-nf:pre-shared-key[ipsec-nf:name={q}]")
        for n, q in ((n, _quoted(n)) for n in effective.psks) if n.startswith(EAP_PREFIX))
    if not dp.xfrm_interfaces:
        out.extend(EntryUnsupported(
            f"svti {n}: the {dp.name} backend has no xfrm interfaces (its ESP runs in user "
            "space, outside the kernel's xfrm interfaces); use the kernel-netlink backend",
            f"/ipsec-nf:ike/ipsec-nf:svti[ipsec-nf:name={_quoted(n)}]")
            for n in effective.svtis)
    return out


def _remote_access_refusals(vpn: Vpn, effective: EffectiveConfig) -> list[Unsupported]:
    """Remote-access settings charon would ignore or could not use: refused, not dropped."""
    out = []
    local, remote = vpn.ike.local_auth_method, vpn.ike.remote_auth_method
    if local == "eap-radius":
        out.append(Unsupported(vpn.name, ("ike-policy", "local-auth-method"), (
            "local-auth-method eap-radius: charon forwards its peers' EAP to RADIUS, it does "
            "not authenticate itself through RADIUS; use eap-mschapv2 or eap-md5 with an "
            "eap-key")))
    if remote == "eap-radius" and not effective.global_options.eap_radius.servers:
        out.append(Unsupported(vpn.name, ("ike-policy", "remote-auth-method"), (
            "remote-auth-method eap-radius needs a RADIUS server in /ike/eap-radius/server")))
    if vpn.local_eap_id is not None and local not in _EAP:
        out.append(Unsupported(vpn.name, ("local-eap-id",), (
            f"local-eap-id is only used with an EAP local-auth-method, not {local}")))
    if vpn.remote_eap_id is not None and remote not in _EAP:
        out.append(Unsupported(vpn.name, ("remote-eap-id",), (
            f"remote-eap-id is only used with an EAP remote-auth-method, not {remote}")))
    if vpn.certificates and local != "certificate":
        out.append(Unsupported(vpn.name, ("certificate",), (
            f"a certificate is only used with local-auth-method certificate, not {local}")))
    if vpn.remote_ca_certificates and remote != "certificate":
        out.append(Unsupported(vpn.name, ("remote-ca-certificate",), (
            "remote-ca-certificate is only used with remote-auth-method certificate, not "
            f"{remote}")))
    return out


def _too_big(vpn: Vpn, dp: DataPlane) -> list[Unsupported]:
    """The VPN as charon would be given it does not fit one VICI message (charon drops the
    session on a request over 512 KiB, or VICI cannot encode a value over 65,535 bytes)."""
    try:
        size = conn_cache.size(vpn, not dp.can_trap)  # built once, kept for the reconciler
    except ViciEncodingError as e:
        return [Unsupported(vpn.name, (), f"the VPN cannot be given to charon: {e}")]
    if size <= MAX_MESSAGE:
        return []
    return [Unsupported(vpn.name, (), (
        f"the VPN is {size} bytes as charon's load-conn message, over VICI's limit of "
        f"{MAX_MESSAGE}: use fewer security policies, proposals or traffic selectors"))]


def conn_payload_digest(payload: Mapping[str, Any]) -> str:
    """Stable digest of a load-conn payload (equal payloads, equal digests)."""
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


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
                self.client.load_shared(name, payload)
            else:
                self.client.load_conn(name, payload)
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
                self.client.unload_shared(name)
            else:
                try:
                    self.client.unload_conn(name)
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
                    self.client.unload_conn(name)
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
        """After a changed load-conn: re-negotiate so the new parameters take effect."""
        children = [c for c, v in conn["children"].items()
                    if v.get("mode") in ("tunnel", "transport")
                    and v.get("start_action") in ("start", "trap")]
        if not children:
            return
        had_sa = bool(self.client.list_sas(ike=name))
        starts = [c for c in children if conn["children"][c].get("start_action") == "start"]
        if not had_sa and not starts:
            return
        self._terminate(name)
        for child in starts or children[:1]:
            try:
                self.client.initiate(child=child, ike=name, timeout_ms=-1)
            except ViciError as exc:
                log.warning("initiate %s/%s: %s", name, child, exc.errmsg)

    def _terminate(self, name: str) -> None:
        if not self.client.list_sas(ike=name):
            return
        try:
            self.client.terminate(name, timeout_ms=2000, force=True)
        except ViciError as exc:
            log.info("terminate %s: %s", name, exc.errmsg)


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
        wanted = {(conn, child) for conn, payload in desired.get(VPN, {}).items()
                  for child, c in payload.get("children", {}).items()
                  if c.get("start_action") == "start"
                  and c.get("mode") in ("tunnel", "transport")}
        if not wanted:
            self._missing.clear()
            return []
        client: ViciClient = session.client
        up: set[tuple[str, str]] = set()
        busy: set[str] = set()
        try:
            for entry in client.list_sas():
                for ike, sa in entry.items():
                    name = vici_str(ike)
                    if vici_str(sa.get("state", b"")) in _IKE_BUSY:
                        busy.add(name)
                    for child in (sa.get("child-sas") or {}).values():
                        if vici_str(child.get("state", b"")) in _CHILD_UP:
                            up.add((name, vici_str(child.get("name", b""))))
        except ViciError as exc:
            raise ReadBackFailed(f"list-sas: {exc.errmsg}") from None
        except ViciConnectionError as exc:
            raise BackendUnavailable(str(exc)) from exc
        now = time.monotonic()
        done = []
        for key in sorted(wanted - up):
            since = self._missing.setdefault(key, now)
            if now - since < self.reinitiate_after or key[0] in busy:
                continue
            try:
                client.initiate(child=key[1], ike=key[0], timeout_ms=-1)
                done.append(f"initiated {key[0]}/{key[1]} (no CHILD SA for {now - since:.0f}s)")
            except ViciError as exc:
                done.append(f"initiate {key[0]}/{key[1]} failed: {exc.errmsg}")
            except ViciConnectionError as exc:
                raise BackendUnavailable(str(exc)) from exc
            self._missing[key] = now
        for key in list(self._missing):
            if key not in wanted or key in up:
                del self._missing[key]
        return done

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
