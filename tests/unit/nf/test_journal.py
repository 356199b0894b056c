"""The journal's clear(): the log kept in place (a clear mark appended, no truncation), the
next record read back alone."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from nf.journal import Journal


def test_clear_keeps_an_empty_log_and_forgets_the_records(tmp_path: Path) -> None:
    j = Journal(tmp_path, "candidate")
    j.append(b"<one/>")
    log = j.log_path()
    inode = log.stat().st_ino
    size = log.stat().st_size
    j.clear()
    assert log.exists() and log.stat().st_ino == inode and log.stat().st_size > size
    assert Journal(tmp_path, "candidate").load() == (None, [])
    j.clear()  # cleared already: nothing more written
    assert log.stat().st_size == j.log_size
    j.append(b"<two/>")
    assert Journal(tmp_path, "candidate").load() == (None, [b"<two/>"])
    j.clear()
    j.append(b"<three/>")
    j.append(b"<four/>")
    assert Journal(tmp_path, "candidate").load() == (None, [b"<three/>", b"<four/>"])


def test_clear_truncates_a_log_grown_over_min_log(tmp_path: Path) -> None:
    j = Journal(tmp_path, "candidate", min_log=100)
    j.append(b"<one>" + b"x" * 200 + b"</one>")
    j.clear()
    assert j.log_path().stat().st_size == j.log_size == 0
    assert Journal(tmp_path, "candidate").load() == (None, [])


def test_a_torn_record_after_a_clear_mark_is_dropped(tmp_path: Path) -> None:
    j = Journal(tmp_path, "candidate")
    j.append(b"<one/>")
    j.clear()
    j.append(b"<two/>")
    with open(j.log_path(), "ab") as f:
        f.write(b"\x00\x00\x00\x09torn")
    again = Journal(tmp_path, "candidate")
    assert again.load() == (None, [b"<two/>"])
    assert again.log_path().stat().st_size == again.log_size


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
    for name in ("fsync", "fdatasync"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda fd, real=real: (synced.append(fd), real(fd))[1])
    cand = Journal(tmp_path, "candidate", durable=False)
    cand.append(b"<one/>")
    cand.append(b"<two/>")
    assert synced == []
    assert Journal(tmp_path, "candidate").load() == (None, [b"<one/>", b"<two/>"])
    Journal(tmp_path, "running").append(b"<three/>")
    assert len(synced) == 2  # the record and the new log's folder
