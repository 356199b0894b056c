"""The ledger of the IKE-less backend: which kernel keys (SAs, policies) it installed, by
entry name; what it owns is what it may replace or delete (charon's never)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from southbound.xfrm.types import PolicyId, SaId


def sa_key(sa: SaId) -> tuple[str, int, int]:
    """The kernel's key of an SA as a comparable tuple: destination, SPI, protocol."""
    return str(sa.dst), sa.spi, int(sa.proto)


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
            return next((n for n, k in self.sas.items() if sa_key(k) == sa_key(sa)), None)

    def hard_expired(self, sa: SaId) -> str | None:
        """Record that our SA ``sa`` reached its hard lifetime; its entry name (None: not
        ours)."""
        with self.lock:
            name = next((n for n, k in self.sas.items() if sa_key(k) == sa_key(sa)), None)
            if name is not None and name in self.digests:
                self.expired[name] = self.digests[name]
            return name

    def policy_name(self, pid: PolicyId) -> str | None:
        """The entry name of a policy we own (by selector and direction), or None."""
        with self.lock:
            return next((n for n, ks in self.policies.items() if pid in ks), None)
