"""Crash-safe persistence of a config that changes a little at a time.

A base snapshot (`NAME.xml`, generation G) plus an append-only log of change records
(`NAME.G.log`). Each record is a length, a SHA-256 and the payload, fsynced before the commit is
acknowledged; a torn last record (a crash while appending) is ignored on load. When the log
grows, a new base (G+1) is written atomically and the old log removed: a crash at any instant
leaves either the old base with its full log, or the new base.

An empty record is a clear mark: the records before it are forgotten. Clearing a small log
appends one instead of truncating the file, which waits on the disk (ext4 flushes a file
truncated to zero and written again).
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

from lxml import etree

from nf import persist

GEN_ATTR = "generation"
_HEAD = struct.Struct(">I32s")
CLEAR_MARK = b""  # the payload of a clear mark


class Journal:
    """The files of one persisted datastore."""

    def __init__(self, directory: Path, name: str, min_log: int = 1 << 20,
                 durable: bool = True) -> None:
        self.dir = directory
        self.name = name
        self.min_log = min_log
        # False: records are written before append returns (they survive the process) but not
        # fsynced (a power loss may drop the last ones; a torn record is ignored on load)
        self.durable = durable
        self.generation = 0
        self.base_size = 0
        self.log_size = 0
        self._cleared = False  # is the log's last record a clear mark?
        self._log_path: tuple[int, Path] = (-1, directory)

    @property
    def base_path(self) -> Path:
        return self.dir / f"{self.name}.xml"

    def log_path(self, generation: int | None = None) -> Path:
        """The log of a generation (the current one by default)."""
        gen = self.generation if generation is None else generation
        if self._log_path[0] != gen:  # (kept: a Path is built for every record otherwise)
            self._log_path = (gen, self.dir / f"{self.name}.{gen}.log")
        return self._log_path[1]

    def load(self) -> tuple[etree._Element | None, list[bytes]]:
        """The base tree (None if never stored) and the intact log records after it."""
        raw = persist.read(self.base_path)
        root = None
        self.generation = self.base_size = 0
        if raw is not None:
            parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False,
                                     huge_tree=True)
            root = etree.fromstring(raw, parser)
            self.generation = int(root.attrib.pop(GEN_ATTR, "0"))
            self.base_size = len(raw)
        for stale in self.dir.glob(f"{self.name}.*.log"):
            if stale != self.log_path():
                stale.unlink(missing_ok=True)
        records, good = _read_records(persist.read(self.log_path()) or b"")
        self.log_size, self._cleared = good, False
        if good != (self.log_path().stat().st_size if self.log_path().exists() else 0):
            with open(self.log_path(), "r+b") as f:  # drop a torn tail
                f.truncate(good)
        return root, records

    def append(self, payload: bytes) -> None:
        """Add a record durably."""
        rec = _HEAD.pack(len(payload), hashlib.sha256(payload).digest()) + payload
        fd = os.open(self.log_path(), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            # an empty log may be one just created: its name is then made durable too (no
            # stat before the open: one system call less per record)
            new = self.log_size == 0 and os.fstat(fd).st_size == 0
            os.write(fd, rec)
            if self.durable:
                os.fdatasync(fd)  # the data and the size (what a reader needs), not the times
        except OSError:
            os.ftruncate(fd, self.log_size)  # no half record may hide the next ones
            raise
        finally:
            os.close(fd)
        if new and self.durable:
            persist.fsync_dir(self.dir)
        self.log_size += len(rec)
        self._cleared = False

    def should_compact(self) -> bool:
        """Has the log grown enough to be folded into a new base?"""
        return self.log_size > max(self.min_log, self.base_size // 2)

    def write_base(self, root: etree._Element) -> None:
        """Store a whole new base (next generation) and drop the log."""
        old_log = self.log_path()
        root.set(GEN_ATTR, str(self.generation + 1))
        try:
            data = etree.tostring(root, encoding="utf-8", xml_declaration=True)
        finally:
            del root.attrib[GEN_ATTR]
        persist.atomic_write(self.base_path, data)  # raises: nothing changed, old log still valid
        self.generation += 1
        old_log.unlink(missing_ok=True)
        self.base_size, self.log_size = len(data), 0

    def clear(self) -> None:
        """Forget everything stored, keeping the log of generation 0 in place when that is all
        there was (a clear mark appended, or truncated once it is over ``min_log``): the next
        record then needs no fsync of the folder for a new name. Like :meth:`remove`, not
        durable by itself."""
        log = self.log_path()
        if self.generation == 0 and self.base_size == 0 and (
                self.log_size or (not self.base_path.exists() and log.exists())):
            if self.log_size > self.min_log:
                os.truncate(log, 0)
                self.log_size = 0
            elif self.log_size and not self._cleared:
                self._mark_clear(log)
            self.base_size = 0
            return
        self.remove()
        self.generation = 0

    def _mark_clear(self, log: Path) -> None:
        rec = _HEAD.pack(0, hashlib.sha256(CLEAR_MARK).digest())
        with open(log, "ab") as f:
            f.write(rec)
        self.log_size += len(rec)
        self._cleared = True

    def remove(self) -> None:
        """Forget everything stored."""
        self.base_path.unlink(missing_ok=True)
        for log in self.dir.glob(f"{self.name}.*.log"):
            log.unlink(missing_ok=True)
        self.base_size = self.log_size = 0


def _read_records(data: bytes) -> tuple[list[bytes], int]:
    out, pos = [], 0
    while pos + _HEAD.size <= len(data):
        length, digest = _HEAD.unpack_from(data, pos)
        end = pos + _HEAD.size + length
        payload = data[pos + _HEAD.size:end]
        if end > len(data) or hashlib.sha256(payload).digest() != digest:
            break
        if payload == CLEAR_MARK:
            out = []
        else:
            out.append(payload)
        pos = end
    return out, pos
