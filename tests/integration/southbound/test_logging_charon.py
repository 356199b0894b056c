"""/ike/logging carried to a real charon (5.9.8): what it sends to syslog, caught on the socket it
writes to, per facility and subsystem, at start and after a VICI reload-settings.

charon writes syslog with syslog(3), to ``/dev/log``. Each test's charon runs (as our code starts
it: ``CharonProcess`` in a network namespace, private mount namespace, tmpfs on /run) with a
private ``/dev`` whose ``log`` is a link to a datagram socket the test binds under the host's
/run: the same path as a systemd host's ``/dev/log -> /run/systemd/journal/dev-log``, so the
bind-through of that socket into charon's private /run (``charon.syslog_socket``) is exercised
too. A message is ``<PRI>TIMESTAMP charon: NN[GRP] text``; PRI is facility * 8 + severity:
daemon is 3, authpriv 10 (LOG_AUTHPRIV), charon's severity is always info (6).

Needs root and ``ip netns`` (CI runs as root): fails loudly, never skips, when unusable.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import southbound.charon as charon_mod
from nf.effective import GlobalOptions, Logging, LogLevels
from southbound.charon import CharonProcess
from southbound.charon_conf import MODEL_DEFAULTS, apply_method
from southbound.convert import shared_for
from southbound.vici_client import ViciClient
from tests.integration.southbound.test_charon_pair import PSK
from tests.support import netns as support_netns

pytestmark = pytest.mark.e2e

DAEMON, AUTHPRIV = 3, 10  # syslog facilities (LOG_DAEMON >> 3, LOG_AUTHPRIV >> 3)
INFO = 6
_SEQ = itertools.count()
_MSG = re.compile(r"^<(\d+)>.*? charon: \d+\[(\w+)\] (.*)$", re.S)


class Syslog:
    """A datagram socket standing for the host's syslog socket: the messages it got, as
    (facility, severity, group, text)."""

    def __init__(self) -> None:
        self.dir = Path(f"/run/ipnf-test-syslog-{os.getpid()}-{next(_SEQ)}")
        self.dir.mkdir(mode=0o755)
        self.path = self.dir / "dev-log"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.settimeout(0.1)

    def take(self, settle: float = 0.5) -> list[tuple[int, int, str, str]]:
        """The messages received until none came for ``settle`` seconds."""
        out = []
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < settle:
            try:
                raw = self.sock.recv(65536).decode(errors="replace")
            except TimeoutError:
                continue
            quiet_since = time.monotonic()
            m = _MSG.match(raw.strip())
            assert m, raw
            pri, group, text = m.groups()
            out.append((int(pri) >> 3, int(pri) & 7, group, text))
        return out

    def close(self) -> None:
        self.sock.close()
        self.path.unlink(missing_ok=True)
        self.dir.rmdir()


class LoggedCharon(CharonProcess):
    """Our charon, with a private /dev in its mount namespace whose ``log`` links to
    ``syslog`` (charon needs null, zero, random, urandom and net/tun from the real /dev)."""

    def __init__(self, *args: object, syslog: Syslog, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.syslog = syslog

    def command(self) -> list[str]:
        argv = super().command()
        orig = shlex.quote(str(self.run_dir / "dev-orig"))
        steps = [f"mkdir -p {orig}", f"mount --rbind /dev {orig}",
                 "mount -t tmpfs -o mode=755 tmpfs /dev", "mkdir /dev/net /dev/shm /dev/pts"]
        steps += [f": > /dev/{n} && mount --bind {orig}/{n} /dev/{n}"
                  for n in ("null", "zero", "full", "random", "urandom", "net/tun")]
        steps.append(f"ln -s {shlex.quote(str(self.syslog.path))} /dev/log")
        argv[-1] = " && ".join(steps) + " || exit 1; " + argv[-1]
        return argv


@pytest.fixture
def syslog(monkeypatch: pytest.MonkeyPatch) -> Iterator[Syslog]:
    s = Syslog()
    # the host's syslog socket, as a systemd host has it under /run
    monkeypatch.setattr(charon_mod, "syslog_socket", lambda: s.path)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def netns() -> Iterator[str]:
    with support_netns("log", ()) as ns:
        yield ns


def logging(daemon: LogLevels, authpriv: LogLevels) -> GlobalOptions:
    return replace(MODEL_DEFAULTS, logging=Logging(daemon=daemon, authpriv=authpriv))


def started(tmp_path: Path, ns: str, syslog: Syslog, options: GlobalOptions) -> LoggedCharon:
    charon = LoggedCharon(tmp_path / "run", options=options, netns=ns, syslog=syslog)
    charon.start()
    return charon


def vici_stats(charon: CharonProcess) -> None:
    """One VICI session: charon logs its connect, command and disconnect ([CFG], level 2)."""
    with ViciClient(charon.socket_path) as c:
        c.stats()


def load_key(charon: CharonProcess) -> None:
    """A VICI load-shared: charon logs "loaded IKE shared key" ([CFG], level 1) besides the
    session's level-2 lines."""
    with ViciClient(charon.socket_path) as c:
        c.load_shared("k", shared_for(PSK))


