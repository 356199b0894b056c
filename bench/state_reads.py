"""State reads with 1, 100 and 1,000 IKE SAs up, beside `swanctl --list-sas` on the same charon,
and the delay from an SA event in charon to the gNMI ON_CHANGE update.

    .venv/bin/python bench/state_reads.py [--sizes 1,100,1000] [--rounds 10] [--events 20]
                                          [--event-sizes 1,100,1000] [--stale-pause 6]
                                          [--json bench/results/state_reads.json]

Smoke run (what ``make test`` runs so that the script cannot rot, ``SMOKE_ARGS``; a minute):

    .venv/bin/python bench/state_reads.py --sizes 1 --rounds 1 --events 2 --stale-pause 0 \
        --json /tmp/sr.json

Two gateways in two network namespaces joined by a veth (198.51.100.1 and .2):

- gateway A: ``ipsec-nf serve`` with its charon (kernel-libipsec), NETCONF on 127.0.0.1 and
  gNMI on 127.0.0.1 (``--gnmi-insecure``, loopback only), configured over NETCONF: N VPNs to B,
  each with its own identities and traffic selectors (start-action start, close-action none);
- peer B: a plain charon of its own, its N matching connections loaded by
  ``swanctl --load-all``; it only answers.

Both charons get the same global options: cookies off, a per-peer half-open limit of 100,000
(charon's defaults, cookies at 10 half-open SAs and 5 half-open SAs per peer, would throttle
one peer bringing up 1,000 IKE SAs at once) and an IKE SA table of 1,024 buckets in 16
segments (charon's default is one bucket: a linear list). A's are set over NETCONF
(``/ike/global-options``), B's in its strongswan.conf. No traffic is sent: only the IKE and
CHILD SAs need to be up.

For each size N (VPNs are added to reach it; the bench waits until charon lists N IKE SAs
established with their CHILD SA installed), ``--rounds`` rounds, each measuring in turn (so
every one of ours is interleaved with ``swanctl --list-sas``, A,B,A,B):

- ``swanctl --list-sas --uri unix://<A's VICI socket>`` (process start, VICI, printing; its
  output read through a pipe);
- state poll: one full refresh of a state engine (``southbound/state_engine.py``, the same
  ``CharonBackend.read_state`` behind the same bounded reader the server uses: stats,
  list-sas and two get-counters over VICI, parsed into the YANG tree, the change check) on
  A's charon, in this process; and the read after one SA event (an ike-updown of one IKE SA
  fed to that engine: a targeted read of that SA since the state engine has them, a full
  read before);
- NETCONF ``<get>`` with a subtree filter on the SA table (``<ike><ike-sa/></ike>``; ncclient,
  TICK 1 ms), three times: after a pause of 1.1 s (the server's snapshot is older than
  READ_MAX_AGE: served at once while read again, stale-while-revalidate, or before that rule
  waiting for the read), right after (``cached``), and after 6 s (older than READ_MAX_STALE:
  the get waits for the read);
- gNMI Get of ``/ike/ike-sa`` (pygnmi, JSON_IETF, datatype state), the same three ways.

Then, at each size of ``--event-sizes``, ``--events`` times: terminate one IKE SA of A's
charon over VICI, then initiate it again, and measure, from the moment this script's own VICI
event listener on A's socket sees charon's ``ike-updown`` (down, then up), until a pygnmi
STREAM ON_CHANGE subscription on ``/ike/ike-sa`` delivers the matching delete (the IKE SA
entry) or update (the new entry; ``bench/on_change_delay.py``): p50 and p99 over all
events (an update not there within 60 s counts as missed).

Each row prints min / median / max in ms and the ratio of medians against swanctl of the same
rounds; the machine's load average is printed before and after each size and written to the
JSON. Needs root (network namespaces, charon).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from gateways import (  # noqa: E402
    A_WAN,
    B_WAN,
    NS,
    PASSWORD,
    USER,
    Server,
    base_xml,
    installed,
    responder_conf,
    run_linked,
    vpns_xml,
)
from on_change_delay import events  # noqa: E402

NETCONF_PORT, GNMI_PORT = 8831, 9341
SMOKE_ARGS = ["--sizes", "1", "--rounds", "1", "--events", "2", "--stale-pause", "0"]
STEP = 100  # VPNs added (and initiated) at a time
SA_FILTER = f'<ike xmlns="{NS}"><ike-sa/></ike>'


# ---- configuration of the two gateways ------------------------------------------------------

def a_vpns(lo: int, hi: int) -> str:
    """VPNs lo..hi-1 of gateway A as an edit-config <config>."""
    return vpns_xml(lo, hi)


def a_base() -> str:
    """Gateway A's global options, templates and key (no VPN yet)."""
    return base_xml("<global-options><dos-protection><cookie-threshold>0</cookie-threshold>"
                    "<block-threshold>100000</block-threshold></dos-protection>"
                    "<sa-table-size>1024</sa-table-size><sa-table-segments>16</sa-table-segments>"
                    "</global-options>")


