"""Installing N SA pairs and their policies in the kernel: our netlink XFRM driver
(southbound/xfrm: ``add_states``/``add_policies``, the IKE-less backend's path) next to
iproute2's ``ip -batch`` on the same kernel.

    .venv/bin/python bench/xfrm_install.py [--pairs 10000] [--repeat 3] [--here]
                                           [--policies-only]
                                           [--json bench/results/xfrm_install.json]

Per round, each case in a fresh network namespace, interleaved (ours, ip, ours, ip, ...):

- ours: ``XfrmNetlink(netns).add_states`` of the 2N SAs (one outbound, one inbound per pair:
  ESP, tunnel mode, AES-128-CBC + HMAC-SHA2-256-128, ESN, replay window 64), then
  ``add_policies`` of their 2N policies (out and in, one template each); the values are built
  before the clock starts, as the ip batch file is written before;
- ip: ``ip -n NS -batch FILE`` with the same 2N ``xfrm state add`` and 2N ``xfrm policy add``
  lines (process start included, as an operator runs it).

Before the rounds one SA pair is installed untimed (the kernel loads its crypto modules at
the first SA of an algorithm). Both are checked: the SAD and SPD hold 2N SAs and 2N
policies afterwards (counted in a dump).
Printed: min/median/max seconds per case, SAs+policies per second, and the ratio
ip / ours (above 1: ours is faster).

SAs need ESP in the kernel. On a kernel without it (our CI hosts) the script runs itself in
the kernel VM of tests/kernel/vm.py (Debian's kernel under QEMU/TCG: slow, but both cases
run on that same kernel) and prints what the guest printed; ``--here`` runs on this kernel.
``--policies-only`` installs only the 2N policies (both cases; no ESP needed, so it runs on
this kernel).
Needs root.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import report  # noqa: E402

SMOKE_ARGS = ["--pairs", "20", "--repeat", "1"]  # the smoke run of make test
# SAs need kernel ESP: make test runs the smoke run in the kernel VM it boots anyway
# (tests/kernel/guest/test_bench_smoke_kernel.py), not a VM of its own from the host
SMOKE_IN_KERNEL_VM = True
A, B = "198.51.100.1", "198.51.100.2"
ENC = bytes(range(16))
AUTH = bytes(range(32))


def nets(i: int) -> tuple[str, str]:
    """The two protected /24 of pair ``i`` (10.0.0.0/8, inner addresses)."""
    return f"10.{i // 256 % 128}.{i % 256}.0/24", f"10.{128 + i // 256 % 128}.{i % 256}.0/24"


def values(n: int) -> tuple[list, list]:
    """Our driver's XfrmState and XfrmPolicy values of ``n`` pairs."""
    from southbound.xfrm.types import (
        Algorithm,
        AuthAlgorithm,
        Direction,
        Mode,
        Selector,
        Template,
        XfrmPolicy,
        XfrmState,
    )
    a, b = ipaddress.ip_address(A), ipaddress.ip_address(B)
    states, policies = [], []
    for i in range(n):
        left, right = (ipaddress.ip_network(x) for x in nets(i))
        for src, dst, sl, sr, spi, d in ((a, b, left, right, 0x10000 + 2 * i, Direction.OUT),
                                         (b, a, right, left, 0x10001 + 2 * i, Direction.IN)):
            sel = Selector(sl, sr)
            states.append(XfrmState(src=src, dst=dst, spi=spi, mode=Mode.TUNNEL, reqid=i + 1,
                                    enc=Algorithm("cbc(aes)", ENC),
                                    auth=AuthAlgorithm("hmac(sha256)", AUTH, 128),
                                    replay_window=64, esn=True, selector=sel))
            policies.append(XfrmPolicy(selector=sel, direction=d, priority=1000, templates=(
                Template(dst=dst, src=src, mode=Mode.TUNNEL, reqid=i + 1),)))
    return states, policies


def batch_file(n: int, path: Path) -> None:
    """The same SAs and policies as ``ip -batch`` lines."""
    lines = []
    for i in range(n):
        left, right = nets(i)
        for src, dst, sl, sr, spi, d in ((A, B, left, right, 0x10000 + 2 * i, "out"),
                                         (B, A, right, left, 0x10001 + 2 * i, "in")):
            lines.append(f"xfrm state add src {src} dst {dst} proto esp spi {spi:#x} "
                         f"reqid {i + 1} mode tunnel replay-window 64 flag esn "
                         f"enc cbc(aes) 0x{ENC.hex()} auth-trunc hmac(sha256) "
                         f"0x{AUTH.hex()} 128 sel src {sl} dst {sr}")
            lines.append(f"xfrm policy add src {sl} dst {sr} dir {d} priority 1000 "
                         f"tmpl src {src} dst {dst} proto esp reqid {i + 1} mode tunnel")
    path.write_text("\n".join(lines) + "\n")


def _sh(*cmd: str) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd[:6])}: {r.stderr[-2000:]}")
    return r


class Namespace:
    """A fresh network namespace for one case (its SAD/SPD go with it)."""

    def __init__(self, tag: str) -> None:
        self.name = f"xbench{os.getpid()}{tag}"

    def __enter__(self) -> str:
        _sh("ip", "netns", "add", self.name)
        return self.name

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


