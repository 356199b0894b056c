"""Commit latency of a one-VPN change with N VPNs configured (in-process, no transport).

    .venv/bin/python bench/commit_latency.py [--sizes 10,1000,10000] [--repeat 20]
                                             [--json bench/results/commit_latency.json]

Prints p50/p95 in milliseconds of: edit-config of one VPN on running (validation, persistence,
effective config), for each N. Compare with the target: p50 < 50 ms, flat in N.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import report  # noqa: E402

from nf.datastore import Datastores  # noqa: E402
from nf.effective import EffectiveConfig  # noqa: E402
from nf.schema import Schema  # noqa: E402
from nf.templates import resolve, update  # noqa: E402
from nf.validate import is_bulk  # noqa: E402

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS = "urn:ipsec-nf:yang:ipsec-nf"
SMOKE_ARGS = ["--sizes", "2", "--repeat", "2"]  # the smoke run of make test

TEMPLATES = """<ike-policy-template><name>t</name><ike-proposal><id>1</id>
<enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha256</auth-alg><dh-group>modp2048</dh-group>
</ike-proposal></ike-policy-template><ipsec-policy-template><name>p</name><esp-proposal><id>1</id>
<enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha256</auth-alg></esp-proposal></ipsec-policy-template>"""


def vpn(i: int, local_id: str = "gw.example.net") -> str:
    """One VPN entry."""
    return (f"<vpn><name>vpn{i}</name><ike-policy><template>t</template></ike-policy>"
            f"<ipsec-policy><template>p</template></ipsec-policy>"
            f"<local-address>198.51.100.1</local-address>"
            f"<remote-address>203.0.113.{i % 250 + 1}</remote-address>"
            f"<local-id>{local_id}</local-id><security-policy><name>sp</name>"
            f"<local-ts><subnet>192.168.0.0/24</subnet></local-ts>"
            f"<remote-ts><subnet>10.{i // 250 % 250}.{i % 250}.0/24</subnet></remote-ts>"
            f"</security-policy></vpn>")


def config(body: str) -> etree._Element:
    """An edit-config <config>."""
    return etree.fromstring(f'<config xmlns="{NC}"><ike xmlns="{NS}">{body}</ike></config>')


def measure(schema: Schema, n: int, repeat: int) -> dict[str, float]:
    """Latency of one-VPN commits with n VPNs configured."""
    with tempfile.TemporaryDirectory() as tmp:
        ds = Datastores(schema, Path(tmp))
        eff: EffectiveConfig | None = None

        def effective(cfg: dict, touched: set | None) -> None:
            # the effective config is part of a commit's cost (as tools/app.py computes it)
            nonlocal eff
            if touched is None or not all(is_bulk(k) for k in touched) or eff is None:
                eff = resolve(cfg)
            else:
                eff = update(eff, cfg, {k[2][0] for k in touched if k[1].endswith("}vpn")},
                             {k[2][0] for k in touched if k[1].endswith("pre-shared-key")})
        ds.on_commit.append(effective)
        t0 = time.perf_counter()
        ds.edit("running", config(TEMPLATES + "".join(vpn(i) for i in range(n))), sid=1)
        bulk = time.perf_counter() - t0
        samples = []
        for r in range(repeat):
            t = time.perf_counter()
            ds.edit("running", config(vpn(r % n, f"gw{r}.example.net")), sid=1)
            samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"vpns": n, "bulk_load_s": round(bulk, 3), "peak_rss_mib": round(rss, 1),
            "commit_ms": report.spread(samples, digits=2),
            "p50_ms": round(statistics.median(samples), 2),
            "p95_ms": round(samples[max(0, int(len(samples) * 0.95) - 1)], 2)}


def main() -> int:
    """Run and print."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10,1000,10000")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--json", default=report.default_json(__file__))
    args = ap.parse_args()
    started = report.load()
    schema = Schema()
    results = []
    for n in (int(x) for x in args.sizes.split(",")):
        r = measure(schema, n, args.repeat)
        results.append(r)
        print(f"{n:>6} VPNs: bulk load {r['bulk_load_s']:.2f} s, one-VPN commit "
              f"p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms, "
              f"peak RSS {r['peak_rss_mib']:.0f} MiB", flush=True)
    report.table("One-VPN commit in one process (edit-config on running), ms",
                 ["VPNs", "bulk load s", "median (min-max)", "p95", "peak RSS MiB"],
                 [[r["vpns"], r["bulk_load_s"], report.mmm(r["commit_ms"]), r["p95_ms"],
                   r["peak_rss_mib"]] for r in results])
    report.write(args.json, {"results": results}, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
