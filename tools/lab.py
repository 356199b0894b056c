"""A two-site lab in network namespaces: each site runs `ipsec-nf serve`, managed over NETCONF.

Used by the end-to-end tests and by `make demo`. Addresses are documentation ranges only:
WAN 198.51.100.0/24 (veth between the sites), management 203.0.113.0/24 (veth from the host
to each site), protected subnets 192.168.0.0/24 and 192.168.99.0/24 (on each site's lo).
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

NETCONF_PORT = 830
USER, PASSWORD = "admin", "lab-admin-password"


@dataclass
class Site:
    """One gateway of the lab."""

    name: str
    ns: str
    wan: str
    peer_wan: str
    subnet: str
    host: str
    peer_subnet: str
    mgmt: str
    mgmt_host: str
    fqdn: str
    peer_fqdn: str
    state_dir: Path
    proc: subprocess.Popen | None = field(default=None, repr=False)


def sh(*cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a command, capturing text output."""
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=timeout)


_LABS = itertools.count()


def free_mgmt_slot() -> int:
    """A slot of 203.0.113.0/24 (8 addresses: two /30 links) no other lab of this host uses,
    so that labs of tests run side by side never reach each other's servers."""
    used = sh("ip", "-4", "-o", "addr", "show", check=False).stdout
    for slot in range(32):
        if f"inet 203.0.113.{8 * slot + 1}/" not in used:
            return slot
    raise RuntimeError("no free management addresses in 203.0.113.0/24 (32 labs running?)")


