"""`ipsec-nf serve --backend kernel-netlink` refuses to start on a kernel without ESP (our CI
hosts), with the reason, before it creates anything. Where the kernel has ESP it passes the
check: that side is tested in the kernel guest (tests/kernel/guest), where both sites serve
with kernel-netlink."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from southbound.kernel_esp import esp_sources
from tests.integration.tools.gateway import ROOT


def test_kernel_netlink_needs_kernel_esp(tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.cli", "serve", "--state-dir", str(state),
         "--backend", "kernel-netlink", "--listen", "127.0.0.1:18830"],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
        assert esp_sources(), f"serve ran on a kernel without ESP:\n{out}"
        assert "has no ESP" not in out, out
        return
    if esp_sources():  # a host with ESP: it must not have been refused for ESP
        assert "has no ESP" not in out, out
        return
    assert proc.returncode == 1, out
    assert "refusing to start: the kernel" in out and "has no ESP" in out, out
    assert "--backend kernel-libipsec" in out, out
    assert not state.exists(), "serve created its state before refusing"
    # the default backend is not affected by the check
    r = subprocess.run([sys.executable, "-m", "tools.cli", "serve", "--help"], cwd=ROOT,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "kernel-netlink" in r.stdout
