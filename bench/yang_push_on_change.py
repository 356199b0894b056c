"""YANG-Push on-change at 1,000 IKE SAs: CPU and edits per state refresh, two versions of the
code side by side (before/after a change of the on-change producer), in this process.

    .venv/bin/python bench/yang_push_on_change.py --before DIR --after DIR
        [--sas 1000] [--refreshes 5] [--rounds 3] [--json bench/results/yang_push_on_change.json]

DIR is a checkout of the code (a git worktree: ``git worktree add /work/wt-X COMMIT``); each
round runs one process per version, alternated (A,B,A,B...), each importing its own DIR
first; without them, this checkout on both sides. Smoke run (``SMOKE_ARGS``, in ``make
test``): ``--sas 20 --refreshes 1 --rounds 1``.

In each process, as the server has them (real code, nothing mocked but the daemon):

- running: the configuration of bench/state_reads.py's gateway A (templates, key, N VPNs
  ``a0``.. each with its own identities and traffic selectors) edited into a real
  ``nf.datastore.Datastores``;
- the state trees: the daemon's tables as ``CharonBackend.read_state`` converts them, read
  over VICI from the wire-level fake (tests/fakes/vici_server.py) holding N IKE SAs of the
  shape ``swanctl --list-sas`` shows (one CHILD SA each), with each VPN's effective
  parameters (``tools.check_output.vpn_view`` of the resolved config, shared between
  snapshots as tools/app.py does) and an apply-status ``state-read-time``; versions grow
  only when the content (clock leaves left out) changed, as the state engine's;
- the subscription: the real ``Subscriptions`` engine, an on-change subscription to
  operational built by ``northbound.ops_push`` (the receiver an administrator), with a
  subtree filter on the SA table (``<ike><ike-sa/></ike>``, as tests/e2e/test_yang_push.py)
  or without filter (config and state).

Each refresh publishes one new snapshot: ``clock`` (only ages and countdowns moved, same
version: what a sample of a quiet gateway gives), ``sa-down`` (one IKE SA gone, clocks moved),
``sa-up`` (one new IKE SA) and ``counter`` (a global counter moved). For each, the process's
CPU time (``time.process_time``) from the publication until the push-change-update was
handed to the receiver (serialized), or until 1 s passed without one, and the edits it
carried. min / median / max over all refreshes of all rounds, the load average before and
after each process.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SMOKE_ARGS = ["--sas", "20", "--refreshes", "1", "--rounds", "1"]  # the smoke run of make test
SCENARIOS = ("clock", "sa-down", "sa-up", "counter")
FILTERS = ("ike-sa", "none")
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
IPNF = "urn:ipsec-nf:yang:ipsec-nf"
YP = "urn:ietf:params:xml:ns:yang:ietf-yang-push"
SA = {"uniqueid": "1", "version": "2", "state": "ESTABLISHED", "local-host": "198.51.100.1",
      "remote-host": "198.51.100.2", "local-id": "a.bench.example.net",
      "remote-id": "b.bench.example.net", "initiator": "yes",
      "initiator-spi": "8d6e2a1f3c4b5a69", "responder-spi": "1a2b3c4d5e6f7081",
      "encr-alg": "AES_CBC", "encr-keysize": "128", "integ-alg": "HMAC_SHA2_256_128",
      "prf-alg": "PRF_HMAC_SHA2_256", "dh-group": "CURVE_25519", "established": "5",
      "rekey-time": "13000",
      "child-sas": {"sp-1": {"name": "sp", "uniqueid": "1", "reqid": "1",
                             "state": "INSTALLED", "mode": "TUNNEL", "protocol": "ESP",
                             "spi-in": "c0000001", "spi-out": "d0000001",
                             "encr-alg": "AES_CBC", "encr-keysize": "128",
                             "integ-alg": "HMAC_SHA2_256_128", "bytes-in": "0",
                             "packets-in": "0", "bytes-out": "0", "packets-out": "0",
                             "rekey-time": "3000", "life-time": "3600",
                             "install-time": "5", "local-ts": ["10.1.0.0/32"],
                             "remote-ts": ["10.2.0.0/32"]}}}


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --- one process: one version of the code ------------------------------------------------------

def inner(args: argparse.Namespace) -> dict[str, Any]:
    """Measure the code of ``args.code`` (first on sys.path)."""
    sys.path.insert(0, args.code)
    sys.path.insert(1, str(Path(args.code) / "bench"))
    import asyncio
    from types import SimpleNamespace

    from gateways import base_xml, ts, vpns_xml
    from lxml import etree

    from nf.datastore import Datastores
    from nf.nacm import Access, parse_policy
    from nf.observed import StateChange, StateSnapshot, same_content
    from nf.schema import Schema
    from nf.templates import resolve
    from northbound import ops_push, push
    from northbound.notifications import Notifications
    from northbound.subscriptions import Spec, Subscriptions
    from southbound.charon_backend import DATAPLANES, CharonBackend
    from tests.fakes.vici_server import FakeCharon
    from tools.check_output import vpn_view

    n = args.sas
    schema = Schema()
    work = tempfile.mkdtemp(prefix="ypbench-")
    ds = Datastores(schema, Path(work))
    ds.edit("running", etree.fromstring(base_xml("")), sid=1)
    ds.edit("running", etree.fromstring(vpns_xml(0, n)), sid=1)
    eff = resolve(ds.config)
    views = []
    for name in sorted(eff.vpns):
        view = vpn_view(eff.vpns[name])
        view.pop("name", None)
        views.append((name, view))

    def sa(i: int, uid: int) -> dict[str, Any]:
        out = copy.deepcopy(SA)
        out["uniqueid"] = str(uid)
        out["local-id"], out["remote-id"] = f"a{i}.bench.example.net", f"b{i}.bench.example.net"
        child = out["child-sas"]["sp-1"]
        child["uniqueid"] = child["reqid"] = str(uid)
        child["spi-in"], child["spi-out"] = f"c{uid:07x}", f"d{uid:07x}"
        child["local-ts"], child["remote-ts"] = [ts(i, 1)], [ts(i, 2)]
        return {f"a{i}": out}

    with FakeCharon() as fake:
        backend = CharonBackend(fake.path, DATAPLANES["kernel-libipsec"])
        sas = [sa(i, i + 1) for i in range(n)]

        def reading(age: int, counter: int = 0) -> dict[str, Any]:
            for entry in sas:
                (s,) = entry.values()
                s["established"] = str(5 + age)
                s["rekey-time"] = str(13000 - age)
                s["child-sas"]["sp-1"]["install-time"] = str(5 + age)
                s["child-sas"]["sp-1"]["rekey-time"] = str(3000 - age)
                s["child-sas"]["sp-1"]["life-time"] = str(3600 - age)
            fake.sas = copy.deepcopy(sas)
            fake.counters = {"": {"ike-rekey-init": counter}}
            tree = backend.read_state(5.0)
            return {**tree, "apply-status": {"state-read-time": f"2026-11-30T07:{age // 60:02d}:"
                                                                f"{age % 60:02d}Z"},
                    "vpn": [{"name": name, "effective": v} for name, v in views]}

        # the refreshes, made before anything is measured
        plan: list[tuple[str, dict[str, Any], bool]] = []
        age, counter, uid = 0, 0, n + 1
        base = reading(age)
        for _ in range(args.refreshes):
            for scenario in SCENARIOS:
                age += 5
                if scenario == "sa-down":
                    sas.pop(len(sas) // 2)
                elif scenario == "sa-up":
                    sas.append(sa(len(sas), uid))
                    uid += 1
                elif scenario == "counter":
                    counter += 1
                tree = reading(age, counter)
                last = plan[-1][1] if plan else base
                plan.append((scenario, tree, not same_content(last, tree)))  # the version

    admin = Access(parse_policy(ds.tree("running")), "admin", ["admin"])

    class Source:
        """Publishes the planned trees, versioned as the state engine does."""

        def __init__(self, tree: dict[str, Any]) -> None:
            self.snap = StateSnapshot(tree=tree, read_at=None, stale=False, version=1)
            self.queues: list[asyncio.Queue[StateChange]] = []

        async def snapshot(self, max_age: float = 1.0, max_stale: float = 0.0
                           ) -> StateSnapshot:
            return self.snap

        def expire(self) -> None:
            pass

        async def changes(self) -> Any:
            q: asyncio.Queue[StateChange] = asyncio.Queue()
            self.queues.append(q)
            while True:
                yield await q.get()

        def publish(self, tree: dict[str, Any], changed: bool) -> None:
            self.snap = StateSnapshot(tree=tree, read_at=None, stale=False,
                                      version=self.snap.version + changed)
            for q in self.queues:
                q.put_nowait(StateChange("refresh", self.snap))

    class Receiver:
        def __init__(self) -> None:
            self.session_id, self.data = 1, {}
            self.got: list[Any] = []
            self.arrived = asyncio.Event()

        async def send_notification(self, msg: bytes) -> bool:
            self.got.append(etree.fromstring(msg)[1])
            self.arrived.set()
            return True

    results: dict[str, Any] = {}

    async def measure(filt: str) -> dict[str, Any]:
        source = Source(base)
        ctx = SimpleNamespace(schema=schema, state=source, ds=ds, access=lambda _s: admin,
                              read_state=None)
        subs = Subscriptions(Notifications(), schema.state_top, source)
        r = Receiver()
        selection = push.Selection()
        if filt == "ike-sa":
            selection = push.Selection(subtree=etree.fromstring(
                f'<f xmlns="{IPNF}"><ike><ike-sa/></ike></f>'))
        spec = Spec(datastore="operational", on_change=True, selection=selection)
        subs.establish(r, spec, ops_push._reader(ctx, r, spec), lambda b: b)
        await r.arrived.wait()  # the sync-on-start push-update
        out: dict[str, Any] = {s: {"cpu_ms": [], "edits": [], "updates": 0} for s in SCENARIOS}
        for scenario, tree, changed in plan:
            before = len(r.got)
            r.arrived.clear()
            t0 = time.process_time()
            source.publish(tree, changed)
            with contextlib.suppress(TimeoutError):  # no update: the producer found nothing
                await asyncio.wait_for(r.arrived.wait(), 1.0)
            cpu = (time.process_time() - t0) * 1000
            edits = sum(len(list(b.iter(f"{{{YP}}}edit"))) for b in r.got[before:])
            row = out[scenario]
            row["cpu_ms"].append(round(cpu, 2))
            row["edits"].append(edits)
            row["updates"] += len(r.got) - before
            await asyncio.sleep(0.05)  # what follows (a late second update) is not mixed in
        await subs.close()
        return out

    for filt in FILTERS:
        results[filt] = asyncio.run(measure(filt))
    return results


# --- the driver: processes alternated ----------------------------------------------------------

def stats(samples: list[float]) -> dict[str, float]:
    return {"min": min(samples), "median": round(statistics.median(samples), 2),
            "max": max(samples), "n": len(samples)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--before", required=False)
    p.add_argument("--after", required=False)
    p.add_argument("--sas", type=int, default=1000)
    p.add_argument("--refreshes", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", default=str(ROOT / "bench/results/yang_push_on_change.json"))
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--code", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.inner:
        print(json.dumps(inner(args)))
        return 0
    # without them, this checkout on both sides (the smoke run of make test; a noise floor)
    args.before = args.before or str(ROOT)
    args.after = args.after or str(ROOT)
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    loads = []
    for rnd in range(args.rounds):
        for label in ("before", "after"):
            code = str(Path(getattr(args, label)).resolve())
            load_before = load()
            out = subprocess.run(
                [sys.executable, __file__, "--inner", "--code", code, "--sas", str(args.sas),
                 "--refreshes", str(args.refreshes)],
                capture_output=True, text=True, cwd=code,
                env={**os.environ, "PYTHONPATH": code}, check=False)
            if out.returncode != 0:
                print(out.stderr, file=sys.stderr)
                return 1
            runs[label].append(json.loads(out.stdout.strip().splitlines()[-1]))
            loads.append({"round": rnd, "code": label, "load_before": load_before,
                          "load_after": load()})
            print(f"round {rnd + 1} {label}: load {load_before} -> {load()}", flush=True)
    table: dict[str, Any] = {}
    print(f"\nYANG-Push on-change, {args.sas} IKE SAs: CPU per refresh (ms) and edits per "
          "push-change-update")
    print(f"{'filter':8} {'refresh':8} {'code':7} {'cpu min':>9} {'median':>9} {'max':>9} "
          f"{'edits':>7} {'updates':>8}")
    for filt in FILTERS:
        for scenario in SCENARIOS:
            for label in ("before", "after"):
                cpu = [x for r in runs[label] for x in r[filt][scenario]["cpu_ms"]]
                edits = [x for r in runs[label] for x in r[filt][scenario]["edits"]]
                updates = sum(r[filt][scenario]["updates"] for r in runs[label])
                s = stats(cpu)
                table.setdefault(filt, {}).setdefault(scenario, {})[label] = {
                    "cpu_ms": s, "edits_median": statistics.median(edits),
                    "updates": updates, "refreshes": len(cpu)}
                print(f"{filt:8} {scenario:8} {label:7} {s['min']:9.1f} {s['median']:9.1f} "
                      f"{s['max']:9.1f} {statistics.median(edits):7.0f} "
                      f"{updates:>4}/{len(cpu):<3}")
    out = {"sas": args.sas, "refreshes": args.refreshes, "rounds": args.rounds,
           "before": args.before, "after": args.after, "loads": loads, "table": table,
           "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1))
    print(f"\nwritten to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
