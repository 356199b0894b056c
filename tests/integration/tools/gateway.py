"""Helpers of the tests that run `ipsec-nf serve` for real: a network namespace per test, the
server as a subprocess in it (from the checkout or from an installed virtual environment), and
ncclient sessions opened from inside the namespace."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ncclient import manager
from ncclient.transport import session as nc_session

from tests.support import netns as support_netns

ROOT = Path(__file__).resolve().parents[3]
CHECKOUT_CLI = (sys.executable, "-m", "tools.cli")
USER, PASSWORD = "admin", "gateway-test-pw"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def netns(prefix: str = "nft") -> Iterator[str]:
    """A fresh network namespace with lo up (127.0.0.1 and ::1), deleted afterwards."""
    with support_netns(prefix) as name:
        yield name


@contextlib.contextmanager
def in_netns(ns: str) -> Iterator[None]:
    """Run the calling thread inside ``ns`` (sockets created meanwhile belong to it)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)
        os.close(target)


def connect(ns: str, host: str = "127.0.0.1", port: int = 8830, user: str = USER,
            password: str = PASSWORD) -> Any:
    """An ncclient session to a server listening inside ``ns``."""
    nc_session.TICK = 0.001
    with in_netns(ns):
        return manager.connect(host=host, port=port, username=user, password=password,
                               hostkey_verify=False, allow_agent=False, look_for_keys=False,
                               timeout=30)


def add_user(state: Path, cli: tuple[str, ...] = CHECKOUT_CLI, user: str = USER,
             password: str = PASSWORD) -> None:
    """Create a user with ``ipsec-nf passwd`` (password on stdin)."""
    r = subprocess.run([*cli, "passwd", "--state-dir", str(state), user],
                       input=password + "\n", text=True, capture_output=True, cwd=ROOT,
                       timeout=60)
    if r.returncode != 0:
        pytest.fail(f"ipsec-nf passwd failed ({r.returncode}): {r.stderr}{r.stdout}")


class Server:
    """`ipsec-nf serve ARGS` in a namespace; its stdout and stderr go to files."""

    def __init__(self, ns: str, out: Path, args: list[str],
                 cli: tuple[str, ...] = CHECKOUT_CLI, env: dict[str, str] | None = None,
                 umask: int | None = None, cwd: Path = ROOT) -> None:
        self.ns, self.out, self.args = ns, out, args
        self.stdout, self.stderr = Path(f"{out}.stdout"), Path(f"{out}.stderr")
        full_env = {**os.environ, **(env or {})}
        with open(self.stdout, "wb") as so, open(self.stderr, "wb") as se:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, *cli, "serve", *args], cwd=cwd,
                stdin=subprocess.DEVNULL, stdout=so, stderr=se, env=full_env,
                preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)

    def log(self) -> str:
        """What the server wrote to stderr (its log) so far."""
        return self.stderr.read_text(errors="replace")

    def output(self) -> str:
        """What the server wrote to stdout so far."""
        return self.stdout.read_text(errors="replace")

    def wait_listening(self, count: int = 1, timeout: float = 60) -> None:
        """Wait until ``count`` "NETCONF listening" lines are on stdout; fail if it exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"ipsec-nf serve exited ({self.proc.returncode}):\n{self.log()}")
            if self.output().count("NETCONF listening") >= count:
                return
            time.sleep(0.1)
        pytest.fail(f"ipsec-nf serve not listening after {timeout}s:\n{self.log()}")

    def wait_log(self, text: str, timeout: float = 10) -> None:
        """Wait until ``text`` is in the log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            time.sleep(0.05)
        pytest.fail(f"{text!r} not logged within {timeout}s:\n{self.log()}")

    def exit_code(self, timeout: float = 60) -> int:
        """Wait for the server to exit by itself."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(f"ipsec-nf serve still running after {timeout}s:\n{self.log()}")

    def stop(self) -> int:
        """SIGTERM (then SIGKILL after 20 s); the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                pytest.fail(f"ipsec-nf serve ignored SIGTERM:\n{self.log()}")
        return self.proc.returncode

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
