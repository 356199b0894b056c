"""Every operation's input is validated by libyang against its YANG definition before the
handler runs: types, ranges, enumerations, mandatory parameters, `when`s (RFC 6241 / 7950)."""

from __future__ import annotations

import pytest
from lxml import etree

from tests.support import P

IPNF = 'xmlns="urn:ipsec-nf:yang:ipsec-nf"'
NMDA = ('xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-nmda" '
        'xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores"')
CASES = [
    ("<commit><confirmed/><confirm-timeout>abc</confirm-timeout></commit>",
     "invalid-value", "confirm-timeout"),
    ("<commit><confirmed/><confirm-timeout>0</confirm-timeout></commit>",
     "invalid-value", "confirm-timeout"),
    ("<edit-config><target><candidate/></target><default-operation>bogus</default-operation>"
     "<config/></edit-config>", "invalid-value", "default-operation"),
    ("<lock/>", "missing-element", None),
    ("<kill-session><session-id>0</session-id></kill-session>", "invalid-value", "session-id"),
    (f"<wait-applied {IPNF}><timeout>99999</timeout></wait-applied>", "invalid-value",
     "timeout"),
    (f"<rollback {IPNF}/>", "missing-element", "rollback"),
    (f"<get-data {NMDA}><datastore>ds:operational</datastore><max-depth>0</max-depth>"
     "</get-data>", "invalid-value", "max-depth"),
]


@pytest.mark.parametrize(("body", "tag", "bad"), CASES, ids=[c[1] + ":" + c[0][:30]
                                                            for c in CASES])
def test_bad_input_is_refused_before_the_handler(call, body: str, tag: str,
                                                 bad: str | None) -> None:
    before = etree.tostring(call.ctx.ds.tree("running"))
    r = call(body)
    assert r.findtext("nc:rpc-error/nc:error-tag", namespaces=P) == tag, etree.tostring(r)
    assert r.findtext("nc:rpc-error/nc:error-type", namespaces=P) == "protocol"
    if bad is not None:
        assert r.findtext("nc:rpc-error/nc:error-info/nc:bad-element", namespaces=P) == bad
    assert etree.tostring(call.ctx.ds.tree("running")) == before


def test_big_config_is_not_parsed_twice(call) -> None:
    """The <config> of an edit (anyxml) stays out of the input validation, whatever it holds."""
    r = call("<edit-config><target><candidate/></target><config>"
             f"<ike {IPNF}><vpn><name>siteA-siteB</name>"
             "<local-id>a.example.net</local-id></vpn></ike>"
             "</config></edit-config>")
    assert r.find("nc:ok", P) is not None, etree.tostring(r)


def test_a_valid_operation_is_parsed_once(call, monkeypatch) -> None:
    """libyang's answer depends on the operation without its anyxml content alone: once
    valid it is remembered (reads of other keys, other filters: parsed once); an invalid one
    is refused each time; another parameter is parsed again."""
    seen: list[str] = []
    real = call.ctx.schema.validate_rpc
    monkeypatch.setattr(call.ctx.schema, "validate_rpc", lambda xml: seen.append(xml) or
                        real(xml))

    def by_key(name: str, source: str = "running") -> str:
        return (f'<get-config><source><{source}/></source><filter type="subtree">'
                f"<ike {IPNF}><vpn><name>{name}</name></vpn></ike></filter></get-config>")

    for name in ("siteA-siteB", "v1", "v2"):
        assert call(by_key(name)).find("nc:data", P) is not None
    assert len(seen) == 1 and "siteA-siteB" not in seen[0]  # the filter is not sent
    bad = CASES[0][0]
    for _ in range(2):
        assert call(bad).findtext("nc:rpc-error/nc:error-tag", namespaces=P) == "invalid-value"
    assert len(seen) == 3
    call(by_key("v1", "candidate"))
    call(by_key("v2", "candidate"))
    assert len(seen) == 4
