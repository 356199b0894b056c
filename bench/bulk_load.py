"""Bulk load of N VPNs through NETCONF until charon has them all, next to `swanctl --load-all`
of the same connections on a charon with the same configuration, in one run, interleaved.

    .venv/bin/python bench/bulk_load.py [--sizes 1000,10000] [--cycles 3]
                                        [--json bench/results/bulk_load.json]

Both sides do the same work, timed the same way:

- ipsec-nf: a real ``ipsec-nf serve`` (and the charon it starts); an ncclient session is open
  before the timer (as swanctl's VICI connection is part of its run, ours is the SSH session:
  opened once, like an operator's). Timed: ``edit-config`` of the N VPNs and the key on the
  candidate (the client builds and sends the XML inside the timer), ``commit``, then
  ``wait-applied`` (what an orchestrator calls to know its intent is in force: it answers once
  charon has acknowledged every ``load-conn``/``unload-conn``; its result must be
  ``applied``), and charon's count of connections is checked with ``list-conns`` after the
  timer. (Polling charon's ``get-conns`` instead, as this did before, slowed charon's loads:
  1,000 ``load-conn`` took 0.36-0.57 s with a ``get-conns`` every 20 ms, 0.27-0.35 without.)
- strongSwan: ``swanctl --load-all --file swanctl.conf`` (process start included: it is what
  an operator runs) into a second charon started from the same generated strongswan.conf
  (``CharonProcess`` with the default global options, as ``serve`` starts it), in a second
  network namespace. The swanctl.conf is written from the very VICI messages our reconciler
  sends for these VPNs (the templates and every default resolved: ``conn_for`` and
  ``shared_for``), and a connection read back with ``list-conns`` is checked to be the same on
  both charons.

Each cycle loads the N VPNs and removes them again (ours: one edit-config of N deletes +
commit until charon has none; swanctl: ``--load-all --clear`` of an empty swanctl.conf), in
the order swanctl load, ours load, swanctl removal, ours removal, so the first, second,
third... load of each side are measured side by side. The server's RSS is read after each
step (after a removal, 3 s later: the server trims its heap once a removal is applied), and
at the end, with the N VPNs loaded once more, the time SIGTERM takes to end it.

CPU seconds are read beside the wall times, for a machine shared with other work (where the
wall time is mostly waiting for a core): ours is the server and everything it started (its
charon) plus the client (this process: ncclient, SSH, the polling); swanctl's is the swanctl
process plus its charon (each process tree's utime + stime from /proc, before and after).
Needs root (network namespaces, charon). No connection is initiated (start-action none).
"""

from __future__ import annotations

import argparse
import base64
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import report  # noqa: E402

PSK = "0seaJ31RfzHNRvUSH0oUYg7znTW0I="
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS = "urn:ipsec-nf:yang:ipsec-nf"
SMOKE_ARGS = ["--sizes", "2", "--cycles", "2"]  # the smoke run of make test
SETTLE = 3.0  # seconds after a removal before the server's RSS is read (nf/memory.py's trim)


def remote(i: int) -> str:
    """A peer address in a documentation range."""
    return f"203.0.113.{i % 250 + 1}"


def our_config(n: int) -> str:
    """The N VPNs (two templates, one pre-shared key) as an edit-config <config>."""
    vpns = "".join(
        f"<vpn><name>vpn{i}</name><ike-policy><template>t</template></ike-policy>"
        f"<ipsec-policy><template>p</template></ipsec-policy>"
        f"<local-address>198.51.100.1</local-address><remote-address>{remote(i)}"
        f"</remote-address><local-id>gw.example.net</local-id>"
        f"<remote-id>peer{i}.example.net</remote-id><security-policy><name>sp</name>"
        f"<local-ts><subnet>192.168.0.0/24</subnet></local-ts><remote-ts><subnet>"
        f"10.{i // 250 % 250}.{i % 250}.0/24</subnet></remote-ts></security-policy></vpn>"
        for i in range(n))
    return (f'<config xmlns="{NC}"><ike xmlns="{NS}"><ike-policy-template><name>t</name>'
            "<ike-proposal><id>1</id><enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha256"
            "</auth-alg><dh-group>modp2048</dh-group></ike-proposal></ike-policy-template>"
            "<ipsec-policy-template><name>p</name><esp-proposal><id>1</id><enc-alg>aes128-cbc"
            "</enc-alg><auth-alg>hmac-sha256</auth-alg></esp-proposal>"
            "<start-action>none</start-action><close-action>none</close-action>"
            f"</ipsec-policy-template>{vpns}<pre-shared-key><name>all</name>"
            f"<secret>{PSK}</secret></pre-shared-key></ike></config>")


