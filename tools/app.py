"""Composition root of `ipsec-nf serve`: the only module that wires every layer together."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nf import heap
from nf.ca_store import CaStore
from nf.confirmed import ConfirmedCommits
from nf.datastore import Datastores
from nf.effective import EffectiveConfig, GlobalOptions
from nf.errors import RpcError
from nf.history import History
from nf.memory import trim_after_changes
from nf.nacm import Access, Policy, parse_policy
from nf.observed import READ_MAX_AGE, READ_MAX_STALE
from nf.persist import secure_state_dir
from nf.schema import Schema
from nf.templates import forget, global_options, resolve, update
from nf.validate import is_bulk
from northbound import notifications, ops
from northbound.context import ServerContext
from northbound.frontdoor import Limits
from northbound.gnmi.auth import Authenticator
from northbound.gnmi.context import GnmiContext
from northbound.gnmi.server import GnmiListen, GnmiServer
from northbound.monitoring import now_iso
from northbound.registry import SessionRegistry
from northbound.rpc import Dispatcher
from northbound.ssh import start_server
from northbound.subscriptions import Subscriptions
from southbound import conn_cache, svti_state
from southbound.backend import Health
from southbound.charon import CharonProcess
from southbound.charon_backend import DATAPLANES, PSK, VPN, CharonBackend, refusals
from southbound.charon_supervisor import CharonSupervisor
from southbound.events import SaEventListener
from southbound.kernel_state import KernelStateReader
from southbound.peer_refusals import RefusedPeer, RefusedPeerLog, RefusedPeers
from southbound.reconciler import Reconciler
from southbound.sa_actions import CharonActions
from southbound.state_engine import StateEngine
from southbound.status import EntryStatus
from tools.backends import backend_checks
from tools.ca_refs import CaReferences, after_ca_change, own_ca_checks
from tools.ca_wiring import CrlFeed, keep_crl_fresh
from tools.charon_options import CharonOptions, options_done
from tools.ikeless_wiring import IkelessPart
from tools.notification_wiring import wire_notifications
from tools.state_tree import StateTree

log = logging.getLogger("ipsec-nf")


class App:
    """One gateway instance: datastores, NETCONF server, charon and the reconciler."""

    def __init__(self, state_dir: Path, backend: str = "kernel-libipsec",
                 sync_interval: float = 30.0, limits: dict[str, Any] | None = None,
                 state_interval: float = 5.0) -> None:
        self.state_dir = state_dir
        self.limits = Limits(**(limits or {}))  # the front door's (docs/security.md)
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        secure_state_dir(state_dir)  # secrets private to the server, or refuse to start
        self.schema = Schema()
        self.ds = Datastores(self.schema, state_dir)
        self.registry = SessionRegistry()
        self.confirmed = ConfirmedCommits(self.ds)
        self.registry.on_close(lambda s: self.confirmed.session_ended(s.session_id))
        self.registry.on_close(lambda s: self.ds.release_session(s.session_id))
        ike = self.ds.config.get("ike", {})
        options = global_options(ike.get("global-options"), ike.get("logging"),
                                 ike.get("eap-radius"))
        self.charon = CharonProcess(state_dir / "charon", backend, options)
        # kernel-libipsec never raises an acquire for a trap policy: the backend's data plane
        # says so (DataPlane.can_trap) and trap is negotiated at once there.
        self.backend = CharonBackend(self.charon.socket_path, DATAPLANES[backend],
                                     process_health=self._charon_health,
                                     reinitiate_after=sync_interval)
        # what this backend cannot carry out is refused at validate/commit (nf.checks); the
        # same list as `ipsec-nf check --backend` builds (tools.backends)
        self.ds.checks.extend(backend_checks(self.backend.dataplane))
        self._warn_unsupported()
        self.reconciler = Reconciler(self.backend, sync_interval=sync_interval)
        self.reconciler.status.observe(self._apply_status_changed)
        # RFC 9061's IKE-less case on kernel ESP: the kernel's SAD/SPD over netlink XFRM, a
        # second backend and reconciler beside charon's (tools/ikeless_wiring.py)
        self.ikeless = IkelessPart(sync_interval, lambda body: self.notifications.publish(body),
                                   lambda: self.effective) if backend == "kernel-netlink" else None
        if self.ikeless is not None:
            self.ikeless.reconciler.status.observe(self._apply_status_changed)
        # the gateway's CA (ipsec-nf ca, the ca-* RPCs; tools/ca_wiring.py): its CRL goes
        # into the effective config of the authority entries that are this CA, and a new
        # one (a revocation) to charon at once
        self.ca = CaStore(state_dir)
        self.crl_feed = CrlFeed(self.ca)
        # /ike/certificate ca-issued and /ike/certificate-authority own-ca: filled in from
        # the CA's store in the effective config only (tools/ca_refs.py)
        self.ca_refs = CaReferences(self.ca)
        self.ds.checks.append(own_ca_checks(self.ca_refs, self.crl_feed))
        self.ca.on_crl(self._crl_changed)
        self.ca.on_issue(self._crl_changed)
        self.refused_peers = RefusedPeers()  # from charon's log (/ike/refused-peer)
        self._loop: asyncio.AbstractEventLoop | None = None
        # one state engine for every front (NETCONF get/get-data, gNMI, YANG-Push): a cache
        # of the daemon's state fed by SA events and apply-status changes, sampled every
        # state_interval seconds (southbound/state_engine.py)
        # the kernel's view (/ike/kernel): xfrm_stat on every backend, the kernel's SPD/SAD
        # where it is the data plane (kernel-netlink)
        self.kernel_state = KernelStateReader(tables=backend == "kernel-netlink")
        self.state = StateEngine(self.reconciler.read_state,
                                 StateTree(self.reconciler, self.refused_peers,
                                           lambda: self.ds.config, lambda: self.effective),
                                 read_sas=self.reconciler.read_sas if
                                 self.reconciler.state.targeted else None,
                                 interval=state_interval, extra=[
                                     self.kernel_state.read,
                                     lambda: svti_state.read(self.effective.svtis),
                                     *([self.ikeless.read_state] if self.ikeless else [])])
        self.reconciler.status.watch(lambda _entry: self.state.invalidate())
        self.supervisor = CharonSupervisor(self.charon, on_restart=self.reconciler.resync)
        self.ds.on_commit.append(self._committed)
        self.history = History(state_dir)
        self.ds.on_change.append(self._record_commit)
        self.stats: dict[str, Any] = {
            "netconf-start-time": now_iso(), "in-bad-hellos": 0, "in-sessions": 0,
            "dropped-sessions": 0, "in-rpcs": 0, "in-bad-rpcs": 0,
            "out-rpc-errors": 0, "out-notifications": 0}
        self.notifications = notifications.Notifications()
        wire_notifications(self.notifications, self.registry, self.ds, self.confirmed,
                           self.stats, self.access, self.schema.top)
        self.charon_options = CharonOptions(self.charon, self.notifications.publish)
        self._wire_subscriptions()
        self.capabilities = ops.capabilities(self.schema)
        # what RPC handlers may use (northbound/context.py), and nothing more
        self.context = ServerContext(
            schema=self.schema, ds=self.ds, confirmed=self.confirmed, history=self.history,
            registry=self.registry, notifications=self.notifications,
            capabilities=self.capabilities, stats=self.stats, access=self.access,
            read_state=self.read_state, state=self.state, kill=self.kill,
            wait_applied=self.wait_applied,
            actions=CharonActions(self.charon.socket_path, lambda: self.effective,
                                  self._configured_vpn, self._vpn_status),
            subscriptions=self.subscriptions, ca=self.ca)
        self.dispatcher = Dispatcher(self.context, ops.TABLE)
        self._tasks: list[asyncio.Task[Any]] = []
        self._options_task: asyncio.Task[Any] | None = None  # the last global options' work
        self.listening: list[tuple[str, int]] = []  # NETCONF addresses bound, once run
        self._policy: tuple[int, Policy] | None = None
        self.effective: EffectiveConfig = self._resolve(self.ds.config)

    def _resolve(self, config: dict[str, Any]) -> EffectiveConfig:
        """The effective config of ``config``, with the references to the gateway's CA
        filled in from its store and the CA's latest CRL."""
        return self.crl_feed.overlay(self.ca_refs.resolve(resolve(config)).effective)[0]

    def _committed(self, config: dict[str, Any], touched: set | None) -> None:
        """Running changed: re-resolve only what changed and hand it to the reconciler."""
        self.state.invalidate()  # each VPN's effective parameters are state too
        if touched is None or not all(is_bulk(k) for k in touched):
            self.effective = self._resolve(config)
            self._apply_global_options(self.effective.global_options)
            self.reconciler.set_desired(self.effective)
            conn_cache.clear()  # the payloads the checks built are taken (southbound/conn_cache.py)
            forget()  # the VPNs resolved for this change (nf/templates.py)
            if self.ikeless is not None:
                self.ikeless.set_desired(self.effective)
            return
        # (the local name of a Clark-notation tag without etree.QName: one per changed entry)
        vpns = {k[2][0] for k in touched if k[1].rpartition("}")[2] == "vpn"}
        psks = {k[2][0] for k in touched if k[1].rpartition("}")[2] == "pre-shared-key"}
        # (a changed VPN naming a reference to the gateway's CA is given its PEM again)
        self.effective = self.ca_refs.resolve(update(self.effective, config, vpns, psks),
                                              vpns).effective
        self.reconciler.set_desired(self.effective, {VPN: vpns, PSK: psks})
        conn_cache.clear()
        forget()

    def _warn_unsupported(self) -> None:
        """Running was committed under another backend: say what this one cannot do (those
        VPNs fail in charon until they are changed; a commit touching them is refused)."""
        for r in refusals(self.backend.dataplane, resolve(self.ds.config)):
            log.warning("vpn %s: %s", r.vpn, r.message)

    def access(self, session: Any) -> Access:
        """The NACM rights of a session's user under the rules in running."""
        if self._policy is None or self._policy[0] != self.ds.version:
            self._policy = (self.ds.version, parse_policy(self.ds.tree("running")))
        return Access(self._policy[1], session.user, session.groups)

    def _apply_global_options(self, options: GlobalOptions) -> None:
        """Give charon the options of a commit (tools/charon_options.py)."""
        work = self.charon_options.apply(options)
        if work is not None:
            self._tasks = [t for t in self._tasks if not t.done()]
            self._options_task = asyncio.get_running_loop().create_task(work)
            self._tasks.append(self._options_task)

    async def read_state(self) -> dict[str, Any]:
        """The operational state (NETCONF get, get-data): the state engine's snapshot, the
        same one gNMI and YANG-Push read (read from the daemon again when older than
        READ_MAX_AGE, at once up to READ_MAX_STALE old while it is read again in the
        background, or made out of date by an SA event or an action; concurrent requests
        share the read; bounded in time: the last known tables, marked stale, when it does
        not answer), with the apply status."""
        try:
            return dict((await self.state.snapshot(READ_MAX_AGE, READ_MAX_STALE)).tree)
        except Exception:  # the config part of <get> must still answer
            log.exception("cannot read IKE state")
            return {}

    def _crl_changed(self, der: bytes | None = None) -> None:
        """The CA signed a new CRL (a revocation) or issued a certificate (the store calls
        this from the thread that did it): fill in the references to the CA again (a revoked
        referenced certificate fails, a re-issued one is loaded), put the CRL in the
        effective config and hand what changed to the reconciler, in the event loop."""
        def apply() -> None:
            self.effective, changed = after_ca_change(self.ca_refs, self.crl_feed,
                                                      self.effective, der)
            if changed:
                self.reconciler.set_desired(self.effective, changed)

        loop = self._loop
        if loop is None or loop.is_closed():
            apply()
        else:
            loop.call_soon_threadsafe(apply)

    def _charon_health(self) -> Health:
        h = self.charon.health()
        if h.status == "down" and h.message == "starting":
            return Health("starting")
        return Health(h.status if h.status in ("up", "sockets-unbound") else "down", h.message)

    def _apply_status_changed(self, new: EntryStatus, old: EntryStatus | None) -> None:
        """An entry failed or recovered: tell the NETCONF stream (the log line is the
        status table's)."""
        self.notifications.publish(notifications.apply_status_change(new))
        self.state.apply_status(new.kind, new.name, new.status)

    def _configured_vpn(self, name: str) -> bool:
        """Whether running has a VPN ``name`` (disabled or not): for the SA actions."""
        return name in (self.ds.config.get("ike", {}).get("vpn") or {})  # keyed by name

    def _vpn_status(self, name: str) -> str | None:
        """A VPN's apply status (applied, pending, failed; None: not reconciled yet)."""
        st = self.reconciler.status.get(VPN, name)
        return None if st is None or st.removing else st.status

    async def wait_applied(self, timeout: float) -> tuple[str, list[dict[str, Any]]]:
        """wait-applied: wait for what the last commit changed (charon's entries and, on
        kernel-netlink, the IKE-less SAs and policies); report each entry."""
        parts = [self.reconciler, *([self.ikeless.reconciler] if self.ikeless else [])]
        changed = [(r, {k: set(v) for k, v in r.last_change.items()}) for r in parts]
        started = time.monotonic()
        # the global options first: until their own work is done, the commit is not in force
        done = await options_done(self._options_task, timeout)
        left = max(0.0, timeout - (time.monotonic() - started))
        done = done and all(await asyncio.gather(*(r.wait_applied(left, c)
                                                   for r, c in changed)))
        entries = []
        for r, changes in changed:
            for kind in sorted(changes):
                for name in sorted(changes[kind]):
                    st = r.status.get(kind, name)
                    if st is None:
                        entries.append({"kind": kind, "name": name, "status": "removed"})
                    else:
                        entries.append({"kind": kind, "name": name, "status": st.status,
                                        "message": st.message})
        if not done:
            return "timeout", entries
        failed = any(e["status"] == "failed" for e in entries)
        return ("failed" if failed else "applied"), entries

    async def kill(self, sid: int, by: int) -> None:
        """kill-session: end another session."""
        target = self.registry.get(sid)
        if target is None:
            raise RpcError.of(
                "invalid-value", f"no session {sid}", type="protocol",
                **{"bad-element": "session-id"},
            )
        target.data["killed-by"] = by
        await target.kill()

    def _record_commit(self, sid: int, edits: list[tuple[str, str]], before: dict,
                       after: dict) -> None:
        s = self.registry.get(sid)
        comment = s.data.pop("comment", "") if s else "confirmed commit rolled back"
        self.history.record(before, after, s.user if s else "(server)", sid, comment)

    def _sa_event(self, ev: dict[str, Any]) -> None:
        self.state.sa_event(ev)
        log.info("%s SA %s: vpn %s peer %s", ev["kind"].upper(), ev["event"], ev["vpn"],
                 ev.get("peer"))
        self.notifications.publish(notifications.sa_event(
            ev["kind"], ev["event"], ev["vpn"], ev.get("peer"), ev.get("unique-id"),
            ev.get("policy")))

    def _refused(self, refusal: RefusedPeer) -> None:
        """charon refused a peer: say why in the log, and in the state at once."""
        log.info("%s", refusal.summary())
        self.state.invalidate()

    def _wire_subscriptions(self) -> None:
        """RFC 8639/8641 subscriptions: the NETCONF stream's events, config changes, and the
        operational state (the state engine's snapshots and changes)."""
        self.subscriptions = Subscriptions(self.notifications, self.schema.state_top,
                                           self.state)
        self.ds.on_change.append(lambda *_: self.subscriptions.config_changed())
        self.registry.on_close(self.subscriptions.session_ended)

    async def run(self, listen: Sequence[tuple[str, int]],
                  ready: asyncio.Event | None = None, gnmi: GnmiListen | None = None) -> None:
        """Start everything, listen for NETCONF on every (host, port) of ``listen`` (the
        addresses bound are then in ``self.listening``), and for gNMI when ``gnmi`` says
        where (then in ``self.gnmi_listening``), and serve until cancelled or signalled;
        always clean up charon."""
        loop = self._loop = asyncio.get_running_loop()
        events = SaEventListener(self.charon.socket_path, self._sa_event, loop)
        refused = RefusedPeerLog(self.charon.log_path, self.refused_peers, self._refused,
                                 loop)
        acceptors: list[Any] = []
        try:
            await asyncio.to_thread(self.charon.start)
            events.start()
            refused.start()
            self._tasks.append(asyncio.create_task(self.supervisor.run()))
            self._tasks.append(asyncio.create_task(self.reconciler.run()))
            self._tasks.append(asyncio.create_task(self.state.run()))
            # freed memory back to the OS once a removal is applied (nf/memory.py)
            self._tasks.append(asyncio.create_task(trim_after_changes(
                lambda: sum(map(len, self.ds.running.index.values())),
                lambda: heap.collected_after(self.reconciler.wait_applied(600)))))
            self._tasks.append(asyncio.create_task(heap.thaw_when_quiet(self.reconciler.settled)))
            self._tasks.append(asyncio.create_task(keep_crl_fresh(self.ca)))
            self.reconciler.set_desired(self.effective)
            if self.ikeless is not None:
                self._tasks += [asyncio.create_task(t) for t in self.ikeless.tasks()]
                self.ikeless.set_desired(self.effective)
            for host, port in listen:  # northbound.ssh logs each address
                acceptors.append(await start_server(
                    host, port, self.state_dir / "ssh_host_ed25519_key", self.state_dir,
                    self.dispatcher.handle, self.capabilities, self.registry, self.limits,
                ))
                self.listening.append((host, acceptors[-1].get_port()))
            stop = asyncio.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            if gnmi is not None:
                await self._start_gnmi(gnmi)
            if ready is not None:
                ready.set()
            await stop.wait()
        finally:
            for acceptor in acceptors:
                acceptor.close()
            await self._stop_gnmi()
            await self.registry.close_all()
            for t in self._tasks:
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await asyncio.to_thread(self.supervisor.stop)
            await asyncio.to_thread(events.stop)
            if self.ikeless is not None:
                await self.ikeless.stop()
            await asyncio.to_thread(refused.stop)

    # ---- gNMI (northbound/gnmi) ----------------------------------------------------------
    gnmi_server: GnmiServer | None = None
    gnmi_listening: tuple[str, int] | None = None  # the gNMI address bound, once run

    async def _start_gnmi(self, where: GnmiListen) -> None:
        """Serve gNMI over the same datastores, users, NACM and state engine as NETCONF."""
        g = GnmiContext(ctx=self.context, state=self.state, auth=Authenticator(self.state_dir))
        self.gnmi_server = GnmiServer(g, where.host, where.port, where.cert, where.key,
                                      where.insecure)
        port = await self.gnmi_server.start()
        self.gnmi_listening = (where.host, port)

    async def _stop_gnmi(self) -> None:
        if self.gnmi_server is not None:
            await self.gnmi_server.stop()
            self.gnmi_server = None
