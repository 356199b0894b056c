"""Smoke runs of the benchmark scripts that need kernel ESP (``SMOKE_IN_KERNEL_VM = True``),
in the kernel VM that make test boots once anyway, so they cannot rot either
(tests/integration/test_bench_smoke.py runs the others on the host)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_bench_smoke import BENCH, in_kernel_vm, run_smoke

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize("name", ["xfrm_install.py"])
def test_bench_script_smoke_on_kernel_esp(name: str, tmp_path: Path) -> None:
    script = BENCH / name
    assert in_kernel_vm(script), f"{name} does not say SMOKE_IN_KERNEL_VM = True"
    run_smoke(script, tmp_path / "result.json", ("--here",))
