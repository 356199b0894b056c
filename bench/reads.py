"""Reads by key and of the whole list, and repeated bulk loads, through NETCONF over SSH
against a real `ipsec-nf serve` (and its charon) in a private network namespace.

    .venv/bin/python bench/reads.py [--sizes 10,1000,10000] [--repeat 30] [--cycles 10]
                                    [--cycle-vpns 10000] [--json bench/results/reads.json]

For each size N: a fresh server, N VPNs loaded in one edit-config + commit (start-action none:
nothing is negotiated), then the p50/p95 over ``--repeat`` samples of

- get-config of one VPN by key, subtree filter;
- get-config of one VPN by key, XPath filter;
- get (config + state) of one VPN by key, subtree filter;
- get-data (ds:running) of one VPN by key, subtree filter;
- get-config of the whole VPN list (subtree filter ``<ike><vpn/></ike>``).

Then, on one more fresh server, ``--cycles`` times: load ``--cycle-vpns`` VPNs (one
edit-config + commit, then wait-applied), remove them all (one edit-config of deletes +
commit, wait-applied), with the server's RSS after each step (after a removal, ``SETTLE`` s
later: the server checks every 2 s whether a removal has been applied, then trims its heap);
and at the end, with the VPNs loaded, the time SIGTERM takes to end the server. ncclient's
TICK is lowered to 1 ms so its polling does not dominate. Needs root (network namespace,
charon).
"""

from __future__ import annotations

import argparse
import os
import signal
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
from bulk_load import SETTLE, our_config  # noqa: E402

PORT = 8830
SMOKE_ARGS = ["--sizes", "2", "--repeat", "1", "--cycles", "1", "--cycle-vpns", "2"]
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS = "urn:ipsec-nf:yang:ipsec-nf"
NMDA = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"
DS = "urn:ietf:params:xml:ns:yang:ietf-datastores"


def rss_mib(pid: int) -> float:
    """The resident set size of a process now."""
    status = Path(f"/proc/{pid}/status").read_text()
    return round(int(status.split("VmRSS:")[1].split()[0]) / 1024, 1)


def removal(n: int) -> str:
    """An edit that deletes VPNs 0..n-1."""
    vpns = "".join(f'<vpn nc:operation="delete"><name>vpn{i}</name></vpn>' for i in range(n))
    return f'<config xmlns="{NC}" xmlns:nc="{NC}"><ike xmlns="{NS}">{vpns}</ike></config>'


class Server:
    """``ipsec-nf serve`` on a fresh state directory, and an ncclient session to it."""

    def __init__(self) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="ipsec-nf-readbench-")
        state = Path(self.tmp.name)
        subprocess.run([sys.executable, "-m", "tools.cli", "passwd", "--state-dir", str(state),
                        "admin"], input="bench-pw\n", text=True, check=True, cwd=ROOT,
                       capture_output=True)
        self.log = open(state / "serve.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tools.cli", "serve", "--state-dir", str(state),
             "--listen", f"127.0.0.1:{PORT}"], cwd=ROOT, stdout=self.log,
            stderr=subprocess.STDOUT)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", PORT), 1).close()
                break
            except OSError:
                time.sleep(0.1)
        from ncclient import manager
        from ncclient.transport import session as nc_session

        nc_session.TICK = 0.001
        self.m = manager.connect(host="127.0.0.1", port=PORT, username="admin",
                                 password="bench-pw", hostkey_verify=False, allow_agent=False,
                                 look_for_keys=False, timeout=600)

    def rpc(self, xml: str):  # noqa: ANN201
        from lxml import etree

        return self.m.dispatch(etree.fromstring(xml))

    def wait_applied(self) -> None:
        self.rpc(f'<wait-applied xmlns="{NS}"><timeout>600</timeout></wait-applied>')

    def commit(self, config: str) -> float:
        t = time.perf_counter()
        self.m.edit_config(target="candidate", config=config)
        self.m.commit()
        return time.perf_counter() - t

    def stop(self) -> float:
        """SIGTERM; the seconds until the server has exited."""
        try:
            self.m.close_session()
        except Exception:  # noqa: BLE001
            pass
        t = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        took = time.perf_counter() - t
        self.log.close()
        self.tmp.cleanup()
        return took


