"""RFC 9061 served beside our own model (nf/i2nsf_ike.py): the three modules' schema trees are
the RFC's, node for node; the IKE-case examples load, validate and resolve to the VPNs and keys
charon is given; what contradicts our model, what cannot be carried out and the IKE-less case
are refused with the node at fault."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from nf.datastore import Datastores
from nf.errors import RpcError
from nf.i2nsf_ike import CLASH, UNSUPPORTED
from nf.schema import Schema
from nf.templates import resolve
from nf.yang_modules import YANG_DIR, standard_module_dirs
from southbound.charon_backend import DATAPLANES, refusals
from southbound.convert import conn_for, shared_for

DATA = Path(__file__).resolve().parents[2] / "data" / "rfc9061"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
IKE_NS = "urn:ietf:params:xml:ns:yang:ietf-i2nsf-ike"
IPNF = "urn:ipsec-nf:yang:ipsec-nf"
CONN = "/ietf-i2nsf-ike:ipsec-ike/ietf-i2nsf-ike:conn-entry[ietf-i2nsf-ike:name='{}']"

# The tree diagrams of RFC 9061 section 5 (ietf-i2nsf-ike) and section 6 (ietf-i2nsf-ikeless),
# as RFC 8340 draws them (ietf-i2nsf-ikec has groupings and types only: no tree); compared
# line by line, whitespace aside.
RFC_TREES = {
    "ietf-i2nsf-ike": """\
