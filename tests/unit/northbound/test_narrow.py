"""Reads narrowed by their filter (northbound/narrow.py) answer exactly what a read of the whole
datastore, filtered afterwards, answers: every filter shape, with-defaults mode, NACM user and
operation is read both ways and compared byte for byte."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from northbound import narrow, ops
from northbound.context import ServerContext
from northbound.rpc import Dispatcher
from tests.support import NC, NS

NACM = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
NMDA = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"
DS = "urn:ietf:params:xml:ns:yang:ietf-datastores"
WD = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults"
PSK = "0seaJ31RfzHNRvUSH0oUYg7znTW0I="

RULES = f"""<nacm xmlns="{NACM}">
  <rule-list><name>limited</name><group>ops</group>
    <rule><name>hide-vpn3</name><module-name>ipsec-nf</module-name>
      <path xmlns:ipnf="{NS}">/ipnf:ike/ipnf:vpn[ipnf:name='vpn3']</path>
      <access-operations>read</access-operations><action>deny</action></rule>
    <rule><name>hide-remote-id</name><module-name>ipsec-nf</module-name>
      <path xmlns:ipnf="{NS}">/ipnf:ike/ipnf:vpn/ipnf:remote-id</path>
      <access-operations>read</access-operations><action>deny</action></rule>
  </rule-list>
