"""Guest tests run only inside the guest booted by tests/kernel/vm.py (its kernel command
line carries the mark); on the host they are not collected: the host's own run reports them
through tests/kernel/test_kernel_vm.py, which fails loudly when the guest cannot run them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kernel.guest.kernel_lab import Gateways, gateways
from tests.kernel.vm import GUEST_MARK


def in_guest() -> bool:
    try:
        return GUEST_MARK in Path("/proc/cmdline").read_text().split()
    except OSError:
        return False


collect_ignore_glob = [] if in_guest() else ["test_*.py"]


@pytest.fixture(scope="session")
def kernel_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateways]:
    """The two gateways on kernel-netlink, shared by the guest test modules (kernel_lab.py)."""
    yield from gateways(tmp_path_factory.mktemp("klab"))
