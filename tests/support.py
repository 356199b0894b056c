"""Constants and small helpers shared by the tests."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parent / "data"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS = "urn:ipsec-nf:yang:ipsec-nf"
P = {"nc": NC, "i": NS}


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command, failing the test with its output."""
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if check and res.returncode != 0:
        pytest.fail(f"{' '.join(argv)} failed ({res.returncode}): {res.stderr}{res.stdout}")
    return res


def wait_for(pred: Callable[[], Any], timeout: float = 30, every: float = 0.5) -> Any:
    """Poll ``pred`` until it returns something true or ``timeout`` passes; its last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(every)
    return last
