"""The common site-to-site options, from the model to what a real charon holds and does.

Each config goes the whole way: XML validated by the datastores (libyang, the consistency
checks and the backend's), templates resolved, the load-conn payload built by the southbound,
loaded into charon; then ``list-conns`` / ``list-sas``, charon's log and traffic tell what
charon made of it.

Needs root and ``ip netns`` (CI runs as root): fails loudly, never skips, when unusable.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from nf.datastore import Datastores
from nf.effective import EffectiveConfig, Vpn
from nf.errors import RpcError
from nf.schema import Schema
from nf.templates import resolve
from southbound.charon import CharonProcess
from southbound.charon_backend import DATAPLANES, refusals
from southbound.convert import conn_for, shared_for
from southbound.vici_client import ViciClient
from tests.integration.southbound.test_charon_limits import charon  # noqa: F401 - fixture
from tests.integration.southbound.test_charon_pair import PSK, netns_pair  # noqa: F401
from tests.integration.southbound.test_dataplane_limits import enums, leaves
from tests.support import sh

pytestmark = pytest.mark.e2e

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
IPNF = "urn:ipsec-nf:yang:ipsec-nf"
TEMPLATES = """
<ike-policy-template><name>ike</name><description>office IKE</description>
  <ike-proposal><id>1</id><description>the only one</description><enc-alg>aes128-cbc</enc-alg>
    <auth-alg>hmac-sha256</auth-alg><dh-group>modp2048</dh-group></ike-proposal>
</ike-policy-template>
<ipsec-policy-template><name>esp</name><description>office ESP</description>
  <esp-proposal><id>1</id><enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha256</auth-alg>
  </esp-proposal>
