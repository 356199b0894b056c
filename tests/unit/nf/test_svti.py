"""Route-based VPNs in the model (issue 15): /ike/svti interfaces and the security policies
bound to them (svti-id-in/out). A policy naming a missing svti is refused by the model; svti on
kernel-libipsec (ESP in user space: no xfrm interfaces) is refused with an rpc-error naming the
backend and the leaf; kernel-netlink takes it, and the effective config carries every value."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from nf.checks import APP_TAG
from nf.datastore import Datastores
from nf.errors import RpcError
from nf.schema import Schema
from nf.templates import resolve
from southbound.charon_backend import DATAPLANES, refusals

DATA = Path(__file__).resolve().parents[2] / "data"
NS = "urn:ipsec-nf:yang:ipsec-nf"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
P = "/ipsec-nf:ike"
TRUNK = (f"{P}/ipsec-nf:vpn[ipsec-nf:name='siteA-siteB']"
         "/ipsec-nf:security-policy[ipsec-nf:name='trunk']")
SVTI = ("<svti><name>svti1</name><svti-id>100</svti-id><link-interface>eth0</link-interface>"
        "<mtu>1400</mtu><ipv4><address>10.0.0.1/30</address></ipv4>"
        "<ipv6><address>2001:db8:1::1/64</address></ipv6></svti>")
BOUND = ("<vpn><name>siteA-siteB</name><security-policy><name>trunk</name>"
         "<svti-id-in>{0}</svti-id-in><svti-id-out>{0}</svti-id-out></security-policy></vpn>")


def cfg(body: str) -> etree._Element:
    return etree.fromstring(f'<config xmlns="{NC}"><ike xmlns="{NS}">{body}</ike></config>')


def store(schema: Schema, tmp_path: Path, backend: str) -> Datastores:
    ds = Datastores(schema, tmp_path)
    ds.checks.append(lambda eff: refusals(DATAPLANES[backend], eff))
    ds.edit("running", etree.parse(str(DATA / "site_a.xml")).getroot(), sid=1)
    return ds


def test_netlink_takes_a_route_based_vpn(schema: Schema, tmp_path: Path) -> None:
    ds = store(schema, tmp_path, "kernel-netlink")
    ds.edit("candidate", cfg(SVTI + BOUND.format(100)), sid=1)
    ds.validate_datastore("candidate")
    ds.commit(sid=1)
    eff = resolve(ds.config)
    svti = eff.svtis["svti1"]
    assert (svti.svti_id, svti.link_interface, svti.mtu) == (100, "eth0", 1400)
    assert svti.ipv4_address == ("10.0.0.1/30",)  # the interface's address, not its network
    assert svti.ipv6_address == ("2001:db8:1::1/64",)
    sp = eff.vpns["siteA-siteB"].security_policies[0]
    assert (sp.svti_id_in, sp.svti_id_out, sp.route_based) == (100, 100, True)


def test_a_policy_bound_to_a_missing_svti_is_refused(schema: Schema, tmp_path: Path) -> None:
    ds = store(schema, tmp_path, "kernel-netlink")
    with pytest.raises(RpcError) as e:
        ds.edit("running", cfg(SVTI + BOUND.format(101)), sid=1)
    assert any(err.app_tag == "instance-required" and "/ipsec-nf:svti-id-" in (err.path or "")
               and "/ike/svti/svti-id" in err.message for err in e.value.errors), e.value.errors
    ds.edit("running", cfg(SVTI + BOUND.format(100)), sid=1)
    with pytest.raises(RpcError):  # the svti cannot go while a policy names it
        ds.edit("running", cfg('<svti xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" '
                               'nc:operation="delete"><name>svti1</name></svti>'), sid=1)


def test_two_svtis_with_one_id_are_refused(schema: Schema, tmp_path: Path) -> None:
    ds = store(schema, tmp_path, "kernel-netlink")
    with pytest.raises(RpcError):
        ds.edit("running", cfg(SVTI + "<svti><name>svti2</name><svti-id>100</svti-id></svti>"),
                sid=1)


@pytest.mark.parametrize("address", ["2001:db8:::1/64", "10.0.0.1/64", "fe80::zz/10"])
def test_a_bad_ipv6_address_is_refused(schema: Schema, tmp_path: Path, address: str) -> None:
    ds = store(schema, tmp_path, "kernel-netlink")
    with pytest.raises(RpcError) as e:
        ds.edit("running", cfg(f"<svti><name>s</name><svti-id>7</svti-id><ipv6><address>"
                               f"{address}</address></ipv6></svti>"), sid=1)
    assert address in str([err.message for err in e.value.errors])


def test_libipsec_refuses_svti_naming_backend_and_leaf(schema: Schema, tmp_path: Path) -> None:
    ds = store(schema, tmp_path, "kernel-libipsec")
    before = etree.tostring(ds.tree("running"))
    ds.edit("candidate", cfg(SVTI + BOUND.format(100)), sid=1, test_option="set")
    for attempt in (lambda: ds.validate_datastore("candidate"), lambda: ds.commit(sid=1)):
        with pytest.raises(RpcError) as e:
            attempt()
        by_path = {err.path: err for err in e.value.errors}
        for path in (f"{TRUNK}/ipsec-nf:svti-id-in", f"{TRUNK}/ipsec-nf:svti-id-out",
                     f"{P}/ipsec-nf:svti[ipsec-nf:name='svti1']"):
            assert path in by_path, sorted(by_path)
            err = by_path[path]
            assert err.tag == "invalid-value" and err.app_tag == APP_TAG
            assert "kernel-libipsec" in err.message and "xfrm interfaces" in err.message
            assert "kernel-netlink" in err.message
    assert etree.tostring(ds.tree("running")) == before
    ds.discard_changes(sid=1)
    with pytest.raises(RpcError):  # the interface alone is refused too
        ds.edit("running", cfg(SVTI), sid=1)
