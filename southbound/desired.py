"""The desired world of one backend: per resource kind, the typed entries of the effective
config, their payloads and digests, updated in O(change) from successive effective configs.

A payload is kept only until the backend has applied it (:meth:`DesiredSet.release`): at
10,000 VPNs the ``load-conn`` payloads were ~30 MiB of dicts that nothing read again but a
drift repair or a daemon restart, rare events which rebuild them from the typed entry
(:meth:`DesiredSet.payload`; a payload is a function of its entry). What the backend's
periodic upkeep reads of each payload (``ResourceKind.upkeep``: for a VPN, its children's
start action and mode) is kept beside, small."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from nf.effective import EffectiveConfig
from southbound.backend import DataPlane, ResourceKind


class DesiredSet:
    """Payloads and digests of every entry a backend should hold, kind by kind."""

    def __init__(self, kinds: Iterable[ResourceKind], dataplane: DataPlane) -> None:
        self.kinds = {k.name: k for k in kinds}
        self.dataplane = dataplane
        self.items: dict[str, dict[str, Any]] = {k: {} for k in self.kinds}
        # payloads not yet released (applied): name -> payload
        self.payloads: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in self.kinds}
        # what the upkeep reads of every entry's payload (ResourceKind.upkeep)
        self.upkeep: dict[str, dict[str, Mapping[str, Any]]] = {k: {} for k in self.kinds}
        self.digests: dict[str, dict[str, str]] = {k: {} for k in self.kinds}
        # entries whose payload could not be built from the last config given: name -> why
        self.invalid: dict[str, dict[str, str]] = {k: {} for k in self.kinds}

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self.digests.items())
        return f"DesiredSet({sizes})"

    def update(self, effective: EffectiveConfig,
               changed: Mapping[str, Iterable[str]] | None = None) -> dict[str, set[str]]:
        """Take a new effective config; return, per kind, the names whose payload changed
        (added, modified or removed).

        An entry whose payload cannot be built (an error in ``kind.payload``) keeps its
        previous payload and digest (what the daemon holds stays) and is listed in
        :attr:`invalid` with the reason, so one bad entry never stops the others.

        ``changed`` optionally names, per kind, the only entries to look at (a kind missing
        from it is left as it is). Without it every entry is compared; unchanged entries
        (equal values) cost no payload build.
        """
        out: dict[str, set[str]] = {}
        for name, kind in self.kinds.items():
            if changed is not None and name not in changed:
                continue
            new = kind.select(effective)
            out[name] = self._update_kind(kind, new, None if changed is None else changed[name])
        return out

    def _update_kind(self, kind: ResourceKind, new: Mapping[str, Any],
                     hint: Iterable[str] | None) -> set[str]:
        items, payloads, digests = (self.items[kind.name], self.payloads[kind.name],
                                    self.digests[kind.name])
        upkeep = self.upkeep[kind.name]
        invalid = self.invalid[kind.name]
        if hint is None:
            removed: Iterable[str] = (items.keys() | invalid.keys()) - new.keys()
            candidates: Iterable[str] = new.keys()
        else:
            names = set(hint)
            removed = [n for n in names if (n in items or n in invalid) and n not in new]
            candidates = [n for n in names if n in new]
        dirty: set[str] = set()
        for name in list(removed):
            invalid.pop(name, None)
            items.pop(name, None)
            payloads.pop(name, None)
            upkeep.pop(name, None)
            digests.pop(name, None)
            dirty.add(name)
        for name in candidates:
            item, prev = new[name], items.get(name)
            if prev is not None and (prev is item or prev == item) and name in digests:
                if invalid.pop(name, None) is not None:
                    dirty.add(name)  # back to what the daemon holds: settle its status
                continue
            try:
                payload = kind.payload(item, self.dataplane)
                digest = kind.digest(item, payload)
            except (ValueError, TypeError, KeyError) as exc:
                # the message names no secret (convert's errors never quote values)
                invalid[name] = f"cannot build the daemon's request: {exc}"
                continue
            invalid.pop(name, None)
            items[name] = item
            payloads[name] = payload
            upkeep[name] = payload if kind.upkeep is None else kind.upkeep(payload)
            if digests.get(name) != digest:
                digests[name] = digest
                dirty.add(name)
        return dirty

    def payload(self, kind: str, name: str) -> dict[str, Any]:
        """The payload of a desired entry: the one built at :meth:`update` if not yet
        released, else built again from the entry (KeyError for an entry not desired)."""
        held = self.payloads[kind].get(name)
        if held is not None:
            return held
        return self.kinds[kind].payload(self.items[kind][name], self.dataplane)

    def release(self, kind: str, name: str, digest: str) -> None:
        """The backend holds the entry's payload of ``digest``: stop keeping it (unless the
        entry changed since: its new payload is still to be applied)."""
        if self.digests[kind].get(name) == digest:
            self.payloads[kind].pop(name, None)