def removal(n: int) -> str:
    """An edit that deletes VPNs 0..n-1."""
    vpns = "".join(f'<vpn nc:operation="delete"><name>vpn{i}</name></vpn>' for i in range(n))
    return f'<config xmlns="{NC}" xmlns:nc="{NC}"><ike xmlns="{NS}">{vpns}</ike></config>'


def _value(v: Any) -> str:
    if isinstance(v, bytes):  # key material: swanctl takes it base64 with the 0s prefix
        return "0s" + base64.b64encode(v).decode()
    if isinstance(v, list | tuple):
        return ",".join(_value(x) for x in v)
    s = str(v)
    return f'"{s}"' if not s or any(c in s for c in ' {}=#,"') else s


def _section(d: Mapping[str, Any], indent: str) -> str:
    out = []
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.append(f"{indent}{k} {{\n{_section(v, indent + '  ')}{indent}}}\n")
        else:
            out.append(f"{indent}{k} = {_value(v)}\n")
    return "".join(out)


def sent_payloads(n: int) -> tuple[dict[str, dict], dict[str, dict]]:
    """The load-conn and load-shared messages our reconciler sends for ``our_config(n)``
    (the kernel-libipsec data plane, as ``serve`` runs): resolved in this process."""
    from lxml import etree

    from nf.datastore import Datastores
    from nf.schema import Schema
    from nf.templates import resolve
    from southbound.charon_backend import DATAPLANES, KINDS, VPN
    from southbound.charon_backend import PSK as PSK_KIND

    dp = DATAPLANES["kernel-libipsec"]
    with tempfile.TemporaryDirectory() as tmp:
        ds = Datastores(Schema(), Path(tmp))
        ds.edit("running", etree.fromstring(our_config(n).encode(),
                                            etree.XMLParser(huge_tree=True)), sid=1)
        eff = resolve(ds.config)
    kinds = {k.name: k for k in KINDS}
    conns = {name: dict(kinds[VPN].payload(v, dp)) for name, v in kinds[VPN].select(eff).items()}
    keys = {name: dict(kinds[PSK_KIND].payload(p, dp))
            for name, p in kinds[PSK_KIND].select(eff).items()}
    return conns, keys


def swanctl_conf(conns: Mapping[str, Mapping], keys: Mapping[str, Mapping]) -> str:
    """swanctl.conf holding exactly these load-conn / load-shared messages."""
    secrets = {}
    for name, key in keys.items():
        entry: dict[str, Any] = {"secret": key["data"]}
        for i, owner in enumerate(key.get("owners", [])):
            entry[f"id-{i}"] = owner
        secrets[f"{str(key['type']).lower()}-{name}"] = entry
    return _section({"connections": conns, "secrets": secrets}, "")


_TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int, below: bool = True) -> float:
    """CPU seconds (user + system) of a process and every process below it (or of the
    process alone), now."""
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent, cpu s)
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            f = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        stats[int(d.name)] = (int(f[1]), (int(f[11]) + int(f[12])) / _TICK)
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += stats.get(p, (0, 0.0))[1]
        todo += [c for c, (parent, _) in stats.items() if parent == p and below]
    return total


def _ratio(a: float, b: float) -> float | None:
    """a / b, or None when b is below the clock tick (the smoke run's few VPNs)."""
    return round(a / b, 2) if b > 0 else None


def self_cpu(who: int = resource.RUSAGE_SELF) -> float:
    """CPU seconds of this process (or of its reaped children)."""
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def _wait_applied(server: Any) -> Any:
    """``wait-applied``: until charon has acknowledged every entry the commit changed (its
    reply, checked by :func:`_check_applied`)."""
    return server.rpc(f'<wait-applied xmlns="{NS}"><timeout>900</timeout></wait-applied>')


def _check_applied(reply: Any) -> None:
    from lxml import etree

    result = etree.fromstring(reply.xml.encode()).find(f"{{{NS}}}result")
    if result is None or result.text != "applied":
        raise SystemExit(f"wait-applied: {reply.xml[:500]}")


def _netns(name: str) -> None:
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "-n", name, "addr", "add", "198.51.100.1/32", "dev", "lo"], check=True)


def _same_conn(a: Any, b: Any, name: str) -> None:
    """The connection ``name`` as both charons report it (list-conns) is the same."""
    ca, cb = a.list_conns(name), b.list_conns(name)
    if ca != cb:
        raise SystemExit(f"{name} differs between the charons:\n ours {ca}\n swanctl {cb}")


