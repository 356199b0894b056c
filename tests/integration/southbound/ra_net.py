"""Remote-access test bench: a gateway namespace holding a bridge, road-warrior namespaces
(and a RADIUS namespace) plugged into it, plain strongSwan clients configured by swanctl.conf
files, certificates made with ``cryptography``, a FreeRADIUS with its own config folder.

Addresses: the gateway 192.0.2.1/24 on the bridge and 192.168.0.1/32 (the protected
subnet 192.168.0.0/24) on lo; client i at 192.0.2.(10+i); RADIUS at 192.0.2.100.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from southbound.charon import CharonProcess
from southbound.charon_conf import render_conf
from southbound.vici_client import ViciClient
from tests.support import sh
from tests.support_pki import Issued, crl, issue, make_ca

__all__ = ["Issued", "crl", "issue", "make_ca"]

GW = "192.0.2.1"
RADIUS = "192.0.2.100"
PROTECTED = "192.168.0.1"


@dataclass
class Bench:
    """The namespaces of one test."""

    gw: str
    clients: list[str]
    radius: str


def bench(n_clients: int, tag: str) -> Iterator[Bench]:
    """Create the namespaces (generator for a fixture); removed at the end."""
    if os.geteuid() != 0:
        pytest.fail("this test needs root (ip netns, veth, charon); run it as root")
    gw, radius = f"raG{tag}", f"raR{tag}"
    clients = [f"raC{i}{tag}" for i in range(n_clients)]
    created: list[str] = []
    try:
        for ns in (gw, radius, *clients):
            res = sh("ip", "netns", "add", ns, check=False)
            if res.returncode != 0:
                pytest.fail(f"`ip netns add` is not usable here: {res.stderr.strip()}")
            created.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", gw, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", gw, "addr", "add", f"{GW}/24", "dev", "br0")
        sh("ip", "-n", gw, "link", "set", "br0", "up")
        sh("ip", "-n", gw, "addr", "add", f"{PROTECTED}/32", "dev", "lo")
        for i, (ns, addr) in enumerate([(radius, RADIUS)]
                                       + [(c, f"192.0.2.{10 + k}")
                                          for k, c in enumerate(clients)]):
            sh("ip", "link", "add", f"rg{i}{tag}", "netns", gw, "type", "veth",
               "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", gw, "link", "set", f"rg{i}{tag}", "master", "br0")
            sh("ip", "-n", gw, "link", "set", f"rg{i}{tag}", "up")
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
        yield Bench(gw, clients, radius)
    finally:
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


# ------------------------------------------------------------------------------ clients

class ClientCharon(CharonProcess):
    """A plain road-warrior charon: our strongswan.conf plus the resolve plugin writing the
    DNS servers it is given to ``resolv.conf`` in its run directory."""

    def write_conf(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        text = render_conf(self.run_dir, self.backend, self.options)
        text = re.sub(r"(\n  load = [^\n]*)", r"\1 resolve", text, count=1)
        text = text.replace("\n  plugins {\n", (
            f"\n  plugins {{\n    resolve {{\n      file = {self.run_dir / 'resolv.conf'}\n"
            "    }\n"), 1)
        self.conf_path.write_text(text)

    def swanctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``swanctl ARGS --uri`` this charon's socket, in its namespace."""
        assert self.netns is not None
        self.swanctl_dir.mkdir(parents=True, exist_ok=True)
        return sh("ip", "netns", "exec", self.netns, "env", f"SWANCTL_DIR={self.swanctl_dir}",
                  "swanctl", *args, "--uri", f"unix://{self.socket_path}", check=check)

    @property
    def swanctl_dir(self) -> Path:
        """The client's own swanctl folder (x509, x509ca, private: SWANCTL_DIR)."""
        return self.run_dir / "swanctl"

    def add_credential(self, folder: str, name: str, pem: str) -> None:
        """A PEM file in the client's swanctl folder (``x509``, ``x509ca``, ``private``)."""
        path = self.swanctl_dir / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(pem)
        path.chmod(0o600)

    def load_all(self, conf: str) -> None:
        """Write ``conf`` as swanctl.conf and ``swanctl --load-all --file`` it."""
        path = self.swanctl_dir / "swanctl.conf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(conf)
        self.swanctl("--load-all", "--file", str(path))

    def initiate(self, child: str, timeout: int = 15) -> subprocess.CompletedProcess[str]:
        """``swanctl --initiate --child CHILD``; the result (not checked)."""
        return self.swanctl("--initiate", "--child", child, "--timeout", str(timeout),
                            check=False)

    def vips(self) -> list[str]:
        """The client's virtual IPs (list-sas local-vips of its IKE SAs)."""
        with ViciClient(self.socket_path) as c:
            return [v.decode() for e in c.list_sas() for sa in e.values()
                    for v in sa.get("local-vips", [])]

    def ping(self, source: str, tries: int = 6) -> subprocess.CompletedProcess[str]:
        """Ping the gateway's protected address from ``source`` (a virtual IP)."""
        assert self.netns is not None
        res = None
        for _ in range(tries):
            res = sh("ip", "netns", "exec", self.netns, "ping", "-c", "2", "-i", "0.2",
                     "-W", "1", "-I", source, PROTECTED, check=False)
            if res.returncode == 0:
                return res
            time.sleep(0.5)
        assert res is not None
        return res