module: ietf-i2nsf-ike
  +--rw ipsec-ike
     +--rw pad
     |  +--rw pad-entry* [name]
     |     +--rw name                           string
     |     +--rw (identity)
     |     |  +--:(ipv4-address)
     |     |  |  +--rw ipv4-address?            inet:ipv4-address
     |     |  +--:(ipv6-address)
     |     |  |  +--rw ipv6-address?            inet:ipv6-address
     |     |  +--:(fqdn-string)
     |     |  |  +--rw fqdn-string?             inet:domain-name
     |     |  +--:(rfc822-address-string)
     |     |  |  +--rw rfc822-address-string?   string
     |     |  +--:(dnx509)
     |     |  |  +--rw dnx509?                  binary
     |     |  +--:(gnx509)
     |     |  |  +--rw gnx509?                  binary
     |     |  +--:(id-key)
     |     |  |  +--rw id-key?                  binary
     |     |  +--:(id-null)
     |     |     +--rw id-null?                 empty
     |     +--rw auth-protocol?                 auth-protocol-type
     |     +--rw peer-authentication
     |        +--rw auth-method?         auth-method-type
     |        +--rw eap-method
     |        |  +--rw eap-type    uint32
     |        +--rw pre-shared
     |        |  +--rw secret?   yang:hex-string
     |        +--rw digital-signature
     |           +--rw ds-algorithm?           uint8
     |           +--rw (public-key)?
     |           |  +--:(raw-public-key)
     |           |  |  +--rw raw-public-key?   binary
     |           |  +--:(cert-data)
     |           |     +--rw cert-data?        binary
     |           +--rw private-key?            binary
     |           +--rw ca-data*                binary
     |           +--rw crl-data?               binary
     |           +--rw crl-uri?                inet:uri
     |           +--rw oscp-uri?               inet:uri
     +--rw conn-entry* [name]
     |  +--rw name                                 string
     |  +--rw autostartup?                         autostartup-type
     |  +--rw initial-contact?                     boolean
     |  +--rw version?                             auth-protocol-type
     |  +--rw fragmentation
     |  |  +--rw enabled?   boolean
     |  |  +--rw mtu?       uint16
     |  +--rw ike-sa-lifetime-soft
     |  |  +--rw rekey-time?    uint32
     |  |  +--rw reauth-time?   uint32
     |  +--rw ike-sa-lifetime-hard
     |  |  +--rw over-time?   uint32
     |  +--rw ike-sa-intr-alg*                     nsfikec:intr-alg-t
     |  +--rw ike-sa-encr-alg* [id]
     |  |  +--rw id                uint16
     |  |  +--rw algorithm-type?   nsfikec:encr-alg-t
     |  |  +--rw key-length?       uint16
     |  +--rw dh-group?                            fs-group
     |  +--rw half-open-ike-sa-timer?              uint32
     |  +--rw half-open-ike-sa-cookie-threshold?   uint32
     |  +--rw local
     |  |  +--rw local-pad-entry-name    string
     |  +--rw remote
     |  |  +--rw remote-pad-entry-name    string
     |  +--rw encapsulation-type
     |  |  +--rw espencap?   esp-encap
     |  |  +--rw sport?      inet:port-number
     |  |  +--rw dport?      inet:port-number
     |  |  +--rw oaddr*      inet:ip-address
     |  +--rw spd
     |  |  +--rw spd-entry* [name]
     |  |     +--rw name                   string
     |  |     +--rw ipsec-policy-config
     |  |        +--rw anti-replay-window-size?   uint32
     |  |        +--rw traffic-selector
     |  |        |  +--rw local-prefix      inet:ip-prefix
     |  |        |  +--rw remote-prefix     inet:ip-prefix
     |  |        |  +--rw inner-protocol?   ipsec-inner-protocol
     |  |        |  +--rw local-ports* [start end]
     |  |        |  |  +--rw start    inet:port-number
     |  |        |  |  +--rw end      inet:port-number
     |  |        |  +--rw remote-ports* [start end]
     |  |        |     +--rw start    inet:port-number
     |  |        |     +--rw end      inet:port-number
     |  |        +--rw processing-info
     |  |           +--rw action?         ipsec-spd-action
     |  |           +--rw ipsec-sa-cfg
     |  |              +--rw pfp-flag?              boolean
     |  |              +--rw ext-seq-num?           boolean
     |  |              +--rw seq-overflow?          boolean
     |  |              +--rw stateful-frag-check?   boolean
     |  |              +--rw mode?                  ipsec-mode
     |  |              +--rw protocol-parameters?   ipsec-protocol-params
     |  |              +--rw esp-algorithms
     |  |              |  +--rw integrity*    intr-alg-t
     |  |              |  +--rw encryption* [id]
     |  |              |  |  +--rw id                uint16
     |  |              |  |  +--rw algorithm-type?   encr-alg-t
     |  |              |  |  +--rw key-length?       uint16
     |  |              |  +--rw tfc-pad?      boolean
     |  |              +--rw tunnel
     |  |                 +--rw local           inet:ip-address
     |  |                 +--rw remote          inet:ip-address
     |  |                 +--rw df-bit?         enumeration
     |  |                 +--rw bypass-dscp?    boolean
     |  |                 +--rw dscp-mapping* [id]
     |  |                    +--rw id            uint8
     |  |                    +--rw inner-dscp?   inet:dscp
     |  |                    +--rw outer-dscp?   inet:dscp
     |  +--rw child-sa-info
     |  |  +--rw fs-groups*                fs-group
     |  |  +--rw child-sa-lifetime-soft
     |  |  |  +--rw time?      uint32
     |  |  |  +--rw bytes?     uint64
     |  |  |  +--rw packets?   uint32
     |  |  |  +--rw idle?      uint32
     |  |  |  +--rw action?    nsfikec:lifetime-action
     |  |  +--rw child-sa-lifetime-hard
     |  |     +--rw time?      uint32
     |  |     +--rw bytes?     uint64
     |  |     +--rw packets?   uint32
     |  |     +--rw idle?      uint32
     |  +--ro state
     |     +--ro initiator?             boolean
     |     +--ro initiator-ikesa-spi?   ike-spi
     |     +--ro responder-ikesa-spi?   ike-spi
     |     +--ro nat-local?             boolean
     |     +--ro nat-remote?            boolean
     |     +--ro encapsulation-type
     |     |  +--ro espencap?   esp-encap
     |     |  +--ro sport?      inet:port-number
     |     |  +--ro dport?      inet:port-number
     |     |  +--ro oaddr*      inet:ip-address
     |     +--ro established?           uint64
     |     +--ro current-rekey-time?    uint64
     |     +--ro current-reauth-time?   uint64
     +--ro number-ike-sas
        +--ro total?               yang:gauge64
        +--ro half-open?           yang:gauge64
        +--ro half-open-cookies?   yang:gauge64