</nacm>"""


def _vpn(i: int) -> str:
    return (f"<vpn><name>vpn{i}</name><ike-policy><template>t</template>"
            "</ike-policy><ipsec-policy><template>p</template></ipsec-policy>"
            f"<local-address>198.51.100.1</local-address><remote-address>203.0.113.{i + 1}"
            f"</remote-address><local-id>gw.example.net</local-id>"
            f"<remote-id>peer{i}.example.net</remote-id><security-policy><name>sp</name>"
            "<local-ts><subnet>192.168.0.0/24</subnet></local-ts><remote-ts><subnet>"
            f"10.0.{i}.0/24</subnet></remote-ts></security-policy></vpn>")


CONFIG = (f'<config><ike xmlns="{NS}"><ike-policy-template><name>t</name>'
          "<ike-proposal><id>1</id><enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha256"
          "</auth-alg><dh-group>modp2048</dh-group></ike-proposal></ike-policy-template>"
          "<ipsec-policy-template><name>p</name><esp-proposal><id>1</id><enc-alg>aes128-cbc"
          "</enc-alg><auth-alg>hmac-sha256</auth-alg></esp-proposal>"
          "<start-action>none</start-action></ipsec-policy-template>"
          + "".join(_vpn(i) for i in range(8))
          + f"<pre-shared-key><name>all</name><secret>{PSK}</secret></pre-shared-key>"
          + f"<pre-shared-key><name> spaced </name><secret>{PSK}</secret></pre-shared-key>"
          + f"</ike>{RULES}</config>")

STATE = {"ike-sas": {"total": 1, "half-open": 0},
         "ike-sa": [{"unique-id": 1, "name": "vpn2", "state": "established"}]}

V = f'xmlns="{NS}"'
SUBTREES = [
    f"<ike {V}><vpn><name>vpn2</name></vpn></ike>",
    f"<ike {V}><vpn><name>vpn2</name><remote-id/></vpn></ike>",
    f"<ike {V}><vpn><name>vpn5</name></vpn><vpn><name>vpn1</name></vpn></ike>",
    f"<ike {V}><vpn><name>vpn3</name></vpn></ike>",
    f"<ike {V}><vpn><name>nope</name></vpn></ike>",
    f"<ike {V}><pre-shared-key><name>spaced</name></pre-shared-key></ike>",
    f"<ike {V}><pre-shared-key><name>all</name></pre-shared-key></ike>",
    f"<ike {V}><vpn><name>vpn2</name><name>vpn4</name></vpn></ike>",
    f"<ike {V}><vpn><remote-id>peer4.example.net</remote-id></vpn></ike>",
    f"<ike {V}><vpn/></ike>",
    f"<ike {V}><vpn><name/><local-id/></vpn></ike>",
    f"<ike {V}><vpn><name>vpn2</name></vpn><pre-shared-key/></ike>",
    f"<ike {V}><global-options/></ike>",
    f"<ike {V}><enabled/><vpn><name>vpn1</name></vpn></ike>",
    f"<ike {V}><enabled>true</enabled><vpn><name>vpn1</name></vpn></ike>",
    f"<ike {V}><ike-sa/><ike-sas/></ike>",
    f"<ike {V}/>",
    '<ike><vpn><name>vpn6</name></vpn></ike>',  # no namespace: any module's ike
    f"<ike {V}><vpn><name>vpn2</name></vpn></ike><nacm xmlns='{NACM}'/>",
]
XPATHS = [
    "/i:ike/i:vpn[i:name='vpn2']",
    '/i:ike/i:vpn[i:name="vpn2"]/i:remote-id',
    "/i:ike/i:vpn[i:name='vpn3']",
    "/i:ike/i:pre-shared-key[i:name=' spaced ']",
    "/i:ike/i:pre-shared-key[i:name='spaced']",
    "/i:ike/i:vpn[1]",
    "/i:ike/i:vpn[1][i:name='vpn0']",
    "/i:ike/i:vpn[i:name='vpn2'][1]",
    "/i:ike/i:vpn[i:remote-id='peer4.example.net']",
    "/i:ike/i:vpn[i:name='vpn2'] | /i:ike/i:pre-shared-key",
    "//i:vpn[i:name='vpn2']",
    "/i:ike/i:vpn[i:name='vpn2']/../i:ike-policy-template",
    "/i:ike/i:vpn",
    "/i:ike/i:global-options",
    "/i:ike",
    "/i:ike/i:vpn[i:name='vpn2']/i:security-policy[i:name='sp']/i:local-ts",
    "/i:ike/i:vpn[i:name='vpn2' and i:local-id='gw.example.net']",
    "/i:ike/i:vpn[i:name=/i:ike/i:vpn[2]/i:name]",
]
MODES = [None, "report-all", "trim", "report-all-tagged"]
USERS = [("root", ["admin"]), ("op", ["ops"])]


@pytest.fixture
def read(new_context: Callable[..., ServerContext]):
    async def state() -> dict:
        return STATE

    d = Dispatcher(new_context(read_state=state), ops.TABLE)

    def run(body: str, user: tuple[str, list[str]] = USERS[0]) -> bytes:
        s = SimpleNamespace(session_id=3, closing=False, data={}, user=user[0],
                            groups=user[1])
        return asyncio.run(d.handle(s, f'<rpc xmlns="{NC}" message-id="1">{body}</rpc>'
                                    .encode()))

    r = run(f"<edit-config><target><running/></target>{CONFIG}</edit-config>")
    assert b"<ok/>" in r, r
    return run


def _both(read, body: str, user: tuple[str, list[str]],
          monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, bytes]:
    narrowed = read(body, user)
    with monkeypatch.context() as m:
        m.setattr(narrow, "spec_of", lambda op: None)
        whole = read(body, user)
    return narrowed, whole


def _wd(mode: str | None) -> str:
    return f'<with-defaults xmlns="{WD}">{mode}</with-defaults>' if mode else ""


@pytest.mark.parametrize("user", USERS, ids=lambda u: u[0])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("filt", SUBTREES)
def test_subtree_reads_equal_whole_reads(read, monkeypatch, filt, mode, user) -> None:
    for body in (f'<get-config><source><running/></source><filter type="subtree">{filt}'
                 f"</filter>{_wd(mode)}</get-config>",
                 f'<get><filter type="subtree">{filt}</filter>{_wd(mode)}</get>'):
        narrowed, whole = _both(read, body, user, monkeypatch)
        assert narrowed == whole


@pytest.mark.parametrize("user", USERS, ids=lambda u: u[0])
@pytest.mark.parametrize("select", XPATHS)
def test_xpath_reads_equal_whole_reads(read, monkeypatch, select, user) -> None:
    for mode in MODES[:2]:
        for op in ("get-config", "get"):
            src = "<source><running/></source>" if op == "get-config" else ""
            body = (f'<{op}>{src}<filter type="xpath" xmlns:i="{NS}" select="{select}"/>'
                    f"{_wd(mode)}</{op}>")
            narrowed, whole = _both(read, body, user, monkeypatch)
            assert narrowed == whole, body


@pytest.mark.parametrize("user", USERS, ids=lambda u: u[0])
@pytest.mark.parametrize("ds", ["running", "candidate", "intended", "operational"])
def test_get_data_reads_equal_whole_reads(read, monkeypatch, ds, user) -> None:
    filters = [f"<subtree-filter>{f}</subtree-filter>" for f in SUBTREES[:12]]
    filters += [f'<xpath-filter xmlns:i="{NS}">{x}</xpath-filter>' for x in XPATHS[:8]]
    for f in filters:
        for extra in ("", "<config-filter>true</config-filter>", "<max-depth>3</max-depth>"):
            body = (f'<get-data xmlns="{NMDA}" xmlns:ds="{DS}"><datastore>ds:{ds}</datastore>'
                    f"{f}{extra}</get-data>")
            narrowed, whole = _both(read, body, user, monkeypatch)
            assert narrowed == whole, body


def test_a_key_read_copies_only_its_entry(read, monkeypatch) -> None:
    """The narrowing really narrows: one entry is copied out of the datastore, not all."""
    picked: list[list[list[str | None]]] = []
    real = narrow.pick

    def spy(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        out = real(*a, **kw)
        picked.append([[c.findtext(f"{{{NS}}}name") for c in r] for r in out])
        return out

    monkeypatch.setattr(narrow, "pick", spy)
    read(f'<get-config><source><running/></source><filter type="subtree">'
         f"<ike {V}><vpn><name>vpn2</name></vpn></ike></filter></get-config>")
    assert picked[-1] == [["vpn2"]]


@pytest.mark.parametrize("select,narrowed", [
    ("/i:ike/i:vpn[i:name='a']", True),
    ("/i:ike/i:vpn[i:name='a']/i:local-id", True),
    ("/i:ike/i:vpn", True),
    ("/i:ike/i:vpn[1]", True),  # narrowed to the list, not by key
    ("/i:ike[i:enabled='true']/i:vpn", False),
    ("/i:ike/i:vpn | /i:ike/i:pre-shared-key", False),
    ("//i:vpn", False),
    ("/i:ike/i:vpn/../i:pre-shared-key", False),
    ("/i:ike/i:vpn[i:name=/i:ike/i:vpn[1]/i:name]", False),
    ("/ike/vpn", False),
    ("/i:ike/*", False),
    ("/i:ike/i:vpn/text()", False),
    ("/i:ike/i:vpn/@x", False),
])
def test_xpath_spec_only_for_plain_paths(select: str, narrowed: bool) -> None:
    spec = narrow.xpath_spec(select, {"i": NS})
    assert (spec is not None) == narrowed
    if spec is not None and "name='a'" in select:
        assert spec.findtext(f"{{{NS}}}ike/{{{NS}}}vpn/{{{NS}}}name") == "a"
    if select == "/i:ike/i:vpn[1]":
        assert len(spec.find(f"{{{NS}}}ike/{{{NS}}}vpn")) == 0
