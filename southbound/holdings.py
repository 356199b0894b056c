"""What a backend holds, as far as the daemon has shown or acknowledged it.

Per kind, :attr:`Holdings.observed` maps each name the daemon holds to the digest of what we
know it holds (the payload it acknowledged), or None when the content is unknown (not loaded
by us, or replaced behind our back: the daemon's own fingerprint of it changed). It changes
only on an acknowledged load/unload or a read-back (:meth:`Holdings.take`), never on what was
merely sent.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass


@dataclass
class _Loaded:
    """An entry we loaded: the digest the daemon acknowledged, and the daemon's own
    fingerprint of it once read back (None until then, or if it shows none)."""

    digest: str
    fingerprint: str | None = None


class Holdings:
    """The backend's entries per kind (see the module docstring)."""

    def __init__(self, kinds: Iterable[str]) -> None:
        self.observed: dict[str, dict[str, str | None]] = {k: {} for k in kinds}
        self._loaded: dict[str, dict[str, _Loaded]] = {k: {} for k in self.observed}

    def __repr__(self) -> str:
        return "Holdings(" + ", ".join(f"{k}={len(v)}" for k, v in self.observed.items()) + ")"

    def loaded(self, kind: str, name: str, digest: str) -> None:
        """The daemon acknowledged a load of ``name`` with the payload of ``digest``."""
        self.observed[kind][name] = digest
        self._loaded[kind][name] = _Loaded(digest)

    def unloaded(self, kind: str, name: str) -> None:
        """The daemon acknowledged the removal of ``name``."""
        self.observed[kind].pop(name, None)
        self._loaded[kind].pop(name, None)

    def take(self, kind: str, seen: Mapping[str, str | None],
             uncertain: Container[str] = ()) -> int:
        """Replace what we believe the daemon holds of ``kind`` by what it reports (name ->
        its fingerprint, or None when it shows none); return how many beliefs were wrong
        (drift), not counting the ``uncertain`` names (in flight when a session broke)."""
        loaded, believed = self._loaded[kind], self.observed[kind]
        observed: dict[str, str | None] = {}
        for name, fp in seen.items():
            rec = loaded.get(name)
            if rec is None:
                observed[name] = None  # not loaded by us: unknown content
            elif fp is None or rec.fingerprint is None or rec.fingerprint == fp:
                if fp is not None:
                    rec.fingerprint = fp  # the first read-back after our load: adopt it
                observed[name] = rec.digest
            else:
                observed[name] = None  # replaced behind our back
                del loaded[name]
        for name in list(loaded):
            if name not in seen:
                del loaded[name]
        self.observed[kind] = observed
        return sum(1 for n in believed.keys() | observed.keys()
                   if believed.get(n, "?") != observed.get(n, "?") and n not in uncertain)