def count_installed(ns: str) -> tuple[int, int]:
    """(SAs, policies) in the namespace's SAD and SPD, from our driver's dumps."""
    from southbound.xfrm.netlink import XfrmNetlink
    d = XfrmNetlink(ns)
    try:
        return len(d.dump_states()), len(d.dump_policies())
    finally:
        d.close()


def run_here(pairs: int, repeat: int, json_path: str, policies_only: bool = False) -> None:
    from southbound.xfrm import fastpack
    from southbound.xfrm.netlink import XfrmNetlink
    started = report.load()
    states, policies = values(pairs)
    work = Path(tempfile.mkdtemp(prefix="xbench"))
    batch = work / "batch"
    batch_file(pairs, batch)
    want = (2 * pairs, 2 * pairs)
    if policies_only:
        states = []
        batch.write_text("".join(line + "\n" for line in batch.read_text().splitlines()
                                 if line.startswith("xfrm policy ")))
        want = (0, 2 * pairs)
    rounds = iter(range(10**9))

    def ours() -> float:
        # every round packs from scratch (the driver caches each selector's bytes)
        fastpack.selector_bytes.cache_clear()
        with Namespace(f"o{next(rounds)}") as ns:
            d = XfrmNetlink(ns)
            try:
                t = time.perf_counter()
                errors = [e for e in d.add_states(states) + d.add_policies(policies) if e]
                took = time.perf_counter() - t
            finally:
                d.close()
            if errors:
                raise SystemExit(f"ours: {len(errors)} refused, first: {errors[0]}")
            got = count_installed(ns)
        assert got == want, f"ours installed {got}"
        return took

    def ip_batch() -> float:
        with Namespace(f"i{next(rounds)}") as ns:
            t = time.perf_counter()
            _sh("ip", "-n", ns, "-batch", str(batch))
            took = time.perf_counter() - t
            got = count_installed(ns)
        assert got == want, f"ip -batch installed {got}"
        return took

    # a first SA of each algorithm makes the kernel load and set up its crypto modules (a
    # modprobe each, seconds under TCG): done once, untimed, before either case
    warm_s, warm_p = values(1)
    with Namespace("w") as ns:
        d = XfrmNetlink(ns)
        try:
            if not policies_only:
                d.add_states(warm_s)
            d.add_policies(warm_p)
        finally:
            d.close()
    times = report.interleave({"ours (netlink driver)": ours, "ip -batch": ip_batch}, repeat)
    objects = sum(want)
    rows, results = [], {}
    for name, samples in times.items():
        s = report.spread(samples)
        results[name] = s
        rows.append([name, report.mmm(s), f"{objects / s['median']:,.0f}"])
    ratio = results["ip -batch"]["median"] / results["ours (netlink driver)"]["median"]
    what = (f"the {2 * pairs:,} policies of {pairs:,} SA pairs (no SAs)" if policies_only
            else f"{pairs:,} SA pairs and their {2 * pairs:,} policies ({objects:,} objects)")
    report.table(f"Installing {what}, kernel {os.uname().release}, {repeat} rounds",
                 ["case", "seconds median (min-max)", "objects/s (median)"], rows)
    print(f"\nratio ip -batch / ours (median): {ratio:.2f} (above 1: ours is faster)")
    print(f"load: {report.load()}")
    report.write(json_path, {"pairs": pairs, "repeat": repeat, "kernel": os.uname().release,
                             "policies_only": policies_only,
                             "results": results, "ratio_ip_over_ours": round(ratio, 3)},
                 started)


def run_in_vm(args: argparse.Namespace) -> int:
    """Run this script with --here in the kernel VM; print its output, copy its JSON."""
    started = report.load()
    results = Path(tempfile.mkdtemp(prefix="ipsec-nf-kvm-xbench"))
    cmd = [sys.executable, "-m", "tests.kernel.vm", "run", "--timeout", str(args.vm_timeout),
           "--results", str(results), "--", ".venv/bin/python", "bench/xfrm_install.py",
           "--here", "--pairs", str(args.pairs), "--repeat", str(args.repeat),
           "--json", "/ipsec-nf-results/xfrm_install.json"]
    print("this kernel has no ESP: running in the kernel VM (tests/kernel/vm.py)", flush=True)
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    out = (results / "output.log")
    print(out.read_text() if out.exists() else r.stdout + r.stderr)
    got = results / "xfrm_install.json"
    if r.returncode or not got.exists():
        print(f"the guest run failed ({r.returncode}):\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
        return 1
    doc = json.loads(got.read_text())
    doc["host_load_start"], doc["host_load_end"] = started, report.load()
    doc["where"] = "kernel VM (tests/kernel/vm.py, QEMU TCG)"
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(doc, indent=2))
    print(f"host load: {report.load()}")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=10000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--here", action="store_true", help="run on this kernel (it has ESP)")
    p.add_argument("--policies-only", action="store_true",
                   help="install only the policies (no ESP needed: runs on this kernel)")
    p.add_argument("--vm-timeout", type=float, default=3600)
    p.add_argument("--json", default=report.default_json(__file__))
    args = p.parse_args()
    from southbound.kernel_esp import kernel_esp_missing
    if not args.here and not args.policies_only and kernel_esp_missing() is not None:
        return run_in_vm(args)
    run_here(args.pairs, args.repeat, args.json, args.policies_only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
