"""Host side of the kernel harness: boot the guest ONCE (tests/kernel/vm.py), run every guest
test (tests/kernel/guest, marker `kernel`) in it, and report them here.

Each guest test function is one test of this module (`test_in_guest[FILE::FUNCTION]`,
found in the guest test files without importing them), which passes when every junit case of
that function passed in the guest and fails with the guest's message otherwise, or when the
guest never ran it. `test_harness` fails with the reason when the harness itself failed (no
QEMU, no kernel, no boot, no junit, a QEMU left running). Nothing here skips.
"""

from __future__ import annotations

import ast
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.kernel import vm

GUEST_DIR = Path(__file__).resolve().parent / "guest"
# seconds for boot + every guest test; QEMU is killed after it (the IKE-less test alone takes
# 12 minutes with its own two servers on a loaded host: tests/kernel/guest/test_ikeless_kernel.py)
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


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    results = tmp_path_factory.mktemp("ipsec-nf-kvm")
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
    print(f"kernel guest: {run.seconds:.1f} s wall (boot, tests, power-off), "
          f"exit status {run.rc}")
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


def test_harness(guest: Outcome) -> None:
    left = vm.qemu_pids()
    assert not left, f"QEMU processes left behind: {left}"
    assert guest.error is None, f"{guest.error}\n{guest.tail()}"
    unknown = set(guest.cases) - set(guest_tests())
    assert not unknown, f"guest tests this host does not know about: {sorted(unknown)}"


@pytest.mark.parametrize("test", guest_tests())
def test_in_guest(guest: Outcome, test: str) -> None:
    if guest.error is not None:
        pytest.fail(f"not run: {guest.error}\n{guest.tail()}")
    cases = guest.cases.get(test)
    if not cases:
        pytest.fail(f"{test} did not run in the guest\n{guest.tail()}")
    failed = [f"{name}: {problem}" for name, problem in cases if problem]
    if failed:
        pytest.fail("in the guest:\n" + "\n\n".join(failed))


def test_guest_tests_found() -> None:
    assert len(guest_tests()) >= 5, guest_tests()
