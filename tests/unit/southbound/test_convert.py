"""Pure tests of the effective-config -> VICI and list-sas -> YANG conversions."""

from __future__ import annotations

import base64
import copy
from dataclasses import replace

import pytest

from nf.effective import (
    AhProposal,
    EspProposal,
    IkePolicy,
    IkeProposal,
    IpsecPolicy,
    PreSharedKey,
    SecurityPolicy,
    TrafficSelector,
    Vpn,
)
from southbound.convert import (
    SecretBytes,
    conn_digest,
    conn_for,
    copy_dscp,
    decode_secret,
    esp_proposals,
    ike_proposals,
    shared_digest,
    shared_for,
    traffic_selector,
)

VPN = Vpn(
    name="siteA-siteB",
    local_address="198.51.100.1", remote_address="198.51.100.2",
    local_id="secgwa.example.net", remote_id="secgwb.example.net",
    ike=IkePolicy(ike_proposals=(IkeProposal(id=1, enc_alg=("aes128-cbc",),
                                             auth_alg=("hmac-sha512",), prf_alg=(),
                                             aead_alg=(), dh_group=("modp2048",)),),
                  local_auth_method="pre-shared-key", remote_auth_method="pre-shared-key",
                  version=2, keying_tries=1, unique_sa="no", reauth_time="0s",
                  rekey_time="4h", dpd_delay="0s", aggressive=False, udp_encap=False,
                  mobike=False),
    ipsec=IpsecPolicy(esp_proposals=(EspProposal(id=1, enc_alg=("aes128-cbc",),
                                                 auth_alg=("hmac-sha256",), aead_alg=(),
                                                 dh_group=(), esn=(False,)),),
                      ah_proposals=(),
                      start_action="trap", close_action="trap", dpd_action="restart",
                      replay_window=32, rekey_time="1h", rekey_bytes=0, rekey_packets=0,
                      encap_copy_dscp=True, decap_copy_dscp=False, encap_copy_df=True),
    security_policies=(SecurityPolicy(
        name="trunk",
        local_ts=TrafficSelector(subnet=("192.168.0.0/24",), protocol=None, port=None),
        remote_ts=TrafficSelector(subnet=("192.168.99.0/24",), protocol=None, port=None),
        mode="tunnel", action="esp"),),
)

EXPECTED_CONN = {
    "version": "2",
    "local_addrs": ["198.51.100.1"],
    "remote_addrs": ["198.51.100.2"],
    "proposals": ["aes128-sha512-modp2048"],
    "rekey_time": "4h", "reauth_time": "0s", "keyingtries": "1", "unique": "no",
    "dpd_delay": "0s", "aggressive": "no", "encap": "no", "mobike": "no",
    "local": {"auth": "psk", "id": "secgwa.example.net"},
    "remote": {"auth": "psk", "id": "secgwb.example.net"},
    "children": {"trunk": {
        "local_ts": ["192.168.0.0/24"], "remote_ts": ["192.168.99.0/24"], "mode": "tunnel",
        "esp_proposals": ["aes128-sha256"], "start_action": "trap", "close_action": "trap",
        "dpd_action": "restart", "replay_window": "32", "rekey_time": "1h",
        "rekey_bytes": "0", "rekey_packets": "0", "copy_dscp": "out", "copy_df": "yes"}},
}


def test_conn_for_site_to_site() -> None:
    assert conn_for(VPN) == EXPECTED_CONN


def test_conn_for_trap_as_start() -> None:
    child = conn_for(VPN, trap_as_start=True)["children"]["trunk"]
    assert child["start_action"] == "start" and child["close_action"] == "start"


def test_conn_for_absent_addresses_and_ids() -> None:
    vpn = replace(VPN, local_address=None, remote_address=None, local_id=None, remote_id=None)
    conn = conn_for(vpn)
    assert "local_addrs" not in conn and "remote_addrs" not in conn
    assert conn["local"] == {"auth": "psk"} and conn["remote"] == {"auth": "psk"}
    # no peer to send to: a responder, whatever the start action
    child = conn["children"]["trunk"]
    assert (child["start_action"], child["close_action"], child["dpd_action"]) == (
        "none", "none", "clear")


@pytest.mark.parametrize("vpn", [replace(VPN, passive=True), replace(VPN, remote_address="%any"),
                                 replace(VPN, remote_address="198.51.100.0/24"),
                                 replace(VPN, remote_address="198.51.100.5-198.51.100.9"),
                                 replace(VPN, remote_address="2001:db8::1-2001:db8::9")])
