"""Cost of reading back what charon holds (the reconciler's drift check) next to charon's own
`swanctl --list-conns`, on the same charon with N connections.

    .venv/bin/python bench/readback.py [--vpns 1000,10000] [--repeat 5]
                                       [--json bench/results/readback.json]

Times, per size (min/median/max of --repeat rounds, the three interleaved):
- `swanctl --list-conns --raw`: charon's own tool listing every connection (process start
  included, as an operator would run it);
- ours, deep: `CharonSession.observe("vpn", deep=True)`: list-conns of every connection and a
  fingerprint of each (what a sync does up to 2,000 entries, and in turns above);
- ours, names: `observe("vpn", deep=False)` (get-conns: what every sync does above 2,000).

Needs root: charon runs in a private network namespace (deleted at the end).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import report  # noqa: E402

SMOKE_ARGS = ["--vpns", "2", "--repeat", "1"]  # the smoke run of make test


def conn(i: int) -> dict:
    """One connection like the site-to-site VPN, with its own peer and subnet."""
    return {"version": "2", "local_addrs": ["198.51.100.1"],
            "remote_addrs": [f"203.0.113.{i % 250 + 1}"],
            "proposals": ["aes128-sha512-modp2048"],
            "local": {"auth": "psk", "id": "secgwa.example.net"},
            "remote": {"auth": "psk", "id": f"peer{i}.example.net"},
            "children": {"trunk": {"local_ts": ["192.168.0.0/24"],
                                   "remote_ts": [f"10.{i // 250 % 256}.{i % 250}.0/24"],
                                   "esp_proposals": ["aes128-sha256"],
                                   "start_action": "none"}}}


def inner(sizes: list[int], repeat: int, out: str) -> int:
    """Runs inside the namespace."""
    from nf.effective import GlobalOptions
    from southbound.charon import CharonProcess
    from southbound.charon_backend import CharonSession
    from southbound.vici_client import ViciClient

    started = report.load()
    results = []
    with tempfile.TemporaryDirectory(prefix="ipsec-nf-bench-") as tmp:
        charon = CharonProcess(Path(tmp) / "charon", "kernel-libipsec",
                               GlobalOptions(threads=16))
        charon.start()
        try:
            client = ViciClient(charon.socket_path, timeout=120)
            session = CharonSession(client)
            loaded = 0
            uri = f"unix://{charon.socket_path}"
            for n in sizes:
                for i in range(loaded, n):
                    client.load_conn(f"v{i}", conn(i))
                loaded = n
                runs = report.interleave({
                    "swanctl": lambda: subprocess.run(
                        ["swanctl", "--list-conns", "--raw", "--uri", uri], check=True,
                        capture_output=True) and None,
                    "deep": lambda: session.observe("vpn", True) and None,
                    "names": lambda: session.observe("vpn", False) and None}, repeat)
                swanctl, deep, names = (statistics.median(runs[k])
                                        for k in ("swanctl", "deep", "names"))
                assert len(session.observe("vpn", True)) == n
                res = {"vpns": n, "swanctl_list_conns_s": round(swanctl, 4),
                       "ours_deep_s": round(deep, 4), "ours_names_s": round(names, 4),
                       "deep_ratio": round(deep / swanctl, 2),
                       "spread_s": {k: report.spread(v, digits=4) for k, v in runs.items()}}
                results.append(res)
                print(f"{n} connections, median of {repeat}: swanctl --list-conns "
                      f"{swanctl:.3f} s; ours deep {deep:.3f} s ({deep / swanctl:.2f}x), "
                      f"names only {names:.4f} s", flush=True)
            client.close()
        finally:
            charon.stop()
    report.table("Reading back the connections: swanctl --list-conns --raw vs ours "
                 "(interleaved), s, median (min-max)",
                 ["connections", "swanctl", "ours, content (list-conns)", "ratio",
                  "ours, names (get-conns)"],
                 [[r["vpns"], report.mmm(r["spread_s"]["swanctl"]),
                   report.mmm(r["spread_s"]["deep"]), r["deep_ratio"],
                   report.mmm(r["spread_s"]["names"])] for r in results])
    report.write(out, {"results": results}, started)
    return 0


def main() -> int:
    """Make a namespace, run the measurement inside, clean up."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--vpns", default="1000,10000")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", default=report.default_json(__file__))
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    sizes = [int(x) for x in a.vpns.split(",")]
    if a.inner:
        return inner(sizes, a.repeat, a.json)
    from netns import rerun_inside

    return rerun_inside(__file__, ["--vpns", a.vpns, "--repeat", str(a.repeat),
                                   "--json", a.json])


if __name__ == "__main__":
    sys.exit(main())
