"""Tunnel bring-up: N site-to-site tunnels between two namespace gateways until every CHILD SA
is installed, through ipsec-nf (NETCONF candidate + commit) and through swanctl, interleaved.

    .venv/bin/python bench/tunnel_bringup.py [--sizes 100,1000] [--rounds 3]
                                             [--json bench/results/tunnel_bringup.json]

Three network namespaces: the initiators A (``ipsec-nf serve`` and the charon it starts,
198.51.100.1) and S (a plain charon driven by swanctl, 198.51.100.3), each joined by a veth
to the responder B (one plain charon, 198.51.100.2 and .4). A and S cannot share one charon:
our reconciler owns its charon's connections (it would unload what swanctl loads behind its
back as drift), so S's charon is started from the very strongswan.conf serve's charon gets
(``CharonProcess`` with the same effective global options, read from the same
``/ike/global-options`` we commit, kernel-libipsec data plane as ``serve`` runs). B answers
both through the same N responder connections (``swanctl --load-all`` once, start_action none).

Both charons (A's and S's, and B) run with the same raised DoS limits, since charon's
defaults (cookies from 10 half-open IKE SAs, at most 5 half-open SAs per peer) throttle one
peer opening hundreds of IKE SAs at once: ``/ike/global-options/dos-protection``
``cookie-threshold 0`` and ``cookie-threshold-ip 0`` (cookies off: ``charon.cookie_threshold``
and the per-address ``charon.cookie_threshold_ip``, 3 by default), ``block-threshold 100000``
(``charon.block_threshold``, half-open SAs per peer) and an IKE SA table of 1,024 buckets in
16 segments (``sa-table-size``/``sa-table-segments``: ``charon.ikesa_table_size`` and
``..._segments``; the default is one bucket). B gets the same values in its strongswan.conf.

Each round, the two cases one after the other (A, S, A, S...), each timed the same way: the
timer starts when the configuration is handed over and stops when this script's VICI event
listener on the initiator's charon (registered before the timer) has seen a ``child-updown``
up for every one of the N connections; ``list-sas`` then confirms N IKE SAs established with
their CHILD SA installed.

- ipsec-nf: ``edit-config`` of the N VPNs into the candidate and ``commit`` over an ncclient
  session opened once (TICK 1 ms); the VPNs take ``start-action start`` from their IPsec
  policy template (the vRouter manual's use for a site-to-site tunnel that must be up), so our
  reconciler loads each connection with start_action=start and charon initiates it;
- swanctl: ``swanctl --load-all --file swanctl.conf`` (process start included) where the
  swanctl.conf holds exactly the load-conn / load-shared messages our reconciler sends for the
  same VPNs (resolved in this process: every default and the start_action=start).

A tunnel whose IKE_SA_INIT went unanswered through all of charon's retransmits (keyingtries 1,
as our reconciler loads them) is not retried by charon: our reconciler initiates such a
connection again after 30 s without a CHILD SA (``reinitiate_after``), and the bench does the
same for S over VICI, so both sides can finish (how many were initiated again is in the JSON).

Between rounds (not timed) the tunnels are removed: ours by deleting the VPNs over NETCONF,
swanctl's by ``--load-all --clear`` of an empty file and terminating its SAs; the script waits
until no IKE SA is left on any of the three charons. Needs root (namespaces, charon).
"""

from __future__ import annotations

import argparse
import os
import signal
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
from gateways import (  # noqa: E402
    A_WAN,
    B_WAN,
    Server,
    installed,
    responder_conf,
    run_linked,
)
from gateways import base_xml as _base_xml  # noqa: E402
from gateways import vpns_xml as _vpns_xml  # noqa: E402
from updowns import Updowns, clear_sas  # noqa: E402

