"""The kernel harness (tests/kernel/vm.py) and its guest tests (tests/kernel/guest/).

On the host, `test_kernel_vm.py` boots the guest once and reports every guest test; the guest
tests themselves only run inside the guest (they need kernel ESP, which the host lacks), and
are not even collected on the host.
"""

from __future__ import annotations


def pytest_configure(config) -> None:  # noqa: ANN001 - pytest.Config
    config.addinivalue_line(
        "markers", "kernel: needs kernel ESP; runs inside the QEMU guest of tests/kernel/vm.py")
