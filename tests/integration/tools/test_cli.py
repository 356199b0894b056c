"""The ipsec-nf command: passwd rules and clear failures of serve."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