def level2(got: list[tuple[int, int, str, str]]) -> list[str]:
    return [t for *_, t in got if t.startswith("vici client")]


def level1(got: list[tuple[int, int, str, str]]) -> list[str]:
    return [t for *_, t in got if t.startswith("loaded IKE shared key")]


def test_levels_per_facility_and_subsystem_and_a_reload(
        tmp_path: Path, netns: str, syslog: Syslog) -> None:
    """daemon: only [DMN] up to 1; authpriv: only [CFG] up to 2. A VICI reload-settings with
    [CFG] moved to daemon at level 1 takes effect at once (level-1 lines there, level-2 lines
    nowhere), charon kept: what the "reload" of apply_method promises."""
    first = logging(LogLevels(default="disable", daemon=1), LogLevels(default="disable", config=2))
    charon = started(tmp_path, netns, syslog, first)
    try:
        vici_stats(charon)
        got = syslog.take()
        assert {(f, sev) for f, sev, _, _ in got} == {(DAEMON, INFO), (AUTHPRIV, INFO)}, got
        assert {g for f, _, g, _ in got if f == DAEMON} == {"DMN"}, got
        assert any("Starting IKE charon daemon" in t for f, _, _, t in got if f == DAEMON), got
        assert {g for f, _, g, _ in got if f == AUTHPRIV} == {"CFG"}, got
        assert any(re.match(r"vici client \d+ requests: stats", t) for t in level2(got)), got

        second = logging(LogLevels(default="disable", daemon=1, config=1),
                         LogLevels(default="disable"))
        assert apply_method(first, second) == "reload"
        pid = charon.pid
        charon.reload(second)
        syslog.take()  # the reload's own session, logged while the levels change
        vici_stats(charon)
        assert syslog.take() == []  # level 2: no longer anywhere
        load_key(charon)
        got = syslog.take()
        assert charon.pid == pid and charon.alive()
        assert {(f, g) for f, _, g, _ in got} == {(DAEMON, "CFG")}, got
        assert level1(got) and not level2(got), got
    finally:
        charon.stop()


def test_the_manuals_defaults(tmp_path: Path, netns: str, syslog: Syslog) -> None:
    """The manual's defaults (daemon 0, authpriv disable): none of the level-1 and -2 messages
    of a start and VICI sessions reach syslog, on either facility; the manual's example
    (authpriv default 1, ike 2) sends the level-1 ones to authpriv."""
    charon = started(tmp_path, netns, syslog, MODEL_DEFAULTS)
    try:
        vici_stats(charon)
        load_key(charon)
        assert syslog.take() == []
        example = logging(MODEL_DEFAULTS.logging.daemon, LogLevels(default=1, ike=2))
        assert apply_method(MODEL_DEFAULTS, example) == "reload"
        charon.reload(example)
        syslog.take()
        load_key(charon)
        got = syslog.take()
        assert {(f, g) for f, _, g, _ in got} == {(AUTHPRIV, "CFG")}, got
        assert level1(got) and not level2(got), got
    finally:
        charon.stop()
