"""A reconciler session of the IKE-less backend: SAD/SPD entries loaded into, removed from and
observed in the kernel over one XFRM driver, owning only the keys in its :class:`Ledger`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from southbound.backend import BackendUnavailable, EntryRefused
from southbound.ikeless_digest import policy_digest, policy_view, state_digest
from southbound.ikeless_kinds import SA
from southbound.ikeless_ledger import Ledger, sa_key
from southbound.xfrm.api import XfrmError, XfrmExists, XfrmNotFound
from southbound.xfrm.types import PolicyId, SaId, XfrmPolicy, XfrmState


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
        if old is not None and sa_key(old) != sa_key(st.id):
            self._delete_sa(old)  # a new SPI or destination: the old SA goes
        try:
            self.driver.add_state(st)
        except XfrmExists:
            held = self.driver.get_state(st.id)
            ours = old is not None and sa_key(old) == sa_key(st.id)
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
        new_ids = tuple(p.id for p in policies)
        for pid in old:
            if pid not in new_ids:
                self._delete_policy(pid)
        done = set(old) & set(new_ids)
        for p in policies:
            try:
                self.driver.add_policy(p)
            except XfrmExists:
                held = self.driver.get_policy(p.id)
                if p.id in old or (held is not None
                                      and policy_view(held) == policy_view(p)):
                    self.driver.update_policy(p)
                else:
                    raise EntryRefused(
                        f"a {p.direction.name.lower()} policy for {p.selector.src} -> "
                        f"{p.selector.dst} is already in the kernel and was not installed by "
                        "this entry (another owner, e.g. charon): it is left alone") from None
            done.add(p.id)
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
                held = {sa_key(s.id): s for s in self.driver.dump_states()}
                with self.ledger.lock:
                    owned = dict(self.ledger.sas)
                return {name: state_digest(held[sa_key(sa)])
                        for name, sa in owned.items() if sa_key(sa) in held}
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