SMOKE_ARGS = ["--sizes", "2", "--rounds", "1"]  # the smoke run of make test
S_WAN, B_WAN2 = "198.51.100.3", "198.51.100.4"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS = "urn:ipsec-nf:yang:ipsec-nf"
GLOBAL_OPTIONS = ("<global-options><dos-protection><cookie-threshold>0</cookie-threshold>"
                  "<cookie-threshold-ip>0</cookie-threshold-ip>"
                  "<block-threshold>100000</block-threshold></dos-protection>"
                  "<sa-table-size>1024</sa-table-size><sa-table-segments>16</sa-table-segments>"
                  "</global-options>")


def base_xml() -> str:
    """Global options, the two templates (start-action start) and the key: no VPN."""
    return _base_xml(GLOBAL_OPTIONS)


def vpns_xml(n: int, local: str = A_WAN, remote: str = B_WAN) -> str:
    """The N VPNs of an initiator as an edit-config <config>."""
    return _vpns_xml(0, n, local, remote)


def removal_xml(n: int) -> str:
    """An edit deleting VPNs a0..a(n-1)."""
    vpns = "".join(f'<vpn nc:operation="delete"><name>a{i}</name></vpn>' for i in range(n))
    return f'<config xmlns="{NC}" xmlns:nc="{NC}"><ike xmlns="{NS}">{vpns}</ike></config>'


def b_conf(n: int) -> str:
    """Responder B's N connections (answering A and S) as swanctl.conf."""
    return responder_conf(n, f"{B_WAN},{B_WAN2}", f"{A_WAN},{S_WAN}")


def resolved(n: int) -> tuple[Any, dict[str, dict], dict[str, dict]]:
    """What our server makes of base + N VPNs (S's addresses): the effective global options
    and the load-conn / load-shared messages our reconciler sends (kernel-libipsec)."""
    from lxml import etree

    from nf.datastore import Datastores
    from nf.schema import Schema
    from nf.templates import resolve
    from southbound.charon_backend import DATAPLANES, KINDS, VPN
    from southbound.charon_backend import PSK as PSK_KIND

    dp = DATAPLANES["kernel-libipsec"]
    parser = etree.XMLParser(huge_tree=True)
    with tempfile.TemporaryDirectory() as tmp:
        ds = Datastores(Schema(), Path(tmp))
        ds.edit("running", etree.fromstring(base_xml().encode(), parser), sid=1)
        if n:
            ds.edit("running", etree.fromstring(vpns_xml(n, S_WAN, B_WAN2).encode(), parser),
                    sid=1)
        eff = resolve(ds.config)
    kinds = {k.name: k for k in KINDS}
    conns = {name: dict(kinds[VPN].payload(v, dp)) for name, v in kinds[VPN].select(eff).items()}
    keys = {name: dict(kinds[PSK_KIND].payload(p, dp))
            for name, p in kinds[PSK_KIND].select(eff).items()}
    return eff.global_options, conns, keys


def swanctl_conf(conns: Mapping[str, Mapping], keys: Mapping[str, Mapping]) -> str:
    """swanctl.conf holding exactly these load-conn / load-shared messages."""
    from bulk_load import swanctl_conf as conf

    return conf(conns, keys)


