"""The desired world of one charon: VICI payloads and digests per VPN and PSK, and dirty keys."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from southbound.convert import conn_for, shared_digest, shared_for


def conn_payload_digest(payload: Mapping[str, Any]) -> str:
    """Stable digest of a load-conn payload (equal to ``convert.conn_digest`` of its VPN)."""
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class World:
    """Desired payloads/digests, updated in O(change) from successive effective configs."""

    def __init__(self, trap_as_start: bool = False) -> None:
        self.trap_as_start = trap_as_start
        self._vpn_inputs: dict[str, Mapping[str, Any]] = {}
        self._psk_inputs: dict[str, Mapping[str, Any]] = {}
        self.conn_payloads: dict[str, dict[str, Any]] = {}
        self.conn_digests: dict[str, str] = {}
        self.shared_payloads: dict[str, dict[str, Any]] = {}
        self.shared_digests: dict[str, str] = {}
        self.dirty_conns: set[str] = set()
        self.dirty_shared: set[str] = set()

    def __repr__(self) -> str:
        return (f"World(conns={len(self.conn_digests)}, secrets={len(self.shared_digests)}, "
                f"dirty={len(self.dirty_conns) + len(self.dirty_shared)})")

    def update(self, effective: Mapping[str, Any],
               vpns_changed: Iterable[str] | None = None,
               psks_changed: Iterable[str] | None = None) -> None:
        """Take a new effective config; mark VPNs/PSKs whose payload changed dirty.

        With ``vpns_changed``/``psks_changed`` only those names are examined (a hint from a
        caller that knows what changed); otherwise every entry is compared with the one given
        last time (identity first, then ``==``), and a payload is only built for differing ones.
        Raises ValueError/KeyError for an entry that cannot be converted; nothing is changed
        then.
        """
        enabled = effective.get("enabled", True)
        vpns: Mapping[str, Any] = (effective.get("vpns") or {}) if enabled else {}
        psks: Mapping[str, Any] = (effective.get("psks") or {}) if enabled else {}
        conn_updates = self._diff(self._vpn_inputs, vpns, vpns_changed,
                                  lambda v: conn_for(v, self.trap_as_start),
                                  lambda _item, payload: conn_payload_digest(payload))
        # Secrets get a keyed digest of their own (see convert.shared_digest).
        shared_updates = self._diff(self._psk_inputs, psks, psks_changed, shared_for,
                                    lambda item, _payload: shared_digest(item))
        self._commit(conn_updates, self._vpn_inputs, vpns, self.conn_payloads,
                     self.conn_digests, self.dirty_conns)
        self._commit(shared_updates, self._psk_inputs, psks, self.shared_payloads,
                     self.shared_digests, self.dirty_shared)

    @staticmethod
    def _diff(old: Mapping[str, Any], new: Mapping[str, Any], hint: Iterable[str] | None,
              build: Any, digest: Any) -> dict[str, tuple[Any, dict, str] | None]:
        """name -> (input, payload, digest) for added/changed, None for removed."""
        out: dict[str, tuple[Any, dict, str] | None] = {}
        if hint is None:
            removed: Iterable[str] = old.keys() - new.keys()
            candidates: Iterable[str] = new.keys()
        else:
            hint = set(hint)
            removed = [n for n in hint if n in old and n not in new]
            candidates = [n for n in hint if n in new]
        for name in removed:
            out[name] = None
        for name in candidates:
            item, prev = new[name], old.get(name)
            if hint is None and prev is not None and (prev is item or prev == item):
                continue
            payload = build(item)
            out[name] = (item, payload, digest(item, payload))
        return out

    @staticmethod
    def _commit(updates: Mapping[str, tuple[Any, dict, str] | None],
                inputs: dict[str, Any], new: Mapping[str, Any], payloads: dict[str, dict],
                digests: dict[str, str], dirty: set[str]) -> None:
        for name, upd in updates.items():
            if upd is None:
                inputs.pop(name, None)
                payloads.pop(name, None)
                digests.pop(name, None)
                dirty.add(name)
                continue
            item, payload, digest = upd
            inputs[name] = item
            payloads[name] = payload
            if digests.get(name) != digest:
                digests[name] = digest
                dirty.add(name)

    def mark_all_dirty(self, extra_conns: Iterable[str] = (),
                       extra_shared: Iterable[str] = ()) -> None:
        """Mark every desired key (and the given loaded ones) dirty, for a full resync."""
        self.dirty_conns |= set(self.conn_digests) | set(extra_conns)
        self.dirty_shared |= set(self.shared_digests) | set(extra_shared)

    def take_dirty(self) -> tuple[set[str], set[str]]:
        """Return and clear the dirty conn and shared keys."""
        conns, shared = self.dirty_conns, self.dirty_shared
        self.dirty_conns, self.dirty_shared = set(), set()
        return conns, shared