def b_swanctl_conf(n: int) -> str:
    """Peer B's N responder connections as swanctl.conf."""
    return responder_conf(n)


# ---- measuring ------------------------------------------------------------------------------

def load() -> list[float]:
    """The machine's load average (1, 5, 15 min)."""
    return [round(x, 2) for x in os.getloadavg()]


def stats(samples: list[float]) -> dict[str, float]:
    """min / median / max of samples in ms."""
    return {"min_ms": round(min(samples), 1), "median_ms": round(statistics.median(samples), 1),
            "max_ms": round(max(samples), 1), "n": len(samples)}


def timed(fn: Any) -> float:
    """Milliseconds ``fn()`` took."""
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


class Bench:
    """Gateway A (``ipsec-nf serve``) and peer B (a plain charon), in this namespace and in
    ``peer_ns``."""

    def __init__(self, work: Path, peer_ns: str) -> None:
        from nf.effective import DosProtection, GlobalOptions
        from southbound.charon import CharonProcess

        self.work = work
        self.state_dir = work / "a"
        opts = GlobalOptions(dos_protection=DosProtection(cookie_threshold=0,
                                                          block_threshold=100000),
                             sa_table_size=1024, sa_table_segments=16,
                             install_routes=False)
        self.b = CharonProcess(work / "b", options=opts, netns=peer_ns)
        self.b.start()
        self.b_conf = work / "b" / "swanctl.conf"
        self.server = Server(self.state_dir, NETCONF_PORT,
                             ["--gnmi", f"127.0.0.1:{GNMI_PORT}", "--gnmi-insecure"],
                             [GNMI_PORT])
        self.a_sock, self.m = self.server.sock, self.server.m
        from pygnmi.client import gNMIclient

        self.gc = gNMIclient(target=("127.0.0.1", GNMI_PORT), username=USER, password=PASSWORD,
                             insecure=True, gnmi_timeout=120)
        self.gc.connect()
        self.vpns = 0

    def tail(self) -> str:
        """The end of the server's log."""
        return self.server.tail()

    def commit(self, config: str) -> None:
        """edit-config into candidate, commit, wait until applied."""
        self.server.commit(config)

    def start(self) -> None:
        """A's global options (charon restarts for the SA table size), then nothing else."""
        self.server.configure_base(a_base())

    def grow(self, n: int, timeout: float = 900) -> float:
        """Bring up VPNs until n IKE SAs are established with a CHILD SA installed; the
        seconds it took."""
        self.b_conf.write_text(b_swanctl_conf(n))
        subprocess.run(["swanctl", "--load-all", "--file", str(self.b_conf), "--uri",
                        f"unix://{self.b.socket_path}"], check=True, capture_output=True)
        t = time.monotonic()
        while self.vpns < n:
            # at most STEP VPNs initiating at once: a thousand IKE_SA_INITs in one burst on
            # this 2-core machine end in retransmits and duplicate SAs, not in a faster start
            last, self.vpns = self.vpns, min(n, self.vpns + STEP)
            self.commit(a_vpns(last, self.vpns))
            while (up := self.up()) < self.vpns:
                if time.monotonic() - t > timeout:
                    raise SystemExit(f"only {up} of {self.vpns} SAs up after {timeout}s:\n"
                                     f"{self.tail()}")
                time.sleep(0.5)
        return time.monotonic() - t

    def up(self) -> int:
        """IKE SAs established with an installed CHILD SA, as charon lists them."""
        return installed(self.a_sock, timeout=60)

    def swanctl(self) -> str:
        """``swanctl --list-sas`` on A's charon, its output."""
        return subprocess.run(["swanctl", "--list-sas", "--uri", f"unix://{self.a_sock}"],
                              check=True, capture_output=True, text=True).stdout

    def netconf_get(self) -> str:
        """<get> of the SA table (subtree filter)."""
        return self.m.get(filter=("subtree", SA_FILTER)).xml

    def gnmi_get(self) -> dict:
        """gNMI Get of the SA table (state)."""
        return self.gc.get(path=["/ike/ike-sa"], encoding="json_ietf", datatype="state")

    def stop(self) -> None:
        """Stop the server, peer B's charon; remove the work files."""
        try:
            self.gc.close()
        except Exception:  # noqa: BLE001
            pass
        self.server.stop()
        self.b.stop()


