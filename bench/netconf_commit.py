"""One-VPN commit latency through NETCONF over SSH, with N VPNs configured, against a real
`ipsec-nf serve` (and its charon) in a private network namespace, client on its loopback.

    .venv/bin/python bench/netconf_commit.py [--sizes 10,1000,10000] [--repeat 30] [--json F]

Each sample is edit-config on the candidate + commit of one VPN, interleaved with samples of
edit-config of one VPN on running (ncclient, TICK lowered so the client's polling does not
dominate). Needs root. No tunnel is initiated (start-action none).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import report  # noqa: E402
from bulk_load import our_config  # noqa: E402

PORT = 8830
SMOKE_ARGS = ["--sizes", "2", "--repeat", "2"]  # the smoke run of make test
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS = "urn:ipsec-nf:yang:ipsec-nf"


def cpu_ms(pid: int) -> float:
    """CPU time (user + system) a process has used, in ms."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def one_vpn(i: int, r: int) -> str:
    """An edit of one VPN's local-id."""
    return (f'<config xmlns="{NC}"><ike xmlns="{NS}"><vpn><name>vpn{i}</name>'
            f"<local-id>gw{r}.example.net</local-id></vpn></ike></config>")


def measure(n: int, repeat: int) -> dict:
    """Start a server with n VPNs and time one-VPN commits."""
    from ncclient import manager
    from ncclient.transport import session as nc_session

    nc_session.TICK = 0.001
    with tempfile.TemporaryDirectory(prefix="ipsec-nf-ncbench-") as tmp:
        state = Path(tmp)
        subprocess.run([sys.executable, "-m", "tools.cli", "passwd", "--state-dir", str(state),
                        "admin"], input="bench-pw\n", text=True, check=True, cwd=ROOT,
                       capture_output=True)
        log = open(state / "serve.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "tools.cli", "serve", "--state-dir",
                                 str(state), "--listen", f"127.0.0.1:{PORT}"], cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", PORT), 1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            with manager.connect(host="127.0.0.1", port=PORT, username="admin",
                                 password="bench-pw", hostkey_verify=False, allow_agent=False,
                                 look_for_keys=False, timeout=600) as m:
                t = time.perf_counter()
                m.edit_config(target="candidate", config=our_config(n))
                m.commit()
                bulk = time.perf_counter() - t
                rounds = iter(range(2 * repeat))

                def on_candidate() -> None:
                    r = next(rounds)
                    m.edit_config(target="candidate", config=one_vpn(r % n, r))
                    m.commit()

                def on_running() -> None:
                    r = next(rounds)
                    m.edit_config(target="running", config=one_vpn(r % n, r))

                server, client = cpu_ms(proc.pid), time.process_time()
                runs = report.interleave({"candidate": on_candidate, "running": on_running},
                                         repeat)
                # CPU per change (both kinds together): the server's, and ncclient's (this
                # process: its session thread and paramiko's)
                server_cpu = (cpu_ms(proc.pid) - server) / (2 * repeat)
                client_cpu = (time.process_time() - client) * 1000 / (2 * repeat)
                samples = [x * 1000 for x in runs["candidate"]]
                running = [x * 1000 for x in runs["running"]]
            rss = int(Path(f"/proc/{proc.pid}/status").read_text().split("VmHWM:")[1]
                      .split()[0]) / 1024
        finally:
            proc.terminate()
            proc.wait(30)
    samples.sort()
    return {"vpns": n, "bulk_commit_s": round(bulk, 2),
            "commit_ms": report.spread(samples, digits=1),
            "running_ms": report.spread(running, digits=1),
            "p50_ms": round(statistics.median(samples), 1),
            "p95_ms": round(samples[max(0, int(len(samples) * 0.95) - 1)], 1),
            "server_peak_rss_mib": round(rss, 1),
            "server_cpu_ms_per_change": round(server_cpu, 2),
            "client_cpu_ms_per_change": round(client_cpu, 2)}


def main() -> int:
    """Make a namespace, measure inside it, clean up."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10,1000,10000")
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--json", default=report.default_json(__file__))
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.inner:
        started = report.load()
        results = []
        for n in (int(x) for x in a.sizes.split(",")):
            r = measure(n, a.repeat)
            results.append(r)
            print(f"{n:>6} VPNs: one-VPN edit-config+commit over SSH p50 {r['p50_ms']} ms, "
                  f"p95 {r['p95_ms']} ms (bulk commit {r['bulk_commit_s']} s, server peak RSS "
                  f"{r['server_peak_rss_mib']} MiB; CPU per change: server "
                  f"{r['server_cpu_ms_per_change']} ms, client {r['client_cpu_ms_per_change']} ms)",
                  flush=True)
        report.table("One-VPN change over NETCONF/SSH, ms, median (min-max); the two "
                     "interleaved",
                     ["VPNs", "candidate + commit", "p95", "edit-config on running",
                      "bulk commit of all s", "server peak RSS MiB",
                      "CPU ms per change: server / client"],
                     [[r["vpns"], report.mmm(r["commit_ms"]), r["p95_ms"],
                       report.mmm(r["running_ms"]), r["bulk_commit_s"],
                       r["server_peak_rss_mib"],
                       f"{r['server_cpu_ms_per_change']} / {r['client_cpu_ms_per_change']}"]
                      for r in results])
        report.write(a.json, {"results": results}, started)
        return 0
    from netns import rerun_inside

    return rerun_inside(__file__, ["--sizes", a.sizes, "--repeat", str(a.repeat),
                                   "--json", a.json])


if __name__ == "__main__":
    sys.exit(main())