def size(n: int, cycles: int, tmp: Path) -> dict[str, Any]:
    """All cycles at one size, on a fresh server and a fresh swanctl charon."""
    from reads import Server, rss_mib

    from nf.effective import GlobalOptions
    from southbound.charon import CharonProcess
    from southbound.vici_client import ViciClient

    conns, keys = sent_payloads(n)
    conf = tmp / f"swanctl-{n}.conf"
    conf.write_text(swanctl_conf(conns, keys))
    empty = tmp / "empty.conf"
    empty.write_text("connections {\n}\nsecrets {\n}\n")
    ns = f"nfbenchs{os.getpid()}"
    _netns(ns)
    swan = CharonProcess(tmp / f"swan{n}", "kernel-libipsec", GlobalOptions(), netns=ns)
    swan.start()
    server = Server()
    rows: list[dict[str, Any]] = []
    try:
        uri = f"unix://{swan.socket_path}"
        swan_vici = ViciClient(swan.socket_path, timeout=300)
        our_vici = ViciClient(Path(server.tmp.name) / "charon" / "charon.vici", timeout=300)
        load_xml, remove_xml = our_config(n), removal(n)
        rss_empty = rss_mib(server.proc.pid)

        cpu: dict[str, float] = {}

        def swanctl(path: Path, *extra: str) -> float:
            c0, d0 = self_cpu(resource.RUSAGE_CHILDREN), tree_cpu(swan.pid or 0)
            t = time.perf_counter()
            subprocess.run(["swanctl", "--load-all", *extra, "--file", str(path), "--uri", uri],
                           check=True, capture_output=True)
            wall = time.perf_counter() - t
            cpu["swanctl"] = (self_cpu(resource.RUSAGE_CHILDREN) - c0
                              + tree_cpu(swan.pid or 0) - d0)
            return wall

        def ours(xml: str, count: int) -> tuple[float, float]:
            c0, s0, p0 = self_cpu(), tree_cpu(server.proc.pid), tree_cpu(server.proc.pid, False)
            t = time.perf_counter()
            server.m.edit_config(target="candidate", config=xml)
            server.m.commit()
            committed = time.perf_counter() - t
            reply = _wait_applied(server)
            wall = time.perf_counter() - t
            cpu["ours_server"] = tree_cpu(server.proc.pid) - s0
            cpu["ours_python"] = tree_cpu(server.proc.pid, False) - p0
            cpu["ours"] = cpu["ours_server"] + self_cpu() - c0
            _check_applied(reply)  # (after the timer and the CPU readings, as the count)
            if len(our_vici.get_conns()) != count:
                raise SystemExit(f"charon holds not {count} connections after wait-applied")
            return committed, wall

        for c in range(cycles):
            row: dict[str, Any] = {"cycle": c + 1}
            row["swanctl_load_s"] = swanctl(conf)
            row["swanctl_load_cpu_s"] = cpu["swanctl"]
            if len(swan_vici.get_conns()) != n:
                raise SystemExit("swanctl --load-all did not load every connection")
            row["ours_load_commit_s"], row["ours_load_s"] = ours(load_xml, n)
            row["ours_load_cpu_s"], row["ours_load_server_cpu_s"] = (cpu["ours"],
                                                                     cpu["ours_server"])
            row["ours_load_python_cpu_s"] = cpu["ours_python"]  # the server alone
            if len(our_vici.list_conns()) != n:
                raise SystemExit("charon lists fewer connections than loaded")
            row["rss_loaded_mib"] = rss_mib(server.proc.pid)
            if c == 0:
                _same_conn(our_vici, swan_vici, f"vpn{n - 1}")
            row["swanctl_remove_s"] = swanctl(empty, "--clear")
            row["ours_remove_commit_s"], row["ours_remove_s"] = ours(remove_xml, 0)
            time.sleep(SETTLE)  # the server gives freed memory back once a removal is applied
            row["rss_removed_mib"] = rss_mib(server.proc.pid)
            row = {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}
            row["load_ratio"] = round(row["ours_load_s"] / row["swanctl_load_s"], 2)
            row["load_cpu_ratio"] = _ratio(row["ours_load_cpu_s"], row["swanctl_load_cpu_s"])
            row["remove_ratio"] = round(row["ours_remove_s"] / row["swanctl_remove_s"], 2)
            rows.append(row)
            print(f"  {n} VPNs, cycle {c + 1}: load swanctl {row['swanctl_load_s']} s, ours "
                  f"{row['ours_load_s']} s ({row['load_ratio']}x); removal swanctl "
                  f"{row['swanctl_remove_s']} s, ours {row['ours_remove_s']} s; load CPU "
                  f"swanctl {row['swanctl_load_cpu_s']} s, ours {row['ours_load_cpu_s']} s "
                  f"({row['load_cpu_ratio']}x); RSS "
                  f"{row['rss_loaded_mib']} / {row['rss_removed_mib']} MiB", flush=True)
        _, final = ours(load_xml, n)
        rss_final = rss_mib(server.proc.pid)
        swan_vici.close()
        our_vici.close()
    finally:
        shutdown = server.stop()
        swan.stop()
        subprocess.run(["ip", "netns", "del", ns])
    out: dict[str, Any] = {"vpns": n, "rss_empty_mib": rss_empty, "cycles": rows,
                           "rss_loaded_at_stop_mib": rss_final,
                           "shutdown_s": round(shutdown, 2)}
    for key in ("swanctl_load_s", "ours_load_s", "ours_load_commit_s", "swanctl_remove_s",
                "ours_remove_s", "swanctl_load_cpu_s", "ours_load_cpu_s",
                "ours_load_server_cpu_s", "ours_load_python_cpu_s"):
        out[key] = report.spread([r[key] for r in rows])
    out["load_ratio"] = round(statistics.median(r["ours_load_s"] for r in rows)
                              / statistics.median(r["swanctl_load_s"] for r in rows), 2)
    out["load_cpu_ratio"] = _ratio(statistics.median(r["ours_load_cpu_s"] for r in rows),
                                   statistics.median(r["swanctl_load_cpu_s"] for r in rows))
    return out


