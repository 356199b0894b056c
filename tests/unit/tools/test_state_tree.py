"""The whole state tree the gateway serves (SA tables with every field, counters, task
processing, apply status, each VPN's effective parameters) is valid data of ipsec-nf.yang,
checked by libyang with the running config it is merged into."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path

from lxml import etree

from nf.schema import NS, Schema
from nf.state import merge_state
from southbound.charon_backend import DATAPLANES, CharonBackend
from southbound.sa_state import COUNTERS
from tests.fakes.vici_server import FakeCharon
from tools.app import App

DATA = Path(__file__).resolve().parents[2] / "data"

# every field charon 5.9.8's list-sas gives, as the fake streams it (text values)
IKE_SA = {
    "uniqueid": "7", "version": "2", "state": "ESTABLISHED",
    "local-host": "198.51.100.1", "local-port": "4500", "local-id": "secgwa.example.net",
    "remote-host": "198.51.100.2", "remote-port": "4500", "remote-id": "secgwb.example.net",
    "remote-eap-id": "alice", "remote-xauth-id": "bob",
    "initiator": "yes", "initiator-spi": "76f1cb817a1aa745", "responder-spi": "f777f6681e4caff8",
    "nat-local": "no", "nat-remote": "yes", "nat-fake": "no", "nat-any": "yes",
    "if-id-in": "00000001", "if-id-out": "00000002",
    "encr-alg": "AES_CBC", "encr-keysize": "128", "integ-alg": "HMAC_SHA2_512_256",
    "prf-alg": "PRF_HMAC_SHA2_512", "dh-group": "MODP_2048",
    "established": "24", "rekey-time": "14170", "reauth-time": "45567",
    "local-vips": ["10.0.0.2"], "remote-vips": ["10.9.0.1", "2001:db8::1"],
    "tasks-queued": ["IKE_DPD"], "tasks-active": ["CHILD_REKEY"], "tasks-passive": [],
    "child-sas": {
        "trunk-2": {
            "name": "trunk", "uniqueid": "2", "reqid": "1", "state": "INSTALLED",
            "mode": "TUNNEL", "protocol": "ESP", "encap": "yes",
            "spi-in": "c704d981", "spi-out": "c3dd14b9", "cpi-in": "4a3b", "cpi-out": "4a3c",
            "mark-in": "0000002a", "mark-mask-in": "ffffffff", "mark-out": "0000002b",
            "mark-mask-out": "ffffffff", "if-id-in": "00000003", "if-id-out": "00000004",
            "label": "73797374656d5f75",
            "encr-alg": "AES_CBC", "encr-keysize": "128", "integ-alg": "HMAC_SHA2_256_128",
            "dh-group": "ECP_256", "esn": "1",
            "bytes-in": "304", "packets-in": "2", "use-in": "3",
            "bytes-out": "168", "packets-out": "2", "use-out": "3",
            "rekey-time": "3425", "life-time": "3936", "install-time": "24",
            "local-ts": ["192.168.0.0/24"], "remote-ts": ["192.168.99.0/24[tcp/80]"]},
        "gcm-3": {
            "name": "gcm", "uniqueid": "3", "reqid": "2", "state": "REKEYING",
            "mode": "TRANSPORT", "protocol": "ESP", "encap": "no",
            "spi-in": "0000abcd", "spi-out": "0000dcba",
            "encr-alg": "AES_GCM_16", "encr-keysize": "256",
            "bytes-in": "0", "packets-in": "0", "bytes-out": "0", "packets-out": "0",
            "rekey-time": "0", "life-time": "100", "install-time": "3500",
            "local-ts": ["198.51.100.1/32"], "remote-ts": ["198.51.100.2/32"]}},
}


def test_the_whole_state_tree_is_valid_yang_data(tmp_path: Path) -> None:
    app = App(tmp_path / "gw")
    app.ds.edit("running", etree.parse(str(DATA / "site_a.xml")).getroot(), sid=1)
    with FakeCharon() as fake:
        fake.sas = [{"siteA-siteB": copy.deepcopy(IKE_SA)},
                    {"siteA-siteB": {"uniqueid": "8", "state": "CONNECTING", "version": "2",
                                     "initiator": "no"}}]
        fake.counters = {"": dict.fromkeys(COUNTERS, 3),
                         "siteA-siteB": dict.fromkeys(COUNTERS, 1)}
        # the gateway's own reads, pointed at the fake instead of its charon
        backend = CharonBackend(fake.path, DATAPLANES["kernel-libipsec"])
        app.reconciler.state.read_fn = backend.read_state
        state = asyncio.run(app.read_state())

    assert [v["name"] for v in state["vpn"]] == ["siteA-siteB"]
    roots = merge_state([copy.deepcopy(r) for r in app.ds.tree("running")], state)
    xml = "".join(etree.tostring(r, encoding="unicode") for r in roots)
    schema = Schema()
    dnode = schema.ctx.parse_data_mem(xml, "xml", strict=True, validate_present=True)
    assert dnode is not None
    try:
        out = dnode.print_mem("xml", with_siblings=True)
    finally:
        dnode.free()
    doc = etree.fromstring(f"<r>{out}</r>".encode())
    ike = doc.find(f"{{{NS}}}ike")

    def text(path: str) -> str | None:
        return ike.findtext(path.replace("ipnf:", f"{{{NS}}}"))

    # what libyang kept is what was served (nothing dropped as unknown)
    assert text("ipnf:ike-sa/ipnf:child-sa/ipnf:spi-in") == "c704d981"
    assert text("ipnf:ike-sa/ipnf:child-sa/ipnf:mark-in") == "42"
    assert text("ipnf:ike-sa/ipnf:remote-vips") == "10.9.0.1"
    assert text("ipnf:ike-sa/ipnf:bytes-in") == "304"
    assert text("ipnf:counters/ipnf:ike-init-out-req") == "3"
    assert text("ipnf:vpn-counters/ipnf:ike-auth-in-resp") == "1"
    assert text("ipnf:task-processing/ipnf:worker-threads/ipnf:total") == "16"
    assert text("ipnf:vpn/ipnf:effective/ipnf:ike-policy/ipnf:template") == "iketemp1"
    assert text("ipnf:vpn/ipnf:effective/ipnf:ike-policy/ipnf:ike-proposal/"
                "ipnf:prf-alg") == "hmac-sha512"
    assert text("ipnf:vpn/ipnf:effective/ipnf:security-policy/ipnf:local-ts/"
                "ipnf:subnet") == "192.168.0.0/24"
    gcm = [c for c in ike.iter(f"{{{NS}}}child-sa") if c.findtext(f"{{{NS}}}name") == "gcm"]
    assert gcm[0].findtext(f"{{{NS}}}aead-alg") == "aes256-gcm-128"
    assert gcm[0].find(f"{{{NS}}}enc-alg") is None
    assert ike.findtext(f"{{{NS}}}apply-status/{{{NS}}}state-stale") == "false"


def test_the_vpn_list_is_composed_again_only_when_the_vpns_changed(tmp_path: Path) -> None:
    """Each reading composes the tree: with the same effective VPNs the same vpn list is
    served; after a change, a new list in which the unchanged VPNs' entries are kept."""
    app = App(tmp_path / "gw")
    app.ds.edit("running", etree.parse(str(DATA / "site_a.xml")).getroot(), sid=1)
    compose = app.state.compose
    first = compose({}, None, False)["vpn"]
    assert compose({}, None, False)["vpn"] is first
    more = (f'<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><ike xmlns="{NS}">'
            "<vpn><name>siteA-siteC</name><ike-policy><template>iketemp1</template>"
            "</ike-policy><ipsec-policy><template>ipsectemp1</template></ipsec-policy>"
            "<local-address>198.51.100.1</local-address><remote-address>198.51.100.3"
            "</remote-address><local-id>a.example.net</local-id><remote-id>c.example.net"
            "</remote-id></vpn></ike></config>")
    app.ds.edit("running", etree.fromstring(more), sid=1)
    second = compose({}, None, False)["vpn"]
    assert second is not first
    assert [v["name"] for v in second] == ["siteA-siteB", "siteA-siteC"]
    assert second[0] is first[0]
    assert second[1]["effective"]["remote-address"] == "198.51.100.3"
