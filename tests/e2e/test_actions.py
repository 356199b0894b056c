"""End to end, the SA actions do what they say and the state shows it: initiate, rekey,
terminate, clear and reset-counters through NETCONF on the two-site lab (two real
`ipsec-nf serve` with real charons in network namespaces).

Needs root and `ip netns` (CI runs as root); it fails, never skips, when they are missing.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import vici
from lxml import etree
from ncclient.operations import RPCError
from ncclient.xml_ import to_ele
from vici.exception import CommandException

from tests.support import wait_for
from tools.lab import Lab, Site, running, site_config

NS = {"i": "urn:ipsec-nf:yang:ipsec-nf"}
IPNF = NS["i"]
VPN = "siteA-siteB"
pytestmark = pytest.mark.e2e


def config(s: Site) -> str:
    """The lab's VPN, brought up only by the actions (no start, no restart on close)."""
    return site_config(s, start_action="none").replace(
        "<start-action>none</start-action>",
        "<start-action>none</start-action><close-action>none</close-action>")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running(tmp_path_factory.mktemp("lab"), serve_args=("--sync-interval", "2")) as lab:
        for s in lab.sites:
            with lab.connect(s) as m:
                m.edit_config(target="candidate", config=config(s))
                m.commit()
                out = call(m, f'<wait-applied xmlns="{IPNF}"><timeout>20</timeout>'
                              "</wait-applied>")
                assert out.findtext("i:result", namespaces=NS) == "applied", \
                    etree.tostring(out)
        yield lab


def call(m, body: str) -> etree._Element:
    return etree.fromstring(m.dispatch(to_ele(body)).xml.encode())


def action(m, name: str, **leaves: object) -> etree._Element:
    inner = "".join(f"<{k.replace('_', '-')}>{v}</{k.replace('_', '-')}>"
                    for k, v in leaves.items())
    return call(m, f'<{name} xmlns="{IPNF}">{inner}</{name}>')


def refused(m, name: str, **leaves: object) -> RPCError:
    with pytest.raises(RPCError) as info:
        action(m, name, **leaves)
    return info.value


def ids(out: etree._Element, leaf: str) -> list[int]:
    return [int(x) for x in out.xpath(f"i:{leaf}/text()", namespaces=NS)]


def sas(m) -> list[etree._Element]:
    state = etree.fromstring(m.get(filter=("subtree", f'<ike xmlns="{IPNF}"><ike-sa/></ike>'))
                             .data_xml.encode())
    return state.xpath("//i:ike-sa", namespaces=NS)


def child(m, uid: int) -> etree._Element | None:
    for sa in sas(m):
        for c in sa.xpath("i:child-sa", namespaces=NS):
            if int(c.findtext("i:unique-id", namespaces=NS)) == uid:
                return c
    return None


def ike_ids(m) -> list[int]:
    return [int(sa.findtext("i:unique-id", namespaces=NS)) for sa in sas(m)]


def counters(s: Site, query: dict[str, str]) -> dict[str, dict[str, int]]:
    """charon's get-counters: ``{}`` the global ones (under ""), ``{"name": VPN}`` one
    connection's, ``{"all": "yes"}`` every connection's; {} for a connection without any
    (charon drops a connection's counters when they are reset)."""
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(str(s.state_dir / "charon" / "charon.vici"))
    try:
        reply = vici.Session(sock).get_counters(query)
    except CommandException as e:  # a connection's counters reset: charon dropped them
        assert "no counters found" in str(e), e
        return {}
    finally:
        sock.close()
    return {k.decode() if isinstance(k, bytes) else k: {c: int(v) for c, v in vals.items()}
            for k, vals in reply["counters"].items()}


def total(found: dict[str, dict[str, int]]) -> int:
    return sum(sum(v.values()) for v in found.values())


def up(lab: Lab, m) -> tuple[int, int]:
    """Initiate the VPN from A; the IKE and CHILD SA ids it answers."""
    out = action(m, "initiate", vpn=VPN, timeout=20)
    (ike,), (chd,) = ids(out, "ike-sa"), ids(out, "child-sa")
    return ike, chd


