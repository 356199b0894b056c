"""southbound.log_follow: the lines a daemon appends to its log, followed."""

from __future__ import annotations

import time
from pathlib import Path

from southbound.log_follow import FollowedLog


def _follow(path: Path) -> tuple[FollowedLog, list[str]]:
    lines: list[str] = []
    return FollowedLog(path, lines.append, "test"), lines


def test_only_whole_lines_appended_after_start_are_handed_on(tmp_path: Path) -> None:
    path = tmp_path / "charon.log"
    path.write_bytes(b"before the start\n")
    follow, lines = _follow(path)
    follow._offset = path.stat().st_size  # as start() does, without the thread
    with path.open("ab") as f:
        f.write(b"one\ntw")
    follow.poll()
    assert lines == ["one"]
    with path.open("ab") as f:
        f.write(b"o\nthree\n")
    follow.poll()
    assert lines == ["one", "two", "three"]


def test_a_missing_file_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "charon.log"
    follow, lines = _follow(path)
    follow.poll()
    path.write_bytes(b"first\n")
    follow.poll()
    assert lines == ["first"]


def test_a_file_made_anew_is_read_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "charon.log"
    follow, lines = _follow(path)
    path.write_bytes(b"a long first line\n")
    follow.poll()
    path.write_bytes(b"new\n")  # shorter than what was read
    follow.poll()
    assert lines == ["a long first line", "new"]


def test_the_thread_follows_and_stops(tmp_path: Path) -> None:
    path = tmp_path / "charon.log"
    path.write_bytes(b"old\n")
    lines: list[str] = []
    follow = FollowedLog(path, lines.append, "test", every=0.05)
    follow.start()
    with path.open("ab") as f:
        f.write(b"x\n")
    deadline = time.monotonic() + 5
    while not lines and time.monotonic() < deadline:
        time.sleep(0.02)
    follow.stop()
    assert lines == ["x"]
    assert not follow._thread.is_alive()
