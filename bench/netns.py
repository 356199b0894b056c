"""Run a benchmark script again inside a throw-away network namespace (root needed)."""

from __future__ import annotations

import os
import subprocess
import sys


def rerun_inside(script: str, argv: list[str]) -> int:
    """Run ``script --inner argv...`` in a new netns with lo up and 198.51.100.1 on it;
    delete the namespace afterwards. Returns the exit status."""
    ns = f"nfbench{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "-n", ns, "addr", "add", "198.51.100.1/32", "dev", "lo"],
                       check=True)
        return subprocess.run(["ip", "netns", "exec", ns, sys.executable, script, "--inner",
                               *argv]).returncode
    finally:
        subprocess.run(["ip", "netns", "del", ns])