def test_initiate_brings_the_tunnel_up_and_the_state_shows_it(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        assert sas(m) == []
        assert lab.ping(lab.a, 1).returncode != 0
        ike, chd = up(lab, m)
        assert ike in ike_ids(m)
        c = child(m, chd)
        assert c is not None and c.findtext("i:state", namespaces=NS) == "installed"
        assert c.findtext("i:name", namespaces=NS) == "trunk"
        assert lab.ping(lab.a, 2).returncode == 0
        # again: already up, nothing new is negotiated, the same SAs are answered
        assert up(lab, m) == (ike, chd)


def test_rekey_of_the_child_sa_gives_new_spis(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        ike, chd = up(lab, m)
        old = child(m, chd)
        spis = (old.findtext("i:spi-in", namespaces=NS), old.findtext("i:spi-out", namespaces=NS))
        out = action(m, "rekey", child_sa=chd, timeout=20)
        (new,) = ids(out, "child-sa")
        assert new != chd
        c = child(m, new)
        assert c is not None and c.findtext("i:state", namespaces=NS) == "installed"
        new_spis = (c.findtext("i:spi-in", namespaces=NS), c.findtext("i:spi-out", namespaces=NS))
        assert new_spis[0] not in spis and new_spis[1] not in spis, (spis, new_spis)
        assert lab.ping(lab.a, 2).returncode == 0


def test_rekey_of_the_ike_sa_by_vpn_gives_a_new_ike_sa(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        ike, _ = up(lab, m)
        out = action(m, "rekey", vpn=VPN, timeout=20)
        (new,) = ids(out, "ike-sa")
        assert new != ike
        assert wait_for(lambda: ike_ids(m) == [new], timeout=10), ike_ids(m)
        assert lab.ping(lab.a, 2).returncode == 0


def test_terminate_by_unique_id_and_the_state_shows_it_gone(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        ike, chd = up(lab, m)
        out = action(m, "terminate", child_sa=chd, timeout=10)
        assert ids(out, "child-sa") == [chd]
        assert child(m, chd) is None and ike in ike_ids(m)
        out = action(m, "terminate", ike_sa=ike, timeout=10)
        assert ids(out, "ike-sa") == [ike]
        assert ike not in ike_ids(m)
        assert lab.ping(lab.a, 1).returncode != 0
    with lab.connect(lab.b) as m:  # the peer was told
        assert wait_for(lambda: sas(m) == [], timeout=10)


def test_clear_removes_every_sa(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        up(lab, m)
        out = action(m, "clear", timeout=10)
        assert len(ids(out, "ike-sa")) == 1
        assert sas(m) == []
        ike, _ = up(lab, m)
        assert ids(action(m, "clear", vpn=VPN), "ike-sa") == [ike]
        assert sas(m) == []
        assert action(m, "clear").find("{urn:ietf:params:xml:ns:netconf:base:1.0}ok") \
            is not None


def test_reset_counters_sets_charons_counters_to_zero(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        up(lab, m)
        action(m, "rekey", vpn=VPN, timeout=20)
        assert counters(lab.a, {"name": VPN})[VPN]["ike-rekey-init"] >= 1
        assert total(counters(lab.a, {})) > 0
        action(m, "reset-counters", vpn=VPN)
        assert total(counters(lab.a, {"name": VPN})) == 0
        assert total(counters(lab.a, {})) > 0  # only the VPN's
        action(m, "rekey", vpn=VPN, timeout=20)
        assert total(counters(lab.a, {"all": "yes"})) > 0
        action(m, "reset-counters")
        assert total(counters(lab.a, {})) == 0
        assert total(counters(lab.a, {"all": "yes"})) == 0
        action(m, "clear")


def test_unknown_vpn_and_ids_are_invalid_value(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        e = refused(m, "initiate", vpn="no-such-vpn")
        assert e.tag == "invalid-value" and "no VPN named 'no-such-vpn'" in e.message
        assert e.path.strip().endswith(":initiate/ipsec-nf:vpn")
        e = refused(m, "terminate", ike_sa=424242)
        assert e.tag == "invalid-value" and "424242" in e.message
        e = refused(m, "rekey", child_sa=424242)
        assert e.tag == "invalid-value"
        e = refused(m, "initiate", vpn=VPN, security_policy="nope")
        assert e.tag == "invalid-value" and e.path.strip().endswith("security-policy")


def test_initiate_towards_a_silent_peer_fails_with_charons_reason_in_time(lab: Lab) -> None:
    silent = config(lab.a).replace(
        f"<name>{VPN}</name>", "<name>silent</name>").replace(
        f"<remote-address>{lab.a.peer_wan}</remote-address>",
        "<remote-address>198.51.100.77</remote-address>")
    opts = (f'<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><ike xmlns="{IPNF}">'
            "<global-options><retransmit-tries>1</retransmit-tries>"
            "<retransmit-timeout>1</retransmit-timeout></global-options></ike></config>")
    with lab.connect(lab.a) as m:
        m.edit_config(target="candidate", config=silent)
        m.edit_config(target="candidate", config=opts)
        m.commit()
        out = call(m, f'<wait-applied xmlns="{IPNF}"><timeout>20</timeout></wait-applied>')
        assert out.findtext("i:result", namespaces=NS) == "applied", etree.tostring(out)
        started = time.monotonic()
        e = refused(m, "initiate", vpn="silent", timeout=15)
        took = time.monotonic() - started
        assert took < 15, took
        assert e.tag == "operation-failed", e.message
        assert "giving up after 1 retransmits" in e.message, e.message
        # a peer slower than the timeout: charon's own timeout message
        started = time.monotonic()
        e = refused(m, "initiate", vpn="silent", timeout=1)
        assert time.monotonic() - started < 4
        assert e.tag == "operation-failed" and e.message, e.message
        # a disabled VPN is not in charon: refused, saying so
        m.edit_config(target="candidate", config=(
            f'<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><ike xmlns="{IPNF}">'
            "<vpn><name>silent</name><disabled>true</disabled></vpn></ike></config>"))
        m.commit()
        e = refused(m, "initiate", vpn="silent")
        assert e.tag == "operation-failed" and "'silent' is disabled" in e.message, e.message
        assert e.app_tag == "vpn-not-ready"
