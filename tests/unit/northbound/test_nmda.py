"""NMDA get-data / edit-data (RFC 8526) through the dispatcher."""

from __future__ import annotations

import pytest
from lxml import etree

from tests.support import NS, P

NMDA = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"
DS = "urn:ietf:params:xml:ns:yang:ietf-datastores"
OR = "urn:ietf:params:xml:ns:yang:ietf-origin"
Q = {**P, "n": NMDA}


def get_data(call, ds: str, extra: str = "") -> etree._Element:
    return call(f'<get-data xmlns="{NMDA}" xmlns:ds="{DS}"><datastore>ds:{ds}</datastore>'
                f"{extra}</get-data>")


def test_operational_has_config_state_and_origins(call) -> None:
    r = get_data(call, "operational", "<with-origin/>")
    ike = r.find("n:data/i:ike", Q)
    assert ike.get(f"{{{OR}}}origin") == "or:intended"
    assert ike.find("i:vpn", Q) is not None
    # ietf-origin: origins are for configuration nodes; state data carries none
    sa = ike.find("i:ike-sa", Q)
    assert sa is not None and sa.get(f"{{{OR}}}origin") is None


def test_config_filter_and_subtree(call) -> None:
    r = get_data(call, "operational", "<config-filter>false</config-filter>")
    ike = r.find("n:data/i:ike", Q)
    assert ike.find("i:vpn", Q) is None and ike.find("i:ike-sa", Q) is not None
    r = get_data(call, "running", f'<subtree-filter><ike xmlns="{NS}"><vpn><name/></vpn>'
                                  "</ike></subtree-filter>")
    assert [e.text for e in r.iterfind("n:data/i:ike/i:vpn/i:name", Q)] == ["siteA-siteB"]


def test_edit_data_candidate(call) -> None:
    r = call(f'<edit-data xmlns="{NMDA}" xmlns:ds="{DS}"><datastore>ds:candidate</datastore>'
             f'<config><ike xmlns="{NS}"><vpn><name>siteA-siteB</name>'
             "<local-id>nmda.example.net</local-id></vpn></ike></config></edit-data>")
    assert r.find("nc:ok", P) is not None, etree.tostring(r)
    r = get_data(call, "candidate")
    assert r.findtext("n:data/i:ike/i:vpn/i:local-id", namespaces=Q) == "nmda.example.net"
    assert get_data(call, "running").findtext(
        "n:data/i:ike/i:vpn/i:local-id", namespaces=Q) == "secgwa.example.net"


@pytest.mark.parametrize("ds", ["nope", "operational"])
def test_bad_datastores(call, ds: str) -> None:
    r = call(f'<edit-data xmlns="{NMDA}" xmlns:ds="{DS}"><datastore>ds:{ds}</datastore>'
             "<config/></edit-data>")
    assert r.findtext("nc:rpc-error/nc:error-tag", namespaces=P) == "invalid-value"
