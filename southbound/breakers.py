"""Entries that make the daemon drop its session (too big for it, or it crashes on them).

When a session breaks while one entry alone was in flight, that entry gets a strike; after
``STRIKES`` it is failed and not retried by itself (a retry could crash the daemon again): a
change of the entry tries it again. When several were in flight, which one broke it is
unknown: each of them runs alone (``solo``) next time. Whatever was in flight when a session
broke is ``uncertain``: the next read-back's difference for it is not drift.
"""

from __future__ import annotations

from collections.abc import Iterator

STRIKES = 2  # sessions an entry may break (alone in flight) before it is failed
Key = tuple[str, str]  # (kind, name)


class SessionBreakers:
    """The reconciler's record of entries that broke sessions (see the module docstring)."""

    def __init__(self) -> None:
        self.strikes: dict[Key, int] = {}
        self.solo: set[Key] = set()  # in flight when several sessions broke: run alone
        self.uncertain: set[Key] = set()  # in flight when a session broke: not drift
        self.broke_it: set[Key] = set()  # failed for breaking sessions

    def __repr__(self) -> str:
        return (f"SessionBreakers(strikes={len(self.strikes)}, solo={len(self.solo)}, "
                f"failed={len(self.broke_it)})")

    def changed(self, key: Key) -> None:
        """The entry changed: its past counts no more."""
        self.strikes.pop(key, None)
        self.broke_it.discard(key)

    def settled(self, key: Key) -> None:
        """The daemon already agrees with the entry (nothing was sent)."""
        self.strikes.pop(key, None)

    def finished(self, key: Key) -> None:
        """The daemon answered for the entry (applied or refused): the session survived it."""
        self.strikes.pop(key, None)
        self.solo.discard(key)

    def broke(self, key: Key, current: bool, several: bool) -> None:
        """A session broke while the entry was in flight (``current``: it still carries the
        intent; ``several``: other entries were in flight too)."""
        self.uncertain.add(key)
        if not current:
            return
        if several:
            self.solo.add(key)
        else:
            self.strikes[key] = STRIKES if key in self.broke_it else self.strikes.get(key, 0) + 1

    def to_fail(self) -> Iterator[tuple[Key, int]]:
        """The entries that broke ``STRIKES`` sessions alone, with their count: they are
        failed now (forgotten here, remembered as having broken sessions)."""
        for key, strikes in list(self.strikes.items()):
            if strikes >= STRIKES:
                del self.strikes[key]
                self.broke_it.add(key)
                yield key, strikes

    def uncertain_of(self, kind: str) -> set[str]:
        """The names of ``kind`` whose read-back difference is not drift."""
        return {n for k, n in self.uncertain if k == kind}
