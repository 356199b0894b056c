"""The IKE-less backend: RFC 9061's SAD and SPD entries in the kernel over netlink XFRM.

A second :class:`southbound.backend.Backend` beside charon's, driven by its own
:class:`southbound.reconciler.Reconciler` from ``EffectiveConfig.ikeless``
(``nf/i2nsf_ikeless.py``). Two kinds: ``ikeless-sa`` (one XFRM state per SAD entry, loaded
first) and ``ikeless-policy`` (per SPD entry one policy; an inbound entry is put as ``in`` and
``fwd``, so a gateway forwards what it decrypts; unloaded before the SAs).

What the kernel holds is read back from it (:meth:`IkelessSession.observe`: a dump of the SAD,
each policy of ours asked by its key);
an entry's fingerprint is a digest of what the kernel reports for it, computed the same way as
the digest of what we asked (:func:`state_digest`, :func:`policy_digest`), so an SA or policy
removed or changed behind our back is installed again.

Coexistence with charon on ``kernel-netlink`` (one kernel, two owners): this backend owns the
SAs and policies it installed, by their kernel keys (an SA's destination, SPI and protocol; a
policy's selector and direction), kept in a :class:`Ledger` with the entry names. It never
flushes: it deletes exactly the keys it owns. An SA or policy whose key is already in the
kernel and is not ours (charon's, or anyone's) is not touched: the entry fails with a message
saying so. charon's SPIs are random and its policies carry charon's selectors, so the two meet
only when the controller configures what an IKE-case or native VPN also negotiates; our
policies get priorities from :data:`PRIORITY_BASE` on (the SPD's order), above charon's
(it computes priorities of 100,000 and more for its policies). An ipsec-nf that starts and
finds an SA or policy equal to the one an entry asks (left by an earlier run) takes it over.

An SA that reached its hard lifetime is gone from the kernel (``sadb-expire`` was sent) and is
not installed again with the same keys: its entry fails with that reason until the controller
replaces or removes it. At shutdown everything this backend installed is removed (as charon's
SAs go with charon).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nf.effective import EffectiveConfig
from nf.effective_ikeless import IkelessConfig, SadEntry, SpdEntry
from southbound.backend import (
    BackendUnavailable,
    DataPlane,
    EntryRefused,
    Health,
    ResourceKind,
)
from southbound.xfrm.api import XfrmError, XfrmExists, XfrmNotFound
from southbound.xfrm.types import (
    Action,
    AeadAlgorithm,
    Algorithm,
    AuthAlgorithm,
    Direction,
    Encap,
    Lifetime,
    Mode,
    PolicyId,
    Proto,
    SaId,
    Selector,
    Template,
    XfrmPolicy,
    XfrmState,
)

log = logging.getLogger(__name__)

SA = "ikeless-sa"
SP = "ikeless-policy"
PRIORITY_BASE = 1000  # the first SPD entry's policy priority (lower is preferred)
XFRM_STATE_NOPMTUDISC = 4  # outer DF bit cleared (df-bit clear); else copied from the inner
DATAPLANE = DataPlane("kernel-netlink", can_trap=True)
MODULE_TOP = "ietf-i2nsf-ikeless:ipsec-ikeless"  # the state tree's key (nf.state)


# ------------------------------------------------------------------------------ conversion

def _net(prefix: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(prefix, strict=False)


def _selector(e: SadEntry | SpdEntry) -> Selector:
    s = e.selector
    return Selector(_net(s.src), _net(s.dst), s.proto or 0, s.sport or 0, s.dport or 0)


def _limit(n: int) -> int | None:
    return n or None


def xfrm_state(e: SadEntry) -> XfrmState:
    """The kernel SA of a SAD entry."""
    return XfrmState(
        src=ipaddress.ip_address(e.src), dst=ipaddress.ip_address(e.dst), spi=e.spi,
        proto=Proto.ESP, mode=Mode.TUNNEL if e.mode == "tunnel" else Mode.TRANSPORT,
        reqid=e.reqid,
        enc=Algorithm(e.encryption.name, e.encryption.key) if e.encryption else None,
        auth=(AuthAlgorithm(e.integrity.name, e.integrity.key, e.integrity.bits or 0)
              if e.integrity else None),
        aead=AeadAlgorithm(e.aead.name, e.aead.key, e.aead.bits or 0) if e.aead else None,
        replay_window=e.replay_window,
        lifetime=Lifetime(
            soft_bytes=_limit(e.soft.bytes), hard_bytes=_limit(e.hard.bytes),
            soft_packets=_limit(e.soft.packets), hard_packets=_limit(e.hard.packets),
            soft_add_seconds=_limit(e.soft.time), hard_add_seconds=_limit(e.hard.time),
            soft_use_seconds=_limit(e.soft.idle), hard_use_seconds=_limit(e.hard.idle)),
        encap=(Encap(e.encap.sport, e.encap.dport,
                     oa=ipaddress.ip_address(e.encap.oaddr) if e.encap.oaddr else None)
               if e.encap else None),
        selector=_selector(e), esn=e.esn,
        flags=0 if e.copy_df or e.mode != "tunnel" else XFRM_STATE_NOPMTUDISC)


def xfrm_policies(p: SpdEntry) -> tuple[XfrmPolicy, ...]:
    """The kernel policies of an SPD entry (inbound: ``in`` and ``fwd``)."""
    templates: tuple[Template, ...] = ()
    if p.action == "protect":
        tunnel = p.mode == "tunnel"
        templates = (Template(
            dst=ipaddress.ip_address(p.dst) if tunnel and p.dst else None,
            src=ipaddress.ip_address(p.src) if tunnel and p.src else None, proto=Proto.ESP,
            mode=Mode.TUNNEL if tunnel else Mode.TRANSPORT, reqid=p.reqid),)
    action = Action.BLOCK if p.action == "discard" else Action.ALLOW
    dirs = (Direction.OUT,) if p.direction == "out" else (Direction.IN, Direction.FWD)
    return tuple(XfrmPolicy(selector=_selector(p), direction=d, action=action,
                            priority=PRIORITY_BASE + p.index, templates=templates)
                 for d in dirs)


# ------------------------------------------------------------------------------ digests

def _h(*parts: Any) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def _alg(a: Any) -> Any:
    if a is None:
        return None
    return (a.name, hashlib.sha256(a.key).hexdigest(), getattr(a, "trunc_bits", None),
            getattr(a, "icv_bits", None))


def state_digest(st: XfrmState) -> str:
    """What identifies an SA's content, from our request or from the kernel's dump alike
    (counters and read-only fields left out; keys only as their hash)."""
    return _h(str(st.src), str(st.dst), st.spi, int(st.proto), int(st.mode), st.reqid,
              _alg(st.enc), _alg(st.auth), _alg(st.aead), st.replay_window, st.esn,
              st.lifetime, st.encap, st.selector, st.flags & XFRM_STATE_NOPMTUDISC)


def _policy_view(p: XfrmPolicy) -> Any:
    return (p.selector, int(p.direction), int(p.action), p.priority,
            tuple((str(t.src), str(t.dst), int(t.proto), int(t.mode), t.reqid)
                  for t in p.templates))


def policy_digest(policies: Iterable[XfrmPolicy]) -> str:
    """What identifies an SPD entry's policies (direction order does not matter)."""
    return _h(*sorted(map(repr, map(_policy_view, policies))))


