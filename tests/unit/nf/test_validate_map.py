"""libyang's validation errors, as the installed libyang reports them, map to the rpc-errors of
RFC 7950 section 15: this pins the codes, app-tags and message formats nf/validate.py relies
on, so a libyang upgrade that changes them fails here instead of changing our replies."""

from __future__ import annotations

import libyang
import pytest

from nf.schema import Schema
from nf.validate import LYVE_DATA, LYVE_REFERENCE, to_rpc_error

IPNF = 'xmlns="urn:ipsec-nf:yang:ipsec-nf"'
ACM = 'xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-acm"'
CASES = [
    ("leafref", f"<ike {IPNF}><vpn><name>v</name><ike-policy><template>nope</template>"
                "</ike-policy></vpn></ike>",
     LYVE_DATA, "instance-required", "data-missing", "instance-required"),
    ("must", f"<ike {IPNF}><ike-policy-template><name>t</name><ike-proposal><id>1</id>"
             "<enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha256</auth-alg></ike-proposal>"
             "</ike-policy-template></ike>",
     LYVE_DATA, "must-violation", "operation-failed", "must-violation"),
    ("bad value", f"<ike {IPNF}><vpn><name>v</name><remote-address>198.51.100.300</remote-address>"
                  "</vpn></ike>",
     LYVE_DATA, None, "invalid-value", None),
    ("range", f"<ike {IPNF}><global-options><threads>99999999</threads></global-options></ike>",
     LYVE_DATA, None, "invalid-value", None),
    ("unknown node", f"<ike {IPNF}><vpn><name>v</name><bogus>1</bogus></vpn></ike>",
     LYVE_REFERENCE, None, "unknown-element", None),
    ("duplicate", f"<ike {IPNF}><vpn><name>v</name><local-id>a</local-id><local-id>b</local-id>"
                  "</vpn></ike>",
     LYVE_DATA, None, "bad-element", None),
    ("mandatory", f"<nacm {ACM}><rule-list><name>r</name><rule><name>x</name></rule>"
                  "</rule-list></nacm>",
     LYVE_DATA, None, "data-missing", "mandatory"),
]


@pytest.fixture(scope="module")
def schema() -> Schema:
    return Schema()


@pytest.mark.parametrize(("case", "xml", "vecode", "apptag", "tag", "app_tag"), CASES,
                         ids=[c[0] for c in CASES])
def test_libyang_error_maps_to_rpc_error(schema: Schema, case: str, xml: str, vecode: int,
                                         apptag: str | None, tag: str,
                                         app_tag: str | None) -> None:
    with pytest.raises(libyang.LibyangError):
        schema.parse_config(xml)
    items = schema.ctx.last_errors
    assert items, case
    assert (items[0].vecode, items[0].apptag) == (vecode, apptag), items[0]
    err = to_rpc_error(items, "invalid", schema.top).errors[0]
    assert (err.tag, err.app_tag) == (tag, app_tag), err
    assert err.path and err.path.startswith("/")


def test_when_false_in_rpc_input_is_an_unknown_element(schema: Schema) -> None:
    items = schema.validate_rpc(
        '<get-data xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-nmda" '
        'xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores" '
        'xmlns:or="urn:ietf:params:xml:ns:yang:ietf-origin"><datastore>ds:running</datastore>'
        "<origin-filter>or:intended</origin-filter></get-data>")
    assert items and (items[0].vecode, items[0].apptag) == (LYVE_DATA, None)
    assert to_rpc_error(items, "invalid").errors[0].tag == "unknown-element"


def test_a_secret_is_never_repeated(schema: Schema) -> None:
    with pytest.raises(libyang.LibyangError):
        schema.parse_config(f"<ike {IPNF}><pre-shared-key><name>k</name>"
                            "<secret>0xzz-hunter2</secret></pre-shared-key></ike>")
    err = to_rpc_error(schema.ctx.last_errors, "invalid", schema.top).errors[0]
    assert "hunter2" not in err.message and "value not shown" in err.message
    assert err.tag == "invalid-value"
