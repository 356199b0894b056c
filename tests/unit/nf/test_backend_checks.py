"""Checks injected into the datastore (nf.checks): what the backend cannot carry out is refused
at validate, edit (test-then-set) and commit, with an rpc-error whose error-path is the node
holding the value (the VPN's override, or its template), and accepted where the backend can."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from nf.checks import APP_TAG, locate
from nf.datastore import Datastores
from nf.errors import RpcError
from nf.schema import Schema
from southbound.charon_backend import DATAPLANES, refusals

DATA = Path(__file__).resolve().parents[2] / "data"
NS = "urn:ipsec-nf:yang:ipsec-nf"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
P = "/ipsec-nf:ike"
VPN = f"{P}/ipsec-nf:vpn[ipsec-nf:name='siteA-siteB']"
IPSEC_T = f"{P}/ipsec-nf:ipsec-policy-template[ipsec-nf:name='ipsectemp1']"
IKE_T = f"{P}/ipsec-nf:ike-policy-template[ipsec-nf:name='iketemp1']"
TRUNK = f"{VPN}/ipsec-nf:security-policy[ipsec-nf:name='trunk']"


def cfg(body: str) -> etree._Element:
    return etree.fromstring(f'<config xmlns="{NC}"><ike xmlns="{NS}">{body}</ike></config>')


def store(schema: Schema, tmp_path: Path, backend: str) -> Datastores:
    ds = Datastores(schema, tmp_path)
    ds.checks.append(lambda eff: refusals(DATAPLANES[backend], eff))
    ds.edit("running", etree.parse(str(DATA / "site_a.xml")).getroot(), sid=1)
    return ds


SP = "<vpn><name>siteA-siteB</name><security-policy><name>trunk</name>{}</security-policy></vpn>"
CASES = {  # edit, error-path, words of the message
    "esn in the template": (
        "<ipsec-policy-template><name>ipsectemp1</name><esp-proposal><id>1</id><esn>true</esn>"
        "</esp-proposal></ipsec-policy-template>",
        f"{IPSEC_T}/ipsec-nf:esp-proposal[ipsec-nf:id='1']/ipsec-nf:esn", "ESN not supported"),
    "esn in the vpn's own list": (
        "<vpn><name>siteA-siteB</name><ipsec-policy><esp-proposal><id>7</id>"
        "<enc-alg>aes256-cbc</enc-alg><auth-alg>hmac-sha256</auth-alg><esn>true</esn>"
        "</esp-proposal></ipsec-policy></vpn>",
        f"{VPN}/ipsec-nf:ipsec-policy/ipsec-nf:esp-proposal[ipsec-nf:id='7']/ipsec-nf:esn",
        "ESN not supported"),
    "transport": (SP.format("<mode>transport</mode>"), f"{TRUNK}/ipsec-nf:mode",
                  "unsupported mode"),
    "ah action": (SP.format("<action>ah</action>"), f"{TRUNK}/ipsec-nf:action",
                  "protocol not supported"),
    "ah proposal": (  # refused where a policy uses AH (unused, it never reaches charon)
        "<ipsec-policy-template><name>ipsectemp1</name><ah-proposal><id>2</id>"
        "<auth-alg>hmac-sha256</auth-alg></ah-proposal></ipsec-policy-template>"
        + SP.format("<action>ah</action>"),
        f"{IPSEC_T}/ipsec-nf:ah-proposal[ipsec-nf:id='2']", "protocol not supported"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_libipsec_refuses_at_validate_and_commit(schema: Schema, tmp_path: Path,
                                                 case: str) -> None:
    edit, path, words = CASES[case]
    ds = store(schema, tmp_path, "kernel-libipsec")
    before = etree.tostring(ds.tree("running"))
    ds.edit("candidate", cfg(edit), sid=1, test_option="set")  # no test: kept in candidate
    for attempt in (lambda: ds.validate_datastore("candidate"), lambda: ds.commit(sid=1)):
        with pytest.raises(RpcError) as e:
            attempt()
        assert path in [err.path for err in e.value.errors]
        err = next(err for err in e.value.errors if err.path == path)
        assert err.tag == "invalid-value" and err.app_tag == APP_TAG
        assert "kernel-libipsec" in err.message and words in err.message
    assert etree.tostring(ds.tree("running")) == before
    with pytest.raises(RpcError):  # an edit of running, and a checked candidate edit
        ds.edit("running", cfg(edit), sid=1)
    ds.discard_changes(sid=1)
    with pytest.raises(RpcError):
        ds.edit("candidate", cfg(edit), sid=1)
    assert etree.tostring(ds.tree("running")) == before


@pytest.mark.parametrize("case", sorted(CASES))
def test_netlink_accepts(schema: Schema, tmp_path: Path, case: str) -> None:
    ds = store(schema, tmp_path, "kernel-netlink")
    ds.edit("candidate", cfg(CASES[case][0]), sid=1)
    ds.validate_datastore("candidate")
    ds.commit(sid=1)


@pytest.mark.parametrize("backend", sorted(DATAPLANES))
def test_eap_radius_needs_a_server_and_is_only_for_the_peer(schema: Schema, tmp_path: Path,
                                                            backend: str) -> None:
    ds = store(schema, tmp_path, backend)
    with pytest.raises(RpcError) as e:  # in the template, without a RADIUS server
        ds.edit("running", cfg("<ike-policy-template><name>iketemp1</name><remote-auth-method>"
                               "eap-radius</remote-auth-method></ike-policy-template>"), sid=1)
    assert [err.path for err in e.value.errors] == [f"{IKE_T}/ipsec-nf:remote-auth-method"]
    assert "needs a RADIUS server" in e.value.errors[0].message
    ds.edit("running", cfg("<eap-radius><server><name>r</name><address>192.0.2.9</address>"
                           "<secret>s3cret</secret></server></eap-radius>"
                           "<ike-policy-template><name>iketemp1</name><remote-auth-method>"
                           "eap-radius</remote-auth-method></ike-policy-template>"), sid=1)
    with pytest.raises(RpcError) as e:  # overridden in the VPN: charon is no RADIUS peer
        ds.edit("running", cfg("<vpn><name>siteA-siteB</name><ike-policy><local-auth-method>"
                               "eap-radius</local-auth-method></ike-policy></vpn>"), sid=1)
    assert [err.path for err in e.value.errors] == [
        f"{VPN}/ipsec-nf:ike-policy/ipsec-nf:local-auth-method"]
    assert "s3cret" not in str(e.value.errors)


@pytest.mark.parametrize("method", ["eap-mschapv2", "eap-md5"])
def test_eap_methods_are_carried(schema: Schema, tmp_path: Path, method: str) -> None:
    ds = store(schema, tmp_path, "kernel-libipsec")
    ds.edit("running", cfg(f"<vpn><name>siteA-siteB</name><ike-policy><remote-auth-method>"
                           f"{method}</remote-auth-method></ike-policy>"
                           "<remote-eap-id>%any</remote-eap-id></vpn>"), sid=1)
    with pytest.raises(RpcError) as e:  # an EAP id without an EAP method would be ignored
        ds.edit("running", cfg("<vpn><name>siteA-siteB</name><local-eap-id>me</local-eap-id>"
                               "</vpn>"), sid=1)
    assert [err.path for err in e.value.errors] == [f"{VPN}/ipsec-nf:local-eap-id"]


def test_locate_quotes_and_falls_back_to_the_vpn() -> None:
    config = {"ike": {"vpn": [{"name": "v", "ipsec-policy": {"template": "it's"}}]}}
    assert locate(config, "v", ("ipsec-policy", "esp-proposal[id='1']", "esn")) == (
        "/ipsec-nf:ike/ipsec-nf:ipsec-policy-template[ipsec-nf:name=\"it's\"]"
        "/ipsec-nf:esp-proposal[ipsec-nf:id='1']/ipsec-nf:esn")
    assert locate(config, "v", ("security-policy[name='p']", "mode")) == (
        "/ipsec-nf:ike/ipsec-nf:vpn[ipsec-nf:name='v']"
        "/ipsec-nf:security-policy[ipsec-nf:name='p']/ipsec-nf:mode")
