"""More of the NETCONF server over SSH with ncclient: validate, rollback-on-error, XPath
filters, NMDA get-data, interleave, delete-config, confirmed commit persist/cancel, history."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lxml import etree
from ncclient.operations.rpc import RPCError
from ncclient.xml_ import to_ele

from tools.lab import Lab, running, site_config

pytestmark = pytest.mark.e2e  # root, network namespaces, charon

NS = "urn:ipsec-nf:yang:ipsec-nf"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NMDA = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"
P = {"i": NS, "nc": NC, "n": NMDA}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running(tmp_path_factory.mktemp("oplab"), sites="A") as lab:
        with lab.connect(lab.a) as m:
            m.edit_config(target="running", config=site_config(lab.a))
        yield lab


def ike(body: str, nc_ns: bool = False) -> str:
    extra = f' xmlns:nc="{NC}"' if nc_ns else ""
    return f'<config xmlns="{NC}"{extra}><ike xmlns="{NS}">{body}</ike></config>'


def local_id(m, ds: str = "running") -> str:
    d = etree.fromstring(m.get_config(ds).data_xml.encode())
    return d.findtext("i:ike/i:vpn/i:local-id", namespaces=P)


def test_validate_candidate_and_inline(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        m.edit_config(target="candidate", test_option="set", config=ike(
            "<vpn><name>v9</name><ike-policy><template>missing</template></ike-policy>"
            "<ipsec-policy><template>ipsectemp1</template></ipsec-policy></vpn>"))
        with pytest.raises(RPCError) as ei:
            m.validate(source="candidate")
        assert ei.value.tag == "data-missing"
        m.discard_changes()
        m.validate(source="candidate")
        m.validate(source=to_ele(site_config(lab.a)))


def test_rollback_on_error_applies_nothing(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        before = local_id(m)
        with pytest.raises(RPCError):
            # the first change is valid and applied in place before the second fails
            # validation (a bad address in another VPN): nothing of it may remain
            m.edit_config(target="running", error_option="rollback-on-error", config=ike(
                "<vpn><name>siteA-siteB</name><local-id>half.example.net</local-id></vpn>"
                "<vpn><name>other</name><remote-address>bad</remote-address></vpn>"))
        assert local_id(m) == before
        names = etree.fromstring(m.get_config("running").data_xml.encode()).xpath(
            "//i:vpn/i:name/text()", namespaces={"i": NS})
        assert "other" not in names


def test_xpath_filter(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        r = m.get_config("running", filter=("xpath", ({"i": NS}, "/i:ike/i:vpn/i:local-id")))
        d = etree.fromstring(r.data_xml.encode())
        assert d.findtext("i:ike/i:vpn/i:name", namespaces=P) == "siteA-siteB"
        assert d.find("i:ike/i:vpn/i:remote-id", P) is None
        assert d.find("i:ike/i:ike-policy-template", P) is None


def test_get_data_operational(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        r = m.dispatch(to_ele(
            f'<get-data xmlns="{NMDA}" xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores">'
            "<datastore>ds:operational</datastore><with-origin/></get-data>"))
        d = etree.fromstring(r.xml.encode())
        root = d.find("n:data/i:ike", P)
        assert root.get("{urn:ietf:params:xml:ns:yang:ietf-origin}origin") == "or:intended"
        assert root.find("i:ike-sas", P) is not None


def test_interleave_rpcs_on_a_subscribed_session(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        m.create_subscription()
        m.edit_config(target="running", config=ike(
            "<vpn><name>siteA-siteB</name><local-id>il.example.net</local-id></vpn>"))
        assert local_id(m) == "il.example.net"
        n = m.take_notification(block=True, timeout=10)
        assert n is not None and "netconf-config-change" in n.notification_xml
        m.edit_config(target="running", config=site_config(lab.a))


def test_delete_config_startup(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        m.copy_config(source="running", target="startup")
        m.delete_config(target="startup")
        assert "siteA-siteB" not in m.get_config("startup").data_xml
        with pytest.raises(RPCError):
            m.delete_config(target="running")


def test_persistent_confirmed_commit_cancelled_from_another_session(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        m.edit_config(target="candidate", config=ike(
            "<vpn><name>siteA-siteB</name><local-id>cc.example.net</local-id></vpn>"))
        m.commit(confirmed=True, timeout="60", persist="token-1")
    with lab.connect(lab.a) as m2:
        assert local_id(m2) == "cc.example.net"  # survived the end of its session
        with pytest.raises(RPCError):
            m2.cancel_commit(persist_id="wrong")
        m2.cancel_commit(persist_id="token-1")
        assert local_id(m2) == "secgwa.example.net"


def test_commit_history_over_ssh(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        m.edit_config(target="candidate", config=ike(
            "<vpn><name>siteA-siteB</name><local-id>h.example.net</local-id></vpn>"))
        m.dispatch(to_ele(f'<commit xmlns="{NC}"><comment xmlns="{NS}">rename id</comment>'
                          "</commit>"))
        r = etree.fromstring(m.dispatch(to_ele(f'<list-commits xmlns="{NS}"/>')).xml.encode())
        newest = r.find("i:commit", P)
        assert newest.findtext("i:comment", namespaces=P) == "rename id"
        assert newest.findtext("i:user", namespaces=P) == "admin"
        diff = etree.fromstring(m.dispatch(to_ele(
            f'<show-commit-diff xmlns="{NS}"><rollback>0</rollback></show-commit-diff>'))
            .xml.encode()).findtext("i:diff", namespaces=P)
        assert "+" in diff and "h.example.net" in diff
        m.dispatch(to_ele(f'<rollback xmlns="{NS}"><rollback>1</rollback></rollback>'))
        m.commit()
        assert local_id(m) == "secgwa.example.net"