def _select_sad(eff: EffectiveConfig) -> Mapping[str, SadEntry]:
    ikl: IkelessConfig | None = eff.ikeless
    return ikl.sad if ikl and eff.enabled else {}


def _select_spd(eff: EffectiveConfig) -> Mapping[str, SpdEntry]:
    ikl: IkelessConfig | None = eff.ikeless
    return ikl.spd if ikl and eff.enabled else {}


KINDS = (
    ResourceKind(SA, 10, select=_select_sad,
                 payload=lambda e, _dp: {"states": (xfrm_state(e),)},
                 digest=lambda _e, payload: state_digest(payload["states"][0]), secret=True),
    ResourceKind(SP, 20, select=_select_spd,
                 payload=lambda p, _dp: {"policies": xfrm_policies(p)},
                 digest=lambda _p, payload: policy_digest(payload["policies"])),
)


# ------------------------------------------------------------------------------ ownership

@dataclass
class Ledger:
    """The kernel keys this backend installed, by entry name (shared by the reconciler's
    session, the state reader and the event listener: a lock guards it)."""

    sas: dict[str, SaId] = field(default_factory=dict)
    policies: dict[str, tuple[PolicyId, ...]] = field(default_factory=dict)
    # the digest of each SAD entry's SA as we installed it (an expire message carries no
    # algorithms: this tells which content expired)
    digests: dict[str, str] = field(default_factory=dict)
    # SAD entries whose SA reached its hard lifetime: name -> digest of the SA that expired
    expired: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def sa_name(self, sa: SaId) -> str | None:
        """The entry name of an SA we own (by destination, SPI, protocol), or None."""
        with self.lock:
            return next((n for n, k in self.sas.items() if _sa_key(k) == _sa_key(sa)), None)

    def hard_expired(self, sa: SaId) -> str | None:
        """Record that our SA ``sa`` reached its hard lifetime; its entry name (None: not
        ours)."""
        with self.lock:
            name = next((n for n, k in self.sas.items() if _sa_key(k) == _sa_key(sa)), None)
            if name is not None and name in self.digests:
                self.expired[name] = self.digests[name]
            return name

    def policy_name(self, pid: PolicyId) -> str | None:
        """The entry name of a policy we own (by selector and direction), or None."""
        with self.lock:
            return next((n for n, ks in self.policies.items() if pid in ks), None)