""",
    "ietf-i2nsf-ikeless": """\
module: ietf-i2nsf-ikeless
  +--rw ipsec-ikeless
     +--rw spd
     |  +--rw spd-entry* [name]
     |     +--rw name                   string
     |     +--rw direction              nsfikec:ipsec-traffic-direction
     |     +--rw reqid?                 uint64
     |     +--rw ipsec-policy-config
     |        +--rw anti-replay-window-size?   uint32
     |        +--rw traffic-selector
     |        |  +--rw local-prefix      inet:ip-prefix
     |        |  +--rw remote-prefix     inet:ip-prefix
     |        |  +--rw inner-protocol?   ipsec-inner-protocol
     |        |  +--rw local-ports* [start end]
     |        |  |  +--rw start    inet:port-number
     |        |  |  +--rw end      inet:port-number
     |        |  +--rw remote-ports* [start end]
     |        |     +--rw start    inet:port-number
     |        |     +--rw end      inet:port-number
     |        +--rw processing-info
     |           +--rw action?         ipsec-spd-action
     |           +--rw ipsec-sa-cfg
     |              +--rw pfp-flag?              boolean
     |              +--rw ext-seq-num?           boolean
     |              +--rw seq-overflow?          boolean
     |              +--rw stateful-frag-check?   boolean
     |              +--rw mode?                  ipsec-mode
     |              +--rw protocol-parameters?   ipsec-protocol-params
     |              +--rw esp-algorithms
     |              |  +--rw integrity*    intr-alg-t
     |              |  +--rw encryption* [id]
     |              |  |  +--rw id                uint16
     |              |  |  +--rw algorithm-type?   encr-alg-t
     |              |  |  +--rw key-length?       uint16
     |              |  +--rw tfc-pad?      boolean
     |              +--rw tunnel
     |                 +--rw local           inet:ip-address
     |                 +--rw remote          inet:ip-address
     |                 +--rw df-bit?         enumeration
     |                 +--rw bypass-dscp?    boolean
     |                 +--rw dscp-mapping* [id]
     |                    +--rw id            uint8
     |                    +--rw inner-dscp?   inet:dscp
     |                    +--rw outer-dscp?   inet:dscp
     +--rw sad
        +--rw sad-entry* [name]
           +--rw name               string
           +--rw reqid?             uint64
           +--rw ipsec-sa-config
           |  +--rw spi                        uint32
           |  +--rw ext-seq-num?               boolean
           |  +--rw seq-overflow?              boolean
           |  +--rw anti-replay-window-size?   uint32
           |  +--rw traffic-selector
           |  |  +--rw local-prefix      inet:ip-prefix
           |  |  +--rw remote-prefix     inet:ip-prefix
           |  |  +--rw inner-protocol?   ipsec-inner-protocol
           |  |  +--rw local-ports* [start end]
           |  |  |  +--rw start    inet:port-number
           |  |  |  +--rw end      inet:port-number
           |  |  +--rw remote-ports* [start end]
           |  |     +--rw start    inet:port-number
           |  |     +--rw end      inet:port-number
           |  +--rw protocol-parameters?       nsfikec:ipsec-protocol-params
           |  +--rw mode?                      nsfikec:ipsec-mode
           |  +--rw esp-sa
           |  |  +--rw encryption
           |  |  |  +--rw encryption-algorithm?   nsfikec:encr-alg-t
           |  |  |  +--rw key?                    yang:hex-string
           |  |  |  +--rw iv?                     yang:hex-string
           |  |  +--rw integrity
           |  |     +--rw integrity-algorithm?   nsfikec:intr-alg-t
           |  |     +--rw key?                   yang:hex-string
           |  +--rw sa-lifetime-hard
           |  |  +--rw time?      uint32
           |  |  +--rw bytes?     uint64
           |  |  +--rw packets?   uint32
           |  |  +--rw idle?      uint32
           |  +--rw sa-lifetime-soft
           |  |  +--rw time?      uint32
           |  |  +--rw bytes?     uint64
           |  |  +--rw packets?   uint32
           |  |  +--rw idle?      uint32
           |  |  +--rw action?    nsfikec:lifetime-action
           |  +--rw tunnel
           |  |  +--rw local           inet:ip-address
           |  |  +--rw remote          inet:ip-address
           |  |  +--rw df-bit?         enumeration
           |  |  +--rw bypass-dscp?    boolean
           |  |  +--rw dscp-mapping* [id]
           |  |  |  +--rw id            uint8
           |  |  |  +--rw inner-dscp?   inet:dscp
           |  |  |  +--rw outer-dscp?   inet:dscp
           |  |  +--rw dscp-values*    inet:dscp
           |  +--rw encapsulation-type
           |     +--rw espencap?   esp-encap
           |     +--rw sport?      inet:port-number
           |     +--rw dport?      inet:port-number
           |     +--rw oaddr*      inet:ip-address
           +--ro ipsec-sa-state
              +--ro sa-lifetime-current
              |  +--ro time?      uint32
              |  +--ro bytes?     uint64
              |  +--ro packets?   uint32
              |  +--ro idle?      uint32
              +--ro replay-stats
                 +--ro replay-window
                 |  +--ro w?   uint32
                 |  +--ro t?   uint64
                 |  +--ro b?   uint64
                 +--ro packet-dropped?       yang:counter64
                 +--ro failed?               yang:counter64
                 +--ro seq-number-counter?   uint64

  notifications:
    +---n sadb-acquire {ikeless-notification}?
    |  +--ro ipsec-policy-name    string
    |  +--ro traffic-selector
    |     +--ro local-prefix      inet:ip-prefix
    |     +--ro remote-prefix     inet:ip-prefix
    |     +--ro inner-protocol?   ipsec-inner-protocol
    |     +--ro local-ports* [start end]
    |     |  +--ro start    inet:port-number
    |     |  +--ro end      inet:port-number
    |     +--ro remote-ports* [start end]
    |        +--ro start    inet:port-number
    |        +--ro end      inet:port-number
    +---n sadb-expire {ikeless-notification}?
    |  +--ro ipsec-sa-name           string
    |  +--ro soft-lifetime-expire?   boolean
    |  +--ro lifetime-current
    |     +--ro time?      uint32
    |     +--ro bytes?     uint64
    |     +--ro packets?   uint32
    |     +--ro idle?      uint32
    +---n sadb-seq-overflow {ikeless-notification}?
    |  +--ro ipsec-sa-name    string
    +---n sadb-bad-spi {ikeless-notification}?
       +--ro spi    uint32
