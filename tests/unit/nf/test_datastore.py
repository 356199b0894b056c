"""Datastore: edit-config operations, validation errors, commit, locks, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from nf.datastore import Datastores
from nf.effective import EspProposal
from nf.errors import RpcError
from nf.schema import Schema
from nf.templates import resolve

DATA = Path(__file__).resolve().parents[2] / "data"
NS = "urn:ipsec-nf:yang:ipsec-nf"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"


def cfg(body: str) -> etree._Element:
    return etree.fromstring(f'<config xmlns="{NC}"><ike xmlns="{NS}">{body}</ike></config>')


def site_a() -> etree._Element:
    return etree.parse(str(DATA / "site_a.xml")).getroot()


def test_site_to_site_commit_and_resolution(schema: Schema, tmp_path: Path) -> None:
    ds = Datastores(schema, tmp_path)
    seen = []
    ds.on_commit.append(lambda cfg, touched: seen.append(cfg))
    ds.edit("candidate", site_a(), sid=1)
    assert ds.config == {} or "vpn" not in ds.config.get("ike", {})
    ds.commit(sid=1)
    eff = resolve(seen[-1])
    vpn = eff.vpns["siteA-siteB"]
    assert vpn.ike.ike_proposals[0].enc_alg == ("aes128-cbc",)
    assert vpn.ike.rekey_time == "4h" and vpn.ike.keying_tries == 1
    assert vpn.ipsec.start_action == "trap"
    assert vpn.security_policies[0].local_ts.subnet == ("192.168.0.0/24",)
    assert eff.psks["siteb"].secret == "0seaJ31RfzHNRvUSH0oUYg7znTW0I="
    # persisted, and reloaded identically
    ds2 = Datastores(schema, tmp_path)
    assert resolve(ds2.config) == eff


def test_override_and_template_change(schema: Schema, tmp_path: Path) -> None:
    ds = Datastores(schema, tmp_path)
    ds.edit("running", site_a(), sid=1)
    ds.edit("running", cfg(
        "<vpn><name>siteA-siteB</name><ike-policy><keying-tries>10</keying-tries></ike-policy>"
        "</vpn><ipsec-policy-template><name>ipsectemp1</name>"
        f"<esp-proposal nc:operation='replace' xmlns:nc='{NC}'><id>1</id>"
        "<enc-alg>aes256-cbc</enc-alg><auth-alg>hmac-sha512</auth-alg>"
        "</esp-proposal></ipsec-policy-template>"), sid=1)
    vpn = resolve(ds.config).vpns["siteA-siteB"]
    assert vpn.ike.keying_tries == 10
    assert vpn.ike.rekey_time == "4h"
    assert vpn.ipsec.esp_proposals == (
        EspProposal(id=1, enc_alg=("aes256-cbc",), auth_alg=("hmac-sha512",), aead_alg=(),
                    dh_group=(), esn=(False,)),)
    # a proposal list set in the VPN replaces the template's
    ds.edit("running", cfg(
        "<vpn><name>siteA-siteB</name><ipsec-policy><esp-proposal><id>7</id>"
        "<aead-alg>aes128-gcm-128</aead-alg></esp-proposal></ipsec-policy></vpn>"), sid=1)
    vpn = resolve(ds.config).vpns["siteA-siteB"]
    assert [p.id for p in vpn.ipsec.esp_proposals] == [7]


@pytest.mark.parametrize(
    "body,tag,path_part",
    [
        ("<vpn><name>v</name><ike-policy><template>nope</template></ike-policy>"
         "<ipsec-policy><template>ipsectemp1</template></ipsec-policy></vpn>",
         "data-missing", "template"),
        ("<ike-policy-template><name>t2</name><ike-proposal><id>1</id>"
         "<aead-alg>aes128-gcm-128</aead-alg><dh-group>modp2048</dh-group>"
         "</ike-proposal></ike-policy-template>", "operation-failed", "ike-proposal"),
        ("<vpn><name>siteA-siteB</name><local-address>198.51.100.300</local-address></vpn>",
         "invalid-value", "local-address"),
        ("<vpn><name>siteA-siteB</name><colour>blue</colour></vpn>", "unknown-element", "vpn"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    schema: Schema, tmp_path: Path, body: str, tag: str, path_part: str
) -> None:
    ds = Datastores(schema, tmp_path)
    ds.edit("running", site_a(), sid=1)
    before = etree.tostring(ds.tree("running"))
    cand_before = etree.tostring(ds.tree("candidate"))
    with pytest.raises(RpcError) as ei:
        ds.edit("running", cfg(body), sid=1)
    err = ei.value.errors[0]
    assert err.tag == tag, err
    assert err.path and path_part in err.path, err
    assert etree.tostring(ds.tree("running")) == before
    assert etree.tostring(ds.tree("candidate")) == cand_before


def test_create_delete_remove(schema: Schema, tmp_path: Path) -> None:
    ds = Datastores(schema, tmp_path)
    ds.edit("running", site_a(), sid=1)
    op = f"xmlns:nc='{NC}' nc:operation"
    with pytest.raises(RpcError) as ei:
        ds.edit("running", cfg(f"<pre-shared-key {op}='create'><name>siteb</name>"
                               "<secret>x</secret></pre-shared-key>"), sid=1)
    assert ei.value.errors[0].tag == "data-exists"
    with pytest.raises(RpcError) as ei:
        ds.edit("running", cfg(f"<vpn {op}='delete'><name>nope</name></vpn>"), sid=1)
    assert ei.value.errors[0].tag == "data-missing"
    ds.edit("running", cfg(f"<vpn {op}='remove'><name>nope</name></vpn>"), sid=1)
    ds.edit("running", cfg(f"<vpn {op}='delete'><name>siteA-siteB</name></vpn>"), sid=1)
    assert "vpn" not in ds.config["ike"]


def test_locks(schema: Schema, tmp_path: Path) -> None:
    ds = Datastores(schema, tmp_path)
    ds.lock("running", 1)
    with pytest.raises(RpcError) as ei:
        ds.edit("running", site_a(), sid=2)
    assert ei.value.errors[0].tag == "in-use"
    with pytest.raises(RpcError) as ei:
        ds.lock("running", 2)
    assert ei.value.errors[0].tag == "lock-denied"
    ds.release_session(1)
    ds.edit("running", site_a(), sid=2)


def test_errors_never_repeat_a_secret(schema: Schema, tmp_path: Path) -> None:
    ds = Datastores(schema, tmp_path)
    secret = "S3cr3t-" + "x" * 1100
    with pytest.raises(RpcError) as ei:
        ds.edit("running", cfg(f"<pre-shared-key><name>k</name><secret>{secret}</secret>"
                               "</pre-shared-key>"), sid=1)
    err = ei.value.errors[0]
    assert err.tag == "invalid-value" and "secret" in (err.path or "")
    assert "S3cr3t" not in err.message and "S3cr3t" not in str(ei.value)


@pytest.mark.parametrize("secret,ok", [
    ("0seaJ31RfzHNRvUSH0oUYg7znTW0I=", True), ("0xd2c79a27", True), ('"a phrase"', True),
    ("0xZZ", False), ("0xabc", False), ("0s!!", False), ("0sYQ", False)])
def test_secret_encodings(schema: Schema, tmp_path: Path, secret: str, ok: bool) -> None:
    ds = Datastores(schema, tmp_path)
    edit = cfg(f"<pre-shared-key><name>k</name><secret>{secret}</secret></pre-shared-key>")
    if ok:
        ds.edit("running", edit, sid=1)
        return
    with pytest.raises(RpcError) as ei:
        ds.edit("running", edit, sid=1)
    assert ei.value.errors[0].tag == "invalid-value"
    assert secret not in ei.value.errors[0].message