def _sa_key(sa: SaId) -> tuple[str, int, int]:
    return str(sa.dst), sa.spi, int(sa.proto)


def _pid(p: XfrmPolicy) -> PolicyId:
    return PolicyId(p.selector, p.direction, p.if_id)


class IkelessSession:
    """A session on the kernel's XFRM (one netlink socket; one thread at a time)."""

    def __init__(self, driver: Any, ledger: Ledger) -> None:
        self.driver = driver
        self.ledger = ledger

    def load(self, kind: str, name: str, payload: Mapping[str, Any], replaced: bool) -> None:
        """Install (or replace) one SA or one SPD entry's policies."""
        try:
            if kind == SA:
                self._load_sa(name, payload["states"][0])
            else:
                self._load_policies(name, payload["policies"])
        except XfrmError as e:
            raise EntryRefused(f"the kernel refused it: {e.message}") from None
        except OSError as e:
            raise BackendUnavailable(f"netlink XFRM: {e}") from e

    def _load_sa(self, name: str, st: XfrmState) -> None:
        digest = state_digest(st)
        with self.ledger.lock:
            expired = self.ledger.expired.get(name)
            old = self.ledger.sas.get(name)
        if expired == digest:
            raise EntryRefused(
                "the SA reached its hard lifetime and was removed by the kernel (sadb-expire "
                "was sent); it is not installed again with the same keys: the controller "
                "replaces or removes the SAD entry")
        if old is not None and _sa_key(old) != _sa_key(st.id):
            self._delete_sa(old)  # a new SPI or destination: the old SA goes
        try:
            self.driver.add_state(st)
        except XfrmExists:
            held = self.driver.get_state(st.id)
            ours = old is not None and _sa_key(old) == _sa_key(st.id)
            if held is not None and state_digest(held) == digest:
                pass  # the same SA, left by an earlier run or added back: taken over
            elif ours:
                self.driver.update_state(st)
            else:
                raise EntryRefused(
                    f"an SA with SPI {st.spi} (0x{st.spi:08x}) to {st.dst} is already in the "
                    "kernel and was not installed by this entry (another owner, e.g. charon): "
                    "it is left alone; choose another SPI") from None
        with self.ledger.lock:
            self.ledger.sas[name] = st.id
            self.ledger.digests[name] = digest
            self.ledger.expired.pop(name, None)

    def _load_policies(self, name: str, policies: tuple[XfrmPolicy, ...]) -> None:
        with self.ledger.lock:
            old = self.ledger.policies.get(name, ())
        new_ids = tuple(_pid(p) for p in policies)
        for pid in old:
            if pid not in new_ids:
                self._delete_policy(pid)
        done = set(old) & set(new_ids)
        for p in policies:
            try:
                self.driver.add_policy(p)
            except XfrmExists:
                held = self.driver.get_policy(_pid(p))
                if _pid(p) in old or (held is not None
                                      and _policy_view(held) == _policy_view(p)):
                    self.driver.update_policy(p)
                else:
                    raise EntryRefused(
                        f"a {p.direction.name.lower()} policy for {p.selector.src} -> "
                        f"{p.selector.dst} is already in the kernel and was not installed by "
                        "this entry (another owner, e.g. charon): it is left alone") from None
            done.add(_pid(p))
            with self.ledger.lock:  # what is in the kernel so far (a later one may fail)
                self.ledger.policies[name] = tuple(i for i in new_ids if i in done)

    def _delete_sa(self, sa: SaId) -> None:
        try:
            self.driver.delete_state(sa)
        except XfrmNotFound:
            pass

    def _delete_policy(self, pid: PolicyId) -> None:
        try:
            self.driver.delete_policy(pid)
        except XfrmNotFound:
            pass

    def unload(self, kind: str, name: str) -> None:
        """Remove what an entry installed (already gone: nothing to do)."""
        try:
            if kind == SA:
                with self.ledger.lock:
                    sa = self.ledger.sas.get(name)
                if sa is not None:
                    self._delete_sa(sa)
                with self.ledger.lock:
                    self.ledger.sas.pop(name, None)
                    self.ledger.digests.pop(name, None)
                    self.ledger.expired.pop(name, None)
            else:
                with self.ledger.lock:
                    pids = self.ledger.policies.get(name, ())
                for pid in pids:
                    self._delete_policy(pid)
                with self.ledger.lock:
                    self.ledger.policies.pop(name, None)
        except XfrmError as e:
            raise EntryRefused(f"the kernel refused the removal: {e.message}") from None
        except OSError as e:
            raise BackendUnavailable(f"netlink XFRM: {e}") from e

    def observe(self, kind: str, deep: bool) -> dict[str, str | None]:
        """What the kernel holds of the entries we installed: name -> digest of the kernel's
        SA / policies (from a dump of the SAD or SPD)."""
        try:
            if kind == SA:
                held = {_sa_key(s.id): s for s in self.driver.dump_states()}
                with self.ledger.lock:
                    owned = dict(self.ledger.sas)
                return {name: state_digest(held[_sa_key(sa)])
                        for name, sa in owned.items() if _sa_key(sa) in held}
            # each policy we own is asked by its key: a dump would also parse every policy of
            # charon's (socket policies included), one failing parse failing all
            with self.ledger.lock:
                owned_p = dict(self.ledger.policies)
            out: dict[str, str | None] = {}
            for name, pids in owned_p.items():
                found = [p for pid in pids if (p := self.driver.get_policy(pid)) is not None]
                if found:  # one of in/fwd missing: a digest that differs, loaded again
                    out[name] = policy_digest(found)
            return out
        except XfrmError as e:
            raise BackendUnavailable(f"netlink XFRM dump: {e.message}") from e
        except OSError as e:
            raise BackendUnavailable(f"netlink XFRM: {e}") from e

    def close(self) -> None:
        """Close the netlink socket."""
        self.driver.close()


