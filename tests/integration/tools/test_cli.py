"""The ipsec-nf command: version, help, passwd (stdin and terminal) and clear failures of
serve."""

from __future__ import annotations

import importlib.metadata
import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from tools.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[3]


def cli(*args: str, stdin: str = "", ns: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "tools.cli", *args]
    if ns:
        cmd = ["ip", "netns", "exec", ns, *cmd]
    return subprocess.run(cmd, input=stdin, text=True, capture_output=True, cwd=ROOT,
                          timeout=60)


def test_passwd_first_user_is_admin(tmp_path: Path) -> None:
    r = cli("passwd", "--state-dir", str(tmp_path), "alice", stdin="pw-alice\n")
    assert r.returncode == 0 and "admin" in r.stdout
    r = cli("passwd", "--state-dir", str(tmp_path), "--group", "operators", "bob",
            stdin="pw-bob\n")
    assert r.returncode == 0 and "operators" in r.stdout and "admin" not in r.stdout
    users = json.loads((tmp_path / "users.json").read_text())
    assert "pw-alice" not in json.dumps(users)  # only salted hashes are stored
    assert oct((tmp_path / "users.json").stat().st_mode & 0o777) == "0o600"
    r = cli("passwd", "--state-dir", str(tmp_path), "carol", stdin="\n")
    assert r.returncode == 2 and "empty password" in r.stderr


def test_serve_reports_a_bad_listen_address_and_cleans_up(tmp_path: Path) -> None:
    ns = f"nfcli{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        r = cli("serve", "--state-dir", str(tmp_path), "--listen", "192.0.2.77:8830", ns=ns)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "cannot assign requested address" in r.stderr
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
        assert pids.stdout.strip() == "", "charon was left running"
    finally:
        subprocess.run(["ip", "netns", "del", ns])


def test_version() -> None:
    r = cli("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"ipsec-nf {importlib.metadata.version('ipsec-nf')}"


def test_top_level_help_lists_every_subcommand() -> None:
    r = cli("--help")
    assert r.returncode == 0, r.stderr
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS)
    helps = {c.dest: c.help for c in sub._choices_actions}
    for name in COMMANDS:
        assert helps.get(name), f"{name} has no help line"
        line = next((ln for ln in r.stdout.splitlines() if ln.split()[:1] == [name]), None)
        assert line is not None, f"{name} missing from the help:\n{r.stdout}"
        assert helps[name].split()[0] in line
        sub_help = cli(name, "--help")
        assert sub_help.returncode == 0 and f"ipsec-nf {name}" in sub_help.stdout


def on_terminal(args: list[str], answers: list[str], timeout: float = 30) -> tuple[int, str]:
    """Run ipsec-nf on a pseudo-terminal (its controlling terminal), typing each answer after
    the next prompt; (exit status, everything the terminal showed)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec at once
        os.chdir(ROOT)
        os.execv(sys.executable, [sys.executable, "-m", "tools.cli", *args])
    shown = b""
    deadline = time.monotonic() + timeout

    def read_some() -> bytes:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise TimeoutError(f"no prompt within {timeout}s: {shown!r}")
        try:
            return os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            return b""

    try:
        for answer in answers:
            seen = len(shown)
            while not shown[seen:].rstrip().endswith(b":"):
                chunk = read_some()
                if not chunk:
                    break
                shown += chunk
            os.write(fd, answer.encode() + b"\n")
        while chunk := read_some():
            shown += chunk
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def test_passwd_on_a_terminal_asks_twice_without_echo(tmp_path: Path) -> None:
    code, shown = on_terminal(["passwd", "--state-dir", str(tmp_path), "alice"],
                              ["typed-secret-1", "typed-secret-1"])
    assert code == 0, shown
    assert "New password for alice:" in shown and "again:" in shown
    assert "typed-secret-1" not in shown  # not echoed
    assert "groups admin" in shown
    # the password set is the one typed
    from northbound.users import verify
    assert verify(tmp_path, "alice", "typed-secret-1")


def test_passwd_on_a_terminal_refuses_different_answers(tmp_path: Path) -> None:
    code, shown = on_terminal(["passwd", "--state-dir", str(tmp_path), "alice"],
                              ["first-answer", "second-answer"])
    assert code == 2 and "do not match" in shown, shown
    assert not (tmp_path / "users.json").exists()