def cpu_ms(pid: int) -> float:
    """CPU time (user + system) a process has used, in ms."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def _stats(samples: list[float]) -> dict:
    samples = sorted(samples)
    return {"p50_ms": round(statistics.median(samples), 2),
            "p95_ms": round(samples[max(0, int(len(samples) * 0.95) - 1)], 2)}


def reads(n: int, repeat: int) -> dict:
    """Time the reads with n VPNs configured."""
    s = Server()
    try:
        bulk = s.commit(our_config(n))
        s.wait_applied()
        key = lambda r: f"vpn{(r * 7919) % n}"  # noqa: E731
        sub = lambda r: f'<ike xmlns="{NS}"><vpn><name>{key(r)}</name></vpn></ike>'  # noqa: E731
        cases = {
            "get-config key subtree": lambda r: s.m.get_config(
                source="running", filter=("subtree", sub(r))),
            "get-config key xpath": lambda r: s.m.get_config(
                source="running", filter=("xpath", ({"ipnf": NS},
                                                    f"/ipnf:ike/ipnf:vpn[ipnf:name='{key(r)}']"))),
            "get key subtree": lambda r: s.m.get(filter=("subtree", sub(r))),
            "get-data key subtree": lambda r: s.rpc(
                f'<get-data xmlns="{NMDA}" xmlns:ds="{DS}"><datastore>ds:running</datastore>'
                f"<subtree-filter>{sub(r)}</subtree-filter></get-data>"),
            "get-config whole list": lambda r: s.m.get_config(
                source="running", filter=("subtree", f'<ike xmlns="{NS}"><vpn/></ike>')),
        }
        out = {"vpns": n, "bulk_commit_s": round(bulk, 3)}
        for name, call in cases.items():
            reply = call(0)
            if name.endswith("key subtree") and "vpn0<" not in reply.xml:
                raise SystemExit(f"{name}: the reply lacks the entry: {reply.xml[:500]}")
            reps = max(3, repeat // 5) if name.endswith("whole list") else repeat
            samples = []
            server, client = cpu_ms(s.proc.pid), time.process_time()
            for r in range(reps):
                t = time.perf_counter()
                call(r)
                samples.append((time.perf_counter() - t) * 1000)
            # where the time goes: the server's CPU and ncclient's (this process: its
            # session thread and paramiko's), per read
            out[name] = {**_stats(samples), **report.spread(samples, digits=2),
                         "server_cpu_ms": round((cpu_ms(s.proc.pid) - server) / reps, 2),
                         "client_cpu_ms": round((time.process_time() - client) * 1000 / reps,
                                                2)}
        out["rss_mib"] = rss_mib(s.proc.pid)
    finally:
        out_stop = s.stop()
    out["shutdown_s"] = round(out_stop, 2)
    return out


def cycles(n: int, count: int) -> dict:
    """Load n VPNs and remove them, ``count`` times, on one server."""
    s = Server()
    rows = []
    try:
        empty = rss_mib(s.proc.pid)
        cfg, rm = our_config(n), removal(n)
        for c in range(count):
            t = time.perf_counter()
            load = s.commit(cfg)
            s.wait_applied()
            applied = time.perf_counter() - t
            loaded = rss_mib(s.proc.pid)
            t = time.perf_counter()
            remove = s.commit(rm)
            s.wait_applied()
            removed_applied = time.perf_counter() - t
            time.sleep(SETTLE)  # the server gives freed memory back once a removal is applied
            rows.append({"cycle": c + 1, "load_commit_s": round(load, 2),
                         "load_applied_s": round(applied, 2), "rss_loaded_mib": loaded,
                         "remove_commit_s": round(remove, 2),
                         "remove_applied_s": round(removed_applied, 2),
                         "rss_removed_mib": rss_mib(s.proc.pid)})
            print(f"  cycle {c + 1}: load {load:.2f} s (applied {applied:.2f} s), RSS "
                  f"{loaded} MiB; remove {remove:.2f} s (applied {removed_applied:.2f} s), "
                  f"RSS {rows[-1]['rss_removed_mib']} MiB", flush=True)
        s.commit(cfg)
        s.wait_applied()
        rss_final = rss_mib(s.proc.pid)
    finally:
        shutdown = s.stop()
    return {"vpns": n, "rss_empty_mib": empty, "cycles": rows,
            "rss_loaded_at_stop_mib": rss_final, "shutdown_s": round(shutdown, 2)}


def main() -> int:
    """Make a namespace, measure inside it, clean up."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10,1000,10000")
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--cycles", type=int, default=10)
    ap.add_argument("--cycle-vpns", type=int, default=10000)
    ap.add_argument("--json", default=report.default_json(__file__))
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if not a.inner:
        from netns import rerun_inside

        return rerun_inside(__file__, ["--sizes", a.sizes, "--repeat", str(a.repeat),
                                       "--cycles", str(a.cycles),
                                       "--cycle-vpns", str(a.cycle_vpns), "--json", a.json])
    started = report.load()
    results: dict = {"reads": [], "bulk": None}
    sizes = [int(x) for x in a.sizes.split(",") if x]
    for n in sizes:
        r = reads(n, a.repeat)
        results["reads"].append(r)
        print(f"{n} VPNs (bulk commit {r['bulk_commit_s']} s, RSS {r['rss_mib']} MiB, "
              f"shutdown {r['shutdown_s']} s)", flush=True)
    if sizes:
        names = [k for k in results["reads"][0] if isinstance(results["reads"][0][k], dict)]
        report.table("Reads over NETCONF/SSH, ms: median (min-max) / p95",
                     ["read", *(f"{n} VPNs" for n in sizes)],
                     [[name, *(f"{report.mmm(r[name])} / {r[name]['p95_ms']}"
                               for r in results["reads"])] for name in names])
        report.table("CPU per read, ms: server / client (ncclient and paramiko)",
                     ["read", *(f"{n} VPNs" for n in sizes)],
                     [[name, *(f"{r[name]['server_cpu_ms']} / {r[name]['client_cpu_ms']}"
                               for r in results["reads"])] for name in names])
        report.table("Bulk commit of all VPNs, server RSS and shutdown per size",
                     ["VPNs", "bulk commit s", "RSS MiB", "SIGTERM to exit s"],
                     [[r["vpns"], r["bulk_commit_s"], r["rss_mib"], r["shutdown_s"]]
                      for r in results["reads"]])
    if a.cycles:
        print(f"bulk cycles of {a.cycle_vpns} VPNs:", flush=True)
        results["bulk"] = cycles(a.cycle_vpns, a.cycles)
        b = results["bulk"]
        report.table(f"Load/remove cycles of {a.cycle_vpns} VPNs on one server (s, MiB; "
                     f"empty server {b['rss_empty_mib']} MiB, SIGTERM to exit with the VPNs "
                     f"loaded {b['shutdown_s']} s)",
                     ["cycle", "load commit", "load applied", "RSS loaded", "remove commit",
                      "remove applied", "RSS removed"],
                     [[c["cycle"], c["load_commit_s"], c["load_applied_s"], c["rss_loaded_mib"],
                       c["remove_commit_s"], c["remove_applied_s"], c["rss_removed_mib"]]
                      for c in b["cycles"]])
    report.write(a.json, results, started)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