def phases(t0: float, handed: float, ups: list[float]) -> dict[str, float]:
    """Where a bring-up's time went: the hand-over (commit or swanctl returned), the first,
    the middle and the last CHILD SA up, in s from the start."""
    return {"handed_s": round(handed - t0, 3), "first_up_s": round(ups[0] - t0, 3),
            "half_up_s": round(ups[len(ups) // 2] - t0, 3), "last_up_s": round(ups[-1] - t0, 3)}


class Bench:
    """The server on A, the swanctl charon on S, the responder on B."""

    def __init__(self, work: Path, ns_s: str, ns_b: str, port: int) -> None:
        from southbound.charon import CharonProcess

        options, _, _ = resolved(0)
        self.work, self.state = work, work / "a"
        self.phases: dict[str, list[dict[str, float]]] = {"ipsec-nf": [], "swanctl": []}
        self.reinitiated = 0  # connections of S initiated again by the bench
        self.s = CharonProcess(work / "s", "kernel-libipsec", options, netns=ns_s)
        self.b = CharonProcess(work / "b", "kernel-libipsec", options, netns=ns_b)
        self.s.start()
        self.b.start()
        self.server = Server(self.state, port)
        self.a_sock = self.server.sock
        # the global options restart A's charon (SA table size)
        self.server.configure_base(base_xml())

    def log_text(self) -> str:
        """The server's whole log."""
        return self.server.log_text()

    def tail(self) -> str:
        """The end of the server's log."""
        return self.server.tail()

    def commit(self, config: str, wait: bool = True) -> None:
        """edit-config into the candidate, commit (and wait until applied)."""
        self.server.commit(config, wait)

    def ours(self, n: int, xml: str) -> float:
        """Seconds from the edit-config to the N CHILD SAs up on A's charon."""
        ups = Updowns(self.a_sock)
        try:
            t = time.perf_counter()
            self.commit(xml, wait=False)
            handed = time.perf_counter()
            ups.wait(n)
            took = time.perf_counter() - t
        finally:
            ups.close()
        self.phases["ipsec-nf"].append(phases(t, handed, ups.times))
        if (k := installed(self.a_sock)) != n:
            raise SystemExit(f"A's charon lists {k} installed tunnels, not {n}")
        self.commit(removal_xml(n))
        clear_sas(self.a_sock, self.b.socket_path)
        return took

    def swanctl(self, n: int, conf: Path, empty: Path) -> float:
        """Seconds from ``swanctl --load-all`` to the N CHILD SAs up on S's charon."""
        uri = f"unix://{self.s.socket_path}"
        ups = Updowns(self.s.socket_path)
        try:
            t = time.perf_counter()
            subprocess.run(["swanctl", "--load-all", "--file", str(conf), "--uri", uri],
                           check=True, capture_output=True)
            handed = time.perf_counter()
            ups.wait(n, nudge=lambda up: self.reinitiate(n, up))
            took = time.perf_counter() - t
        finally:
            ups.close()
        self.phases["swanctl"].append(phases(t, handed, ups.times))
        if (k := installed(self.s.socket_path)) != n:
            raise SystemExit(f"S's charon lists {k} installed tunnels, not {n}")
        subprocess.run(["swanctl", "--load-all", "--clear", "--file", str(empty), "--uri", uri],
                       check=True, capture_output=True)
        clear_sas(self.s.socket_path, self.b.socket_path)
        return took

    def reinitiate(self, n: int, up: set[str]) -> None:
        """What our reconciler does for a tunnel that should be up (``reinitiate_after``, 30 s),
        done for S: initiate again each connection with no CHILD SA up and no IKE SA being set
        up (with keyingtries 1, charon gives up on a tunnel whose IKE_SA_INIT went unanswered
        after its retransmits; swanctl alone would never bring it up)."""
        from southbound.vici_client import ViciClient, ViciError

        with ViciClient(self.s.socket_path, timeout=120) as c:
            busy = {name for entry in c.list_sas() for name in entry}
            again = [f"a{i}" for i in range(n) if f"a{i}" not in up and f"a{i}" not in busy]
            for name in again:
                try:
                    c.initiate(child="sp", ike=name, timeout_ms=-1)
                except ViciError:
                    pass
        self.reinitiated += len(again)
        print(f"    swanctl side: initiated {len(again)} connections again", flush=True)

    def stop(self) -> None:
        """Stop the server and the two plain charons."""
        self.server.stop()
        self.s.stop()
        self.b.stop()


def measure(b: Bench, n: int, rounds: int) -> dict[str, Any]:
    """The interleaved rounds at N tunnels."""
    _, conns, keys = resolved(n)
    conf = b.work / f"swanctl-{n}.conf"
    conf.write_text(swanctl_conf(conns, keys))
    empty = b.work / "empty.conf"
    empty.write_text("connections {\n}\nsecrets {\n}\n")
    b_file = b.work / f"b-{n}.conf"
    b_file.write_text(b_conf(n))
    subprocess.run(["swanctl", "--load-all", "--clear", "--file", str(b_file), "--uri",
                    f"unix://{b.b.socket_path}"], check=True, capture_output=True)
    xml = vpns_xml(n)
    started = report.load()
    b.phases = {"ipsec-nf": [], "swanctl": []}
    b.reinitiated = 0
    ours_again = b.log_text().count("(no CHILD SA for")
    samples = report.interleave({"ipsec-nf": lambda: b.ours(n, xml),
                                 "swanctl": lambda: b.swanctl(n, conf, empty)}, rounds)
    for i in range(rounds):
        print(f"  {n} tunnels, round {i + 1}: ipsec-nf {samples['ipsec-nf'][i]:.3f} s "
              f"{b.phases['ipsec-nf'][i]}, swanctl {samples['swanctl'][i]:.3f} s "
              f"{b.phases['swanctl'][i]} (load {report.load()['loadavg']})", flush=True)
    ours, swan = (report.spread(samples[k]) for k in ("ipsec-nf", "swanctl"))
    return {"tunnels": n, "load_start": started, "load_end": report.load(),
            "ipsec_nf_s": ours, "swanctl_s": swan,
            "ratio": round(statistics.median(samples["ipsec-nf"])
                           / statistics.median(samples["swanctl"]), 2),
            "samples_s": {k: [round(x, 3) for x in v] for k, v in samples.items()},
            "phases": b.phases, "swanctl_reinitiated": b.reinitiated,
            "ipsec_nf_reinitiated": b.log_text().count("(no CHILD SA for") - ours_again}


def inner(a: argparse.Namespace) -> int:
    """Inside A's namespace: every size, then the table and the JSON."""
    started = report.load()
    results = []
    with tempfile.TemporaryDirectory(prefix="ipsec-nf-bringup-") as tmp:
        b = Bench(Path(tmp), a.ns_s, a.ns_b, 8900 + os.getpid() % 1000)
        try:
            for n in sorted(int(x) for x in a.sizes.split(",") if x):
                results.append(measure(b, n, a.rounds))
        except BaseException:
            print(b.tail())
            print(b.b.log_tail(30))
            raise
        finally:
            b.stop()
    report.table(
        "Tunnel bring-up until every CHILD SA is installed, s: median (min-max), interleaved "
        "(ipsec-nf: NETCONF edit-config + commit; swanctl: --load-all, start_action=start)",
        ["tunnels", "ipsec-nf", "swanctl", "ratio of medians", "load at start / end"],
        [[r["tunnels"], report.mmm(r["ipsec_nf_s"]), report.mmm(r["swanctl_s"]), r["ratio"],
          f"{r['load_start']['loadavg'][0]} / {r['load_end']['loadavg'][0]}"]
         for r in results])
    report.write(a.json, {"results": results}, started)
    return 0


def outer(argv: list[str], most: int) -> int:
    """Three namespaces (A and S each joined to B by a veth); run inside A's; delete them."""
    return run_linked(__file__, "nftb", [(A_WAN, B_WAN), (S_WAN, B_WAN2)], most, argv)


def main() -> int:
    """Parse the arguments; make the namespaces and measure inside them."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100,1000")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default=report.default_json(__file__))
    ap.add_argument("--inner", nargs=2, metavar=("S_NS", "B_NS"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on a kill too
    if a.inner:
        a.ns_s, a.ns_b = a.inner
        return inner(a)
    most = max(int(x) for x in a.sizes.split(",") if x)
    return outer(["--sizes", a.sizes, "--rounds", str(a.rounds), "--json", a.json], most)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