def client_conf(name: str, local: str, remote: str, secrets: str = "",
                proposals: str = "default", esp: str = "default",
                vips: str = "0.0.0.0", send_cert: str = "ifasked") -> str:
    """A road warrior's swanctl.conf: connection ``name`` to the gateway asking a virtual IP,
    child ``name`` to 192.168.0.0/24; ``local``/``remote`` are the auth sections' bodies;
    ``send_cert`` is swanctl's (``always`` when a test needs the certificate on the wire even
    though the gateway asks only for certificates of another CA)."""
    return f"""connections {{
  {name} {{
    version = 2
    remote_addrs = {GW}
    vips = {vips}
    proposals = {proposals}
    keyingtries = 1
    send_cert = {send_cert}
    local {{
      {local}
    }}
    remote {{
      {remote}
    }}
    children {{
      {name} {{
        remote_ts = 192.168.0.0/24
        esp_proposals = {esp}
      }}
    }}
  }}
}}
secrets {{
{secrets}
}}
"""


# ------------------------------------------------------------------------------ FreeRADIUS

class FreeRadius:
    """A FreeRADIUS 3 (Debian's) with a copy of the packaged configuration in its own folder:
    one client (the gateway, ``secret``), the users given (Cleartext-Password), EAP with
    MSCHAPv2 as its default type; run in foreground (``-f``) in namespace ``ns``."""

    def __init__(self, folder: Path, ns: str, secret: str, users: dict[str, str],
                 nas: str = GW) -> None:
        if shutil.which("freeradius") is None:
            pytest.fail("freeradius is not installed (make apt installs it)")
        self.dir, self.ns = folder, ns
        shutil.copytree("/etc/freeradius/3.0", folder, symlinks=True)
        (folder / "clients.conf").write_text(
            f"client gw {{\n  ipaddr = {nas}\n  secret = {secret}\n}}\n")
        (folder / "mods-config" / "files" / "authorize").write_text("".join(
            f'{u} Cleartext-Password := "{p}"\n' for u, p in users.items()))
        eap = folder / "mods-available" / "eap"
        eap.write_text(re.sub(r"default_eap_type = \w+", "default_eap_type = mschapv2",
                              eap.read_text(), count=1))
        conf = folder / "radiusd.conf"
        text = conf.read_text()
        text = re.sub(r"(?m)^(\s*)(user|group) = ", r"\1#\2 = ", text)  # stay root
        text = re.sub(r"(?m)^(\s*)reject_delay = \d+", r"\1reject_delay = 0", text)
        conf.write_text(text)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it; wait until it listens (its log says "Ready to process requests")."""
        log = open(self.dir / "radiusd.log", "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "freeradius", "-X", "-d", str(self.dir)],
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if "Ready to process requests" in self.log():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        pytest.fail(f"freeradius did not start:\n{self.log()[-3000:]}")

    def log(self) -> str:
        """Its debug output so far."""
        return (self.dir / "radiusd.log").read_text(errors="replace")

    def stop(self) -> None:
        """Stop the process this object started."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
