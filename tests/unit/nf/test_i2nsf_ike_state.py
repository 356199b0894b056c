"""RFC 9061's IKE-case state (conn-entry/state, number-ike-sas) made from the native state the
state engine reads from charon (nf/i2nsf_ike_state.py): the mapping from charon 5.9.8's
list-sas and stats replies, and the whole served tree (the gateway's own composition, merged
into the configured RFC example) checked by libyang and pruned by NACM like the rest."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path

from lxml import etree

from nf.i2nsf_ike_state import MODULE_TOP, conn_state, ike_spi, state_tree
from nf.nacm import Access, parse_policy, prune_unreadable
from nf.schema import Schema
from nf.state import merge_state
from southbound.charon_backend import DATAPLANES, CharonBackend
from southbound.sa_state import IkeSaConverter, ike_sa_state, ike_sas
from tests.fakes.vici_server import FakeCharon
from tests.support import libyang_printed
from tools.app import App

DATA = Path(__file__).resolve().parents[2] / "data" / "rfc9061"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
IKE_NS = "urn:ietf:params:xml:ns:yang:ietf-i2nsf-ike"
NS = {"i": IKE_NS}
CONN = "Security_GW_A-Security_GW_B"

# one list-sas entry of a real charon 5.9.8 (the RFC's gateway-to-gateway example, site A,
# behind a NAT: UDP-encapsulated on 4500), as VICI gives it
RAW = {
    "uniqueid": b"3", "version": b"2", "state": b"ESTABLISHED",
    "local-host": b"198.51.100.1", "local-port": b"4500", "local-id": b"198.51.100.1",
    "remote-host": b"198.51.100.2", "remote-port": b"4500", "remote-id": b"198.51.100.2",
    "initiator": b"yes", "initiator-spi": b"a1b2c3d4e5f60718",
    "responder-spi": b"1122334455667788", "nat-local": b"yes", "nat-any": b"yes",
    "encr-alg": b"AES_CBC", "encr-keysize": b"128", "integ-alg": b"HMAC_SHA2_512_256",
    "prf-alg": b"PRF_HMAC_SHA2_512", "dh-group": b"MODP_2048",
    "established": b"12", "rekey-time": b"41", "reauth-time": b"101",
    "child-sas": {"ipsec-policy-1-1": {
        "name": b"ipsec-policy-1", "uniqueid": b"1", "reqid": b"1", "state": b"INSTALLED",
        "mode": b"TUNNEL", "protocol": b"ESP", "encap": b"yes",
        "spi-in": b"c1d2e3f4", "spi-out": b"0a0b0c0d",
        "encr-alg": b"AES_CBC", "encr-keysize": b"128", "integ-alg": b"HMAC_SHA2_256_128",
        "bytes-in": b"252", "packets-in": b"3", "bytes-out": b"168", "packets-out": b"2",
        "rekey-time": b"250", "life-time": b"550", "install-time": b"12",
        "local-ts": [b"192.168.0.0/24"], "remote-ts": [b"192.168.99.0/24"]}},
}
STATS = {"ikesas": {"total": b"3", "half-open": b"1"}}


def native() -> dict:
    """The native state the state engine holds for RAW, a half-open duplicate of the same
    connection and an SA of another connection."""
    half = {CONN: {"uniqueid": b"4", "version": b"2", "state": b"CONNECTING",
                   "initiator": b"no", "initiator-spi": b"0102030405060708",
                   "responder-spi": b"0000000000000000"}}
    other = {"other": {**RAW, "uniqueid": b"5", "initiator-spi": b"ffffffffffffffff"}}
    return {"ike-sa": [ike_sa_state(half), ike_sa_state({CONN: RAW}), ike_sa_state(other)],
            "ike-sas": ike_sas(STATS)}


def config() -> dict:
    return {"ipsec-ike": {"conn-entry": {CONN: {"name": CONN}, "down": {"name": "down"}}}}


def test_a_conn_entrys_state_is_its_established_ike_sa() -> None:
    assert state_tree(config(), native()) == {MODULE_TOP: {
        "conn-entry": [{"name": CONN, "state": {
            "initiator": True,
            "initiator-ikesa-spi": 0xA1B2C3D4E5F60718, "responder-ikesa-spi": 0x1122334455667788,
            "nat-local": True, "nat-remote": False,
            "encapsulation-type": {"espencap": "espinudp", "sport": 4500, "dport": 4500},
            "established": 12, "current-rekey-time": 41, "current-reauth-time": 101}}],
        "number-ike-sas": {"total": 3, "half-open": 1}}}


def test_without_nat_the_state_says_plain_esp_and_a_half_open_sa_has_no_age() -> None:
    sa = ike_sa_state({CONN: {"uniqueid": b"4", "state": b"CONNECTING", "initiator": b"no",
                              "initiator-spi": b"0102030405060708",
                              "responder-spi": b"0000000000000000"}})
    assert conn_state(sa) == {
        "initiator": False, "initiator-ikesa-spi": 0x0102030405060708,
        "responder-ikesa-spi": 0, "nat-local": False, "nat-remote": False,
        "encapsulation-type": {"espencap": "none"}}
    assert ike_spi("ffffffffffffffff") == 2**64 - 1


def test_no_ike_case_configured_no_ike_case_state() -> None:
    assert state_tree({"ike": {}}, native()) == {}
    # a conn-entry the daemon was not given (refused) has no state; the counts stay
    assert state_tree(config(), native(), loaded=set()) == {
        MODULE_TOP: {"number-ike-sas": {"total": 3, "half-open": 1}}}



def test_the_served_tree_is_valid_rfc_9061_data_and_nacm_applies(tmp_path: Path) -> None:
    app = App(tmp_path / "gw")
    example = (DATA / "ike_g2g_a.xml").read_text()
    app.ds.edit("running", etree.fromstring(f'<config xmlns="{NC}">{example}</config>'), sid=1)
    with FakeCharon() as fake:
        fake.sas = [{CONN: {k: v.decode() if isinstance(v, bytes) else v
                            for k, v in RAW.items() if k != "child-sas"}}]
        fake.stats = {"ikesas": {"total": "1", "half-open": "0"}}
        # the gateway's own reads (its state engine and composition), against the fake
        backend = CharonBackend(fake.path, DATAPLANES["kernel-libipsec"])
        app.reconciler.state.read_fn = backend.read_state
        state = asyncio.run(app.read_state())
    roots = merge_state([copy.deepcopy(r) for r in app.ds.tree("running")], state)
    schema = Schema()
    doc = libyang_printed(schema, roots)
    entry = doc.find(f"i:ipsec-ike/i:conn-entry[i:name='{CONN}']", NS)
    st = entry.find("i:state", NS)
    assert st.findtext("i:initiator-ikesa-spi", namespaces=NS) == str(0xA1B2C3D4E5F60718)
    assert st.findtext("i:responder-ikesa-spi", namespaces=NS) == str(0x1122334455667788)
    assert st.findtext("i:initiator", namespaces=NS) == "true"
    assert st.findtext("i:nat-local", namespaces=NS) == "true"
    assert st.findtext("i:encapsulation-type/i:espencap", namespaces=NS) == "espinudp"
    assert st.findtext("i:established", namespaces=NS) == "12"
    assert st.findtext("i:current-rekey-time", namespaces=NS) == "41"
    assert doc.findtext("i:ipsec-ike/i:number-ike-sas/i:total", namespaces=NS) == "1"
    assert doc.findtext("i:ipsec-ike/i:number-ike-sas/i:half-open", namespaces=NS) == "0"

    # NACM: a rule that hides ietf-i2nsf-ike hides its state too; read-default permit shows it
    acm = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"

    def seen(rules: str) -> list[etree._Element]:
        policy = parse_policy(etree.fromstring(
            f'<config xmlns="{NC}"><nacm xmlns="{acm}"><read-default>permit</read-default>'
            f"{rules}</nacm></config>"))
        tops = merge_state([copy.deepcopy(r) for r in app.ds.tree("running")], state)
        return prune_unreadable(Access(policy, "olga", ["ops"]), tops, schema.state_top)

    def states(roots: list[etree._Element]) -> list[str]:
        return [x for r in roots for x in r.xpath("//i:initiator-ikesa-spi/text()",
                                                  namespaces=NS)]

    assert states(seen("")) == [str(0xA1B2C3D4E5F60718)]
    deny = ('<groups><group><name>ops</name><user-name>olga</user-name></group></groups>'
            '<rule-list><name>r</name><group>ops</group><rule><name>no-ike</name>'
            '<module-name>ietf-i2nsf-ike</module-name><access-operations>read'
            '</access-operations><action>deny</action></rule></rule-list>')
    assert states(seen(deny)) == []


def test_a_countdown_run_out_is_zero_not_negative() -> None:
    """charon lists the time left of a rekey under way as negative (REKEYED CHILD SAs, an
    IKE SA being replaced); the model's types are unsigned: 0, natively and in the RFC's."""
    raw = {**RAW, "rekey-time": b"-4", "child-sas": {"ipsec-policy-1-1": {
        **RAW["child-sas"]["ipsec-policy-1-1"], "state": b"REKEYED", "rekey-time": b"-4"}}}
    sa = ike_sa_state({CONN: raw})
    assert sa["rekey-time"] == 0 and sa["child-sa"][0]["rekey-time"] == 0
    assert conn_state(sa)["current-rekey-time"] == 0
    # the same through the converter that renews only the clock leaves of a known SA
    ticked = {**RAW, "rekey-time": b"-4", "child-sas": {"ipsec-policy-1-1": {
        **RAW["child-sas"]["ipsec-policy-1-1"], "rekey-time": b"-4"}}}
    conv = IkeSaConverter()
    conv.convert([{CONN: RAW}])
    (again,) = conv.convert([{CONN: ticked}])
    assert again["rekey-time"] == 0 and again["child-sa"][0]["rekey-time"] == 0