</ipsec-policy-template>
"""


def config(body: str) -> etree._Element:
    """An edit-config ``<config>`` with the templates and ``body`` inside ``<ike>``."""
    return etree.fromstring(f'<config xmlns="{NC}"><ike xmlns="{IPNF}">{TEMPLATES}{body}'
                            "</ike></config>")


def vpn_xml(name: str, inner: str, ike: str = "", ipsec: str = "") -> str:
    return (f"<vpn><name>{name}</name><ike-policy><template>ike</template>{ike}</ike-policy>"
            f"<ipsec-policy><template>esp</template>{ipsec}</ipsec-policy>{inner}</vpn>")


def datastores(tmp_path: Path, dataplane: str = "kernel-libipsec") -> Datastores:
    """Datastores with the checks the server runs for ``dataplane``."""
    ds = Datastores(Schema(), tmp_path / "ds")
    ds.checks.append(lambda eff: refusals(DATAPLANES[dataplane], eff))
    return ds


def effective(tmp_path: Path, body: str, dataplane: str = "kernel-libipsec") -> EffectiveConfig:
    ds = datastores(tmp_path, dataplane)
    ds.edit("running", config(body), sid=1)
    return resolve(ds.config)


def refused(tmp_path: Path, body: str) -> list[Any]:
    with pytest.raises(RpcError) as e:
        datastores(tmp_path).edit("running", config(body), sid=1)
    return e.value.errors


def listed(c: ViciClient, name: str) -> dict[str, Any]:
    (entry,) = c.list_conns(name)
    return entry[name]


def text(values: Any) -> list[str]:
    return [v.decode() for v in values]


OPTIONS = vpn_xml("many", """
  <description>to the branch</description>
  <local-address>192.0.2.1</local-address><remote-address>gw.example.net</remote-address>
  <remote-port>4501</remote-port>
  <security-policy><name>web</name><description>web servers</description>
    <priority>1234</priority>
    <local-ts><subnet>10.0.0.0/24</subnet><subnet>10.0.1.1-10.0.1.9</subnet>
      <subnet>2001:db8::/64</subnet><subnet>2001:db8:1::7</subnet>
      <protocol>tcp</protocol><port>1000-2000</port></local-ts>
    <remote-ts><subnet>10.1.0.0/24</subnet><protocol>17</protocol><port>53</port></remote-ts>
  </security-policy>""", ike="<fragmentation>no</fragmentation><over-time>10m</over-time>"
                             "<rand-time>0s</rand-time>",
    ipsec="<life-time>2h</life-time><rand-time>5m</rand-time><life-bytes>2000000</life-bytes>"
          "<rekey-bytes>1000000</rekey-bytes><life-packets>3000</life-packets>"
          "<rekey-packets>2000</rekey-packets><rand-packets>10</rand-packets>")
IKEV1 = vpn_xml("v1", "<remote-address>198.51.100.9</remote-address>"
                      "<security-policy><name>a</name></security-policy>",
                ike="<version>1</version><dpd-delay>30s</dpd-delay><dpd-timeout>90s</dpd-timeout>"
                    "<unique-sa>never</unique-sa><send-initial-contact>false"
                    "</send-initial-contact>")
RESPONDER = vpn_xml("any", "<remote-address>%any</remote-address>"
                           "<security-policy><name>resp</name></security-policy>",
                    ipsec="<start-action>start</start-action>")
PASSIVE = vpn_xml("quiet", "<remote-address>198.51.100.9</remote-address><passive>true</passive>"
                           "<security-policy><name>q</name></security-policy>"
                           "<security-policy><name>shunt</name><action>bypass</action>"
                           "<local-ts><subnet>10.9.0.0/16</subnet></local-ts>"
                           "<remote-ts><subnet>10.8.0.0/16</subnet></remote-ts>"
                           "</security-policy>",
                  ipsec="<start-action>start</start-action><close-action>start</close-action>")
OFF = vpn_xml("off", "<disabled>true</disabled><remote-address>198.51.100.9</remote-address>"
                     "<security-policy><name>a</name></security-policy>")


def test_options_are_what_charon_holds(charon: CharonProcess,  # noqa: F811
                                       tmp_path: Path) -> None:
    eff = effective(tmp_path, OPTIONS + IKEV1 + RESPONDER + PASSIVE + OFF)
    assert set(eff.vpns) == {"many", "v1", "any", "quiet"}, "a disabled VPN is not loaded"
    with ViciClient(charon.socket_path) as c:
        for v in eff.vpns.values():
            c.load_conn(v.name, conn_for(v, trap_as_start=True))
        assert c.get_conns() == set(eff.vpns)
        many = listed(c, "many")
        assert text(many["remote_addrs"]) == ["gw.example.net"]  # resolved by charon when used
        web = many["children"]["web"]
        assert web["priority"] == b"1234"
        # charon names protocols and ports from /etc/protocols and /etc/services when the host
        # has them (netbase), numbers otherwise
        local = [re.sub(r"\[6/", "[tcp/", ts) for ts in text(web["local-ts"])]
        assert local == [
            "10.0.0.0/24[tcp/1000-2000]", "10.0.1.1..10.0.1.9[tcp/1000-2000]",
            "2001:db8::/64[tcp/1000-2000]", "2001:db8:1::7/128[tcp/1000-2000]"]
        (remote,) = text(web["remote-ts"])
        assert re.fullmatch(r"10\.1\.0\.0/24\[(udp|17)/(53|domain)\]", remote), remote
        assert web["rekey_bytes"] == b"1000000" and web["rekey_packets"] == b"2000"
        v1 = listed(c, "v1")
        assert v1["version"] == b"IKEv1" and v1["dpd_timeout"] == b"90"
        assert v1["unique"] == b"UNIQUE_NEVER"
        anyone = listed(c, "any")
        assert text(anyone["remote_addrs"]) == ["%any"]
        # no peer address: responder only, whatever start-action says
        assert anyone["children"]["resp"]["close_action"] == b"none"
        quiet = listed(c, "quiet")
        assert quiet["children"]["q"]["close_action"] == b"none"
        assert quiet["children"]["q"]["dpd_action"] == b"none"  # charon shows clear as none
        assert quiet["children"]["shunt"]["mode"] == b"PASS"  # a shunt is still installed
    # nothing was initiated by the responders (charon's log says so when it tries)
    time.sleep(0.5)
    log = charon.log_tail(400)
    assert "initiating 'web'" in log and "initiating 'a'" in log  # the others did start
    assert "initiating 'resp'" not in log and "initiating 'q'" not in log, log


@pytest.mark.parametrize("body,leaf,words", [
    (vpn_xml("v", "<security-policy><name>a</name><local-ts><subnet>10.0.0.9-10.0.0.1"
                  "</subnet></local-ts></security-policy>"),
     "security-policy[name='a']/local-ts/subnet", "above the last"),
    (vpn_xml("v", "<security-policy><name>a</name><local-ts><subnet>10.0.0.1-2001:db8::1"
                  "</subnet></local-ts></security-policy>"),
     "security-policy[name='a']/local-ts/subnet", "one family"),
    (vpn_xml("v", "<security-policy><name>a</name><local-ts><protocol>tcp</protocol>"
                  "<port>2000-1000</port></local-ts></security-policy>"),
     "security-policy[name='a']/local-ts/port", "FIRST <= LAST"),
    (vpn_xml("v", "", ipsec="<rekey-time>1h</rekey-time><life-time>30m</life-time>"),
     "ipsec-policy/life-time", "must be more than rekey-time"),
    (vpn_xml("v", "", ipsec="<rekey-time>1h</rekey-time><rand-time>2h</rand-time>"),
     "ipsec-policy/rand-time", "must be less than rekey-time"),
    (vpn_xml("v", "", ipsec="<rekey-bytes>100</rekey-bytes><life-bytes>100</life-bytes>"),
     "ipsec-policy/life-bytes", "must be more than rekey-bytes"),
    (vpn_xml("v", "", ike="<dpd-timeout>60s</dpd-timeout>"),
     "ike-policy/dpd-timeout", "IKEv1 only"),
    (vpn_xml("v", "", ike="<send-initial-contact>false</send-initial-contact>"),
     "ike-policy/send-initial-contact", "unique-sa never"),
])
def test_contradictions_are_refused_with_the_leaf(tmp_path: Path, body: str, leaf: str,
                                                  words: str) -> None:
    (e,) = refused(tmp_path, body)
    assert (e.tag, e.app_tag) == ("invalid-value", "inconsistent-values"), e
    want = "/ipsec-nf:ike/ipsec-nf:vpn[ipsec-nf:name='v']/" + "/".join(
        f"ipsec-nf:{step}" for step in leaf.replace("[", "[ipsec-nf:").split("/"))
    assert e.path == want and words in e.message, e


def test_a_template_value_is_blamed_on_the_template(tmp_path: Path) -> None:
    """rekey-time from the template, life-time from the VPN: the VPN's leaf is named."""
    (e,) = refused(tmp_path, vpn_xml("v", "", ipsec="<life-time>30m</life-time>"))
    assert e.path.endswith("ipsec-nf:vpn[ipsec-nf:name='v']/ipsec-nf:ipsec-policy/"
                           "ipsec-nf:life-time"), e


