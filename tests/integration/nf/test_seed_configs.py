"""The products' site-to-site examples, translated into our model, load as they are.

``tests/data/seeds/`` holds one site-to-site example of each product's manual (vRouter's use
case, RouterOS v7's "Site to Site IPsec (IKEv1) tunnel", iked.conf(5)'s pre-shared key example),
each a NETCONF ``<config>`` whose head comment cites the section and lists what did not
translate. Each file goes through edit-config into the datastores with the checks the server
runs (libyang, the consistency checks, the backend's refusals: ``tools.backends``), so an
unknown element, a bad value or a refusal fails it; its templates are resolved and a few
effective values show the product's options arrived. Then every VPN and key is given to a real
charon (load-conn / load-shared), which must take them all. ``docs/mapping.md`` maps each
product's option names to ours.

Needs root and ``ip netns`` for the charon part (CI runs as root): fails loudly, never skips.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from nf.datastore import Datastores
from nf.effective import EffectiveConfig
from nf.errors import RpcError
from nf.schema import Schema
from nf.templates import resolve
from southbound.charon import CharonProcess
from southbound.charon_conf import settings
from southbound.convert import conn_for, shared_for
from southbound.vici_client import ViciClient
from tests.integration.southbound.test_charon_limits import charon  # noqa: F401 - fixture
from tools.backends import backend_checks, dataplane

SEEDS = Path(__file__).resolve().parents[2] / "data" / "seeds"
FILES = ("vrouter_site_to_site.xml", "routeros_site_to_site.xml", "iked_site_to_site.xml")
# the data plane each file is meant for: vRouter's use case has an AH proposal and the manual's
# ESN proposal, which only a kernel with ESP/AH carries (kernel-libipsec refuses both)
BACKEND = {"vrouter_site_to_site.xml": "kernel-netlink",
           "routeros_site_to_site.xml": "kernel-libipsec",
           "iked_site_to_site.xml": "kernel-libipsec"}


def datastores(tmp_path: Path, backend: str) -> Datastores:
    """Datastores with the checks ``ipsec-nf serve --backend BACKEND`` runs."""
    ds = Datastores(Schema(), tmp_path / f"ds-{backend}")
    ds.checks.extend(backend_checks(dataplane(backend)))
    return ds


def load(tmp_path: Path, name: str, backend: str | None = None) -> EffectiveConfig:
    """edit-config the seed file into running; its effective config."""
    ds = datastores(tmp_path, backend or BACKEND[name])
    ds.edit("running", etree.parse(str(SEEDS / name)).getroot(), sid=1)
    return resolve(ds.config)


def listed(c: ViciClient, name: str) -> dict[str, Any]:
    (entry,) = c.list_conns(name)
    return entry[name]


def text(values: Any) -> list[str]:
    return [v.decode() for v in values]


@pytest.mark.parametrize("name", FILES)
def test_each_seed_loads_without_an_error(tmp_path: Path, name: str) -> None:
    eff = load(tmp_path, name)
    assert len(eff.vpns) == 1 and len(eff.psks) >= 1, eff
    # the head comment cites the manual and says what did not translate
    head = (SEEDS / name).read_text().split("-->", 1)[0]
    assert "No counterpart here" in head and "seed:" in head, name


@pytest.mark.parametrize("name", ["routeros_site_to_site.xml", "iked_site_to_site.xml"])
def test_seeds_for_kernel_libipsec_load_with_kernel_netlink_too(tmp_path: Path,
                                                                 name: str) -> None:
    load(tmp_path, name, "kernel-netlink")


def test_vrouter_seed_on_kernel_libipsec_is_refused_only_for_esn(tmp_path: Path) -> None:
    with pytest.raises(RpcError) as e:
        load(tmp_path, "vrouter_site_to_site.xml", "kernel-libipsec")
    where = "/ipsec-nf:ike/ipsec-nf:ipsec-policy-template[ipsec-nf:name='ipsectemp1']/"
    # (the unused AH proposal is accepted: no security policy has action ah)
    assert sorted((x.app_tag, x.path) for x in e.value.errors) == [
        ("not-supported-by-backend", where + f"ipsec-nf:esp-proposal[ipsec-nf:id='{i}']/"
                                             "ipsec-nf:esn") for i in (2, 3)], e.value.errors


def test_vrouter_values(tmp_path: Path) -> None:
    eff = load(tmp_path, "vrouter_site_to_site.xml")
    vpn = eff.vpns["siteA-siteB"]
    (ike,) = vpn.ike.ike_proposals
    assert (ike.enc_alg, ike.auth_alg, ike.prf_alg, ike.dh_group) == (
        ("aes128-cbc",), ("hmac-sha512",), ("hmac-sha512",), ("modp2048",))
    # the VPN's overrides over the template's defaults (vRouter's own defaults, kept)
    assert (vpn.ike.keying_tries, vpn.ike.mobike, vpn.ike.rekey_time) == (10, True, "4h")
    assert (vpn.ipsec.replay_window, vpn.ipsec.start_action, vpn.ipsec.rekey_time) == (
        4096, "trap", "1h")
    assert [p.esn for p in vpn.ipsec.esp_proposals] == [(False,), (True,), (True, False)]
    assert [p.auth_alg for p in vpn.ipsec.ah_proposals] == [("hmac-sha512",)]
    # global-options and logging, as charon's strongswan.conf will have them
    conf = settings(eff.global_options)
    assert (conf["retransmit_tries"], conf["retransmit_timeout"], conf["retransmit_base"]) == (
        3, 3.0, 1.0)
    assert conf["plugins.kernel-netlink.xfrm_acq_expires"] == 60
    assert (conf["cookie_threshold"], conf["block_threshold"], conf["init_limit_half_open"]) == (
        12, 6, 100)
    assert (conf["ikesa_table_size"], conf["ikesa_table_segments"]) == (128, 16)
    assert conf["plugins.kernel-netlink.spdh_thresh.ipv4.lbits"] == 16
    assert conf["plugins.kernel-netlink.spdh_thresh.ipv6.rbits"] == 64
    assert (conf["install_routes"], conf["routing_table"], conf["prefer_best_path"]) == (
        True, 230, True)
    assert (conf["syslog.daemon.default"], conf["syslog.auth.default"],
            conf["syslog.auth.ike"]) == (0, 1, 2)


def test_routeros_values(tmp_path: Path) -> None:
    vpn = load(tmp_path, "routeros_site_to_site.xml").vpns["ike1-site2"]
    # exchange-mode main, profile lifetime 1d, dpd-interval 2m x dpd-maximum-failures 5
    assert (vpn.ike.version, vpn.ike.aggressive) == (1, False)
    assert (vpn.ike.rekey_time, vpn.ike.dpd_delay, vpn.ike.dpd_timeout) == ("1d", "2m", "10m")
    (ike,) = vpn.ike.ike_proposals
    assert (ike.enc_alg, ike.auth_alg, ike.dh_group) == (
        ("aes128-cbc",), ("hmac-sha1",), ("modp2048",))
    # proposal lifetime 30m is RouterOS's hard lifetime; its soft one (80 %) is our rekey-time
    assert (vpn.ipsec.life_time, vpn.ipsec.rekey_time) == ("30m", "24m")
    (esp,) = vpn.ipsec.esp_proposals
    assert (esp.enc_alg, esp.auth_alg, esp.dh_group) == (
        ("aes128-cbc",), ("hmac-sha1",), ("modp2048",))  # pfs-group=modp2048
    assert (vpn.passive, vpn.ipsec.start_action, vpn.ike.send_initial_contact) == (
        False, "start", True)
    (sp,) = vpn.security_policies
    assert (sp.local_ts.subnet, sp.remote_ts.subnet, sp.mode, sp.action) == (
        ("10.1.202.0/24",), ("10.1.101.0/24",), "tunnel", "esp")


def test_iked_values(tmp_path: Path) -> None:
    vpn = load(tmp_path, "iked_site_to_site.xml").vpns["big-test"]
    assert (vpn.passive, vpn.remote_address, vpn.ike.version) == (True, "%any", 2)
    assert (vpn.local_id, vpn.remote_id) == ("host.example.com", "192.0.2.254")
    flow1, flow2 = vpn.security_policies
    assert (flow1.local_ts.protocol, flow1.local_ts.port, flow1.remote_ts.port) == ("tcp", 23, 40)
    assert (flow2.local_ts.subnet, flow2.remote_ts.subnet, flow2.remote_ts.protocol) == (
        ("192.168.1.1",), ("192.168.2.2",), "tcp")
    (ike,) = vpn.ike.ike_proposals
    assert (ike.enc_alg, ike.auth_alg, ike.dh_group) == (
        ("3des-cbc",), ("hmac-sha1",), ("modp1024",))
    (esp,) = vpn.ipsec.esp_proposals
    assert (esp.enc_alg, esp.auth_alg, esp.dh_group) == (("aes128-cbc",), ("hmac-sha1",), ())


def test_charon_takes_every_seed(charon: CharonProcess, tmp_path: Path) -> None:  # noqa: F811
    effs = {name: load(tmp_path / name, name) for name in FILES}
    vpns = {v.name: v for eff in effs.values() for v in eff.vpns.values()}
    psks = {p.name: p for eff in effs.values() for p in eff.psks.values()}
    with ViciClient(charon.socket_path) as c:
        for p in psks.values():
            c.load_shared(p.name, shared_for(p))
        for v in vpns.values():
            c.load_conn(v.name, conn_for(v, trap_as_start=True))
        assert c.get_conns() == set(vpns) == {"siteA-siteB", "ike1-site2", "big-test"}
        assert c.get_shared() == set(psks) == {"siteb", "ike1-site2", "big-test"}

        vr = listed(c, "siteA-siteB")
        assert text(vr["local_addrs"]) == ["192.0.2.1"]
        assert text(vr["remote_addrs"]) == ["198.51.100.1"]
        assert vr["version"] == b"IKEv2" and vr["rekey_time"] == b"14400"
        assert vr["local-1"]["id"] == b"secgwa.example.net"
        assert vr["remote-1"]["id"] == b"secgwb.example.net"
        trunk = vr["children"]["trunk"]
        assert text(trunk["local-ts"]) == ["192.168.0.0/24"]
        assert text(trunk["remote-ts"]) == ["192.168.99.0/24"]
        assert trunk["rekey_time"] == b"3600" and trunk["mode"] == b"TUNNEL"

        ros = listed(c, "ike1-site2")
        assert ros["version"] == b"IKEv1"
        assert ros["rekey_time"] == b"86400"  # lifetime=1d
        assert ros["dpd_delay"] == b"120" and ros["dpd_timeout"] == b"600"
        child = ros["children"]["office1-office2"]
        assert child["rekey_time"] == b"1440"  # 24m: RouterOS's soft lifetime
        # list-conns does not show the hard lifetime: what charon was given
        sent = conn_for(vpns["ike1-site2"], trap_as_start=True)["children"]["office1-office2"]
        assert sent["life_time"] == "30m"

        iked = listed(c, "big-test")
        assert text(iked["remote_addrs"]) == ["%any"]
        flow1 = iked["children"]["flow-1"]
        (local,) = text(flow1["local-ts"])
        (remote,) = text(flow1["remote-ts"])
        # charon names protocols and ports from /etc/protocols and /etc/services when the
        # host has them (netbase), numbers otherwise
        assert re.fullmatch(r"10\.0\.0\.0/8\[(tcp|6)/(23|telnet)\]", local), local
        assert re.fullmatch(r"198\.51\.100\.0/24\[(tcp|6)/40\]", remote), remote
        (flow2,) = text(iked["children"]["flow-2"]["local-ts"])
        assert re.fullmatch(r"192\.168\.1\.1/32\[(tcp|6)\]", flow2), flow2
        # passive: charon never initiates it (no start, no restart on close)
        assert flow1["close_action"] == b"none"
