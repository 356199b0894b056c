"""End to end: the kernel's XFRM statistics in the state tree (/ike/kernel/statistics) of
`ipsec-nf serve` on the host's backend (kernel-libipsec), read over NETCONF <get> and gNMI
Get and compared with /proc/net/xfrm_stat of the gateway's namespace after the kernel counted.

The kernel counts here without ESP: a blocking policy installed (by our XFRM driver, in the
site's namespace only) drops the datagrams sent towards it (XfrmOutPolBlock), and a policy
that requires an SA nobody has drops others (XfrmOutNoStates). The SPD/SAD lists are shown
only on kernel-netlink (tests/kernel/guest/test_xfrm_netlink.py): not here.

Needs root and `ip netns`; it fails, never skips, when they are missing.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree
from pygnmi.client import gNMIclient

from southbound.kernel_state import STAT_NAMES
from southbound.xfrm.netlink import XfrmNetlink
from southbound.xfrm.types import Action, Direction, Mode, Selector, Template, XfrmPolicy
from tests.integration.northbound.gnmi.harness import self_signed
from tests.support import wait_for
from tools.lab import PASSWORD, USER, Lab, running

NS = {"i": "urn:ipsec-nf:yang:ipsec-nf"}
FILTER = '<ike xmlns="urn:ipsec-nf:yang:ipsec-nf"><kernel/></ike>'
GNMI_PORT = 9339
pytestmark = [
    pytest.mark.e2e,
    # pygnmi's reader thread raises when a subscription it closed is cancelled
    pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning"),
]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, certs: tuple[Path, Path]) -> Iterator[Lab]:
    cert, key = certs
    args = ("--gnmi", f"0.0.0.0:{GNMI_PORT}", "--gnmi-cert", str(cert), "--gnmi-key", str(key))
    with running(tmp_path_factory.mktemp("kview"), sites="A", serve_args=args) as lab:
        yield lab


def gnmi_statistics(lab: Lab, cert: Path) -> dict:
    """/ike/kernel/statistics through gNMI Get (the same snapshot as NETCONF's)."""
    with gNMIclient(target=(lab.a.mgmt, GNMI_PORT), username=USER, password=PASSWORD,
                    path_cert=str(cert), override="gateway.test", gnmi_timeout=10) as gc:
        resp = gc.get(path=["/ike/kernel/statistics"], encoding="json_ietf", datatype="state")
    vals = [u["val"] for n in resp["notification"] for u in n.get("update") or []]
    assert len(vals) == 1, resp
    val = vals[0]
    return val.get("ipsec-nf:statistics", val)


def proc_stat(lab: Lab) -> dict[str, int]:
    r = lab.ns(lab.a, "cat", "/proc/net/xfrm_stat")
    assert r.returncode == 0, r.stderr
    return {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", r.stdout, re.M)}


def kernel_view(lab: Lab) -> etree._Element:
    with lab.connect(lab.a) as m:
        data = etree.fromstring(m.get(filter=("subtree", FILTER)).data_xml.encode())
    view = data.find("i:ike/i:kernel", NS)
    assert view is not None, etree.tostring(data).decode()
    return view


def test_xfrm_stat_in_get_equals_the_kernels(lab: Lab, certs: tuple[Path, Path]) -> None:
    wan = ipaddress.ip_address(lab.a.wan)
    blocked = ipaddress.ip_address("198.51.100.77")
    no_sa = ipaddress.ip_address("198.51.100.78")
    with XfrmNetlink(lab.a.ns) as drv:
        drv.add_policy(XfrmPolicy(Selector(ipaddress.ip_network(f"{wan}/32"),
                                           ipaddress.ip_network(f"{blocked}/32")),
                                  Direction.OUT, action=Action.BLOCK))
        drv.add_policy(XfrmPolicy(Selector(ipaddress.ip_network(f"{wan}/32"),
                                           ipaddress.ip_network(f"{no_sa}/32")),
                                  Direction.OUT,
                                  templates=(Template(dst=no_sa, src=wan,
                                                      mode=Mode.TRANSPORT, reqid=1),)))
        for dst in (blocked, blocked, blocked, no_sa, no_sa):
            lab.ns(lab.a, "bash", "-c", f"echo x > /dev/udp/{dst}/9")
        try:
            kernel = proc_stat(lab)
            assert kernel["XfrmOutPolBlock"] >= 3 and kernel["XfrmOutNoStates"] >= 1, kernel
            # the state engine samples: wait until it read after the traffic, then compare
            # every counter (they no longer move)
            assert wait_for(lambda: int(kernel_view(lab).findtext(
                "i:statistics/i:out-policy-blocked", namespaces=NS) or -1)
                == kernel["XfrmOutPolBlock"], timeout=20, every=0.5)
            view = kernel_view(lab)
            ours = {el.tag.split("}")[1]: int(el.text)
                    for el in view.find("i:statistics", NS) if el.text is not None}
            assert ours == {STAT_NAMES[k]: v for k, v in proc_stat(lab).items()}
            assert set(ours) >= {"in-errors", "in-no-states", "out-no-states",
                                 "out-policy-blocked", "out-policy-dead"}  # RouterOS names
            # gNMI serves the same
            over_gnmi = gnmi_statistics(lab, certs[0])
            assert {k.split(":")[-1]: int(v) for k, v in over_gnmi.items()
                    if not isinstance(v, list)} == ours
            # the SPD/SAD are the data plane's only on kernel-netlink: not shown here
            assert view.find("i:policy", NS) is None and view.find("i:sa", NS) is None
        finally:
            drv.flush(policies=[p.id for p in drv.dump_policies()])