""",
}


def _lines(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("module", sorted(RFC_TREES))
def test_the_schema_tree_is_the_rfcs(module: str) -> None:
    path = ":".join(str(d) for d in [YANG_DIR, *standard_module_dirs()])
    out = subprocess.run([str(Path(sys.executable).parent / "pyang"), "-f", "tree", "-p", path,
                          str(YANG_DIR / f"{module}.yang")], capture_output=True, text=True,
                         check=True).stdout
    ours, rfc = _lines(out), _lines(RFC_TREES[module])
    for n, (a, b) in enumerate(zip(ours, rfc, strict=False)):
        assert a == b, f"line {n + 1}: ours {' '.join(a)!r}, the RFC's {' '.join(b)!r}"
    assert len(ours) == len(rfc)


def test_the_common_module_has_no_data_nodes_only_types_and_groupings() -> None:
    schema = Schema()
    mod = schema.ctx.get_module("ietf-i2nsf-ikec")
    assert list(mod.children()) == []
    assert {t.name() for t in mod.typedefs()} >= {"encr-alg-t", "intr-alg-t", "ipsec-mode"}


def datastores(tmp_path: Path, dataplane: str = "kernel-libipsec") -> Datastores:
    ds = Datastores(Schema(), tmp_path / "ds")
    ds.checks.append(lambda eff: refusals(DATAPLANES[dataplane], eff))
    return ds


def config(*parts: str) -> etree._Element:
    return etree.fromstring(f'<config xmlns="{NC}">{"".join(parts)}</config>')


def example(name: str) -> str:
    return (DATA / f"{name}.xml").read_text()


TEMPLATES = ("<ike-policy-template><name>i</name><ike-proposal><id>1</id>"
             "<enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha256</auth-alg>"
             "<dh-group>modp2048</dh-group></ike-proposal></ike-policy-template>"
             "<ipsec-policy-template><name>t</name><esp-proposal><id>1</id>"
             "<enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha256</auth-alg></esp-proposal>"
             "</ipsec-policy-template>")


def vpn(name: str, inner: str) -> str:
    return (f"<vpn><name>{name}</name><ike-policy><template>i</template></ike-policy>"
            f"<ipsec-policy><template>t</template></ipsec-policy>{inner}</vpn>")


def native(body: str) -> str:
    return f'<ike xmlns="{IPNF}">{TEMPLATES}{body}</ike>'


def refused(tmp_path: Path, *parts: str) -> list:
    with pytest.raises(RpcError) as e:
        datastores(tmp_path).edit("running", config(*parts), sid=1)
    return e.value.errors


def test_gateway_to_gateway_example_resolves_to_one_vpn_and_the_pad_keys(
        tmp_path: Path) -> None:
    ds = datastores(tmp_path)
    ds.edit("running", config(example("ike_g2g_a")), sid=1)
    eff = resolve(ds.config)
    assert eff.refusals == ()
    (vpn,) = eff.vpns.values()
    assert vpn.name == "Security_GW_A-Security_GW_B"
    assert (vpn.local_address, vpn.remote_address) == ("198.51.100.1", "198.51.100.2")
    assert (vpn.local_id, vpn.remote_id) == ("198.51.100.1", "198.51.100.2")
    conn = conn_for(vpn)
    # IKE: AES-CBC-128 (12), HMAC-SHA2-512 (14) and its PRF, MODP 2048 (14)
    assert conn["proposals"] == ["aes128-sha512-prfsha512-modp2048"]
    assert (conn["rekey_time"], conn["reauth_time"], conn["over_time"]) == ("60s", "120s",
                                                                           "3600s")
    assert conn["local"] == {"auth": "psk", "id": "198.51.100.1"}
    assert conn["fragmentation"] == "no"
    child = conn["children"]["ipsec-policy-1"]
    # ESP: AES-CBC-128 then 3DES, HMAC-SHA2-256 (12), PFS with MODP 2048 (fs-groups 14)
    assert child["esp_proposals"] == ["aes128-3des-sha256-modp2048"]
    assert (child["local_ts"], child["remote_ts"]) == (["192.168.0.0/24"], ["192.168.99.0/24"])
    assert (child["mode"], child["start_action"]) == ("tunnel", "start")
    assert (child["rekey_time"], child["life_time"]) == ("300s", "600s")
    assert (child["rekey_bytes"], child["life_bytes"]) == ("1000000", "2000000")
    assert child["replay_window"] == "64"
    keys = {k.name: k for k in eff.psks.values()}
    assert set(keys) == {"i2nsf-pad/Security_GW_A", "i2nsf-pad/Security_GW_B"}
    assert bytes(shared_for(keys["i2nsf-pad/Security_GW_B"])["data"]) == b"jnrok-secret-012"
    assert keys["i2nsf-pad/Security_GW_B"].ids == ("198.51.100.2",)


def test_host_to_host_example_resolves_to_host_selectors(tmp_path: Path) -> None:
    ds = datastores(tmp_path)
    ds.edit("running", config(example("ike_h2h_b")), sid=1)
    (vpn,) = resolve(ds.config).vpns.values()
    assert vpn.name == "Host_A-Host_B" and vpn.local_address == "198.51.100.2"
    (sp,) = vpn.security_policies
    assert (sp.local_ts.subnet, sp.remote_ts.subnet) == (("192.168.99.1/32",),
                                                         ("192.168.0.1/32",))


def test_both_models_side_by_side(tmp_path: Path) -> None:
    """A native VPN and a conn-entry with another name, peer and selectors: both resolved."""
    ds = datastores(tmp_path)
    ds.edit("running", config(example("ike_g2g_a"), native(vpn(
        "other", "<remote-address>203.0.113.9</remote-address>"
                 "<security-policy><name>p</name></security-policy>"))), sid=1)
    assert set(resolve(ds.config).vpns) == {"other", "Security_GW_A-Security_GW_B"}


def test_a_conn_entry_named_like_a_native_vpn_is_refused(tmp_path: Path) -> None:
    (e,) = refused(tmp_path, example("ike_g2g_a"), native(
        vpn("Security_GW_A-Security_GW_B", "<disabled>true</disabled>")))
    assert (e.tag, e.app_tag) == ("invalid-value", CLASH), e
    assert e.path == CONN.format("Security_GW_A-Security_GW_B") + "/ietf-i2nsf-ike:name"
    assert "name of a vpn of ipsec-nf" in e.message


def test_a_conn_entry_with_a_native_vpns_peer_and_selectors_is_refused(tmp_path: Path) -> None:
    (e,) = refused(tmp_path, example("ike_g2g_a"), native(vpn(
        "site-b", "<remote-address>198.51.100.2</remote-address>"
        "<security-policy><name>p</name><local-ts><subnet>192.168.0.0/24</subnet></local-ts>"
        "<remote-ts><subnet>192.168.99.0/24</subnet></remote-ts></security-policy>")))
    assert (e.app_tag, e.path) == (CLASH, CONN.format("Security_GW_A-Security_GW_B")), e
    assert "'site-b'" in e.message and "198.51.100.2" in e.message


def test_the_clash_is_also_found_when_only_the_native_vpn_changes(tmp_path: Path) -> None:
    """A native VPN edit is validated alone (a bulk slice): the conn-entries are in it."""
    ds = datastores(tmp_path)
    ds.edit("running", config(example("ike_g2g_a"), native("")), sid=1)
    with pytest.raises(RpcError) as e:
        ds.edit("running", config(native(vpn("Security_GW_A-Security_GW_B",
                                             "<disabled>true</disabled>"))), sid=1)
    assert e.value.errors[0].app_tag == CLASH


def test_an_unknown_transform_id_is_refused_at_its_entry(tmp_path: Path) -> None:
    xml = example("ike_g2g_a").replace("<algorithm-type>3</algorithm-type>",
                                       "<algorithm-type>11</algorithm-type>")
    (e,) = refused(tmp_path, xml)
    assert e.app_tag == UNSUPPORTED and "encryption transform 11" in e.message
    assert e.path.endswith("/ietf-i2nsf-ike:esp-algorithms/"
                           "ietf-i2nsf-ike:encryption[ietf-i2nsf-ike:id='2']"), e


def test_what_the_backend_cannot_do_points_at_the_conn_entry(tmp_path: Path) -> None:
    """ESN on user-space ESP: the backend's refusal, located at the conn-entry."""
    xml = example("ike_g2g_a").replace("<ext-seq-num>false", "<ext-seq-num>true")
    (e,) = refused(tmp_path, xml)
    assert "ESN" in e.message and e.path == CONN.format("Security_GW_A-Security_GW_B"), e
    ds = datastores(tmp_path / "netlink", "kernel-netlink")
    ds.edit("running", config(xml), sid=1)  # kernel ESP has extended sequence numbers


