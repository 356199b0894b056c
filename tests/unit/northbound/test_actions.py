"""The SA actions through the dispatcher, down to the VICI wire of a fake charon
(tests/fakes/vici_server.py): input, the checks before charon is asked, what charon is asked,
the reply, rpc-errors, and NACM exec rules."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from types import MappingProxyType, SimpleNamespace
from typing import Any

import pytest
from lxml import etree

from nf.effective import EffectiveConfig, PreSharedKey, SecurityPolicy, Vpn
from nf.schema import Schema
from northbound import ops
from northbound.context import ServerContext
from northbound.rpc import Dispatcher
from southbound.sa_actions import CharonActions
from tests.fakes.vici_server import FakeCharon

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS = "urn:ipsec-nf:yang:ipsec-nf"
NACM = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
P = {"nc": NC, "i": NS}
SECRET = "0sc2VjcmV0LWtleS1zaXRl"

VPNS = {
    "ab": Vpn(name="ab", remote_address="198.51.100.2",
              security_policies=(SecurityPolicy(name="trunk"), SecurityPolicy(name="voice"),
                                 SecurityPolicy(name="hole", action="bypass"))),
    "resp": Vpn(name="resp", remote_address="%any",
                security_policies=(SecurityPolicy(name="trunk"),)),
    "quiet": Vpn(name="quiet", remote_address="198.51.100.3", passive=True,
                 security_policies=(SecurityPolicy(name="trunk"),)),
    "new": Vpn(name="new", remote_address="198.51.100.4",
               security_policies=(SecurityPolicy(name="trunk"),)),
}
CONFIGURED = {*VPNS, "off"}  # "off" is disabled: in running, not in the effective config
STATUS = {"ab": "applied", "resp": "applied", "quiet": "applied", "new": "pending"}


def ike_sa(uid: int, *children: tuple[str, int]) -> dict[str, Any]:
    return {"uniqueid": str(uid), "state": "ESTABLISHED", "child-sas": {
        f"{name}-{cid}": {"name": name, "uniqueid": str(cid), "state": "INSTALLED",
                          "spi-in": f"c{cid:07x}", "spi-out": f"d{cid:07x}"}
        for name, cid in children}}


@pytest.fixture
def charon() -> Iterator[FakeCharon]:
    with FakeCharon() as fake:
        fake.conns = {"ab": {"children": {"trunk": {}, "voice": {}}},
                      "resp": {"children": {"trunk": {}}}}
        yield fake


@pytest.fixture
def rpc(charon: FakeCharon, new_context: Callable[..., ServerContext]):
    eff = EffectiveConfig(vpns=MappingProxyType(VPNS), psks=MappingProxyType(
        {"k": PreSharedKey(name="k", ids=("a",), secret=SECRET)}))
    actions = CharonActions(charon.path, lambda: eff, CONFIGURED.__contains__, STATUS.get)
    schema = Schema()
    ctx = new_context(schema=schema, actions=actions)
    d = Dispatcher(ctx, ops.TABLE)

    def run(body: str, user: str = "root", groups: tuple[str, ...] = ("admin",)
            ) -> etree._Element:
        s = SimpleNamespace(session_id=3, closing=False, data={}, user=user,
                            groups=list(groups))
        out = asyncio.run(d.handle(s, f'<rpc xmlns="{NC}" message-id="1">{body}</rpc>'.encode()))
        return etree.fromstring(out)

    run.ctx = ctx
    return run


def op(name: str, **leaves: Any) -> str:
    inner = "".join(f"<{k.replace('_', '-')}>{v}</{k.replace('_', '-')}>"
                    for k, v in leaves.items())
    return f'<{name} xmlns="{NS}">{inner}</{name}>'


def ids(r: etree._Element, leaf: str) -> list[int]:
    return [int(x) for x in r.xpath(f"i:{leaf}/text()", namespaces=P)]


def error(r: etree._Element) -> dict[str, str | None]:
    e = r.find("nc:rpc-error", P)
    assert e is not None, etree.tostring(r)
    return {k: e.findtext(f"nc:error-{k}", namespaces=P)
            for k in ("tag", "type", "path", "message", "app-tag")}


# ---- initiate -----------------------------------------------------------------------------

def test_initiate_brings_up_every_negotiated_policy_and_answers_the_sas(
        rpc, charon: FakeCharon) -> None:
    charon.establish = True
    r = rpc(op("initiate", vpn="ab", timeout=7))
    sent = [(c["ike"], c["child"]) for c in charon.initiated]
    assert sent == [("ab", "trunk"), ("ab", "voice")]  # not the bypass policy
    assert all(0 < int(c["timeout"]) <= 7000 for c in charon.initiated)
    assert ids(r, "ike-sa") == [int(charon.sas[0]["ab"]["uniqueid"])]
    children = charon.sas[0]["ab"]["child-sas"].values()
    assert ids(r, "child-sa") == [int(c["uniqueid"]) for c in children]


def test_initiate_one_policy_and_skips_what_is_up(rpc, charon: FakeCharon) -> None:
    charon.establish = True
    charon.sas = [{"ab": ike_sa(7, ("trunk", 8))}]
    r = rpc(op("initiate", vpn="ab", security_policy="trunk"))
    assert charon.initiated == []  # already up: nothing asked, the SAs answered
    assert ids(r, "ike-sa") == [7] and ids(r, "child-sa") == [8]
    rpc(op("initiate", vpn="ab", security_policy="voice"))
    assert [c["child"] for c in charon.initiated] == ["voice"]


@pytest.mark.parametrize(("leaves", "tag", "path", "words"), [
    ({"vpn": "nope"}, "invalid-value", "vpn", "no VPN named 'nope'"),
    ({"vpn": "ab", "security_policy": "nope"}, "invalid-value", "security-policy",
     "no security policy 'nope'"),
    ({"vpn": "off"}, "operation-failed", "vpn", "disabled"),
    ({"vpn": "new"}, "operation-failed", "vpn", "not applied to the IKE daemon yet"),
    ({"vpn": "resp"}, "operation-failed", "vpn", "responder only"),
    ({"vpn": "quiet"}, "operation-failed", "vpn", "responder only"),
    ({"vpn": "ab", "security_policy": "hole"}, "operation-failed", "security-policy",
     "no security policy that negotiates"),
])
def test_initiate_refusals_never_reach_charon(rpc, charon: FakeCharon, leaves: dict,
                                              tag: str, path: str, words: str) -> None:
    e = error(rpc(op("initiate", **leaves)))
    assert e["tag"] == tag and words in e["message"], e
    assert e["path"] == f"/ipsec-nf:initiate/ipsec-nf:{path}"
    assert e["app-tag"] == (None if tag == "invalid-value" else "vpn-not-ready")
    assert charon.calls_to("initiate") == []


def test_initiate_failure_carries_charons_reason_and_log_without_secrets(
        rpc, charon: FakeCharon) -> None:
    charon.initiate_failure = ("establishing CHILD_SA 'trunk' failed", [
        "sending packet: from 198.51.100.1[500] to 198.51.100.2[500]",
        "retransmit 1 of request with message ID 0",
        "giving up after 1 retransmits",
        f"oops the key {SECRET} leaked"])
    started = time.monotonic()
    e = error(rpc(op("initiate", vpn="ab", timeout=5)))
    assert time.monotonic() - started < 5
    assert e["tag"] == "operation-failed" and e["app-tag"] == "action-failed"
    assert e["message"].startswith("establishing CHILD_SA 'trunk' failed")
    assert "giving up after 1 retransmits" in e["message"]
    assert SECRET not in e["message"] and "<hidden>" in e["message"]


def test_initiate_of_a_connection_charon_lacks_is_charons_refusal(
        rpc, charon: FakeCharon) -> None:
    charon.conns = {}
    e = error(rpc(op("initiate", vpn="ab")))
    assert e["tag"] == "operation-failed"
    assert "CHILD_SA config 'trunk' not found" in e["message"]


def test_initiate_when_charon_is_gone(rpc, charon: FakeCharon) -> None:
    charon.stop()
    e = error(rpc(op("initiate", vpn="ab")))
    assert e["tag"] == "operation-failed" and "did not answer" in e["message"]


# ---- terminate ----------------------------------------------------------------------------

def test_terminate_by_ike_unique_id(rpc, charon: FakeCharon) -> None:
    charon.sas = [{"ab": ike_sa(7, ("trunk", 8))}, {"ab": ike_sa(9, ("trunk", 10))}]
    r = rpc(op("terminate", ike_sa=9, force="false", timeout=3))
    assert ids(r, "ike-sa") == [9] and ids(r, "child-sa") == [10]
    (sent,) = charon.terminated
    assert sent["ike-id"] == "9" and sent["force"] == "no"
    assert 0 < int(sent["timeout"]) <= 3000
    assert [next(iter(e.values()))["uniqueid"] for e in charon.sas] == ["7"]


def test_terminate_by_child_unique_id_and_by_policy(rpc, charon: FakeCharon) -> None:
    charon.sas = [{"ab": ike_sa(7, ("trunk", 8), ("voice", 11))},
                  {"resp": ike_sa(12, ("trunk", 13))}]
    r = rpc(op("terminate", child_sa=11))
    assert ids(r, "child-sa") == [11] and ids(r, "ike-sa") == []
    assert charon.terminated[-1]["child-id"] == "11"
    r = rpc(op("terminate", vpn="ab", security_policy="trunk"))
    assert ids(r, "child-sa") == [8]  # not resp's trunk
    assert charon.sas[1]["resp"]["child-sas"]


def test_terminate_a_vpn_closes_each_of_its_ike_sas(rpc, charon: FakeCharon) -> None:
    charon.sas = [{"ab": ike_sa(7, ("trunk", 8))}, {"resp": ike_sa(12)}]
    r = rpc(op("terminate", vpn="ab"))
    assert ids(r, "ike-sa") == [7] and ids(r, "child-sa") == [8]
    assert [c["ike-id"] for c in charon.terminated] == ["7"]
    assert rpc(op("terminate", vpn="ab")).find("nc:ok", P) is not None  # nothing left


@pytest.mark.parametrize(("leaves", "path"), [
    ({"ike_sa": 99}, "ike-sa"), ({"child_sa": 99}, "child-sa"), ({"vpn": "nope"}, "vpn")])
def test_terminate_unknown_target_is_invalid_value(rpc, charon: FakeCharon, leaves: dict,
                                                   path: str) -> None:
    charon.sas = [{"ab": ike_sa(7, ("trunk", 8))}]
    e = error(rpc(op("terminate", **leaves)))
    assert e["tag"] == "invalid-value" and e["path"] == f"/ipsec-nf:terminate/ipsec-nf:{path}"
    assert charon.terminated == []


def test_disconnect_a_road_warrior_by_identity_or_virtual_ip(rpc, charon: FakeCharon) -> None:
    charon.sas = [
        {"resp": {**ike_sa(21, ("trunk", 22)), "remote-id": "198.51.100.9",
                  "remote-eap-id": "carol@example.net", "remote-vips": ["10.3.0.1"]}},
        {"resp": {**ike_sa(23, ("trunk", 24)), "remote-id": "dave@example.net",
                  "remote-vips": ["10.3.0.2", "2001:db8:3::2"]}}]
    r = rpc(op("terminate", peer_id="carol@example.net"))  # by EAP identity
    assert ids(r, "ike-sa") == [21] and ids(r, "child-sa") == [22]
    r = rpc(op("terminate", virtual_ip="2001:db8:3:0::2"))  # IPv6 in another spelling
    assert ids(r, "ike-sa") == [23]
    assert [c["ike-id"] for c in charon.terminated] == ["21", "23"]
    e = error(rpc(op("terminate", peer_id="nobody@example.net")))
    assert e["tag"] == "invalid-value" and e["path"] == "/ipsec-nf:terminate/ipsec-nf:peer-id"
    e = error(rpc(op("terminate", peer_id="x", vpn="resp")))
    assert e["tag"] == "bad-element"  # one target only


def test_terminate_needs_one_target_only(rpc) -> None:
    assert error(rpc(op("terminate")))["tag"] in ("missing-element", "data-missing")
    e = error(rpc(op("terminate", vpn="ab", ike_sa=3)))
    assert e["tag"] == "bad-element"


# ---- rekey --------------------------------------------------------------------------------

def test_rekey_child_sa_answers_its_successor_with_new_spis(rpc, charon: FakeCharon) -> None:
    charon.sas = [{"ab": ike_sa(7, ("trunk", 8))}]
    r = rpc(op("rekey", child_sa=8, timeout=5))
    (new,) = ids(r, "child-sa")
    assert new != 8 and charon.rekeyed[-1]["child-id"] == "8"
    child = next(iter(charon.sas[0]["ab"]["child-sas"].values()))
    assert child["uniqueid"] == str(new) and child["spi-in"] != "c0000008"


def test_rekey_ike_sa_of_a_vpn_with_reauth(rpc, charon: FakeCharon) -> None:
    charon.sas = [{"ab": ike_sa(7, ("trunk", 8))}]
    r = rpc(op("rekey", vpn="ab", reauth="true"))
    (new,) = ids(r, "ike-sa")
    assert new != 7 and charon.rekeyed[-1] == {"ike-id": "7", "reauth": "yes"}


def test_rekey_that_never_completes_fails_within_the_timeout(rpc, charon: FakeCharon) -> None:
    charon.sas = [{"ab": ike_sa(7, ("trunk", 8))}]
    # charon accepts the rekey but the exchange never completes (the peer does not answer)
    charon._handlers["rekey"] = lambda sess, msg: {"success": "yes", "matches": "1"}
    started = time.monotonic()
    e = error(rpc(op("rekey", child_sa=8, timeout=1)))
    assert 1 <= time.monotonic() - started < 4
    assert e["tag"] == "operation-failed" and "did not complete within 1s" in e["message"]


def test_rekey_of_a_vpn_without_sas(rpc) -> None:
    e = error(rpc(op("rekey", vpn="ab")))
    assert e["tag"] == "invalid-value" and "no SA to rekey" in e["message"]


# ---- clear, reset-counters ----------------------------------------------------------------

def test_clear_the_box_and_a_vpn(rpc, charon: FakeCharon) -> None:
    charon.sas = [{"ab": ike_sa(7, ("trunk", 8))}, {"resp": ike_sa(12, ("trunk", 13))},
                  {"ab": ike_sa(14)}]
    r = rpc(op("clear", vpn="ab"))
    assert ids(r, "ike-sa") == [7, 14]
    assert all(c["force"] == "yes" for c in charon.terminated)
    r = rpc(op("clear"))
    assert ids(r, "ike-sa") == [12] and charon.sas == []
    assert error(rpc(op("clear", vpn="off")))["tag"] == "operation-failed"


def test_reset_counters_of_a_vpn_or_all(rpc, charon: FakeCharon) -> None:
    charon.counters = {"": {"ike-rekey-init": 3}, "ab": {"ike-rekey-init": 2},
                       "resp": {"ike-rekey-init": 5}}
    assert rpc(op("reset-counters", vpn="ab")).find("nc:ok", P) is not None
    assert charon.counters["ab"] == {"ike-rekey-init": 0}
    assert charon.counters["resp"] == {"ike-rekey-init": 5}
    assert rpc(op("reset-counters")).find("nc:ok", P) is not None
    assert all(v == {"ike-rekey-init": 0} for v in charon.counters.values())
    assert charon.calls_to("reset-counters")[-2:] == [{"all": "yes"}, {}]
    assert error(rpc(op("reset-counters", vpn="nope")))["tag"] == "invalid-value"


# ---- NACM ---------------------------------------------------------------------------------

RULES = f"""<config xmlns="{NC}"><nacm xmlns="{NACM}">
  <rule-list><name>operators</name><group>ops</group>
    <rule><name>may-clear</name><module-name>ipsec-nf</module-name>
      <rpc-name>clear</rpc-name><access-operations>exec</access-operations>
      <action>permit</action></rule>
    <rule><name>may-initiate</name><module-name>ipsec-nf</module-name>
      <rpc-name>initiate</rpc-name><access-operations>exec</access-operations>
      <action>permit</action></rule>
  </rule-list>
