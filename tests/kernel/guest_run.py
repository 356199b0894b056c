"""The guest run of the kernel harness: boot the guest once (tests/kernel/vm.py), run every
guest test in it, and read back its junit XML as the host's tests see it
(tests/kernel/test_kernel_vm.py).

It runs alone: beside the host's unit tests on two cores, QEMU's TCG and pytest slowed each
other down so much (the guest 8 -> 15 min, the unit tests about 3x) that the two together
took longer than one after the other.
"""

from __future__ import annotations

import ast
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from tests.kernel import vm

GUEST_DIR = Path(__file__).resolve().parent / "guest"
# seconds for boot + every guest test; QEMU is killed after it (the run takes 4-5 minutes on
# a quiet 2-core machine; a loaded one has needed several times that)
GUEST_TIMEOUT = 2400


def guest_tests() -> list[str]:
    """``FILE::FUNCTION`` of every test function of the guest test files (read, not run)."""
    out = []
    for f in sorted(GUEST_DIR.glob("test_*.py")):
        for node in ast.parse(f.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                out.append(f"{f.name}::{node.name}")
    return out


@dataclass
class Outcome:
    """The guest run as the host tests see it."""

    error: str | None = None  # the harness's own failure
    run: vm.GuestRun | None = None
    cases: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)
    # FILE::FUNCTION -> [(name with parameters, failure text or None)]

    def tail(self) -> str:
        if self.run is None:
            return ""
        return (f"--- guest output (tail) ---\n{self.run.output[-6000:]}\n"
                f"--- guest console (tail) ---\n{self.run.console[-3000:]}")


def parse_junit(path: Path) -> dict[str, list[tuple[str, str | None]]]:
    """The guest's junit XML as FILE::FUNCTION -> [(case name, problem or None)]."""
    cases: dict[str, list[tuple[str, str | None]]] = {}
    for tc in ET.parse(path).getroot().iter("testcase"):
        module = tc.get("classname", "").rsplit(".", 1)[-1]
        name = tc.get("name", "")
        key = f"{module}.py::{name.split('[', 1)[0]}"
        problem = None
        for tag in ("failure", "error", "skipped"):
            el = tc.find(tag)
            if el is not None:
                what = "skipped (a guest test must not skip)" if tag == "skipped" else tag
                problem = f"{what}: {el.get('message', '')}\n{el.text or ''}"
                break
        cases.setdefault(key, []).append((name, problem))
    return cases


def run_guest(results: Path) -> Outcome:
    """Boot the guest once, run every guest test in it, and read back what they gave."""
    junit = results / "junit.xml"
    # the hypothesis plugin alone costs a minute of start-up under TCG
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p",
           "no:hypothesispytest", "-m", "kernel", "-v", "--durations=0",
           "-rA", str(GUEST_DIR.relative_to(vm.CHECKOUT)),
           f"--junitxml=/ipsec-nf-results/{junit.name}"]
    try:
        run = vm.run(cmd, results, timeout=GUEST_TIMEOUT)
    except vm.HarnessError as e:
        return Outcome(error=f"kernel harness: {e}")
    out = Outcome(run=run)
    if run.rc is None:
        killed = f", killed after {GUEST_TIMEOUT} s" if run.qemu_rc in (124, 137) else ""
        out.error = (f"the guest reported no exit status (QEMU exit status {run.qemu_rc}"
                     f"{killed})")
    elif not junit.exists():
        out.error = f"the guest's pytest wrote no junit XML (exit status {run.rc})"
    else:
        out.cases = parse_junit(junit)
        if run.rc not in (0, 1):  # 1: some tests failed (reported one by one)
            out.error = f"the guest's pytest ended with exit status {run.rc}"
    return out
