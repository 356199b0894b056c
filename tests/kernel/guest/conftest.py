"""Guest tests run only inside the guest booted by tests/kernel/vm.py (its kernel command
line carries the mark); on the host they are not collected: the host's own run reports them
through tests/kernel/test_kernel_vm.py, which fails loudly when the guest cannot run them."""

from __future__ import annotations

from pathlib import Path

from tests.kernel.vm import GUEST_MARK


def in_guest() -> bool:
    try:
        return GUEST_MARK in Path("/proc/cmdline").read_text().split()
    except OSError:
        return False


collect_ignore_glob = [] if in_guest() else ["test_*.py"]