def test_conn_for_passive(vpn: Vpn) -> None:
    for trap_as_start in (False, True):
        child = conn_for(vpn, trap_as_start)["children"]["trunk"]
        assert (child["start_action"], child["close_action"], child["dpd_action"]) == (
            "none", "none", "clear")


def test_conn_for_new_options() -> None:
    vpn = replace(VPN, remote_port=4500, remote_address="gw.example.net",
                  ike=replace(VPN.ike, fragmentation="no", dpd_timeout="90s", over_time="10m",
                              rand_time="0s"),
                  ipsec=replace(VPN.ipsec, life_time="2h", rand_time="5m", life_bytes=10,
                                rand_bytes=1, life_packets=20, rand_packets=2),
                  security_policies=(replace(VPN.security_policies[0], priority=7),))
    conn = conn_for(vpn)
    assert conn["remote_port"] == "4500" and conn["remote_addrs"] == ["gw.example.net"]
    assert (conn["fragmentation"], conn["dpd_timeout"], conn["over_time"],
            conn["rand_time"]) == ("no", "90s", "10m", "0s")
    child = conn["children"]["trunk"]
    assert {k: child[k] for k in ("life_time", "rand_time", "life_bytes", "rand_bytes",
                                  "life_packets", "rand_packets", "priority")} == {
        "life_time": "2h", "rand_time": "5m", "life_bytes": "10", "rand_bytes": "1",
        "life_packets": "20", "rand_packets": "2", "priority": "7"}


def test_conn_for_actions() -> None:
    ipsec = replace(VPN.ipsec, start_action="none", ah_proposals=(
        AhProposal(id=1, auth_alg=("hmac-sha1",), dh_group=("ecp256",), esn=(True,)),))
    vpn = replace(VPN, ipsec=ipsec, security_policies=(
        SecurityPolicy(name="ah",
                       local_ts=TrafficSelector(subnet=("10.0.0.0/8",), protocol=6, port=80),
                       remote_ts=TrafficSelector(subnet=("10.1.0.0/16",), protocol=17, port=None),
                       mode="transport", action="ah"),
        SecurityPolicy(name="by", local_ts=TrafficSelector(subnet=("10.2.0.0/16",)),
                       remote_ts=TrafficSelector(), mode="tunnel", action="bypass"),
        SecurityPolicy(name="dr", local_ts=TrafficSelector(subnet=("10.3.0.0/16",)),
                       remote_ts=TrafficSelector(), action="discard"),
    ))
    children = conn_for(vpn)["children"]
    assert list(children) == ["ah", "by", "dr"]
    ah = children["ah"]
    assert ah["mode"] == "transport" and ah["ah_proposals"] == ["sha1-ecp256-esn"]
    assert "esp_proposals" not in ah
    assert ah["local_ts"] == ["10.0.0.0/8[6/80]"] and ah["remote_ts"] == ["10.1.0.0/16[17]"]
    assert ah["start_action"] == "none"
    assert children["by"]["mode"] == "pass" and children["by"]["start_action"] == "trap"
    assert children["by"]["remote_ts"] == ["dynamic"]
    assert children["dr"]["mode"] == "drop" and "esp_proposals" not in children["dr"]


@pytest.mark.parametrize(("proposal", "expected"), [
    (IkeProposal(id=1, enc_alg=("aes128-cbc", "aes256-ctr"),
                 auth_alg=("hmac-sha256", "aes-xcbc"), prf_alg=("hmac-sha512",),
                 dh_group=("modp2048", "curve25519")),
     "aes128-aes256ctr-sha256-aesxcbc-prfsha512-modp2048-curve25519"),
    (IkeProposal(id=2, enc_alg=("3des-cbc", "camellia128-cbc"),
                 auth_alg=("hmac-md5", "aes-cmac"), dh_group=("ecp384",)),
     "3des-camellia128-md5-aescmac-ecp384"),
    (IkeProposal(id=3, aead_alg=("aes128-gcm-128", "aes256-ccm-64", "chacha20-poly1305"),
                 prf_alg=("hmac-sha256", "aes-xcbc"), dh_group=("curve448",)),
     "aes128gcm128-aes256ccm64-chacha20poly1305-prfsha256-prfaesxcbc-curve448"),
])
def test_ike_proposals(proposal: IkeProposal, expected: str) -> None:
    assert ike_proposals([proposal]) == [expected]


def test_esp_proposals() -> None:
    assert esp_proposals([
        EspProposal(id=1, enc_alg=("aes192-cbc",), auth_alg=("hmac-sha384",), dh_group=(),
                    esn=(False,)),
        EspProposal(id=2, aead_alg=("aes128-gcm-96",), dh_group=("modp3072",), esn=(True,)),
    ]) == ["aes192-sha384", "aes128gcm96-modp3072-esn"]