# ------------------------------------------------------------------------------ state

def sa_state(st: XfrmState, now: float) -> dict[str, Any]:
    """RFC 9061's ``ipsec-sa-state`` of a kernel SA (lifetime-current, replay statistics)."""
    cur, stats = st.current, st.stats
    add = cur.add_time if cur else 0
    use = cur.use_time if cur else 0
    seq = stats.seq if stats else 0
    window = st.replay_window
    return {
        "sa-lifetime-current": {
            "time": max(0, int(now) - add) if add else 0,
            "bytes": cur.bytes if cur else 0, "packets": cur.packets if cur else 0,
            "idle": max(0, int(now) - use) if use else 0},
        "replay-stats": {
            "replay-window": {"w": window, "t": seq, "b": max(0, seq - window + 1) if seq
                              else 0},
            "packet-dropped": (stats.replay + stats.replay_window) if stats else 0,
            "failed": stats.integrity_failed if stats else 0,
            "seq-number-counter": stats.oseq if stats else 0}}


class IkelessBackend:
    """The IKE-less backend (:class:`southbound.backend.Backend`) on this namespace's kernel.

    ``driver_factory`` opens an XFRM driver (:class:`southbound.xfrm.netlink.XfrmNetlink`)."""

    name = "kernel-xfrm"
    dataplane = DATAPLANE
    kinds = KINDS

    def __init__(self, driver_factory: Any = None) -> None:
        if driver_factory is None:
            from southbound.xfrm.netlink import XfrmNetlink
            driver_factory = XfrmNetlink
        self.driver_factory = driver_factory
        self.ledger = Ledger()
        self._reader: Any = None
        self._read_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"IkelessBackend(sas={len(self.ledger.sas)}, spd={len(self.ledger.policies)})"

    def open(self) -> IkelessSession:
        """A session on a new netlink socket."""
        try:
            return IkelessSession(self.driver_factory(), self.ledger)
        except OSError as e:
            raise BackendUnavailable(f"cannot open a netlink XFRM socket: {e}") from e

    def maintain(self, session: Any, desired: Mapping[str, Mapping[str, Mapping[str, Any]]]
                 ) -> list[str]:
        """Nothing beyond installing entries: the kernel needs no upkeep."""
        return []

    def health(self) -> Health:
        """The kernel is always there."""
        return Health("up")

    def _dump(self) -> list[XfrmState]:
        with self._read_lock:
            if self._reader is None:
                self._reader = self.driver_factory()
            try:
                return self._reader.dump_states()
            except OSError:
                self._reader.close()
                self._reader = None
                raise

    def read_state(self, timeout: float) -> dict[str, Any]:
        """The IKE-less state: each SAD entry we installed with its ``ipsec-sa-state`` read
        from the kernel now (a dump of the SAD), under ``MODULE_TOP`` (merged by nf.state into
        the configured sad-entry)."""
        try:
            states = {_sa_key(s.id): s for s in self._dump()}
        except (XfrmError, OSError) as e:
            raise BackendUnavailable(f"netlink XFRM dump: {e}") from e
        now = time.time()
        with self.ledger.lock:
            owned = dict(self.ledger.sas)
        entries = [{"name": name, "ipsec-sa-state": sa_state(states[_sa_key(sa)], now)}
                   for name, sa in owned.items() if _sa_key(sa) in states]
        return {MODULE_TOP: {"sad": {"sad-entry": entries}}} if entries else {}

    def states_by_name(self) -> dict[str, XfrmState]:
        """The kernel's SAs of our entries now (for the events: sequence numbers)."""
        states = {_sa_key(s.id): s for s in self._dump()}
        with self.ledger.lock:
            owned = dict(self.ledger.sas)
        return {n: states[_sa_key(sa)] for n, sa in owned.items() if _sa_key(sa) in states}

    def remove_all(self) -> int:
        """Remove every SA and policy this backend installed (at shutdown); how many."""
        with self.ledger.lock:
            sas = list(self.ledger.sas.values())
            pids = [p for ps in self.ledger.policies.values() for p in ps]
            self.ledger.sas.clear()
            self.ledger.policies.clear()
        if not sas and not pids:
            return 0
        driver = self.driver_factory()
        try:
            return int(driver.flush(states=sas, policies=pids))
        finally:
            driver.close()
