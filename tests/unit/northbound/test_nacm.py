"""NACM (RFC 8341) through the dispatcher: read pruning, write and exec denial, secrets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from lxml import etree

from northbound import ops
from northbound.context import ServerContext
from northbound.rpc import Dispatcher

DATA = Path(__file__).resolve().parents[2] / "data"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS = "urn:ipsec-nf:yang:ipsec-nf"
NACM = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
P = {"nc": NC, "i": NS}

RULES = f"""<nacm xmlns="{NACM}">
  <rule-list><name>key-admins</name><group>keys</group>
    <rule><name>psk</name><module-name>ipsec-nf</module-name>
      <path xmlns:ipnf="{NS}">/ipnf:ike/ipnf:pre-shared-key</path>
      <access-operations>read</access-operations><action>permit</action></rule>
  </rule-list>
  <rule-list><name>no-vpn</name><group>novpn</group>
    <rule><name>hide-vpns</name><module-name>ipsec-nf</module-name>
      <path xmlns:ipnf="{NS}">/ipnf:ike/ipnf:vpn</path>
      <access-operations>read</access-operations><action>deny</action></rule>
  </rule-list>
</nacm>"""


async def kill_refused(sid: int, by: int) -> None:
    raise AssertionError("kill must be refused before it is called")


def context(new_context: Callable[..., ServerContext]) -> ServerContext:
    async def no_state() -> dict:
        return {}

    return new_context(stats={}, read_state=no_state, kill=kill_refused)


@pytest.fixture
def rpc(new_context: Callable[..., ServerContext]):
    d = Dispatcher(context(new_context), ops.TABLE)

    def run(user: str, groups: list[str], body: str) -> etree._Element:
        s = SimpleNamespace(session_id=5, closing=False, data={}, user=user, groups=groups)
        out = asyncio.run(d.handle(s, f'<rpc xmlns="{NC}" message-id="1">{body}</rpc>'.encode()))
        return etree.fromstring(out)

    site = (DATA / "site_a.xml").read_text().replace("</config>", RULES + "</config>")
    assert run("root", ["admin"], f"<edit-config><target><running/></target>{site}"
               "</edit-config>").find("nc:ok", P) is not None
    return run


GET_CONFIG = "<get-config><source><running/></source></get-config>"
EDIT = (f'<edit-config><target><running/></target><config><ike xmlns="{NS}"><vpn>'
        "<name>siteA-siteB</name><local-id>x.example.net</local-id></vpn></ike></config>"
        "</edit-config>")


def tag(r: etree._Element) -> str | None:
    return r.findtext("nc:rpc-error/nc:error-tag", namespaces=P)


def test_admin_sees_secrets_and_writes(rpc) -> None:
    r = rpc("root", ["admin"], GET_CONFIG)
    assert r.findtext("nc:data/i:ike/i:pre-shared-key/i:secret", namespaces=P)
    assert rpc("root", ["admin"], EDIT).find("nc:ok", P) is not None


@pytest.mark.parametrize("groups", [[], ["operators"]])
def test_others_cannot_see_psk_nor_write(rpc, groups: list[str]) -> None:
    r = rpc("olivia", groups, GET_CONFIG)
    assert r.find("nc:data/i:ike/i:vpn", P) is not None
    assert r.find("nc:data/i:ike/i:pre-shared-key/i:name", P) is not None
    assert r.find("nc:data/i:ike/i:pre-shared-key/i:secret", P) is None
    assert b"0seaJ31" not in etree.tostring(rpc("olivia", groups, "<get/>"))
    assert tag(rpc("olivia", groups, EDIT)) == "access-denied"
    assert tag(rpc("olivia", groups, "<kill-session><session-id>9</session-id>"
                                     "</kill-session>")) == "access-denied"
    assert b"x.example.net" not in etree.tostring(rpc("root", ["admin"], GET_CONFIG))


def test_explicit_rule_grants_secret_read(rpc) -> None:
    r = rpc("kim", ["keys"], GET_CONFIG)
    assert r.findtext("nc:data/i:ike/i:pre-shared-key/i:secret", namespaces=P)


def test_deny_rule_hides_subtree(rpc) -> None:
    r = rpc("nora", ["novpn"], GET_CONFIG)
    assert r.find("nc:data/i:ike/i:vpn", P) is None
    assert r.find("nc:data/i:ike/i:ike-policy-template", P) is not None



def test_may_read_path_for_notifications(new_context: Callable[..., ServerContext]) -> None:
    from nf.nacm import may_read_path

    ctx = context(new_context)
    d = Dispatcher(ctx, ops.TABLE)
    root = SimpleNamespace(session_id=1, closing=False, data={}, user="root", groups=["admin"])
    site = (DATA / "site_a.xml").read_text().replace("</config>", RULES + "</config>")
    asyncio.run(d.handle(root, f'<rpc xmlns="{NC}" message-id="1"><edit-config><target>'
                               f"<running/></target>{site}</edit-config></rpc>".encode()))
    top = ctx.schema.top
    vpn = "/ipsec-nf:ike/ipsec-nf:vpn[ipsec-nf:name='siteA-siteB']"
    nora = ctx.access(SimpleNamespace(user="nora", groups=["novpn"]))
    assert not may_read_path(nora, vpn, top)
    assert may_read_path(nora, "/ipsec-nf:ike/ipsec-nf:ike-policy-template[ipsec-nf:name='t']",
                         top)
    olga = ctx.access(SimpleNamespace(user="olga", groups=[]))
    assert may_read_path(olga, vpn, top)
    assert not may_read_path(olga, "/ipsec-nf:ike/ipsec-nf:pre-shared-key[ipsec-nf:name='s']"
                                   "/ipsec-nf:secret", top)