def main() -> int:
    """Make a namespace, run the measurement inside, clean up."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--cycles", type=int, default=3)
    ap.add_argument("--json", default=report.default_json(__file__))
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if not a.inner:
        from netns import rerun_inside

        return rerun_inside(__file__, ["--sizes", a.sizes, "--cycles", str(a.cycles),
                                       "--json", a.json])
    started = report.load()
    results = []
    with tempfile.TemporaryDirectory(prefix="ipsec-nf-bulk-") as tmp:
        for n in (int(x) for x in a.sizes.split(",") if x):
            results.append(size(n, a.cycles, Path(tmp)))
    for r in results:
        report.table(
            f"{r['vpns']} VPNs: swanctl --load-all vs NETCONF edit-config + commit until charon "
            f"has all, s (interleaved; empty server {r['rss_empty_mib']} MiB, SIGTERM to exit "
            f"with the VPNs loaded {r['shutdown_s']} s)",
            ["cycle", "swanctl load", "ours load (commit)", "ratio", "swanctl removal",
             "ours removal (commit)", "ratio", "RSS loaded / removed MiB"],
            [[c["cycle"], c["swanctl_load_s"], f"{c['ours_load_s']} ({c['ours_load_commit_s']})",
              c["load_ratio"], c["swanctl_remove_s"],
              f"{c['ours_remove_s']} ({c['ours_remove_commit_s']})", c["remove_ratio"],
              f"{c['rss_loaded_mib']} / {c['rss_removed_mib']}"] for c in r["cycles"]])
        report.table(
            f"{r['vpns']} VPNs, the loads' CPU seconds: swanctl and its charon; ours: the "
            "server with its charon, and the client",
            ["cycle", "swanctl + charon", "ours: server (alone) + charon", "ours + client",
             "ratio"],
            [[c["cycle"], c["swanctl_load_cpu_s"],
              f"{c['ours_load_server_cpu_s']} ({c['ours_load_python_cpu_s']})",
              c["ours_load_cpu_s"], c["load_cpu_ratio"]] for c in r["cycles"]])
    report.table("Bulk load summary over the cycles, s: median (min-max)",
                 ["VPNs", "swanctl --load-all", "ipsec-nf until charon has all",
                  "ratio of medians", "swanctl removal", "ipsec-nf removal",
                  "load CPU s: swanctl / ours", "CPU ratio"],
                 [[r["vpns"], report.mmm(r["swanctl_load_s"]), report.mmm(r["ours_load_s"]),
                   r["load_ratio"], report.mmm(r["swanctl_remove_s"]),
                   report.mmm(r["ours_remove_s"]),
                   f"{report.mmm(r['swanctl_load_cpu_s'])} / {report.mmm(r['ours_load_cpu_s'])}",
                   r["load_cpu_ratio"]] for r in results])
    report.write(a.json, {"results": results}, started)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
