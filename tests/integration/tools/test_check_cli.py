"""`ipsec-nf check` as a script runs it: a subprocess, its exit status, stdout and stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data"
SECRETS = ("0seaJ31RfzHNRvUSH0oUYg7znTW0I=", "check-errors-secret-42")
SCRIPT = Path(sys.executable).parent / "ipsec-nf"  # the console script of the venv


def check(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    cmd = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "tools.cli"]
    return subprocess.run([*cmd, "check", *args], input=stdin, text=True, capture_output=True,
                          cwd=ROOT, timeout=60)


def test_valid_file_exit_0_with_the_connections() -> None:
    r = check(str(DATA / "site_a.xml"))
    assert r.returncode == 0, r.stderr
    assert "vpn siteA-siteB" in r.stdout and "connections {" in r.stdout
    assert r.stderr == ""
    assert not any(s in r.stdout for s in SECRETS)


def test_json_from_stdin() -> None:
    r = check("--format", "json", "-", stdin=(DATA / "site_a.json").read_text())
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["file"] == "<stdin>" and "siteA-siteB" in report["load"]["vpn"]
    assert not any(s in r.stdout for s in SECRETS)


def test_errors_exit_1_each_with_its_path() -> None:
    r = check(str(DATA / "check_errors.xml"))
    assert r.returncode == 1 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 5 and lines[-1].endswith("4 errors")
    assert all("/ipsec-nf:ike/" in line for line in lines[:-1])
    assert "not-supported-by-backend" in r.stderr
    assert not any(s in r.stderr for s in SECRETS)
    r = check("--backend", "kernel-netlink", str(DATA / "check_errors.xml"))
    assert r.returncode == 1 and r.stderr.splitlines()[-1].endswith("3 errors")
    assert "not-supported-by-backend" not in r.stderr


def test_malformed_or_usage_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<config>\n<ike xmlns='urn:ipsec-nf:yang:ipsec-nf'>\n</config>\n")
    r = check(str(bad))
    assert r.returncode == 2 and "not well-formed XML" in r.stderr and "line 3" in r.stderr
    r = check("--backend", "nope", str(bad))
    assert r.returncode == 2 and "invalid choice" in r.stderr
    r = check("--help")
    assert r.returncode == 0 and "exit status" in r.stdout
