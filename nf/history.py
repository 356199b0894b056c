"""Commit history: the last N commits of running, each with who, when, why, and the images of
the entries it changed (before and after), so showing or undoing one costs what it changed.

A commit's history file is written (fsynced, renamed, its folder fsynced) by a background
thread after the commit is answered, and the oldest file unlinked there too: running is made
durable by its journal before ``<ok/>``, the history is not on that path. Until its file is
written an entry is served from memory (list-commits, show-commit-diff and rollback see it at
once); a crash before that loses at most those history entries, never a change of running.
"""

from __future__ import annotations

import atexit
import copy
import difflib
import json
import logging
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

from lxml import etree

from nf import persist
from nf.tree import EntryKey, Tree

log = logging.getLogger(__name__)
KEEP = 20
Images = dict[EntryKey, etree._Element | None]
# printable ASCII that neither an XML attribute in double quotes nor a JSON string escapes:
# such a value is written as it is (most names and keys; a bulk commit writes thousands)
_PLAIN = re.compile(r"[ !#-%(-;=?-\[\]-~]*")


def _attr(value: str) -> str:
    """``value`` as an XML attribute value, quoted (``quoteattr``'s, faster when plain)."""
    return f'"{value}"' if _PLAIN.fullmatch(value) else quoteattr(value)


def _key_attr(parts: tuple[str, ...]) -> str:
    """An entry key's values as the JSON list attribute ``images`` reads back."""
    if all(_PLAIN.fullmatch(v) for v in parts):
        return "'[" + ",".join(f'"{v}"' for v in parts) + "]'"
    return quoteattr(json.dumps(list(parts)))


@dataclass(frozen=True)
class Commit:
    """One entry of the history."""

    id: int
    time: str
    user: str
    session_id: int
    comment: str


class History:
    """Keeps the last ``keep`` commits under ``<state_dir>/history``."""

    def __init__(self, state_dir: Path, keep: int = KEEP) -> None:
        self.dir = state_dir / "history"
        self.keep = keep
        # one writer per folder in the process: a History opened again on the same folder
        # (a test, a restart of the App in one process) reads what the last one recorded
        self._writer = _writer_of(self.dir)
        self._writer.flush()
        self.entries = _load_entries(self.dir)[-keep:]

    def record(self, before: Images, after: Images, user: str, session_id: int,
               comment: str) -> Commit:
        """Store a new commit with the before/after images of what it changed."""
        cid = self.entries[-1].id + 1 if self.entries else 1
        c = Commit(cid, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), user, session_id,
                   comment)
        # who/when/why ride in the commit's own file: one durable write per commit (an index
        # file beside it cost a second fsync of a file and of the folder before <ok/>)
        parts = [f"<commit id={quoteattr(str(cid))} time={quoteattr(c.time)} "
                 f"user={quoteattr(user)} session-id={quoteattr(str(session_id))} "
                 f"comment={quoteattr(comment)}>".encode()]
        for key in before:  # serialized piece by piece: the images are never copied
            parts.append(f"<entry top={_attr(key[0])} tag={_attr(key[1] or '')} "
                         f"key={_key_attr(key[2])}>".encode())
            for side, img in (("before", before[key]), ("after", after.get(key))):
                parts.append(f"<{side}>".encode())
                if img is not None:
                    parts.append(etree.tostring(img))
                parts.append(f"</{side}>".encode())
            parts.append(b"</entry>")
        parts.append(b"</commit>")
        self.entries.append(c)
        dropped = [old.id for old in self.entries[:-self.keep]]
        self.entries = self.entries[-self.keep:]
        # the old files go after the new one is written: a crash leaves one commit more
        self._writer.put(cid, b"".join(parts), dropped)
        return c

    def flush(self) -> None:
        """Wait until every recorded commit's file is written (or failed to be)."""
        self._writer.flush()

    def by_back(self, n: int) -> Commit | None:
        """The commit ``n`` steps back (0 = the newest, which made the running config)."""
        return self.entries[-1 - n] if 0 <= n < len(self.entries) else None

    def images(self, c: Commit) -> tuple[Images, Images]:
        """The before and after images of a commit."""
        raw = self._writer.unwritten_data(c.id)
        if raw is None:  # written: the writer forgets it only once its file is in place
            raw = (self.dir / f"{c.id}.xml").read_bytes()
        doc = etree.fromstring(raw, etree.XMLParser(remove_blank_text=True, huge_tree=True))
        before: Images = {}
        after: Images = {}
        for e in doc:
            key: EntryKey = (e.get("top"), e.get("tag") or None, tuple(json.loads(e.get("key"))))
            for side, out in (("before", before), ("after", after)):
                s = e.find(side)
                out[key] = s[0] if s is not None and len(s) else None
        return before, after

    def undo(self, running: etree._Element, top: dict, n: int) -> etree._Element:
        """The running config as it was ``n`` commits ago (undoing the newest n commits)."""
        t = Tree(copy.deepcopy(running), top)
        for back in range(n):
            before, _ = self.images(self.entries[-1 - back])
            txn = t.begin()
            for key, img in before.items():
                cur = t.lookup(key)
                parent = t.root if key[1] is None else t.root.find(key[0])
                if parent is None and img is not None:
                    parent = etree.SubElement(t.root, key[0])
                if cur is not None and img is not None:
                    txn.replace(cur, copy.deepcopy(img))
                elif cur is not None:
                    txn.remove(cur.getparent(), cur)
                elif img is not None:
                    txn.append(parent, copy.deepcopy(img))
        return t.root


