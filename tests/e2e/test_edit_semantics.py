"""edit-config to the letter, through the real NETCONF server (`ipsec-nf serve` in a network
namespace, driven by ncclient): default-operation none (RFC 6241 7.2), yang:insert before and
after (RFC 7950 7.7.9, 7.8.6, 15.7) kept across a restart and in the commit history, empty
non-presence containers gone (RFC 7950 7.5.1), nodes given twice in one edit refused."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from lxml import etree
from ncclient.operations.rpc import RPCError
from ncclient.xml_ import to_ele

from tools.lab import Lab, running, site_config

pytestmark = pytest.mark.e2e  # root, network namespaces, charon

NS = "urn:ipsec-nf:yang:ipsec-nf"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NACM = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
YANG = "urn:ietf:params:xml:ns:yang:1"
NMDA = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"
P = {"i": NS, "n": NACM, "nm": NMDA}
HEAD = f'xmlns="{NC}" xmlns:nc="{NC}" xmlns:yang="{YANG}" xmlns:acm="{NACM}" xmlns:ipnf="{NS}"'


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running(tmp_path_factory.mktemp("editlab"), sites="A") as lab:
        with lab.connect(lab.a) as m:
            m.edit_config(target="running", config=site_config(lab.a))
        yield lab


def ike(body: str) -> str:
    return f'<config {HEAD}><ike xmlns="{NS}">{body}</ike></config>'


def nacm(body: str) -> str:
    return f'<config {HEAD}><nacm xmlns="{NACM}">{body}</nacm></config>'


NO_NACM = f'<config {HEAD}><nacm xmlns="{NACM}" nc:operation="remove"/></config>'


def rule_list(name: str, attrs: str = "") -> str:
    return (f"<rule-list {attrs}><name>{name}</name><group>g-{name}</group>"
            "<rule><name>r</name><module-name>ipsec-nf</module-name>"
            "<access-operations>read</access-operations><action>permit</action></rule>"
            "</rule-list>")


def config(m, ds: str = "running") -> etree._Element:  # noqa: ANN001 - ncclient Manager
    return etree.fromstring(m.get_config(ds).data_xml.encode())


def get_data(m, ds: str = "running") -> etree._Element:  # noqa: ANN001
    r = m.dispatch(to_ele(f'<get-data xmlns="{NMDA}" '
                          'xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores">'
                          f"<datastore>ds:{ds}</datastore></get-data>"))
    return etree.fromstring(r.xml.encode()).find("nm:data", P)


def canon(el: etree._Element) -> bytes:
    t = etree.fromstring(etree.tostring(el), etree.XMLParser(remove_blank_text=True))
    return etree.tostring(t, method="c14n")


def rule_lists(m, ds: str = "running") -> list[str]:  # noqa: ANN001
    return config(m, ds).xpath("n:nacm/n:rule-list/n:name/text()", namespaces=P)


def refused(m, target: str = "running", **kw) -> RPCError:  # noqa: ANN001, ANN003
    """edit-config fails and the target is as it was."""
    before = canon(config(m, target))
    with pytest.raises(RPCError) as ei:
        m.edit_config(target=target, **kw)
    assert canon(config(m, target)) == before
    return ei.value


def test_default_operation_none_needs_the_parent(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        e = refused(m, default_operation="none", config=ike(
            "<vpn><name>no-such-vpn</name><local-id nc:operation='delete'/></vpn>"))
        assert e.tag == "data-missing"
        assert e.path.strip() == "/ipsec-nf:ike/ipsec-nf:vpn[ipsec-nf:name='no-such-vpn']"
        e = refused(m, default_operation="none", config=ike(
            "<vpn><name>no-such-vpn</name><local-id nc:operation='merge'>x</local-id></vpn>"))
        assert e.tag == "data-missing"
        # where the levels exist, the operation inside is made and nothing else changes
        m.edit_config(target="running", default_operation="none", config=ike(
            "<vpn><name>siteA-siteB</name><remote-id>ignored</remote-id>"
            "<local-id nc:operation='replace'>none.example.net</local-id></vpn>"))
        vpn = config(m).find("i:ike/i:vpn", P)
        assert vpn.findtext("i:local-id", namespaces=P) == "none.example.net"
        assert vpn.findtext("i:remote-id", namespaces=P) == lab.b.fqdn
        m.edit_config(target="running", config=site_config(lab.a))


def test_insert_before_and_after_survive_restart_and_history(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        m.edit_config(target="running", config=nacm(
            rule_list("a") + rule_list("b") + rule_list("c")))
        m.edit_config(target="candidate", config=nacm(
            rule_list("d", "yang:insert='before' yang:key=\"[acm:name='b']\"")
            + "<rule-list yang:insert='after' yang:key=\"[acm:name='d']\"><name>c</name>"
              "</rule-list>"))
        assert rule_lists(m, "candidate") == ["a", "d", "c", "b"]
        m.commit()
        assert rule_lists(m) == ["a", "d", "c", "b"]
        # leaf-list values: an algorithm before another one, in an ordered proposal
        m.edit_config(target="running", config=ike(
            "<ike-policy-template><name>iketemp1</name><ike-proposal><id>1</id>"
            "<enc-alg yang:insert='before' yang:value='aes128-cbc'>aes256-cbc</enc-alg>"
            "</ike-proposal></ike-policy-template>"))
        algs = config(m).xpath("i:ike/i:ike-policy-template/i:ike-proposal/i:enc-alg/text()",
                               namespaces=P)
        assert algs == ["aes256-cbc", "aes128-cbc"]
        data = get_data(m)
        assert data.xpath("n:nacm/n:rule-list/n:name/text()", namespaces=P) == \
            ["a", "d", "c", "b"]
        diff = etree.fromstring(m.dispatch(to_ele(
            f'<show-commit-diff xmlns="{NS}"><rollback>1</rollback></show-commit-diff>'))
            .xml.encode()).findtext("i:diff", namespaces=P)
        assert re.search(r"^\+\s*<name>d</name>", diff, re.M), diff
    lab.stop(lab.a)
    lab.start(lab.a)
    with lab.connect(lab.a) as m:
        assert rule_lists(m) == ["a", "d", "c", "b"]
        assert config(m).xpath("i:ike/i:ike-policy-template/i:ike-proposal/i:enc-alg/text()",
                               namespaces=P) == ["aes256-cbc", "aes128-cbc"]
        # rollback 2 puts back the order before the insert and the move
        m.dispatch(to_ele(f'<rollback xmlns="{NS}"><rollback>2</rollback></rollback>'))
        m.commit()
        assert rule_lists(m) == ["a", "b", "c"]
        m.edit_config(target="running", config=NO_NACM)
        assert config(m).find("n:nacm", P) is None
        m.edit_config(target="running", config=site_config(lab.a))


def test_insert_errors(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        m.edit_config(target="running", config=nacm(rule_list("a")))
        e = refused(m, config=nacm(
            rule_list("x", "yang:insert='after' yang:key=\"[acm:name='zz']\"")))
        assert (e.tag, e.app_tag) == ("bad-attribute", "missing-instance")
        assert "rule-list" in e.info and "key" in e.info
        e = refused(m, config=nacm(rule_list("x", "yang:insert='after'")))
        assert e.tag == "missing-attribute"
        e = refused(m, config=nacm(rule_list("x", "yang:insert='after' yang:key='a'")))
        assert e.tag == "bad-attribute"
        e = refused(m, config=ike("<vpn yang:insert='first'><name>siteA-siteB</name></vpn>"))
        assert e.tag == "unknown-attribute"
        m.edit_config(target="running", config=NO_NACM)


def test_empty_containers_do_not_stay(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        start, start_data = canon(config(m)), canon(get_data(m))
        m.edit_config(target="running", config=nacm(
            "<groups><group><name>ops</name><user-name>olga</user-name></group></groups>"))
        assert config(m).find("n:nacm/n:groups/n:group", P) is not None
        m.edit_config(target="running", config=nacm(
            "<groups><group nc:operation='delete'><name>ops</name></group></groups>"))
        assert canon(config(m)) == start  # no <nacm/>, no <groups/>
        assert canon(get_data(m)) == start_data
        diff = etree.fromstring(m.dispatch(to_ele(
            f'<show-commit-diff xmlns="{NS}"><rollback>0</rollback></show-commit-diff>'))
            .xml.encode()).findtext("i:diff", namespaces=P)
        assert "<groups>" in diff and not [x for x in diff.splitlines()
                                           if x[:1] == "+" and x[:3] != "+++"], diff
        # an empty container sent in an edit is not stored either
        m.edit_config(target="candidate", config=ike(
            "<global-options><dos-protection/></global-options>"))
        assert canon(config(m, "candidate")) == start
    base = lab.a.state_dir / "running.xml"
    assert not base.exists() or b"<groups/>" not in base.read_bytes()
    lab.stop(lab.a)
    lab.start(lab.a)
    with lab.connect(lab.a) as m:
        assert canon(config(m)) == start  # the journal's replay leaves no empty container
        m.discard_changes()


@pytest.mark.parametrize("body,path", [
    ("<vpn><name>siteA-siteB</name><remote-address>198.51.100.7</remote-address>"
     "<remote-address>198.51.100.8</remote-address></vpn>",
     "/ipsec-nf:ike/ipsec-nf:vpn[ipsec-nf:name='siteA-siteB']/ipsec-nf:remote-address"),
    # (several subnets per side are a list now: a leaf of the selector twice is refused)
    ("<vpn><name>siteA-siteB</name><security-policy><name>trunk</name><local-ts>"
     "<protocol>6</protocol><protocol>17</protocol></local-ts></security-policy>"
     "</vpn>",
     "/ipsec-nf:ike/ipsec-nf:vpn[ipsec-nf:name='siteA-siteB']/ipsec-nf:security-policy"
     "[ipsec-nf:name='trunk']/ipsec-nf:local-ts/ipsec-nf:protocol"),
    ("<pre-shared-key><name>site-psk</name><id>x</id><id>x</id></pre-shared-key>",
     "/ipsec-nf:ike/ipsec-nf:pre-shared-key[ipsec-nf:name='site-psk']/ipsec-nf:id[.='x']"),
])
def test_a_leaf_given_twice_is_refused(lab: Lab, body: str, path: str) -> None:
    with lab.connect(lab.a) as m:
        e = refused(m, config=ike(body))
        assert e.tag == "bad-element"
        assert e.path.strip() == path
        assert "more than once" in e.message