def test_bad_values_are_refused_by_the_model(tmp_path: Path) -> None:
    for inner in ("<remote-address>198.51.100.300</remote-address>",
                  "<security-policy><name>a</name><local-ts><protocol>tcpx</protocol>"
                  "</local-ts></security-policy>",
                  "<security-policy><name>a</name><local-ts><port>80</port></local-ts>"
                  "</security-policy>"):
        errors = refused(tmp_path, vpn_xml("v", inner))
        assert errors and errors[0].tag in ("invalid-value", "operation-failed"), errors


def test_a_vpn_too_big_for_one_vici_message_is_refused(tmp_path: Path) -> None:
    """16 long ranges per side on 100 security policies, with 16 full ESP proposals (copied
    into every CHILD SA): within every bound of the model, but over charon's 512 KiB."""
    enc, auth, dh = (enums(t) for t in ("enc-alg", "auth-alg", "dh-group"))
    esp = "".join(f"<esp-proposal><id>{i}</id>{leaves('enc-alg', enc)}"
                  f"{leaves('auth-alg', auth)}{leaves('dh-group', dh)}</esp-proposal>"
                  for i in range(16))
    subnets = "".join(f"<subnet>ffff:ffff:ffff:ffff:ffff:ffff:ffff:{i:x}00-"
                      f"ffff:ffff:ffff:ffff:ffff:ffff:ffff:{i:x}ff</subnet>" for i in range(16))
    sps = "".join(f"<security-policy><name>p{i}</name><local-ts>{subnets}</local-ts>"
                  f"<remote-ts>{subnets}</remote-ts></security-policy>" for i in range(100))
    (e,) = refused(tmp_path, vpn_xml("big", sps, ipsec=esp))
    assert e.app_tag == "not-supported-by-backend", e
    assert e.path == "/ipsec-nf:ike/ipsec-nf:vpn[ipsec-nf:name='big']", e
    assert "over VICI's limit of 524288" in e.message, e


# ---- two gateways over IPv6: lifetimes, passive, fragmentation, selectors ------------------

A6, B6 = "2001:db8:100::1", "2001:db8:100::2"


def pair_xml(local: str, remote: str, lid: str, rid: str, lnets: tuple[str, str],
             rnets: tuple[str, str], extra: str = "", ike: str = "", ipsec: str = "") -> str:
    ts = "".join
    return vpn_xml(
        "v6", f"<local-address>{local}</local-address><remote-address>{remote}</remote-address>"
              f"<local-id>{lid}</local-id><remote-id>{rid}</remote-id>{extra}"
              "<security-policy><name>both</name>"
              f"<local-ts>{ts(f'<subnet>{n}</subnet>' for n in lnets)}</local-ts>"
              f"<remote-ts>{ts(f'<subnet>{n}</subnet>' for n in rnets)}</remote-ts>"
              "</security-policy>", ike=ike, ipsec=ipsec)


def load(c: CharonProcess, v: Vpn) -> None:
    with ViciClient(c.socket_path) as vc:
        vc.load_shared("ab", shared_for(PSK))
        vc.load_conn(v.name, conn_for(v, trap_as_start=True))