class _Writer:
    """Writes one history folder's files in order, in a thread of its own (started with the
    first commit: handing it a file costs a notify, not a thread start). It is a daemon; at
    the interpreter's exit :func:`flush_all` waits for the files still queued."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: deque[tuple[int, bytes, list[int]]] = deque()
        self._unwritten: dict[int, bytes] = {}
        self._busy = False  # a file taken from the queue is being written
        self._thread: threading.Thread | None = None

    def put(self, cid: int, data: bytes, dropped: list[int]) -> None:
        """Write commit ``cid``'s file, then remove the files of ``dropped``."""
        with self._lock:
            self._unwritten[cid] = data
            for old in dropped:
                self._unwritten.pop(old, None)
            self._queue.append((cid, data, dropped))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="history-writer",
                                                daemon=True)
                self._thread.start()
            self._changed.notify_all()

    def unwritten_data(self, cid: int) -> bytes | None:
        """A commit's file content while it is not written yet (or could not be)."""
        with self._lock:
            return self._unwritten.get(cid)

    def flush(self) -> None:
        """Wait until what is queued is written."""
        with self._lock:
            while self._queue or self._busy:
                self._changed.wait()

    def _run(self) -> None:
        while True:
            with self._lock:
                self._busy = False
                self._changed.notify_all()
                while not self._queue:
                    self._changed.wait()
                cid, data, dropped = self._queue.popleft()
                self._busy = True
            try:
                persist.atomic_write(self.dir / f"{cid}.xml", data)
                with self._lock:
                    self._unwritten.pop(cid, None)
            except Exception as e:  # kept in memory: still served while the process runs
                log.error("cannot store commit %d in the history: %s", cid, e)
            for old in dropped:
                try:
                    (self.dir / f"{old}.xml").unlink(missing_ok=True)
                except OSError as e:
                    log.error("cannot remove the history's commit %d: %s", old, e)


_writers: dict[Path, _Writer] = {}
_writers_lock = threading.Lock()


@atexit.register
def flush_all() -> None:
    """Wait for every history file queued in this process (run at the interpreter's exit; a
    process ending with ``os._exit`` calls it first)."""
    with _writers_lock:
        writers = list(_writers.values())
    for w in writers:
        w.flush()


def _writer_of(directory: Path) -> _Writer:
    with _writers_lock:
        w = _writers.get(directory.resolve())
        if w is None:
            w = _writers[directory.resolve()] = _Writer(directory)
        return w


def _load_entries(directory: Path) -> list[Commit]:
    """The stored commits, oldest first: each file's <commit> attributes (a file of an older
    version, without them, takes its entry from the index.json that version kept)."""
    raw = persist.read(directory / "index.json")
    legacy = {e["id"]: Commit(**e) for e in json.loads(raw)} if raw else {}
    ids = sorted(int(p.stem) for p in directory.glob("*.xml") if p.stem.isdigit())
    out = []
    for cid in ids:
        try:
            _, head = next(etree.iterparse(str(directory / f"{cid}.xml"), events=("start",),
                                           huge_tree=True))
        except (etree.XMLSyntaxError, StopIteration):
            continue  # cannot be read: not offered for rollback
        if head.get("time") is not None:
            out.append(Commit(cid, head.get("time"), head.get("user", ""),
                              int(head.get("session-id", "0")), head.get("comment", "")))
        elif cid in legacy:
            out.append(legacy[cid])
    return out


def diff(before: Images, after: Images, old_name: str, new_name: str) -> str:
    """A unified diff of the changed entries, pretty-printed."""
    def lines(imgs: Images) -> list[str]:
        out: list[str] = []
        for key in sorted(imgs, key=lambda k: (k[0], k[1] or "", k[2])):
            img = imgs[key]
            if img is not None:
                t = etree.fromstring(etree.tostring(img), etree.XMLParser(remove_blank_text=True))
                etree.cleanup_namespaces(t)
                out += etree.tostring(t, pretty_print=True, encoding="unicode").splitlines(True)
        return out
    return "".join(difflib.unified_diff(lines(before), lines(after), old_name, new_name))
