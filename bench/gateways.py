"""The site-to-site lab shared by bench/tunnel_bringup.py and bench/state_reads.py: namespaces
joined by veths, the VPNs of an initiator and the responder's matching connections, and
``ipsec-nf serve`` driven over NETCONF (root needed).

- :func:`run_linked`: one responder namespace B and one namespace per initiator, each joined
  to B by a veth, every traffic selector's address on lo (kernel-libipsec routes a CHILD SA's
  traffic from an address of its local selector); the script runs again inside the first
  initiator's namespace with ``--inner <the other namespaces>``; everything is deleted after.
- :func:`vpns_xml`, :func:`base_xml`, :func:`responder_conf`: the configurations.
- :class:`Server`: ``ipsec-nf serve`` in this namespace, an ncclient session, commits.
- :func:`installed`: IKE SAs established with a CHILD SA installed, as a charon lists them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS = "urn:ipsec-nf:yang:ipsec-nf"
PSK = "0seaJ31RfzHNRvUSH0oUYg7znTW0I="
USER, PASSWORD = "admin", "bench-pw"
A_WAN, B_WAN = "198.51.100.1", "198.51.100.2"


def ts(i: int, side: int) -> str:
    """Tunnel i's traffic selector on side 1 (initiator) or 2 (responder)."""
    return f"10.{side}.{i // 250}.{i % 250}/32"


def vpns_xml(lo: int, hi: int, local: str = A_WAN, remote: str = B_WAN) -> str:
    """VPNs a<lo>..a<hi-1> of an initiator as an edit-config <config>."""
    vpns = "".join(
        f"<vpn><name>a{i}</name><ike-policy><template>t</template></ike-policy>"
        f"<ipsec-policy><template>p</template></ipsec-policy>"
        f"<local-address>{local}</local-address><remote-address>{remote}</remote-address>"
        f"<local-id>a{i}.bench.example.net</local-id>"
        f"<remote-id>b{i}.bench.example.net</remote-id>"
        f"<security-policy><name>sp</name><local-ts><subnet>{ts(i, 1)}</subnet></local-ts>"
        f"<remote-ts><subnet>{ts(i, 2)}</subnet></remote-ts></security-policy></vpn>"
        for i in range(lo, hi))
    return f'<config xmlns="{NC}"><ike xmlns="{NS}">{vpns}</ike></config>'


def base_xml(global_options: str) -> str:
    """``global_options`` (a <global-options> element), the two templates (start-action
    start, close-action none) and the key: no VPN."""
    return (f'<config xmlns="{NC}"><ike xmlns="{NS}">{global_options}'
            "<ike-policy-template><name>t</name><ike-proposal><id>1</id>"
            "<enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha256</auth-alg>"
            "<dh-group>curve25519</dh-group></ike-proposal></ike-policy-template>"
            "<ipsec-policy-template><name>p</name><esp-proposal><id>1</id>"
            "<enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha256</auth-alg></esp-proposal>"
            "<start-action>start</start-action><close-action>none</close-action>"
            f"</ipsec-policy-template><pre-shared-key><name>all</name><secret>{PSK}</secret>"
            "</pre-shared-key></ike></config>")


def responder_conf(n: int, local_addrs: str = B_WAN, remote_addrs: str = A_WAN) -> str:
    """The responder's N connections b0..b<n-1> (start_action none) as swanctl.conf."""
    conns = "".join(
        f"  b{i} {{\n    version = 2\n    local_addrs = {local_addrs}\n"
        f"    remote_addrs = {remote_addrs}\n    proposals = aes128-sha256-curve25519\n"
        f"    local {{\n      auth = psk\n      id = b{i}.bench.example.net\n    }}\n"
        f"    remote {{\n      auth = psk\n      id = a{i}.bench.example.net\n    }}\n"
        f"    children {{\n      sp {{\n        local_ts = {ts(i, 2)}\n"
        f"        remote_ts = {ts(i, 1)}\n        esp_proposals = aes128-sha256\n"
        "        start_action = none\n      }\n    }\n  }\n" for i in range(n))
    return f"connections {{\n{conns}}}\nsecrets {{\n  ike-all {{\n    secret = {PSK}\n  }}\n}}\n"


