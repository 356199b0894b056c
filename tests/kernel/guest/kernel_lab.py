"""The two-gateway lab shared by the guest tests (one per guest run: under TCG every
`ipsec-nf serve` start and every first NETCONF login costs tens of seconds).

Two sites in network namespaces (tools/lab.py), each running `ipsec-nf serve --backend
kernel-netlink`, one NETCONF session each, logged in with an SSH key (a password's scrypt hash
takes tens of seconds under TCG). Each test module brings the lab to what it needs (its
configuration, its routes) and leaves no VPN behind.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from northbound.users import add_authorized_key
from tools.lab import NETCONF_PORT, USER, Lab, Site

SLOW = 90  # seconds: everything is 3-10x slower under TCG
RESULTS = Path("/ipsec-nf-results")  # the guest's read-write share (tests/kernel/vm.py)


@dataclass
class Gateways:
    lab: Lab
    managers: dict  # site name -> ncclient Manager (one login each: scrypt is slow here)
    key: Path  # the admin's SSH key, for a module's own session (connect)

    def m(self, s: Site):  # noqa: ANN201 - ncclient Manager
        return self.managers[s.name]


def connect(s: Site, key: Path):  # noqa: ANN201 - ncclient Manager
    """A NETCONF session to a site, logged in with an SSH key."""
    from ncclient import manager
    from ncclient.transport import session as nc_session

    nc_session.TICK = 0.001
    return manager.connect(host=s.mgmt, port=NETCONF_PORT, username=USER,
                           key_filename=str(key), hostkey_verify=False, allow_agent=False,
                           look_for_keys=False, timeout=SLOW)


def gateways(work: Path) -> Iterator[Gateways]:
    """Build the lab in ``work``, start both servers, log in; at the end close, tear down and
    bring the logs back to the host (RESULTS/lab)."""
    key = work / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    lab = Lab(work, serve_args=("--backend", "kernel-netlink"))
    for s in lab.sites:  # the admin, with a key and no password (Lab.start keeps it)
        add_authorized_key(s.state_dir, USER, key.with_suffix(".pub").read_text())
    managers: dict = {}
    try:
        lab.up()
        lab.start_all(lab.sites, timeout=240)  # side by side: each start is minutes of CPU
        with ThreadPoolExecutor(len(lab.sites)) as pool:
            for s, m in zip(lab.sites, pool.map(lambda s: connect(s, key), lab.sites), strict=True):
                managers[s.name] = m
        yield Gateways(lab, managers, key)
    finally:
        for m in managers.values():
            try:
                m.close_session()
            except Exception:  # noqa: BLE001 - best effort, the servers are stopped next
                pass
        lab.down()
        keep = RESULTS / "lab"  # the logs, brought back to the host with the junit XML
        if RESULTS.is_dir():
            for s in lab.sites:
                for log in (s.state_dir / "serve.log", s.state_dir / "charon" / "charon.log"):
                    if log.exists():
                        keep.mkdir(exist_ok=True)
                        shutil.copy(log, keep / f"site{s.name}-{log.name}")
