"""What every benchmark script shares: interleaved timing, min/median/max, the machine's load,
a printed table and the JSON file under bench/results/.

Conventions of a bench script (checked by tests/integration/test_bench_smoke.py):

- ``SMOKE_ARGS``: a module-level list of the smallest arguments that still run every part of
  it (the smoke run of ``make test``); the test adds ``--json FILE``.
- ``--json FILE``: where the results go, by default ``bench/results/<script>.json``.
- It prints at least one Markdown table (:func:`table`) and the load (:func:`load`).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def default_json(script: str) -> str:
    """``bench/results/<script's stem>.json``."""
    return str(RESULTS / f"{Path(script).stem}.json")


def load() -> dict[str, Any]:
    """The machine's load average (1, 5, 15 min) and CPU count, now."""
    one, five, fifteen = os.getloadavg()
    return {"loadavg": [round(one, 2), round(five, 2), round(fifteen, 2)],
            "cpus": os.cpu_count()}


def spread(samples: Sequence[float], scale: float = 1.0, digits: int = 3) -> dict[str, Any]:
    """min / median / max (and the sample count) of ``samples`` times ``scale``."""
    s = sorted(x * scale for x in samples)
    return {"n": len(s), "min": round(s[0], digits), "median": round(statistics.median(s), digits),
            "max": round(s[-1], digits)}


def mmm(d: Mapping[str, Any]) -> str:
    """A spread as ``median (min-max)`` for a table cell."""
    return f"{d['median']:g} ({d['min']:g}-{d['max']:g})"


def interleave(cases: Mapping[str, Callable[[], float | None]],
               repeat: int) -> dict[str, list[float]]:
    """Run each case in turn, ``repeat`` rounds (A, B, A, B...), so that a change of the
    machine's load hits every case alike. A case returns its own seconds, or None to be timed
    whole here."""
    out: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, fn in cases.items():
            t = time.perf_counter()
            took = fn()
            out[name].append(time.perf_counter() - t if took is None else took)
    return out


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Print (and return) a Markdown table with a title line."""
    lines = [f"\n{title}\n", "| " + " | ".join(headers) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def write(path: str, results: Mapping[str, Any], started: Mapping[str, Any]) -> None:
    """Write ``results`` with the command, the time and the load at start and end as JSON."""
    doc = {"command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
           "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "load_start": dict(started), "load_end": load(), **results}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(doc, indent=2))
    print(f"load average at start {started['loadavg']}, at end {doc['load_end']['loadavg']} "
          f"({doc['load_end']['cpus']} CPUs); written {path}", flush=True)