def run_linked(script: str, prefix: str, links: Sequence[tuple[str, str]], most: int,
               argv: Sequence[str]) -> int:
    """Namespaces ``<prefix>A<pid>``, ``<prefix>S<pid>``... (one per ``(initiator address,
    responder address)`` in ``links``) each joined by a veth to ``<prefix>B<pid>``, which holds
    the responder addresses; the selectors of ``most`` tunnels on lo (side 1 in the
    initiators, side 2 in B). Runs ``script --inner <initiators but the first> <B> argv`` in
    the first initiator's namespace and deletes them all; returns its exit status."""
    tag = os.getpid()
    inits = [f"{prefix}{'AS'[k] if k < 2 else k}{tag}" for k in range(len(links))]
    ns_b = f"{prefix}B{tag}"
    run = lambda *c: subprocess.run(c, check=True)  # noqa: E731
    try:
        for ns in (*inits, ns_b):
            run("ip", "netns", "add", ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        short = prefix[-2:].lower()
        for k, (ns, (addr, peer)) in enumerate(zip(inits, links, strict=True)):
            va, vb = f"{short}{k}a{tag}"[:15], f"{short}{k}b{tag}"[:15]
            run("ip", "link", "add", va, "netns", ns, "type", "veth", "peer", vb, "netns", ns_b)
            run("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", va)
            run("ip", "-n", ns_b, "addr", "add", f"{peer}/32", "dev", vb)
            run("ip", "-n", ns, "link", "set", va, "up")
            run("ip", "-n", ns_b, "link", "set", vb, "up")
            run("ip", "-n", ns_b, "route", "add", f"{addr}/32", "dev", vb, "src", peer)
            run("ip", "-n", ns, "route", "replace", f"{peer}/32", "dev", va)
        for ns, side in [*((i, 1) for i in inits), (ns_b, 2)]:
            batch = "".join(f"addr add {ts(i, side)} dev lo\n" for i in range(most))
            subprocess.run(["ip", "-n", ns, "-batch", "-"], input=batch, text=True, check=True)
        return subprocess.run(["ip", "netns", "exec", inits[0], sys.executable, script,
                               "--inner", *inits[1:], ns_b, *argv]).returncode
    finally:
        for ns in (*inits, ns_b):
            subprocess.run(["ip", "netns", "del", ns], check=False)


def installed(sock: Path, timeout: float = 120) -> int:
    """IKE SAs established with an installed CHILD SA, as the charon at ``sock`` lists them."""
    from southbound.vici_client import ViciClient

    with ViciClient(sock, timeout=timeout) as c:
        sas = c.list_sas()
    return sum(1 for entry in sas for sa in entry.values()
               if sa.get("state") == b"ESTABLISHED" and any(
                   ch.get("state") == b"INSTALLED"
                   for ch in (sa.get("child-sas") or {}).values()))


class Server:
    """``ipsec-nf serve`` with state in ``state_dir`` (its charon in this namespace), listening
    for NETCONF on 127.0.0.1:``port`` (and whatever ``extra`` asks), an ncclient session."""

    def __init__(self, state_dir: Path, port: int, extra: Sequence[str] = (),
                 ports: Sequence[int] = ()) -> None:
        from southbound.charon import CharonProcess

        self.state_dir = state_dir
        subprocess.run([sys.executable, "-m", "tools.cli", "passwd", "--state-dir",
                        str(state_dir), USER], input=PASSWORD + "\n", text=True,
                       check=True, cwd=ROOT, capture_output=True)
        self.log = open(state_dir / "serve.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tools.cli", "serve", "--state-dir", str(state_dir),
             "--listen", f"127.0.0.1:{port}", *extra], cwd=ROOT, stdout=self.log,
            stderr=subprocess.STDOUT)
        self.sock = CharonProcess(state_dir / "charon").socket_path
        for p in (port, *ports):
            self._wait_port(p)
        from ncclient import manager
        from ncclient.transport import session as nc_session

        nc_session.TICK = 0.001
        self.m = manager.connect(host="127.0.0.1", port=port, username=USER,
                                 password=PASSWORD, hostkey_verify=False, allow_agent=False,
                                 look_for_keys=False, timeout=600)

    def _wait_port(self, port: int) -> None:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit(f"serve exited:\n{self.tail()}") from None
                time.sleep(0.1)
        raise SystemExit(f"port {port} not open:\n{self.tail()}")

    def log_text(self) -> str:
        """The server's whole log."""
        return (self.state_dir / "serve.log").read_text(errors="replace")

    def tail(self) -> str:
        """The end of the server's log."""
        return self.log_text()[-3000:]

    def commit(self, config: str, wait: bool = True) -> None:
        """edit-config into the candidate, commit (and wait until applied)."""
        from lxml import etree

        self.m.edit_config(target="candidate", config=config)
        self.m.commit()
        if wait:
            self.m.dispatch(etree.fromstring(
                f'<wait-applied xmlns="{NS}"><timeout>600</timeout></wait-applied>'))

    def configure_base(self, config: str) -> None:
        """Commit ``config`` (global options that restart charon) and wait until the new
        charon answers on VICI."""
        before = self.tail().count("charon started")
        self.commit(config)
        deadline = time.monotonic() + 60
        while self.tail().count("charon started") <= before and time.monotonic() < deadline:
            time.sleep(0.2)
        self.wait_vici()

    def wait_vici(self) -> None:
        """Until the server's charon answers a list-sas."""
        from southbound.vici_client import ViciClient

        for _ in range(300):
            try:
                with ViciClient(self.sock) as c:
                    c.list_sas()
                return
            except Exception:  # noqa: BLE001 - charon restarting
                time.sleep(0.1)
        raise SystemExit(f"the server's charon does not answer:\n{self.tail()}")

    def stop(self) -> None:
        """Close the NETCONF session and stop the server (its charon with it)."""
        try:
            self.m.close_session()
        except Exception:  # noqa: BLE001
            pass
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
