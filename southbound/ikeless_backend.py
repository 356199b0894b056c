"""The IKE-less backend: RFC 9061's SAD and SPD entries in the kernel over netlink XFRM.

A second :class:`southbound.backend.Backend` beside charon's, driven by its own
:class:`southbound.reconciler.Reconciler` from ``EffectiveConfig.ikeless``
(``nf/i2nsf_ikeless.py``). Two kinds (:mod:`southbound.ikeless_kinds`): ``ikeless-sa`` (one
XFRM state per SAD entry, loaded first) and ``ikeless-policy`` (per SPD entry one policy; an
inbound entry is put as ``in`` and ``fwd``, so a gateway forwards what it decrypts; unloaded
before the SAs).

What the kernel holds is read back from it
(:meth:`southbound.ikeless_session.IkelessSession.observe`: a dump of the SAD, each policy of
ours asked by its key); an entry's fingerprint is a digest of what the kernel reports for it,
computed the same way as the digest of what we asked (:mod:`southbound.ikeless_digest`), so
an SA or policy removed or changed behind our back is installed again.

Coexistence with charon on ``kernel-netlink`` (one kernel, two owners): this backend owns the
SAs and policies it installed, by their kernel keys (an SA's destination, SPI and protocol; a
policy's selector and direction), kept in a :class:`southbound.ikeless_ledger.Ledger` with
the entry names. It never flushes: it deletes exactly the keys it owns. An SA or policy whose
key is already in the kernel and is not ours (charon's, or anyone's) is not touched: the
entry fails with a message saying so. charon's SPIs are random and its policies carry
charon's selectors, so the two meet only when the controller configures what an IKE-case or
native VPN also negotiates; our policies get priorities from
:data:`southbound.ikeless_convert.PRIORITY_BASE` on (the SPD's order), above charon's (it
computes priorities of 100,000 and more for its policies). An ipsec-nf that starts and finds
an SA or policy equal to the one an entry asks (left by an earlier run) takes it over.

An SA that reached its hard lifetime is gone from the kernel (``sadb-expire`` was sent) and is
not installed again with the same keys: its entry fails with that reason until the controller
replaces or removes it. At shutdown everything this backend installed is removed (as charon's
SAs go with charon).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from southbound.backend import BackendUnavailable, DataPlane, Health
from southbound.ikeless_kinds import KINDS
from southbound.ikeless_ledger import Ledger, sa_key
from southbound.ikeless_sa_state import sa_state
from southbound.ikeless_session import IkelessSession
from southbound.xfrm.api import XfrmError
from southbound.xfrm.types import XfrmState

DATAPLANE = DataPlane("kernel-netlink", can_trap=True)
MODULE_TOP = "ietf-i2nsf-ikeless:ipsec-ikeless"  # the state tree's key (nf.state)


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
            states = {sa_key(s.id): s for s in self._dump()}
        except (XfrmError, OSError) as e:
            raise BackendUnavailable(f"netlink XFRM dump: {e}") from e
        now = time.time()
        with self.ledger.lock:
            owned = dict(self.ledger.sas)
        entries = [{"name": name, "ipsec-sa-state": sa_state(states[sa_key(sa)], now)}
                   for name, sa in owned.items() if sa_key(sa) in states]
        return {MODULE_TOP: {"sad": {"sad-entry": entries}}} if entries else {}

    def states_by_name(self) -> dict[str, XfrmState]:
        """The kernel's SAs of our entries now (for the events: sequence numbers)."""
        states = {sa_key(s.id): s for s in self._dump()}
        with self.ledger.lock:
            owned = dict(self.ledger.sas)
        return {n: states[sa_key(sa)] for n, sa in owned.items() if sa_key(sa) in states}

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