def test_copy_dscp_and_ts() -> None:
    assert [copy_dscp(True, True), copy_dscp(True, False), copy_dscp(False, True),
            copy_dscp(False, False)] == ["yes", "out", "in", "no"]
    assert traffic_selector(TrafficSelector(subnet=("10.0.0.0/8",), port=443)) == \
        ["10.0.0.0/8[any/443]"]
    assert traffic_selector(None) == ["dynamic"]
    # several subnets, ranges, protocol names carried as numbers, port ranges
    assert traffic_selector(TrafficSelector(
        subnet=("10.0.0.0/8", "192.0.2.10-192.0.2.20", "2001:db8::1"), protocol="tcp",
        port="1024-65535")) == ["10.0.0.0/8[6/1024-65535]", "192.0.2.10-192.0.2.20[6/1024-65535]",
                                "2001:db8::1[6/1024-65535]"]
    assert traffic_selector(TrafficSelector(protocol="icmpv6")) == ["dynamic[58]"]


@pytest.mark.parametrize(("secret", "raw"), [
    ("0seaJ31RfzHNRvUSH0oUYg7znTW0I=", base64.b64decode("eaJ31RfzHNRvUSH0oUYg7znTW0I=")),
    ("0x0a0B ff", b"\x0a\x0b\xff"),
    ('"quoted secret"', b"quoted secret"),
    ("plain", b"plain"),
    (" 0xzz", b" 0xzz"),  # the YANG pattern takes it as text, so must we
    ("\t0s!!", b"\t0s!!"),
])
def test_decode_secret(secret: str, raw: bytes) -> None:
    value = decode_secret(secret)
    assert bytes(value) == raw
    assert isinstance(value, SecretBytes)
    assert "redacted" in repr(value) and "redacted" in str(value)


def test_decode_secret_invalid_hides_value() -> None:
    with pytest.raises(ValueError) as exc:
        decode_secret("0xnothexZZ")
    assert "nothexZZ" not in str(exc.value)


def test_shared_for_and_digests() -> None:
    psk = PreSharedKey(name="siteb", ids=("secgwb.example.net",), secret="0x0102")
    payload = shared_for(psk)
    assert payload == {"type": "IKE", "data": b"\x01\x02", "owners": ["secgwb.example.net"]}
    assert "\\x01" not in repr(payload)
    assert shared_digest(psk) == shared_digest(replace(psk))
    assert shared_digest(psk) != shared_digest(replace(psk, secret="0x0103"))
    assert conn_digest(VPN) == conn_digest(copy.deepcopy(VPN))
    esp = replace(VPN.ipsec.esp_proposals[0], enc_alg=("aes256-cbc",))
    changed = replace(VPN, ipsec=replace(VPN.ipsec, esp_proposals=(esp,)))
    assert conn_digest(VPN) != conn_digest(changed)
    assert changed != VPN and hash(replace(VPN)) == hash(VPN)


def test_psk_secret_never_shown() -> None:
    psk = PreSharedKey(name="siteb", ids=("a", "b"), secret="topsecret-value")
    assert "topsecret" not in repr(psk) and "topsecret" not in str(psk)
    assert "topsecret" not in repr({"siteb": psk})
    assert psk != replace(psk, secret="other")


def test_trap_as_start_maps_dpd_trap_and_upper_case_base64() -> None:
    from southbound.convert import _child, decode_secret

    child = _child(SecurityPolicy(name="t", action="esp"),
                   IpsecPolicy(start_action="trap", close_action="trap", dpd_action="trap"),
                   trap_as_start=True)
    assert (child["start_action"], child["close_action"], child["dpd_action"]) == \
        ("start", "start", "restart")
    assert bytes(decode_secret("0SY2M=")) == b"cc"


def test_a_peer_name_with_a_dash_is_one_peer() -> None:
    child = conn_for(replace(VPN, remote_address="gw-b.example.net"))["children"]["trunk"]
    assert child["start_action"] == "trap"


@pytest.mark.parametrize("esn,suffix", [((False,), ""), ((True,), "-esn"),
                                        ((True, False), "-esn-noesn"),
                                        ((False, True), "-noesn-esn")])
def test_esn_preferences(esn: tuple[bool, ...], suffix: str) -> None:
    p = EspProposal(id=1, enc_alg=("aes128-cbc",), auth_alg=("hmac-sha256",), esn=esn)
    assert esp_proposals([p]) == [f"aes128-sha256{suffix}"]