class Poller:
    """A state engine of its own on A's charon: one full refresh per :meth:`poll`, the read
    that follows one SA event per :meth:`event`."""

    def __init__(self, sock: Path) -> None:
        from southbound.charon_backend import DATAPLANES, CharonBackend
        from southbound.state_engine import StateEngine
        from southbound.state_reader import StateReader

        backend = CharonBackend(sock, DATAPLANES["kernel-libipsec"])
        self.loop = asyncio.new_event_loop()
        try:  # targeted reads after SA events
            reader = StateReader(backend.read_state, 30, backend.read_sas)
            kw: dict[str, Any] = {"read_sas": reader.read_sas}
        except (TypeError, AttributeError):  # the code before them (a before/after run)
            reader, kw = StateReader(backend.read_state, 30), {}
        self.engine = StateEngine(reader.read, interval=3600, reread=3600, **kw)
        self.ids: list[tuple[int, str]] = []
        self.k = 0

    def poll(self) -> int:
        """Refresh; the number of IKE SAs read."""
        snap = self.loop.run_until_complete(self.engine.snapshot(max_age=0))
        if snap.stale:
            raise SystemExit("the state poll could not read charon")
        self.ids = [(e["unique-id"], e["name"]) for e in snap.tree.get("ike-sa") or []]
        return len(self.ids)

    def event(self) -> None:
        """An ike-updown of one IKE SA (the next one each time), then a read that covers
        it."""
        uid, name = self.ids[self.k % len(self.ids)]
        self.k += 1
        self.engine.sa_event({"kind": "ike", "event": "up", "vpn": name, "unique-id": uid})
        if self.loop.run_until_complete(self.engine.snapshot(max_age=3600)).stale:
            raise SystemExit("the state poll could not read charon")

    def close(self) -> None:
        """Close the loop (and its reader threads)."""
        self.loop.run_until_complete(self.loop.shutdown_default_executor())
        self.loop.close()


def reads(b: Bench, poller: Poller, n: int, rounds: int, stale: float = 6.0
          ) -> dict[str, Any]:
    """The interleaved reads at n SAs (``stale``: the pause before the "6 s old" reads)."""
    # each is checked once to return the n SAs (and warms up the paths)
    if (got := b.swanctl().count(": #")) < n:
        raise SystemExit(f"swanctl lists {got} IKE SAs, not {n}")
    if (got := poller.poll()) < n:
        raise SystemExit(f"the state poll read {got} IKE SAs, not {n}")
    if (got := b.netconf_get().count("<unique-id>")) < n:  # IKE and CHILD SAs have one
        raise SystemExit(f"<get> returned {got} unique-ids for {n} IKE SAs")
    got = b.gnmi_get()
    if (k := json.dumps(got).count('"unique-id"')) < n:
        raise SystemExit(f"gNMI Get returned {k} unique-ids for {n} IKE SAs")
    rows: dict[str, list[float]] = {k: [] for k in (
        "swanctl --list-sas", "state poll (one refresh)", "state poll (one SA event)",
        *(f"{f} ({w})" for f in ("NETCONF get", "gNMI Get")
          for w in ("1.1 s old", "cached", "6 s old")))}
    for _ in range(rounds):
        # A, B, A, B...: swanctl beside each of ours
        rows["swanctl --list-sas"].append(timed(b.swanctl))
        rows["state poll (one refresh)"].append(timed(poller.poll))
        rows["state poll (one SA event)"].append(timed(poller.event))
        for front, read in (("NETCONF get", b.netconf_get), ("gNMI Get", b.gnmi_get)):
            # older than READ_MAX_AGE (1 s): the server reads charon again (since the
            # stale-while-revalidate rule in the background, the get answering at once);
            # older than READ_MAX_STALE (5 s): the get waits for the read either way
            for pause, name in ((1.1, "1.1 s old"), (0, "cached"), (stale, "6 s old")):
                time.sleep(pause)
                rows[f"{front} ({name})"].append(timed(read))
                rows["swanctl --list-sas"].append(timed(b.swanctl))
    base = statistics.median(rows["swanctl --list-sas"])
    return {name: {**stats(s), "ratio": round(statistics.median(s) / base, 2)}
            for name, s in rows.items()}


