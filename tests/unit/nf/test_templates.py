"""Template resolution into the typed, immutable effective config (nf/templates.py)."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from nf.datastore import Datastores
from nf.effective import (
    DosProtection,
    EffectiveConfig,
    EspProposal,
    GlobalOptions,
    IkeProposal,
    PreSharedKey,
    SecurityPolicy,
    TrafficSelector,
    Vpn,
)
from nf.schema import Schema
from nf.templates import global_options, psk_entry, resolve, update

DATA = Path(__file__).resolve().parents[2] / "data"

IKE_T = {"name": "t", "ike-proposal": [{"id": 1, "enc-alg": ["aes128-cbc"],
                                        "auth-alg": ["hmac-sha256"], "dh-group": ["modp2048"]}],
         "local-auth-method": "pre-shared-key", "remote-auth-method": "pre-shared-key",
         "version": 2, "keying-tries": 1, "unique-sa": "no", "reauth-time": "0s",
         "rekey-time": "4h", "dpd-delay": "0s", "aggressive": False, "udp-encap": False,
         "mobike": False}
IPSEC_T = {"name": "p", "esp-proposal": [{"id": 1, "enc-alg": ["aes128-cbc"],
                                          "auth-alg": ["hmac-sha256"], "esn": [False]}],
           "start-action": "trap", "close-action": "trap", "dpd-action": "restart",
           "replay-window": 32, "rekey-time": "1h", "rekey-bytes": 0, "rekey-packets": 0,
           "encap-copy-dscp": True, "decap-copy-dscp": False, "encap-copy-df": True}


def vpn(name: str, **own: Any) -> dict[str, Any]:
    """A VPN entry of the config dict using templates t and p."""
    return {"name": name, "ike-policy": {"template": "t", **own.pop("ike", {})},
            "ipsec-policy": {"template": "p", **own.pop("ipsec", {})},
            "local-address": "198.51.100.1", "remote-address": "198.51.100.2",
            "security-policy": [{"name": "sp", "local-ts": {"subnet": ["10.0.0.0/24"]},
                                 "remote-ts": {"subnet": ["10.1.0.0/24"], "protocol": 6,
                                               "port": 443},
                                 "mode": "tunnel", "action": "esp"}], **own}


def config(*vpns: dict[str, Any], psks: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    """A config dict as nf/configdict.py keeps it (bulk lists keyed by name)."""
    return {"ike": {"enabled": True,
                    "global-options": {"retransmit-tries": 5, "retransmit-timeout": 4.0,
                                       "retransmit-base": 1.8, "acquire-timeout": 30,
                                       "threads": 16,
                                       "dos-protection": {"cookie-threshold": 10,
                                                          "block-threshold": 5,
                                                          "init-limit-half-open": 0}},
                    "ike-policy-template": [copy.deepcopy(IKE_T)],
                    "ipsec-policy-template": [copy.deepcopy(IPSEC_T)],
                    "vpn": {v["name"]: v for v in vpns},
                    "pre-shared-key": {p["name"]: p for p in psks}}}


def test_vpn_takes_template_leaves() -> None:
    eff = resolve(config(vpn("a")))
    v = eff.vpns["a"]
    assert isinstance(v, Vpn)
    assert (v.ike_template, v.ipsec_template) == ("t", "p")
    assert v.ike.ike_proposals == (IkeProposal(id=1, enc_alg=("aes128-cbc",),
                                               auth_alg=("hmac-sha256",),
                                               dh_group=("modp2048",)),)
    assert v.ike.version == 2 and v.ike.rekey_time == "4h" and v.ike.mobike is False
    assert v.ipsec.esp_proposals == (EspProposal(id=1, enc_alg=("aes128-cbc",),
                                                 auth_alg=("hmac-sha256",)),)
    assert v.ipsec.ah_proposals == ()
    assert v.ipsec.start_action == "trap" and v.ipsec.replay_window == 32
    assert v.security_policies == (SecurityPolicy(
        name="sp", local_ts=TrafficSelector(subnet=("10.0.0.0/24",)),
        remote_ts=TrafficSelector(subnet=("10.1.0.0/24",), protocol=6, port=443)),)
    assert v.local_id is None and v.remote_id is None


def test_leaf_override_and_proposal_list_replacement() -> None:
    own_esp = [{"id": 7, "aead-alg": ["aes128-gcm-128"], "esn": [True]}]
    v = resolve(config(vpn("a", ike={"keying-tries": 10, "mobike": True},
                           ipsec={"esp-proposal": own_esp}))).vpns["a"]
    assert v.ike.keying_tries == 10 and v.ike.mobike is True
    assert v.ike.rekey_time == "4h"  # not overridden: the template's
    assert v.ipsec.esp_proposals == (EspProposal(id=7, aead_alg=("aes128-gcm-128",), esn=(True,)),)
    assert v.ipsec.rekey_time == "1h"


def test_security_policy_defaults() -> None:
    raw = vpn("a")
    raw["security-policy"] = [{"name": "bare"}]
    (sp,) = resolve(config(raw)).vpns["a"].security_policies
    assert sp == SecurityPolicy(name="bare", local_ts=TrafficSelector(),
                                remote_ts=TrafficSelector(), mode="tunnel", action="esp")


def test_global_options_and_enabled() -> None:
    eff = resolve(config())
    assert eff.enabled is True
    assert eff.global_options == GlobalOptions(
        retransmit_tries=5, retransmit_timeout=4.0, retransmit_base=1.8, acquire_timeout=30,
        threads=16, dos_protection=DosProtection(cookie_threshold=10, block_threshold=5,
                                                 init_limit_half_open=0))
    assert global_options(None) == GlobalOptions()
    cfg = config()
    cfg["ike"]["enabled"] = False
    assert resolve(cfg).enabled is False


def test_empty() -> None:
    assert resolve({}) == EffectiveConfig.empty() == EffectiveConfig()
    empty = EffectiveConfig.empty()
    assert empty.enabled and dict(empty.vpns) == {} and dict(empty.psks) == {}
    assert empty.global_options == GlobalOptions()


def test_psk_secret_hidden() -> None:
    raw = {"name": "k", "id": ["a.example", "b.example"], "secret": "s3cr3t-value"}
    psk = psk_entry(raw)
    assert psk == PreSharedKey(name="k", ids=("a.example", "b.example"),
                               secret="s3cr3t-value")
    eff = resolve(config(psks=(raw,)))
    for text in (repr(psk), str(psk), repr(eff), repr(dict(eff.psks)), str(eff)):
        assert "s3cr3t" not in text


def test_immutable() -> None:
    eff = resolve(config(vpn("a"), psks=({"name": "k", "secret": "x"},)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        eff.enabled = False  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        eff.vpns["a"].ike.version = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        eff.vpns["b"] = eff.vpns["a"]  # type: ignore[index]
    with pytest.raises(TypeError):
        del eff.psks["k"]  # type: ignore[attr-defined]
    assert isinstance(eff.vpns["a"].security_policies, tuple)
    assert copy.deepcopy(eff) is eff
    # plain dicts given to the constructor are copied: the caller cannot change the value
    vpns = {"a": eff.vpns["a"]}
    made = EffectiveConfig(vpns=vpns)
    vpns.clear()
    assert set(made.vpns) == {"a"}


def test_values_compare_and_hash_by_value() -> None:
    a1 = resolve(config(vpn("a"))).vpns["a"]
    a2 = resolve(config(vpn("a"))).vpns["a"]
    assert a1 == a2 and hash(a1) == hash(a2) and a1 is not a2
    b = resolve(config(vpn("a", **{"local-id": "x"}))).vpns["a"]
    assert b != a1
    assert resolve(config(vpn("a"))) == resolve(config(vpn("a")))


def test_update_resolves_only_the_named_entries() -> None:
    cfg = config(vpn("a"), vpn("b"), psks=({"name": "k", "secret": "x"},))
    eff = resolve(cfg)
    cfg2 = config(vpn("a", **{"local-id": "new"}), vpn("b", **{"local-id": "ignored"}),
                  vpn("c"), psks=({"name": "k2", "secret": "y"},))
    new = update(eff, cfg2, {"a", "c"}, {"k", "k2"})
    assert new.vpns["a"].local_id == "new"
    assert new.vpns["b"] is eff.vpns["b"]  # not named: kept as it was
    assert set(new.vpns) == {"a", "b", "c"}
    assert set(new.psks) == {"k2"}
    assert new.global_options is eff.global_options and new.enabled == eff.enabled
    # the old value is untouched
    assert eff.vpns["a"].local_id is None and set(eff.vpns) == {"a", "b"}
    assert set(eff.psks) == {"k"}
    # removing a VPN
    gone = update(new, config(vpn("b"), vpn("c")), {"a"}, set())
    assert set(gone.vpns) == {"b", "c"}
    # the result equals a full resolution when every changed name was given
    assert update(eff, cfg2, {"a", "b", "c"}, {"k", "k2"}) == resolve(cfg2)


def test_site_a_through_the_datastore(schema: Schema, tmp_path: Path) -> None:
    ds = Datastores(schema, tmp_path)
    ds.edit("running", etree.parse(str(DATA / "site_a.xml")).getroot(), sid=1)
    eff = resolve(ds.config)
    v = eff.vpns["siteA-siteB"]
    assert v.ike.ike_proposals[0].prf_alg == ("hmac-sha512",)
    assert v.ike.local_auth_method == "pre-shared-key" and v.ike.keying_tries == 1
    assert v.ipsec.esp_proposals[0].esn == (False,)  # the default of the leaf-list
    assert v.ipsec.encap_copy_dscp is True and v.ipsec.rekey_bytes == 0
    assert eff.psks["siteb"].ids == ("secgwa.example.net", "secgwb.example.net")
    assert eff.global_options.retransmit_base == 1.8
    assert eff.global_options.dos_protection.cookie_threshold == 10


def test_a_disabled_vpn_is_not_in_the_effective_config() -> None:
    cfg = config(vpn("on"), vpn("off", disabled=True))
    eff = resolve(cfg)
    assert set(eff.vpns) == {"on"}
    # enabling it again (an update of that VPN) brings it back, disabling it takes it out
    cfg["ike"]["vpn"]["off"]["disabled"] = False
    eff = update(eff, cfg, ["off"], [])
    assert set(eff.vpns) == {"on", "off"}
    cfg["ike"]["vpn"]["on"]["disabled"] = True
    assert set(update(eff, cfg, ["on"], []).vpns) == {"off"}


def test_new_vpn_options_are_carried() -> None:
    v = resolve(config(vpn("x", passive=True, **{"remote-port": 4500},
                           ike={"fragmentation": "no", "over-time": "10m", "rand-time": "0s"},
                           ipsec={"life-time": "2h", "life-bytes": 9, "rand-packets": 3}))
                ).vpns["x"]
    assert (v.passive, v.remote_port) == (True, 4500)
    assert (v.ike.fragmentation, v.ike.over_time, v.ike.rand_time) == ("no", "10m", "0s")
    assert (v.ipsec.life_time, v.ipsec.life_bytes, v.ipsec.rand_packets) == ("2h", 9, 3)
