"""Host side of the kernel harness: boot the guest ONCE (tests/kernel/vm.py), run every guest
test (tests/kernel/guest, marker `kernel`) in it, and report them here.

Each guest test function is one test of this module (`test_in_guest[FILE::FUNCTION]`,
found in the guest test files without importing them), which passes when every junit case of
that function passed in the guest and fails with the guest's message otherwise, or when the
guest never ran it. `test_harness` fails with the reason when the harness itself failed (no
QEMU, no kernel, no boot, no junit, a QEMU left running). Nothing here skips.
"""

from __future__ import annotations

import pytest

from tests.kernel import guest_run, vm
from tests.kernel.guest_run import Outcome, guest_tests


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """The guest run, once for the module."""
    out = guest_run.run_guest(tmp_path_factory.mktemp("ipsec-nf-kvm"))
    if out.run is not None:
        print(f"kernel guest: {out.run.seconds:.1f} s wall (boot, tests, power-off), "
              f"exit status {out.run.rc}, results in {out.run.results}")
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
