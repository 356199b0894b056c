"""Bulk load of N VPNs: ours (edit-config into the datastore, then the reconciler loads every
connection and key into charon over VICI) next to raw `swanctl --load-all` of the same
connections, on the same kind of charon, in one run.

    .venv/bin/python bench/bulk_load.py [--vpns 1000] [--repeat 3] [--json out.json]

Needs root: it runs charon in a private network namespace (only addresses on its own lo) and
deletes it at the end. No connection is initiated (start-action none).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

PSK = "0seaJ31RfzHNRvUSH0oUYg7znTW0I="
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS = "urn:ipsec-nf:yang:ipsec-nf"


def remote(i: int) -> str:
    """A peer address in a documentation range."""
    return f"203.0.113.{i % 250 + 1}"


def swanctl_conf(n: int) -> str:
    """The same N connections as swanctl.conf text."""
    conns = "".join(
        f"""  vpn{i} {{
    version = 2
    local_addrs = 198.51.100.1
    remote_addrs = {remote(i)}
    proposals = aes128-sha256-modp2048
    local {{ auth = psk
      id = gw.example.net }}
    remote {{ auth = psk
      id = peer{i}.example.net }}
    children {{ sp {{ local_ts = 192.168.0.0/24
        remote_ts = 10.{i // 250 % 250}.{i % 250}.0/24
        esp_proposals = aes128-sha256
        start_action = none }} }}
  }}
""" for i in range(n))
    return f"connections {{\n{conns}}}\nsecrets {{\n  ike-all {{ secret = {PSK}\n  }}\n}}\n"


def our_config(n: int) -> str:
    """The same N VPNs as an edit-config <config>."""
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


async def ours(n: int, work: Path, sock: Path) -> tuple[float, float, float]:
    """Seconds for: datastore edit, reconciler convergence; and our RSS in MiB."""
    from lxml import etree

    from nf.datastore import Datastores
    from nf.effective import EffectiveConfig
    from nf.schema import Schema
    from nf.templates import resolve
    from southbound.charon_backend import DATAPLANES, VPN, CharonBackend
    from southbound.reconciler import Reconciler

    schema = Schema()
    ds = Datastores(schema, work)
    rec = Reconciler(CharonBackend(sock, DATAPLANES["kernel-libipsec"]))
    task = asyncio.create_task(rec.run())
    await rec.wait_converged(30)
    cfg = etree.fromstring(our_config(n).encode(), etree.XMLParser(huge_tree=True))
    t0 = time.perf_counter()
    ds.edit("running", cfg, sid=1)
    rec.set_desired(resolve(ds.config))
    t1 = time.perf_counter()
    ok = await rec.wait_converged(300)
    t2 = time.perf_counter()
    assert ok and len(rec.observed[VPN]) == n, rec.status.failed()
    rec.set_desired(EffectiveConfig.empty())
    await rec.wait_converged(300)
    task.cancel()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return t1 - t0, t2 - t1, rss


def inner(n: int, repeat: int, out: str | None) -> int:
    """Runs inside the namespace."""
    from nf.effective import GlobalOptions
    from southbound.charon import CharonProcess

    with tempfile.TemporaryDirectory(prefix="ipsec-nf-bench-") as tmp:
        charon = CharonProcess(Path(tmp) / "charon", "kernel-libipsec",
                               GlobalOptions(threads=16))
        charon.start()
        try:
            conf = Path(tmp) / "swanctl.conf"
            conf.write_text(swanctl_conf(n))
            uri = f"unix://{charon.socket_path}"
            raw, edit, conv, rss = [], [], [], 0.0
            for r in range(repeat):
                t = time.perf_counter()
                subprocess.run(["swanctl", "--load-all", "--file", str(conf), "--uri", uri],
                               check=True, capture_output=True)
                raw.append(time.perf_counter() - t)
                empty = Path(tmp) / "empty.conf"
                empty.write_text("connections {}\nsecrets {}\n")
                subprocess.run(["swanctl", "--load-all", "--clear", "--file", str(empty),
                                "--uri", uri], check=True, capture_output=True)
                e, c, rss = asyncio.run(ours(n, Path(tmp) / f"state{r}", charon.socket_path))
                edit.append(e)
                conv.append(c)
        finally:
            charon.stop()
    total = [e + c for e, c in zip(edit, conv, strict=True)]
    res = {"vpns": n, "swanctl_load_all_s": round(statistics.median(raw), 3),
           "ours_edit_s": round(statistics.median(edit), 3),
           "ours_vici_s": round(statistics.median(conv), 3),
           "ours_total_s": round(statistics.median(total), 3),
           "ratio": round(statistics.median(total) / statistics.median(raw), 2),
           "our_max_rss_mib": round(rss, 1)}
    print(f"{n} VPNs, median of {repeat}: swanctl --load-all {res['swanctl_load_all_s']} s; "
          f"ipsec-nf {res['ours_total_s']} s (edit-config {res['ours_edit_s']} s + VICI "
          f"{res['ours_vici_s']} s) = {res['ratio']}x; our peak RSS {res['our_max_rss_mib']} MiB")
    if out:
        Path(out).write_text(json.dumps(res, indent=2))
    return 0


def main() -> int:
    """Make a namespace, run the measurement inside, clean up."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--vpns", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.inner:
        return inner(a.vpns, a.repeat, a.json)
    from netns import rerun_inside

    return rerun_inside(__file__, ["--vpns", str(a.vpns), "--repeat", str(a.repeat)]
                        + (["--json", a.json] if a.json else []))


if __name__ == "__main__":
    sys.exit(main())
