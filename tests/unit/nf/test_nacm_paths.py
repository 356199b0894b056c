"""NACM rule paths and denial paths go through nf.paths: predicates on leaf-list values and
key values holding quotes match what they say (they used to be dropped or cut), and
error-paths quote such values."""

from __future__ import annotations

import copy

import pytest
from lxml import etree

from nf.errors import AccessDenied
from nf.nacm import Access, parse_policy, prune_unreadable, write_checker
from nf.schema import Schema
from nf.validate import validate
from tests.support import DATA

NS = "urn:ipsec-nf:yang:ipsec-nf"
ACM = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"


def running(rule_path: str, action: str = "deny", ops: str = "read",
            list_name: str = "limits") -> etree._Element:
    doc = etree.parse(str(DATA / "site_a.xml")).getroot()
    doc.append(etree.fromstring(
        # the prefixes on the root: lxml drops a nested declaration of a namespace that is
        # already the default one when the tree moves (the rule would lose its 'n')
        f"""<nacm xmlns="{ACM}" xmlns:i="{NS}" xmlns:n="{ACM}">
          <write-default>permit</write-default>
          <rule-list><name>{list_name}</name><group>ops</group>
            <rule><name>r</name><module-name>*</module-name>
              <path>{rule_path}</path>
              <access-operations>{ops}</access-operations><action>{action}</action></rule>
          </rule-list></nacm>"""))
    return doc


def ids(access: Access, doc: etree._Element, schema: Schema) -> list[str]:
    roots = prune_unreadable(access, [copy.deepcopy(r) for r in doc], schema.top)
    ike = next(r for r in roots if r.tag == f"{{{NS}}}ike")
    return [e.text or "" for e in ike.iterfind(f"{{{NS}}}pre-shared-key/{{{NS}}}id")]


def test_a_leaf_list_value_predicate_hides_that_value_only(schema: Schema) -> None:
    doc = running("/i:ike/i:pre-shared-key/i:id[.='secgwa.example.net']")
    validate(schema, list(doc))  # a valid NACM configuration
    access = Access(parse_policy(doc), "olga", ["ops"])
    assert ids(access, doc, schema) == ["secgwb.example.net"]
    plain = Access(parse_policy(doc), "olga", [])
    assert ids(plain, doc, schema) == ["secgwa.example.net", "secgwb.example.net"]


@pytest.mark.parametrize("quoted", ["\"it's\"", "'say \"hi\"'"])
def test_rule_key_values_with_quotes(schema: Schema, quoted: str) -> None:
    name = quoted[1:-1]
    doc = running(f"/n:nacm/n:rule-list[n:name={quoted}]", action="permit", ops="update",
                  list_name=name.replace('"', "&quot;"))
    nacm = doc.find(f"{{{ACM}}}nacm")
    other = copy.deepcopy(nacm.find(f"{{{ACM}}}rule-list"))
    other.find(f"{{{ACM}}}name").text = "other"
    nacm.append(other)
    validate(schema, list(doc))
    policy = parse_policy(doc)
    (rule,) = policy.rule_lists[0][1]
    assert rule.path is not None and rule.path[1].key_values() == {"name": name}
    check = write_checker(Access(policy, "olga", ["ops"]), schema.top)
    lists = nacm.findall(f"{{{ACM}}}rule-list")
    check("update", lists[0].find(f"{{{ACM}}}group"), False)  # the rule permits it
    with pytest.raises(AccessDenied):  # /nacm is default-deny-all
        check("update", lists[1].find(f"{{{ACM}}}group"), False)


def test_unreadable_rule_path_matches_nothing(schema: Schema) -> None:
    doc = running("/i:ike/i:vpn[", action="deny")
    access = Access(parse_policy(doc), "olga", ["ops"])
    assert ids(access, doc, schema) == ["secgwa.example.net", "secgwb.example.net"]


def test_denied_write_path_quotes_key_values(schema: Schema) -> None:
    doc = running("/i:ike/i:vpn", action="deny", ops="update")
    vpn = doc.find(f"{{{NS}}}ike/{{{NS}}}vpn")
    vpn.find(f"{{{NS}}}name").text = "it's"
    check = write_checker(Access(parse_policy(doc), "olga", ["ops"]), schema.top)
    with pytest.raises(AccessDenied) as e:
        check("update", vpn.find(f"{{{NS}}}local-id"), False)
    assert e.value.error.path == ("/ipsec-nf:ike/ipsec-nf:vpn[ipsec-nf:name=\"it's\"]"
                                  "/ipsec-nf:local-id")
    ident = doc.find(f"{{{NS}}}ike/{{{NS}}}pre-shared-key/{{{NS}}}id")
    deny_ids = running("/i:ike/i:pre-shared-key/i:id", action="deny", ops="delete")
    check = write_checker(Access(parse_policy(deny_ids), "olga", ["ops"]), schema.top)
    with pytest.raises(AccessDenied) as e:
        check("delete", ident, False)
    # a leaf-list is named without its value
    assert e.value.error.path == ("/ipsec-nf:ike/ipsec-nf:pre-shared-key"
                                  "[ipsec-nf:name='siteb']/ipsec-nf:id")
