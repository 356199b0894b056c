"""`make demo`: the manual's site-to-site VPN between two gateways, told step by step."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lxml import etree

from tools.lab import Lab, site_config

NS = {"i": "urn:ipsec-nf:yang:ipsec-nf"}


def say(text: str) -> None:
    """Print one step of the story."""
    print(f"\n== {text}", flush=True)


def sa_table(lab: Lab) -> str:
    """The SA table of site A, as a network engineer reads it."""
    with lab.connect(lab.a) as m:
        st = etree.fromstring(m.get().data_xml.encode())
    rows = []
    for ike in st.xpath("//i:ike-sa", namespaces=NS):
        f = lambda e, n: e.findtext(f"i:{n}", namespaces=NS) or "-"  # noqa: E731
        rows.append(f"  IKE SA {f(ike, 'name')}: {f(ike, 'state')}  "
                    f"{f(ike, 'local-address')} <-> {f(ike, 'remote-address')}  "
                    f"{f(ike, 'enc-alg')}/{f(ike, 'auth-alg')}/{f(ike, 'dh-group')}")
        for c in ike.xpath("i:child-sa", namespaces=NS):
            rows.append(f"    CHILD SA {f(c, 'name')}: {f(c, 'state')}  "
                        f"{f(c, 'protocol')} spi in {f(c, 'spi-in')} out {f(c, 'spi-out')}  "
                        f"{f(c, 'enc-alg')}/{f(c, 'auth-alg')}  "
                        f"packets in {f(c, 'packets-in')} out {f(c, 'packets-out')}")
    return "\n".join(rows) or "  (no SA)"


def main() -> int:
    """Run the demo; return 0 when the tunnel carried traffic."""
    with tempfile.TemporaryDirectory(prefix="ipsec-nf-demo-") as tmp:
        lab = Lab(Path(tmp), tag="demo")
        lab.down()  # leftovers of an interrupted run
        try:
            say("Building two gateways in network namespaces: site A 198.51.100.1 "
                "(LAN 192.168.0.0/24), site B 198.51.100.2 (LAN 192.168.99.0/24)")
            lab.up()
            for s in lab.sites:
                lab.start(s)
                print(f"  site {s.name}: ipsec-nf running, NETCONF on {s.mgmt}:830")
            say("Configuring both sites over NETCONF (edit-config candidate + commit): "
                "templates iketemp1/ipsectemp1, IKE aes128-cbc/hmac-sha512/modp2048, "
                "ESP aes128-cbc/hmac-sha256, FQDN identities, pre-shared key")
            for s in (lab.b, lab.a):
                with lab.connect(s) as m:
                    m.edit_config(target="candidate", config=site_config(s))
                    m.commit()
                print(f"  site {s.name}: committed")
            say("Pinging 192.168.99.1 from 192.168.0.1 through the tunnel, capturing the WAN link")
            cap = subprocess.Popen(
                ["ip", "netns", "exec", lab.a.ns, "tcpdump", "-l", "-n", "-c", "2", "-i",
                 lab.wan_if, "udp port 4500 and udp[8:4] != 0"],  # ESP only, not IKE
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            time.sleep(1.5)
            ok = False
            for _ in range(40):
                r = lab.ping(lab.a, 2)
                if r.returncode == 0:
                    ok = True
                    print("  " + "\n  ".join(r.stdout.strip().splitlines()[-2:]))
                    break
                time.sleep(0.3)
            print("  tunnel UP, traffic passes" if ok else "  ping FAILED")
            lab.ping(lab.a, 2)
            try:
                wire, _ = cap.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                cap.kill()
                wire = ""
            print("  on the wire (site A WAN):")
            for line in wire.strip().splitlines() or ["(nothing captured)"]:
                print(f"    {line}")
            say("SA table of site A (read over NETCONF <get>)")
            print(sa_table(lab))
            return 0 if ok else 1
        finally:
            say("Cleaning up: stopping the gateways, deleting the namespaces")
            lab.down()


if __name__ == "__main__":
    sys.exit(main())