class Lab:
    """Build, run and tear down the two sites."""

    def __init__(self, workdir: Path, tag: str | None = None,
                 serve_args: tuple[str, ...] = ()) -> None:
        # unique per lab (two labs of one test process must not share namespace names)
        tag = tag or f"{os.getpid()}{next(_LABS)}"
        self.workdir = workdir
        self.serve_args = serve_args
        self.tag = tag
        base = 8 * free_mgmt_slot()  # two /30 management links per lab, side by side
        self.a = Site("A", f"nfA{tag}", "198.51.100.1", "198.51.100.2", "192.168.0.0/24",
                      "192.168.0.1", "192.168.99.0/24", f"203.0.113.{base + 2}",
                      f"203.0.113.{base + 1}", "secgwa.example.net", "secgwb.example.net",
                      workdir / "siteA")
        self.b = Site("B", f"nfB{tag}", "198.51.100.2", "198.51.100.1", "192.168.99.0/24",
                      "192.168.99.1", "192.168.0.0/24", f"203.0.113.{base + 6}",
                      f"203.0.113.{base + 5}", "secgwb.example.net", "secgwa.example.net",
                      workdir / "siteB")
        self.sites = (self.a, self.b)

    # ---- topology ----------------------------------------------------
    def up(self) -> None:
        """Create the namespaces and links."""
        a, b = self.a, self.b
        for s in self.sites:
            sh("ip", "netns", "add", s.ns)
            sh("ip", "-n", s.ns, "link", "set", "lo", "up")
            sh("ip", "-n", s.ns, "addr", "add", f"{s.host}/24", "dev", "lo")
        wa, wb = f"wa{self.tag}"[:15], f"wb{self.tag}"[:15]
        sh("ip", "link", "add", wa, "netns", a.ns, "type", "veth", "peer", wb, "netns", b.ns)
        for s, ifname in ((a, wa), (b, wb)):
            sh("ip", "-n", s.ns, "addr", "add", f"{s.wan}/24", "dev", ifname)
            sh("ip", "-n", s.ns, "link", "set", ifname, "up")
            host_if, site_if = f"m{s.name}h{self.tag}"[:15], f"m{s.name}s{self.tag}"[:15]
            sh("ip", "link", "add", host_if, "type", "veth", "peer", site_if, "netns", s.ns)
            sh("ip", "addr", "add", f"{s.mgmt_host}/30", "dev", host_if)
            sh("ip", "link", "set", host_if, "up")
            sh("ip", "-n", s.ns, "addr", "add", f"{s.mgmt}/30", "dev", site_if)
            sh("ip", "-n", s.ns, "link", "set", site_if, "up")
        self.wan_if = wa

    def down(self) -> None:
        """Stop the servers and delete everything the lab created."""
        for s in self.sites:
            self.stop(s)
        for s in self.sites:
            sh("ip", "netns", "del", s.ns, check=False)
            sh("ip", "link", "del", f"m{s.name}h{self.tag}"[:15], check=False)

    # ---- servers -----------------------------------------------------
    def start(self, s: Site, timeout: float = 30) -> None:
        """Create the admin user if needed and start `ipsec-nf serve` inside the site's netns."""
        self.start_all((s,), timeout)

    def start_all(self, sites: tuple[Site, ...], timeout: float = 30) -> None:
        """:meth:`start` for several sites side by side: each server's start-up (and the
        admin's password hash) is CPU in a process of its own, so two sites are up in the
        time of one (under the kernel tests' emulation that is tens of seconds)."""
        new_users = []
        for s in sites:
            s.state_dir.mkdir(parents=True, exist_ok=True)
            if not (s.state_dir / "users.json").exists():
                new_users.append((s, subprocess.Popen(
                    [sys.executable, "-m", "tools.cli", "passwd", "--state-dir",
                     str(s.state_dir), USER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, text=True)))
        for s, proc in new_users:
            out, _ = proc.communicate(PASSWORD + "\n", timeout=timeout)
            if proc.returncode != 0:
                raise RuntimeError(f"site {s.name}: ipsec-nf passwd failed:\n{out}")
        for s in sites:
            with open(s.state_dir / "serve.log", "ab") as log:
                s.proc = subprocess.Popen(
                    ["ip", "netns", "exec", s.ns, sys.executable, "-m", "tools.cli", "serve",
                     "--state-dir", str(s.state_dir), "--listen", f"{s.mgmt}:{NETCONF_PORT}",
                     *self.serve_args],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    cwd=Path(__file__).resolve().parent.parent,
                )
        deadline = time.monotonic() + timeout
        for s in sites:
            self._wait_listening(s, deadline, timeout)

    def _wait_listening(self, s: Site, deadline: float, timeout: float) -> None:
        assert s.proc is not None
        while time.monotonic() < deadline:
            if s.proc.poll() is not None:
                raise RuntimeError(f"site {s.name}: ipsec-nf serve exited:\n{self.log(s)}")
            try:
                socket.create_connection((s.mgmt, NETCONF_PORT), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"site {s.name}: NETCONF port not open after {timeout}s:\n{self.log(s)}")

    def stop(self, s: Site) -> None:
        """Stop a site's server (SIGTERM, then SIGKILL)."""
        if s.proc is None or s.proc.poll() is not None:
            return
        s.proc.terminate()
        try:
            s.proc.wait(10)
        except subprocess.TimeoutExpired:
            s.proc.kill()
            s.proc.wait(5)

    def log(self, s: Site) -> str:
        """The tail of the site's server log."""
        p = s.state_dir / "serve.log"
        return p.read_text(errors="replace")[-4000:] if p.exists() else ""

    def connect(self, s: Site):  # noqa: ANN201 - ncclient Manager
        """An ncclient session to the site's NETCONF server."""
        from ncclient import manager
        from ncclient.transport import session as nc_session

        nc_session.TICK = 0.001
        return manager.connect(
            host=s.mgmt, port=NETCONF_PORT, username=USER, password=PASSWORD,
            hostkey_verify=False, allow_agent=False, look_for_keys=False, timeout=30,
        )

    def ns(self, s: Site, *cmd: str, check: bool = False, timeout: float = 60):
        """Run a command inside a site's namespace."""
        return sh("ip", "netns", "exec", s.ns, *cmd, check=check, timeout=timeout)

    def ping(self, s: Site, count: int = 3) -> subprocess.CompletedProcess:
        """Ping the other site's subnet from this site's subnet (every 0.2 s: three pings
        at ping's default second apart made each check of a tunnel take two seconds)."""
        other = self.b if s is self.a else self.a
        return self.ns(s, "ping", "-c", str(count), "-i", "0.2", "-W", "2", "-I", s.host,
                       other.host)


@contextmanager
def running(workdir: Path, sites: str = "AB",
            serve_args: tuple[str, ...] = ()) -> Iterator[Lab]:
    """A lab with the named sites' servers running (``serve_args`` added to each `serve`);
    its logs are printed and everything is deleted at the end."""
    lab = Lab(workdir, serve_args=serve_args)
    try:
        lab.up()
        lab.start_all(tuple(s for s in lab.sites if s.name in sites))
        yield lab
    finally:
        for s in lab.sites:
            if s.name in sites:
                print(f"--- site {s.name} serve.log ---\n{lab.log(s)}")
        lab.down()


def configure(lab: Lab, *sites: Site) -> None:
    """Push the site-to-site use case to the given sites over NETCONF (candidate + commit)."""
    for s in sites:
        with lab.connect(s) as m:
            m.edit_config(target="candidate", config=site_config(s))
            m.commit()


def site_config(s: Site, enc: str = "aes128-cbc", start_action: str | None = None) -> str:
    """The manual's site-to-site use case, for one site (edit-config <config> content);
    ``start_action`` overrides the template's in the VPN."""
    start = f"<start-action>{start_action}</start-action>" if start_action else ""
    return f"""<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">
  <ike xmlns="urn:ipsec-nf:yang:ipsec-nf">
    <ike-policy-template>
      <name>iketemp1</name>
      <ike-proposal><id>1</id><enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha512</auth-alg>
        <prf-alg>hmac-sha512</prf-alg><dh-group>modp2048</dh-group></ike-proposal>
    </ike-policy-template>
    <ipsec-policy-template>
      <name>ipsectemp1</name>
      <esp-proposal><id>1</id><enc-alg>{enc}</enc-alg><auth-alg>hmac-sha256</auth-alg>
      </esp-proposal>
    </ipsec-policy-template>
    <vpn>
      <name>siteA-siteB</name>
      <ike-policy><template>iketemp1</template></ike-policy>
      <ipsec-policy><template>ipsectemp1</template>{start}</ipsec-policy>
      <local-address>{s.wan}</local-address>
      <remote-address>{s.peer_wan}</remote-address>
      <local-id>{s.fqdn}</local-id>
      <remote-id>{s.peer_fqdn}</remote-id>
      <security-policy>
        <name>trunk</name>
        <local-ts><subnet>{s.subnet}</subnet></local-ts>
        <remote-ts><subnet>{s.peer_subnet}</subnet></remote-ts>
      </security-policy>
    </vpn>
    <pre-shared-key>
      <name>site-psk</name>
      <id>{s.peer_fqdn}</id>
      <secret>0seaJ31RfzHNRvUSH0oUYg7znTW0I=</secret>
    </pre-shared-key>
  </ike>
</config>"""