def sas(c: CharonProcess) -> list[dict[str, Any]]:
    with ViciClient(c.socket_path) as vc:
        return [sa for entry in vc.list_sas() for sa in entry.values()]


def test_ipv6_pair_by_name_with_lifetimes_passive_and_fragmentation(
        netns_pair: tuple[str, str], tmp_path: Path) -> None:  # noqa: F811
    ns_a, ns_b = netns_pair
    tag = ns_a[3:]
    for ns, dev, addr, sub in ((ns_a, f"sva{tag}", A6, "2001:db8:a::1"),
                               (ns_b, f"svb{tag}", B6, "2001:db8:b::1")):
        sh("ip", "-n", ns, "addr", "add", f"{addr}/64", "dev", dev, "nodad")
        sh("ip", "-n", ns, "addr", "add", f"{sub}/128", "dev", "lo")
    nets_a, nets_b = ("192.168.0.0/24", "2001:db8:a::/64"), ("192.168.99.0/24", "2001:db8:b::/64")
    # A only responds (passive), with hard lifetimes, no jitter and no fragmentation; B
    # initiates
    eff_a = effective(tmp_path / "a", pair_xml(
        A6, B6, "secgwa.example.net", "secgwb.example.net", nets_a, nets_b,
        extra="<passive>true</passive>",
        ike="<rand-time>0s</rand-time><fragmentation>no</fragmentation>",
        ipsec="<start-action>start</start-action><rekey-time>1h</rekey-time>"
              "<life-time>2h</life-time><rand-time>0s</rand-time>"))
    # B knows A by name: `ip netns exec` gives B's charon /etc/netns/<ns>/hosts as /etc/hosts
    hosts = Path("/etc/netns") / ns_b
    hosts.mkdir(parents=True, exist_ok=True)
    (hosts / "hosts").write_text(f"{A6} gw-a.example.net\n")
    eff_b = effective(tmp_path / "b", pair_xml(
        B6, "gw-a.example.net", "secgwb.example.net", "secgwa.example.net", nets_b, nets_a,
        ipsec="<start-action>none</start-action>"))
    a = CharonProcess(tmp_path / "ca", netns=ns_a)
    b = CharonProcess(tmp_path / "cb", netns=ns_b)
    try:
        a.start()
        b.start()
        load(a, eff_a.vpns["v6"])
        time.sleep(2)  # a start-action start would have initiated by now
        assert sas(a) == [] and "initiating" not in a.log_tail(200), a.log_tail(200)
        load(b, eff_b.vpns["v6"])
        with ViciClient(b.socket_path, timeout=15) as vc:
            vc.initiate(child="both", ike="v6")
        (sa,) = sas(a)
        assert sa["state"] == b"ESTABLISHED" and sa.get("initiator") != b"yes", sa
        assert sa["remote-host"].decode() == B6
        (sa_b,) = sas(b)  # B initiated to gw-a.example.net: charon resolved it to A
        assert sa_b["remote-host"].decode() == A6 and sa_b["initiator"] == b"yes", sa_b
        # ike rand-time 0: the IKE rekey is exactly rekey-time (4h) away, not up to over-time
        assert 14390 <= int(sa["rekey-time"]) <= 14400, sa
        (child,) = sa["child-sas"].values()
        assert 3590 <= int(child["rekey-time"]) <= 3600, child
        assert 7190 <= int(child["life-time"]) <= 7200, child
        assert set(map(bytes.decode, child["local-ts"])) == set(nets_a)
        assert set(map(bytes.decode, child["remote-ts"])) == set(nets_b)
        for family, src, dst in (("-4", "192.168.0.1", "192.168.99.1"),
                                 ("-6", "2001:db8:a::1", "2001:db8:b::1")):
            res = sh("ip", "netns", "exec", ns_a, "ping", family, "-c", "3", "-i", "0.2", "-W",
                     "2", "-I", src, dst, check=False)
            assert res.returncode == 0, f"{family} through the tunnel:\n{res.stdout}"
        log_a, log_b = a.log_tail(400), b.log_tail(400)
        init_req = next(ln for ln in log_b.splitlines() if "generating IKE_SA_INIT request" in ln)
        init_resp = next(ln for ln in log_a.splitlines()
                         if "generating IKE_SA_INIT response" in ln)
        # B offers fragmentation (the default, yes), A does not take it (no)
        assert "FRAG_SUP" in init_req and "FRAG_SUP" not in init_resp, (init_req, init_resp)
    except BaseException:
        print(a.log_tail(80), b.log_tail(80))
        raise
    finally:
        a.stop()
        b.stop()
        shutil.rmtree(hosts, ignore_errors=True)
