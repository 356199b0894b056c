"""The folder layout is the architecture: imports only go the ways docs/design.md draws.

nf/ (datastores, validation, templates, the effective config) imports neither northbound/ nor
southbound/ nor tools/; southbound/ imports nothing of northbound/ or tools/ and of nf/ only
the effective-config types and the SA actions seam (nf/actions.py, types only); northbound/
imports nothing of southbound/ or tools/. Only tools/ (the composition root) wires every layer
together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "nf": ("northbound", "southbound", "tools"),
    "southbound": ("northbound", "tools"),
    "northbound": ("southbound", "tools"),
}
ALLOWED_NF_IN_SOUTHBOUND = {"nf.effective", "nf.effective_ikeless", "nf.observed", "nf.actions"}


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file, relative ones resolved to absolute names."""
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            out.append((node.lineno, base))
    return out


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_imports_follow_the_layers(layer: str) -> None:
    bad = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        for line, module in imports(path):
            top = module.split(".")[0]
            if top in FORBIDDEN[layer]:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
            if layer == "southbound" and top == "nf" and module not in ALLOWED_NF_IN_SOUTHBOUND:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module} "
                           "(southbound may use only the effective-config types and the actions "
                           "seam of nf)")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_imports() -> None:
    """The walk finds real imports (so the test above cannot pass by finding nothing)."""
    found = {m for _, m in imports(ROOT / "tools" / "app.py")}
    assert {"southbound.reconciler", "northbound.ssh", "nf.datastore"} <= found
