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


def test_only_a_durable_journal_fsyncs(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """running (durable) fsyncs each record and a new log's folder; the candidate's records are
    written before append returns, and read back by a new server, without an fsync."""
    import os

    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    cand = Journal(tmp_path, "candidate", durable=False)
    cand.append(b"<one/>")
    cand.append(b"<two/>")
    assert synced == []
    assert Journal(tmp_path, "candidate").load() == (None, [b"<one/>", b"<two/>"])
    Journal(tmp_path, "running").append(b"<three/>")
    assert len(synced) == 2  # the record and the new log's folder