</nacm></config>"""


def test_actions_need_an_exec_permit(rpc, charon: FakeCharon) -> None:
    assert rpc(f"<edit-config><target><running/></target>{RULES}</edit-config>").find(
        "nc:ok", P) is not None
    charon.establish = True
    for name, leaves in (("initiate", {"vpn": "ab"}), ("clear", {}),
                         ("terminate", {"vpn": "ab"}), ("rekey", {"ike_sa": 1}),
                         ("reset-counters", {})):
        e = error(rpc(op(name, **leaves), user="rita", groups=("viewers",)))
        assert e["tag"] == "access-denied", (name, e)
        assert e["path"] == f"/ietf-netconf:rpc/ipsec-nf:{name}"
    assert charon.calls_to("initiate") == [] and charon.calls_to("list-sas") == []
    r = rpc(op("initiate", vpn="ab"), user="otto", groups=("ops",))
    assert len(ids(r, "child-sa")) == 2, etree.tostring(r)
    assert ids(rpc(op("clear"), user="otto", groups=("ops",)), "ike-sa")
    assert error(rpc(op("terminate", vpn="ab"), user="otto", groups=("ops",)))["tag"] == (
        "access-denied")


def test_the_model_marks_the_actions_default_deny_all() -> None:
    schema = Schema()
    for name in ("initiate", "terminate", "rekey", "clear", "reset-counters"):
        node = next(schema.ctx.find_path(f"/ipsec-nf:{name}"))
        assert any(x.name() == "default-deny-all" for x in node.extensions()), name


def test_without_a_backend_the_actions_are_not_supported(new_context) -> None:
    d = Dispatcher(new_context(), ops.TABLE)
    s = SimpleNamespace(session_id=3, closing=False, data={}, user="root", groups=["admin"])
    out = etree.fromstring(asyncio.run(d.handle(
        s, f'<rpc xmlns="{NC}" message-id="1">{op("clear")}</rpc>'.encode())))
    assert error(out)["tag"] == "operation-not-supported"
