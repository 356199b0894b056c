"""Every example of the README works as written.

The examples live in docs/examples/ and appear verbatim in README.md (checked here); each is
run, unchanged, against a real `ipsec-nf serve` listening on 127.0.0.1:830 inside a private
network namespace, with the password in IPSEC_NF_PASSWORD as the README says.

Needs root and `ip netns` (CI runs as root); it fails, never skips, when they are missing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import sh

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
PASSWORD = "readme-example-password"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server on 127.0.0.1:830 in a namespace of its own; yields the namespace."""
    if os.geteuid() != 0:
        pytest.fail("this test needs root (ip netns, charon); run it as root")
    ns = f"nfreadme{os.getpid()}"
    state = tmp_path_factory.mktemp("readme")
    sh("ip", "netns", "add", ns)
    proc = None
    try:
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        subprocess.run([sys.executable, "-m", "tools.cli", "passwd", "--state-dir", str(state),
                        "admin"], input=PASSWORD + "\n", text=True, check=True,
                       capture_output=True, cwd=ROOT)
        log = open(state / "serve.log", "ab")
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "tools.cli", "serve",
             "--state-dir", str(state), "--listen", "127.0.0.1:830",
             "--gnmi", "127.0.0.1:9339", "--gnmi-insecure"],  # gnmi.py
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT)
        deadline = time.monotonic() + 30
        while not listening(ns):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the server did not start:\n"
                            + (state / "serve.log").read_text(errors="replace")[-3000:])
            time.sleep(0.2)
        yield ns
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def listening(ns: str) -> bool:
    r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c",
                        "import socket; socket.create_connection(('127.0.0.1', 830), 1)"],
                       capture_output=True)
    return r.returncode == 0


def run_example(ns: str, name: str) -> str:
    """Run docs/examples/NAME as a user would (python or sh), in the server's namespace."""
    env = {"PATH": f"{BIN}:/usr/sbin:/usr/bin:/sbin:/bin", "IPSEC_NF_PASSWORD": PASSWORD,
           "HOME": os.environ.get("HOME", "/root")}
    cmd = [str(BIN / "python"), name] if name.endswith(".py") else ["sh", name]
    r = subprocess.run(["ip", "netns", "exec", ns, *cmd], cwd=EXAMPLES, env=env, text=True,
                       capture_output=True, timeout=120)
    assert r.returncode == 0, f"{name} failed:\n{r.stdout}\n{r.stderr}"
    assert "rpc-error" not in r.stdout, f"{name}:\n{r.stdout}"
    return r.stdout


def test_every_example_is_in_the_readme_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    for path in sorted(EXAMPLES.iterdir()):
        assert path.read_text().strip() in readme, f"{path.name} is not in README.md as is"


def test_push(server: str) -> None:
    out = run_example(server, "push.py")
    assert "<result>applied</result>" in out.replace(' xmlns="urn:ipsec-nf:yang:ipsec-nf"', "")


def test_read(server: str) -> None:
    out = run_example(server, "read.py")
    assert "siteA-siteB" in out and "apply-status" in out
    assert "<status>applied</status>" in out


def test_notifications(server: str) -> None:
    out = run_example(server, "notifications.py")
    assert "netconf-config-change" in out and "siteA-siteB" in out


def test_confirmed_commit(server: str) -> None:
    assert "confirmed" in run_example(server, "confirmed_commit.py")


def test_rollback(server: str) -> None:
    out = run_example(server, "rollback.py")
    assert "<commit" in out and "rolled back" in out


def test_actions(server: str) -> None:
    out = run_example(server, "actions.py")  # after push.py: the VPN is applied
    assert re.search(r"initiate: operation-failed CHILD_SA 'trunk' not established after "
                     r"\d+ms \(.*198\.51\.100\.2", out), out
    assert re.search(r"<ike-sa[^>]*>\d+</ike-sa>", out) and "<ok/>" in out  # clear, reset


def test_netconf_console2(server: str) -> None:
    out = run_example(server, "netconf-console2.sh")
    assert "siteA-siteB" in out and "apply-status" in out


def test_gnmi(server: str) -> None:
    out = run_example(server, "gnmi.py")  # after push.py: siteA-siteB exists
    assert "'name': 'ipsec-nf'" in out and "'val': '198.51.100.2'" in out
    assert "'sync_response': True" in out
    assert "'val': 'HQ to branch (gNMI)'" in out and "'op': 'DELETE'" in out


def test_check_offline() -> None:
    """check.sh needs no server: run as the README says, from docs/examples/."""
    env = {"PATH": f"{BIN}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": os.environ.get("HOME", "/root")}
    r = subprocess.run(["sh", "check.sh"], cwd=EXAMPLES, env=env, text=True,
                       capture_output=True, timeout=120)
    assert r.returncode == 0, f"check.sh failed:\n{r.stdout}\n{r.stderr}"
    assert "vpn siteA-siteB" in r.stdout and "connections {" in r.stdout
    assert r.stdout.rstrip().endswith("valid")
    assert "0seaJ31RfzHNRvUSH0oUYg7znTW0I=" not in r.stdout  # site-a.xml's secret


def test_yang_push(server: str) -> None:
    out = run_example(server, "yang_push.py")  # after push.py: siteA-siteB exists
    assert "push-update" in out and "siteA-siteB" in out
    assert "push-change-update" in out
    assert "<target>/ipsec-nf:ike/vpn=siteA-siteB/description</target>" in out
