"""Smoke run of every benchmark script (bench/*.py with a ``__main__``), so they cannot rot.

Each script is run with its own smallest arguments, ``SMOKE_ARGS`` in the module (read from
the source, not imported), or, for a script without it, the ``--...`` arguments of the
command line under "Smoke run" in its docstring; the test adds ``--json FILE``. It checks
the script exited 0, printed its figures with min/median/max (a table) and the machine's load,
and wrote a JSON document. Nothing is timed against a bound: benchmarks are not timed tests.
Needs root (the scripts make network namespaces and start charon).
"""

from __future__ import annotations

import ast
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"


def _all_scripts() -> list[Path]:
    return sorted(p for p in BENCH.glob("*.py") if '__name__ == "__main__"' in p.read_text())


def in_kernel_vm(script: Path) -> bool:
    """True for a script whose smoke run needs kernel ESP (``SMOKE_IN_KERNEL_VM = True``):
    it runs in the kernel VM's guest tests (tests/kernel/guest/test_bench_smoke_kernel.py)."""
    tree = ast.parse(script.read_text())
    return any(isinstance(node, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "SMOKE_IN_KERNEL_VM" for t in node.targets)
        and ast.literal_eval(node.value) is True for node in tree.body)


def _scripts() -> list[Path]:
    return [p for p in _all_scripts() if not in_kernel_vm(p)]


def smoke_args(script: Path) -> list[str]:
    """The documented smoke arguments of ``script`` (without ``--json``)."""
    tree = ast.parse(script.read_text())
    for node in tree.body:
        if (isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "SMOKE_ARGS" for t in node.targets)):
            return [str(x) for x in ast.literal_eval(node.value)]
    doc = ast.get_docstring(tree) or ""
    if "Smoke run" in doc:
        after = doc.split("Smoke run", 1)[1]
        line = next((ln for ln in after.splitlines() if f"bench/{script.name}" in ln), "")
        words = shlex.split(line.split(f"bench/{script.name}", 1)[1]) if line else []
        if "--json" in words:
            i = words.index("--json")
            del words[i:i + 2]
        if line:
            return words
    raise AssertionError(f"{script.name} documents no smoke run: give it SMOKE_ARGS = [...] "
                         "(bench/report.py says how)")


def test_every_bench_script_is_found() -> None:
    names = {p.name for p in _scripts()}
    assert {"bulk_load.py", "commit_latency.py", "netconf_commit.py", "readback.py",
            "reads.py"} <= names, names
    assert "report.py" not in names and "netns.py" not in names


def test_scripts_needing_kernel_esp_are_smoked_in_the_kernel_vm() -> None:
    guest = ROOT / "tests" / "kernel" / "guest" / "test_bench_smoke_kernel.py"
    vm_scripts = [p for p in _all_scripts() if in_kernel_vm(p)]
    assert "xfrm_install.py" in {p.name for p in vm_scripts}
    for script in vm_scripts:
        assert f'"{script.name}"' in guest.read_text(), f"{script.name}: no smoke run in {guest}"


def run_smoke(script: Path, out: Path, extra: tuple[str, ...] = ()) -> None:
    """Run ``script`` with its smoke arguments (and ``extra``), writing its JSON to ``out``;
    assert it exited 0, printed min/median/max and the load, and wrote a JSON document."""
    args = [sys.executable, str(script), *extra, *smoke_args(script), "--json", str(out)]
    run = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (f"{shlex.join(args)} exited {run.returncode}\n"
                                 f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    assert "median" in run.stdout and "max" in run.stdout, run.stdout[-3000:]
    assert "load" in run.stdout, run.stdout[-3000:]
    doc = json.loads(out.read_text())
    assert doc, f"{script.name} wrote an empty JSON document"


@pytest.mark.parametrize("script", _scripts(), ids=lambda p: p.name)
def test_bench_script_smoke(script: Path, tmp_path: Path) -> None:
    run_smoke(script, tmp_path / "result.json")
