"""Commit history: the last N configurations of running, with who, when and why."""

from __future__ import annotations

import difflib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lxml import etree

from nf import persist

KEEP = 20


@dataclass(frozen=True)
class Commit:
    """One entry of the history."""

    id: int
    time: str
    user: str
    session_id: int
    comment: str


class History:
    """Keeps the last ``keep`` running configs under ``<state_dir>/history``."""

    def __init__(self, state_dir: Path, keep: int = KEEP) -> None:
        self.dir = state_dir / "history"
        self.keep = keep
        raw = persist.read(self.dir / "index.json")
        self.entries = [Commit(**e) for e in json.loads(raw)] if raw else []

    def record(self, running: etree._Element, user: str, session_id: int, comment: str) -> Commit:
        """Store a new running config as the newest commit."""
        cid = self.entries[-1].id + 1 if self.entries else 1
        c = Commit(cid, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), user, session_id,
                   comment)
        persist.atomic_write(self.dir / f"{cid}.xml", etree.tostring(running))
        self.entries.append(c)
        for old in self.entries[:-self.keep]:
            (self.dir / f"{old.id}.xml").unlink(missing_ok=True)
        self.entries = self.entries[-self.keep:]
        persist.atomic_write(self.dir / "index.json",
                             json.dumps([asdict(e) for e in self.entries]).encode())
        return c

    def by_back(self, n: int) -> Commit | None:
        """The commit ``n`` steps back (0 = the current running, 1 = the one before...)."""
        return self.entries[-1 - n] if 0 <= n < len(self.entries) else None

    def config(self, c: Commit) -> etree._Element:
        """The running config stored with a commit."""
        parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False)
        return etree.fromstring((self.dir / f"{c.id}.xml").read_bytes(), parser)


def diff(old: etree._Element, new: etree._Element, old_name: str, new_name: str) -> str:
    """A unified diff of two configs, pretty-printed."""
    def lines(t: etree._Element) -> list[str]:
        t = etree.fromstring(etree.tostring(t), etree.XMLParser(remove_blank_text=True))
        return etree.tostring(t, pretty_print=True, encoding="unicode").splitlines(keepends=True)
    return "".join(difflib.unified_diff(lines(old), lines(new), old_name, new_name))