def test_certificates_are_not_carried_out_yet(tmp_path: Path) -> None:
    xml = example("ike_g2g_a").replace(
        "<auth-method>pre-shared</auth-method>\n        <pre-shared>\n          <secret>"
        "6a:6e:72:6f:6b:2d:73:65:63:72:65:74:2d:30:31:32</secret>\n        </pre-shared>",
        "<auth-method>digital-signature</auth-method>", 1)
    (e,) = refused(tmp_path, xml)
    assert "only pre-shared" in e.message
    assert e.path == ("/ietf-i2nsf-ike:ipsec-ike/ietf-i2nsf-ike:pad/ietf-i2nsf-ike:pad-entry"
                      "[ietf-i2nsf-ike:name='Security_GW_A']/ietf-i2nsf-ike:peer-authentication"
                      "/ietf-i2nsf-ike:auth-method"), e


IKELESS_SA = """
<ipsec-ikeless xmlns="urn:ietf:params:xml:ns:yang:ietf-i2nsf-ikeless">
  <sad><sad-entry><name>out/1</name><reqid>1</reqid>
    <ipsec-sa-config><spi>34501</spi>
      <traffic-selector><local-prefix>192.168.0.0/24</local-prefix>
        <remote-prefix>192.168.99.0/24</remote-prefix></traffic-selector>
      <mode>tunnel</mode>
      <esp-sa><encryption><encryption-algorithm>12</encryption-algorithm>
        <key>01:23:45:67:89:23:45:67:01:23:45:67:89:23:45:67</key></encryption>
        <integrity><key>{}</key></integrity></esp-sa>
      <tunnel><local>198.51.100.1</local><remote>198.51.100.2</remote></tunnel>
    </ipsec-sa-config></sad-entry></sad>
</ipsec-ikeless>""".format(":".join(["23"] * 32))


