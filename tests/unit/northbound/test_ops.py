"""NETCONF operations through the dispatcher, on a real datastore, without a transport."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from nf.datastore import Datastores
from nf.schema import Schema
from tests.support import NS, P


def test_get_config_subtree_filter(call) -> None:
    r = call(f'<get-config><source><running/></source><filter type="subtree">'
             f'<ike xmlns="{NS}"><vpn><name>siteA-siteB</name><local-id/></vpn></ike>'
             f"</filter></get-config>")
    vpn = r.find("nc:data/i:ike/i:vpn", P)
    assert [etree.QName(c).localname for c in vpn] == ["name", "local-id"]
    assert r.get("message-id") == "7"
    assert r.find("nc:data/i:ike/i:pre-shared-key", P) is None


def test_get_config_xpath_filter(call) -> None:
    r = call(f'<get-config><source><running/></source><filter type="xpath" xmlns:i="{NS}" '
             f'select="/i:ike/i:vpn/i:local-address"/></get-config>')
    vpn = r.find("nc:data/i:ike/i:vpn", P)
    assert vpn.findtext("i:name", namespaces=P) == "siteA-siteB"
    assert vpn.findtext("i:local-address", namespaces=P) == "198.51.100.1"
    assert vpn.find("i:remote-address", P) is None


def test_get_includes_state(call) -> None:
    r = call("<get/>")
    assert r.findtext("nc:data/i:ike/i:ike-sa/i:state", namespaces=P) == "established"
    assert r.find("nc:data/i:ike/i:vpn", P) is not None


@pytest.mark.parametrize("msg,tag", [
    (b"<rpc xmlns='urn:ietf:params:xml:ns:netconf:base:1.0' message-id='1'><get>",
     "malformed-message"),
    (b"<rpc xmlns='urn:ietf:params:xml:ns:netconf:base:1.0'><get/></rpc>", "missing-attribute"),
    (b"<rpc xmlns='urn:ietf:params:xml:ns:netconf:base:1.0' message-id='1'><frobnicate/></rpc>",
     "operation-not-supported"),
])
def test_malformed_rpcs_get_errors(call, msg: bytes, tag: str) -> None:
    r = call(msg, raw=True)
    assert r.findtext("nc:rpc-error/nc:error-tag", namespaces=P) == tag
    # the server lives on
    assert call("<get-config><source><running/></source></get-config>").find("nc:data", P) \
        is not None


def test_edit_error_has_tag_path_message(call) -> None:
    r = call(f'<edit-config><target><candidate/></target><config><ike xmlns="{NS}"><vpn>'
             f"<name>siteA-siteB</name><local-address>300.1.1.1</local-address></vpn></ike>"
             f"</config></edit-config>")
    err = r.find("nc:rpc-error", P)
    assert err.findtext("nc:error-tag", namespaces=P) == "invalid-value"
    assert "local-address" in err.findtext("nc:error-path", namespaces=P)
    assert "300.1.1.1" in err.findtext("nc:error-message", namespaces=P)


def test_candidate_commit_discard(call) -> None:
    edit = (f'<edit-config><target><candidate/></target><config><ike xmlns="{NS}"><vpn>'
            f"<name>siteA-siteB</name><local-id>changed.example.net</local-id></vpn></ike>"
            f"</config></edit-config>")
    assert call(edit).find("nc:ok", P) is not None
    get_run = "<get-config><source><running/></source></get-config>"
    assert b"changed.example.net" not in etree.tostring(call(get_run))
    call("<discard-changes/>")
    assert b"changed.example.net" not in etree.tostring(
        call("<get-config><source><candidate/></source></get-config>"))
    call(edit)
    assert call("<commit/>").find("nc:ok", P) is not None
    assert b"changed.example.net" in etree.tostring(call(get_run))


def test_close_session_sets_closing(call) -> None:
    assert call("<close-session/>").find("nc:ok", P) is not None
    assert call.session.closing


def test_startup_copy_and_delete(call, tmp_path: Path) -> None:
    r = call("<copy-config><target><startup/></target><source><running/></source></copy-config>")
    assert r.find("nc:ok", P) is not None, etree.tostring(r)
    assert (tmp_path / "startup.xml").exists()
    got = call("<get-config><source><startup/></source></get-config>")
    assert got.findtext("nc:data/i:ike/i:vpn/i:name", namespaces=P) == "siteA-siteB"
    # boot: running comes from startup
    ds = Datastores(Schema(), tmp_path)
    assert ds.tree("running").find(f"{{{NS}}}ike") is not None
    # ietf-netconf's delete-config has no <running> target (RFC 7950 section 8.3.1)
    r = call("<delete-config><target><running/></target></delete-config>")
    assert r.findtext("nc:rpc-error/nc:error-tag", namespaces=P) == "unknown-element"
    assert call("<delete-config><target><startup/></target></delete-config>").find(
        "nc:ok", P) is not None
    assert not (tmp_path / "startup.xml").exists()


@pytest.mark.parametrize("mode,has_default,tagged", [
    ("explicit", False, False), ("report-all", True, False),
    ("report-all-tagged", True, True), ("trim", False, False)])
def test_with_defaults(call, mode: str, has_default: bool, tagged: bool) -> None:
    wd = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults"
    r = call(f'<get-config><source><running/></source><with-defaults xmlns="{wd}">{mode}'
             "</with-defaults></get-config>")
    kt = r.find("nc:data/i:ike/i:ike-policy-template/i:keying-tries", P)
    assert (kt is not None) == has_default, etree.tostring(r)
    if kt is not None:
        assert kt.text == "1"
        # RFC 6243 section 6: the attribute's own namespace, never the module's
        assert (kt.get("{urn:ietf:params:xml:ns:netconf:default:1.0}default") == "true") \
            == tagged
        assert kt.get(f"{{{wd}}}default") is None
    assert r.findtext("nc:data/i:ike/i:vpn/i:name", namespaces=P) == "siteA-siteB"


def test_monitoring_and_yang_library_in_get(call) -> None:
    ncm = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"
    yl = "urn:ietf:params:xml:ns:yang:ietf-yang-library"
    call("<lock><target><candidate/></target></lock>")
    r = call(f'<get><filter type="subtree"><netconf-state xmlns="{ncm}"/>'
             f'<yang-library xmlns="{yl}"/></filter></get>')
    p = {**P, "m": ncm, "y": yl}
    ids = r.xpath("//m:schemas/m:schema/m:identifier/text()", namespaces=p)
    assert {"ipsec-nf", "ietf-netconf-monitoring", "ietf-yang-library"} <= set(ids)
    assert r.xpath("//m:datastore[m:name='candidate']/m:locks/m:global-lock/"
                   "m:locked-by-session/text()", namespaces=p) == ["1"]
    assert int(r.xpath("//m:statistics/m:in-rpcs/text()", namespaces=p)[0]) >= 2
    assert "ipsec-nf" in r.xpath("//y:module-set/y:module/y:name/text()", namespaces=p)
    assert r.find("nc:data/i:ike", P) is None


@pytest.mark.parametrize("ident", ["ipsec-nf", "ietf-inet-types", "ietf-yang-library",
                                   "ietf-netconf-acm"])
def test_get_schema(call, ident: str) -> None:
    ncm = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"
    r = call(f'<get-schema xmlns="{ncm}"><identifier>{ident}</identifier></get-schema>')
    text = r.findtext(f"{{{ncm}}}data")
    assert text and text.lstrip().startswith("module " + ident), etree.tostring(r)[:300]
    r = call(f'<get-schema xmlns="{ncm}"><identifier>nope</identifier></get-schema>')
    assert r.findtext("nc:rpc-error/nc:error-tag", namespaces=P) == "invalid-value"


def test_multiple_filter_siblings_and_xpath_union(call) -> None:
    call(f'<edit-config><target><running/></target><config><ike xmlns="{NS}"><vpn><name>b</name>'
         "<ike-policy><template>iketemp1</template></ike-policy><ipsec-policy><template>"
         "ipsectemp1</template></ipsec-policy><local-id>bee</local-id></vpn></ike></config>"
         "</edit-config>")
    r = call(f'<get-config><source><running/></source><filter type="subtree">'
             f'<ike xmlns="{NS}"><vpn><name>siteA-siteB</name><local-id/></vpn>'
             "<vpn><name>b</name><local-id/></vpn></ike></filter></get-config>")
    got = {v.findtext("i:name", namespaces=P): v.findtext("i:local-id", namespaces=P)
           for v in r.iterfind(".//i:vpn", P)}
    assert got == {"siteA-siteB": "secgwa.example.net", "b": "bee"}
    r = call(f'<get-config><source><running/></source><filter type="xpath" xmlns:i="{NS}" '
             'select="/i:ike/i:vpn/i:name | /i:ike/i:pre-shared-key/i:name"/></get-config>')
    assert r.find("nc:data/i:ike/i:pre-shared-key/i:name", P) is not None
    assert len(r.findall("nc:data/i:ike/i:vpn", P)) == 2


def test_insert_first_in_ordered_leaf_list(call) -> None:
    y = "urn:ietf:params:xml:ns:yang:1"
    call(f'<edit-config><target><running/></target><config><ike xmlns="{NS}" xmlns:yang="{y}">'
         "<ike-policy-template><name>iketemp1</name><ike-proposal><id>1</id>"
         '<enc-alg yang:insert="first">aes256-cbc</enc-alg></ike-proposal>'
         "</ike-policy-template></ike></config></edit-config>")
    r = call("<get-config><source><running/></source></get-config>")
    algs = [e.text for e in r.iterfind(".//i:ike-policy-template/i:ike-proposal/i:enc-alg", P)]
    assert algs == ["aes256-cbc", "aes128-cbc"]
    assert b"insert" not in etree.tostring(r)