def main() -> int:
    """Make the two namespaces, measure inside A's, clean up."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1,100,1000")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--events", type=int, default=20)
    ap.add_argument("--stale-pause", type=float, default=6.0,
                    help="seconds before the '6 s old' reads (0 in the smoke run)")
    ap.add_argument("--event-sizes", default="1,100,1000",
                    help="the sizes at which the ON_CHANGE delay is measured")
    ap.add_argument("--json", default=str(ROOT / "bench" / "results" / "state_reads.json"))
    ap.add_argument("--inner", metavar="PEER_NS", help=argparse.SUPPRESS)
    a = ap.parse_args()
    args = ["--sizes", a.sizes, "--rounds", str(a.rounds), "--events", str(a.events),
            "--event-sizes", a.event_sizes, "--stale-pause", str(a.stale_pause),
            "--json", a.json]
    event_sizes = {int(x) for x in a.event_sizes.split(",") if x}
    sizes = sorted(int(x) for x in a.sizes.split(",") if x)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on a kill too
    if not a.inner:
        return outer(args, max(sizes))
    results: dict[str, Any] = {"sizes": []}
    with tempfile.TemporaryDirectory(prefix="ipsec-nf-statebench-") as tmp:
        b = Bench(Path(tmp), a.inner)
        poller = Poller(b.a_sock)
        try:
            b.start()
            for n in sizes:
                load_before = load()
                up_s = b.grow(n)
                print(f"{n} IKE SAs up in {up_s:.1f} s (load {load_before})", flush=True)
                row = {"ike_sas": n, "bring_up_s": round(up_s, 1), "load_before": load_before,
                       "reads": reads(b, poller, n, a.rounds, a.stale_pause),
                       "load_after": load()}
                print_reads(row)
                if a.events and n in event_sizes:
                    row["on_change"] = {"load_before": load(), **events(b, a.events, GNMI_PORT),
                                        "load_after": load()}
                    e = row["on_change"]
                    print(f"  ON_CHANGE delay, charon's ike-updown to the gNMI update, "
                          f"{e['events']} events ({e['missed']} missed): p50 "
                          f"{e['all_p50_ms']} ms, p99 {e['all_p99_ms']} ms, max {e['max_ms']} "
                          f"ms (down p50 {e['down_p50_ms']}, up p50 {e['up_p50_ms']}; load "
                          f"{e['load_after']})", flush=True)
                results["sizes"].append(row)
                Path(a.json).parent.mkdir(parents=True, exist_ok=True)
                Path(a.json).write_text(json.dumps(results, indent=2) + "\n")  # so far
        except BaseException:
            print(b.tail())
            print(b.b.log_tail(30))
            raise
        finally:
            poller.close()
            b.stop()
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {a.json}")
    return 0


def print_reads(row: dict[str, Any]) -> None:
    """One size's table."""
    print(f"  {'ms':<28}{'min':>8}{'median':>8}{'max':>8}{'x swanctl':>11}")
    for name, s in row["reads"].items():
        print(f"  {name:<28}{s['min_ms']:>8}{s['median_ms']:>8}{s['max_ms']:>8}"
              f"{s['ratio']:>11}")
    print(f"  load average before {row['load_before']}, after {row['load_after']}", flush=True)


def outer(args: list[str], most: int) -> int:
    """Two namespaces joined by a veth; run the measurement inside A's; delete them."""
    return run_linked(__file__, "nfsr", [(A_WAN, B_WAN)], most, args)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
