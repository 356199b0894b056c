"""charon's syslog socket survives its private /run: the command that starts it binds a host
syslog socket living under /run (systemd's /run/systemd/journal/dev-log) through, best effort.
The real thing (a charon writing through it) is tests/integration/southbound/
test_logging_charon.py."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

import southbound.charon as charon_mod
from southbound.charon import CharonProcess, syslog_socket


def test_no_socket_under_run(tmp_path: Path) -> None:
    assert syslog_socket(str(tmp_path / "missing")) is None
    plain = tmp_path / "log"
    plain.touch()
    assert syslog_socket(str(plain)) is None  # not under /run: the tmpfs does not hide it


def test_a_link_into_run_is_followed(tmp_path: Path) -> None:
    target = Path("/run") / f"ipnf-unit-{tmp_path.name}"
    target.mkdir()
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(target / "dev-log"))
        (tmp_path / "log").symlink_to(target / "dev-log")
        assert syslog_socket(str(tmp_path / "log")) == target / "dev-log"
        sock.close()
    finally:
        (target / "dev-log").unlink(missing_ok=True)
        target.rmdir()


def test_command_binds_it_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(charon_mod, "syslog_socket", lambda: None)
    plain = CharonProcess(tmp_path).command()[-1]
    assert plain == "mount -t tmpfs tmpfs /run || exit 1; exec /usr/lib/ipsec/charon"
    journal = Path("/run/systemd/journal/dev-log")
    monkeypatch.setattr(charon_mod, "syslog_socket", lambda: journal)
    inner = CharonProcess(tmp_path).command()[-1]
    keep = tmp_path.resolve() / "dev-log"
    steps = [s.strip() for s in inner.split(";")]
    # kept before the tmpfs hides it, put back at its place in the new /run, then charon
    assert steps[0] == f"{{ : > {keep} && mount --bind {journal} {keep}"
    assert steps[2] == "mount -t tmpfs tmpfs /run || exit 1"
    assert steps[3] == (f"{{ mkdir -p {journal.parent} && : > {journal} && "
                        f"mount --bind {keep} {journal}")
    assert steps[-1] == "exec /usr/lib/ipsec/charon"
