"""The journal's clear(): an empty log kept in place, the next record read back alone."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from nf.journal import Journal


def test_clear_keeps_an_empty_log_and_forgets_the_records(tmp_path: Path) -> None:
    j = Journal(tmp_path, "candidate")
    j.append(b"<one/>")
    log = j.log_path()
    inode = log.stat().st_ino
    j.clear()
    assert log.exists() and log.stat().st_size == 0 and log.stat().st_ino == inode
    assert Journal(tmp_path, "candidate").load() == (None, [])
    j.append(b"<two/>")
    assert Journal(tmp_path, "candidate").load() == (None, [b"<two/>"])


def test_clear_after_a_base_removes_every_file(tmp_path: Path) -> None:
    j = Journal(tmp_path, "candidate")
    j.write_base(etree.fromstring(b"<config/>"))
    j.append(b"<one/>")
    j.clear()
    assert list(tmp_path.iterdir()) == []
    assert j.generation == 0 and j.log_path().name == "candidate.0.log"
    j.append(b"<two/>")
    assert Journal(tmp_path, "candidate").load() == (None, [b"<two/>"])
