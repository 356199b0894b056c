"""Route-based VPNs in the southbound (issue 15): what charon is given for a security policy
bound to an SVTI interface (if_id_in/if_id_out, selectors 0.0.0.0/0 and ::/0 by default), the
svti kind's payload and place among the kinds, and the xfrm interface driver's refusals in a
network namespace of this host. The interfaces themselves are made in the kernel guest
(tests/kernel/guest/test_route_based_kernel.py): this host's kernel has none."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from nf.effective import EffectiveConfig, SecurityPolicy, Svti, TrafficSelector, Vpn
from southbound import xfrm_interfaces
from southbound.backend import DataPlane
from southbound.charon_backend import KINDS
from southbound.convert import conn_for
from southbound.desired import DesiredSet
from southbound.plan import plan


def _vpn(*policies: SecurityPolicy) -> Vpn:
    return Vpn(name="rb", local_address="198.51.100.1", remote_address="198.51.100.2",
               security_policies=policies)


def test_a_bound_policy_gets_if_ids_and_everything_as_selectors() -> None:
    child = conn_for(_vpn(SecurityPolicy(name="t", svti_id_in=100, svti_id_out=100)))[
        "children"]["t"]
    assert child["if_id_in"] == "100" and child["if_id_out"] == "100"
    assert child["local_ts"] == ["0.0.0.0/0", "::/0"]
    assert child["remote_ts"] == ["0.0.0.0/0", "::/0"]


def test_a_bound_policy_keeps_its_own_selectors() -> None:
    sp = SecurityPolicy(name="t", svti_id_out=7,
                        local_ts=TrafficSelector(subnet=("192.0.2.0/24",)),
                        remote_ts=TrafficSelector(protocol="tcp"))
    child = conn_for(_vpn(sp))["children"]["t"]
    assert child["local_ts"] == ["192.0.2.0/24"]
    assert child["remote_ts"] == ["0.0.0.0/0[6]", "::/0[6]"]
    assert child["if_id_out"] == "7" and "if_id_in" not in child


def test_a_policy_based_vpn_is_unchanged() -> None:
    child = conn_for(_vpn(SecurityPolicy(name="t")))["children"]["t"]
    assert child["local_ts"] == ["dynamic"] and child["remote_ts"] == ["dynamic"]
    assert "if_id_in" not in child and "if_id_out" not in child


def test_svti_payload_defaults_the_mtu() -> None:
    body = xfrm_interfaces.payload(Svti(name="svti1", svti_id=5,
                                        ipv4_address=("10.0.0.1/30",),
                                        ipv6_address=("2001:db8::1/64",)))
    assert body == {"if-id": 5, "link": None, "mtu": 1500,
                    "addresses": ["10.0.0.1/30", "2001:db8::1/64"]}


def test_interfaces_come_after_the_vpns_and_go_before_them() -> None:
    """Made once charon has the CHILD configs (their if_id is only a number to charon), gone
    before charon tears the SAs and policies down: no packet routed into the interface meets a
    policy without its SA (an acquire, and a larval SA left in the kernel)."""
    eff = EffectiveConfig(
        vpns={"rb": _vpn(SecurityPolicy(name="t", svti_id_in=5, svti_id_out=5))},
        svtis={"svti1": Svti(name="svti1", svti_id=5)})
    dp = DataPlane("kernel-netlink", can_trap=True)
    desired = DesiredSet(KINDS, dp)
    desired.update(eff)
    ranks = {k.name: k.rank for k in KINDS}
    loads = plan(desired.digests, {}, ranks)
    order = [(op.kind, op.name) for op in loads]
    assert order.index(("vpn", "rb")) < order.index(("svti", "svti1"))
    held = {k: dict(v) for k, v in desired.digests.items()}
    unloads = plan({}, held, ranks)
    order = [(op.kind, op.name) for op in unloads]
    assert order.index(("svti", "svti1")) < order.index(("vpn", "rb"))
    disabled = DesiredSet(KINDS, dp)
    disabled.update(EffectiveConfig(enabled=False, svtis=eff.svtis))
    assert disabled.digests["svti"] == {}


@pytest.fixture
def netns() -> Iterator[str]:
    """A namespace of its own with a veth pair; the veth d0 carries the driver's alias."""
    name = f"svti{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "add", "d0", "type", "veth", "peer", "d1"],
                       check=True)
        subprocess.run(["ip", "-n", name, "link", "set", "d0", "alias",
                        xfrm_interfaces.ALIAS], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _in_ns(ns: str, code: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code],
                          capture_output=True, text=True, timeout=60,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(
                              os.path.dirname(os.path.abspath(__file__))))))


def test_driver_leaves_other_interfaces_alone(netns: str) -> None:
    r = _in_ns(netns, """
from southbound import xfrm_interfaces as x
from southbound.backend import EntryRefused
print(x.observe(True))            # a veth with our alias is not an xfrm interface of ours
x.unload("d0")                    # not ours: left alone
for name, link in (("d0", None), ("svti9", "nosuchdev")):
    try:
        x.load(name, {"if-id": 9, "link": link, "mtu": 1500, "addresses": []})
    except EntryRefused as e:
        print("refused:", e.message)
""")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "{}"
    assert "svti d0: an interface of that name exists and was not made by this gateway" \
        in lines[1] and "veth" in lines[1]
    assert lines[2] == "refused: svti svti9: link-interface nosuchdev does not exist"
    links = subprocess.run(["ip", "-n", netns, "-o", "link"], capture_output=True,
                           text=True, check=True).stdout
    assert "d0@d1" in links