def test_the_ikeless_case_is_refused_on_user_space_esp(tmp_path: Path) -> None:
    """kernel-libipsec has no kernel SAD (tests/unit/nf/test_i2nsf_ikeless.py: the rest)."""
    from tools.backends import backend_checks
    schema = Schema()
    schema.parse_config(IKELESS_SA).free()  # valid against the module
    ds = datastores(tmp_path)
    ds.checks.extend(backend_checks(DATAPLANES["kernel-libipsec"]))
    with pytest.raises(RpcError) as err:
        ds.edit("running", config(IKELESS_SA), sid=1)
    (e,) = err.value.errors
    assert e.app_tag == UNSUPPORTED and "needs kernel ESP" in e.message, e
    assert e.path == ("/ietf-i2nsf-ikeless:ipsec-ikeless/ietf-i2nsf-ikeless:sad/"
                      "ietf-i2nsf-ikeless:sad-entry[ietf-i2nsf-ikeless:name='out/1']")
    with pytest.raises(RpcError):
        ds.edit("candidate", config(IKELESS_SA), sid=1)  # refused at edit time too
    assert "ipsec-ikeless" not in ds.config


def test_the_modules_are_announced() -> None:
    from northbound.monitoring import yang_library
    from northbound.ops import capabilities
    schema = Schema()
    caps = capabilities(schema)
    for m in ("ietf-i2nsf-ikec", "ietf-i2nsf-ike", "ietf-i2nsf-ikeless"):
        assert any(f"module={m}&revision=2021-07-14" in c for c in caps), m
    text = b"".join(etree.tostring(e) for e in yang_library(schema)).decode()
    for m in ("ietf-i2nsf-ikec", "ietf-i2nsf-ike", "ietf-i2nsf-ikeless"):
        assert f"<name>{m}</name>" in text


def test_the_pad_secrets_are_hidden_from_a_non_admin_reader() -> None:
    """nacm:default-deny-all on pre-shared/secret: read-default permit does not show it."""
    from nf.nacm import Access, parse_policy, prune_unreadable
    schema = Schema()
    acm = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
    pad = etree.fromstring(example("ike_g2g_a").encode())
    policy = parse_policy(etree.fromstring(
        f'<config xmlns="{NC}"><nacm xmlns="{acm}"><read-default>permit</read-default>'
        "</nacm></config>"))
    (seen,) = prune_unreadable(Access(policy, "olga", ["ops"]), [pad], schema.top)
    ns = {"i": IKE_NS}
    assert seen.xpath("//i:pad-entry/i:name/text()", namespaces=ns) == ["Security_GW_A",
                                                                        "Security_GW_B"]
    assert seen.xpath("//i:secret", namespaces=ns) == []
    assert len(etree.fromstring(example("ike_g2g_a").encode()).xpath(
        "//i:secret", namespaces=ns)) == 2
