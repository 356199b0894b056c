"""nf.paths: instance paths built, parsed and resolved against the schema, checked against
libyang itself (the paths we build find the node in libyang's data tree, and libyang's own
paths of those nodes read back to the same paths)."""

from __future__ import annotations

from collections.abc import Iterator

import libyang
import pytest
from lxml import etree

from nf import paths
from nf.paths import PathError, Step
from nf.schema import Schema
from tests.support import DATA

NS = "urn:ipsec-nf:yang:ipsec-nf"
ACM = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
# key values that a hand-written path gets wrong: quotes, and the characters of the syntax
AWKWARD = ["it's", 'say "hi"', "a/b:c", "x]y[z", "k='v'", " spaced ", "fe80::1", ""]


def config(names: list[str]) -> etree._Element:
    """site_a.xml plus /nacm with one rule-list (any string is a valid name) per name."""
    doc = etree.parse(str(DATA / "site_a.xml")).getroot()
    nacm = etree.SubElement(doc, f"{{{ACM}}}nacm", nsmap={None: ACM})
    for name in names:
        rl = etree.SubElement(nacm, f"{{{ACM}}}rule-list")
        etree.SubElement(rl, f"{{{ACM}}}name").text = name
        etree.SubElement(rl, f"{{{ACM}}}group").text = name or "g"
    return doc


def data_nodes(doc: etree._Element) -> Iterator[etree._Element]:
    return (e for e in doc.iter() if e is not doc and isinstance(e.tag, str))


@pytest.fixture
def libyang_tree(schema: Schema) -> Iterator[tuple[etree._Element, libyang.DNode]]:
    doc = config([n for n in AWKWARD if n != ""])
    xml = "".join(etree.tostring(c, encoding="unicode") for c in doc)
    dnode = schema.ctx.parse_data_mem(xml, "xml", parse_only=True, strict=True)
    yield doc, dnode
    dnode.free()


def test_built_paths_find_the_node_in_libyang_and_read_back(
        schema: Schema, libyang_tree: tuple[etree._Element, libyang.DNode]) -> None:
    doc, dnode = libyang_tree
    count = 0
    for el in data_nodes(doc):
        path = paths.instance_path(el, schema.top, doc)
        found = dnode.find_path(path)
        assert found is not None, path
        assert paths.from_libyang(found.path()) == path
        assert paths.build(paths.parse(path)) == path
        assert paths.resolve(paths.parse(path), schema.top)[-1] is paths.chain(
            el, schema.top, doc)[-1][1]
        count += 1
    assert count > 40


@pytest.mark.parametrize("value", AWKWARD)
def test_round_trip_of_awkward_key_values(value: str) -> None:
    steps = (Step("ietf-netconf-acm", "nacm"),
             Step("ietf-netconf-acm", "rule-list", (("name", value),)),
             Step("ietf-netconf-acm", "group", ((".", value),)))
    path = paths.build(steps)
    assert paths.parse(path) == steps
    assert paths.from_libyang(path) == path


def test_quoting_follows_xpath_and_libyang() -> None:
    assert paths.quote("a") == "'a'"
    assert paths.quote("it's") == '"it\'s"'
    assert paths.quote('say "hi"') == "'say \"hi\"'"
    step = Step("m", "l", (("k", "it's"), ("j", "x")), None)
    assert paths.format_step(step) == "/m:l[m:k=\"it's\"][m:j='x']"
    assert paths.format_step(Step("m", "ll", ((".", "v"),))) == "/m:ll[.='v']"
    assert paths.format_step(Step("", "x", position=2)) == "/x[2]"
    assert paths.build([]) == "/"


def test_parse_prefixes_inheritance_and_whitespace() -> None:
    assert paths.parse("/a:x/y[k = 'v' ][ j=\"w\"]/b:z", inherit=True) == (
        Step("a", "x"), Step("a", "y", (("k", "v"), ("j", "w"))), Step("b", "z"))
    assert paths.parse("/a:x/y") == (Step("a", "x"), Step("", "y"))
    assert paths.parse("/") == ()
    assert paths.parse("ipsec-nf:ike/ipsec-nf:vpn") == paths.parse("/ipsec-nf:ike/ipsec-nf:vpn")
    assert paths.parse("/m:l[p:k='v'][3]") == (Step("m", "l", (("k", "v"),), 3),)


def test_parse_resolves_prefixes_through_the_namespaces_in_scope(schema: Schema) -> None:
    nsmap = {"i": NS, "q": "urn:unknown"}
    assert paths.parse("/i:ike/i:vpn[i:name='a']", nsmap) == (
        Step("ipsec-nf", "ike"), Step("ipsec-nf", "vpn", (("name", "a"),)))
    assert paths.parse("/q:x/zz:y", nsmap) == (Step("q", "x"), Step("zz", "y"))


@pytest.mark.parametrize("bad", ["", "//a", "/a/", "/a[", "/a[k=v]", "/a[k='v'", "/a[k='v']]",
                                 "/a[k]", "/1a", "/a b", "/a[k='v']x", "/a:"])
def test_unreadable_paths_raise(bad: str) -> None:
    with pytest.raises(PathError):
        paths.parse(bad)


def test_key_predicates_alone() -> None:
    assert paths.parse_predicates(" [p:name='a'] [id=\"it's\"] ") == [
        ("p", "name", "a"), (None, "id", "it's")]
    assert paths.parse_predicates("") == []
    for bad in ["[1]", "[a='b']x", "name='a'", "[a='b'"]:
        with pytest.raises(PathError):
            paths.parse_predicates(bad)


def test_libyang_locations(schema: Schema) -> None:
    with pytest.raises(libyang.LibyangError):
        schema.parse_config(f"<nacm xmlns='{ACM}'><rule-list><name>it's a/b</name><rule>"
                            "<name>r</name><action>bogus</action></rule></rule-list></nacm>")
    located = schema.ctx.last_errors[0].path
    assert located is not None and located.startswith('Data location "')
    assert paths.from_libyang(located) == (
        "/ietf-netconf-acm:nacm/ietf-netconf-acm:rule-list[ietf-netconf-acm:name=\"it's a/b\"]"
        "/ietf-netconf-acm:rule[ietf-netconf-acm:name='r']/ietf-netconf-acm:action")
    assert paths.from_libyang('Schema location "/ietf-netconf-acm:nacm/rule-list/rule/action"'
                              '.') == ("/ietf-netconf-acm:nacm/ietf-netconf-acm:rule-list"
                                       "/ietf-netconf-acm:rule/ietf-netconf-acm:action")
    assert paths.from_libyang("/ike/vpn[name='a']") == (
        "/ipsec-nf:ike/ipsec-nf:vpn[ipsec-nf:name='a']")
    assert paths.from_libyang(None) is None
    assert paths.from_libyang("not a path!") == "not a path!"


def test_prefixes_skip_quoted_values() -> None:
    assert paths.prefixes("/a:x/b:y[b:k='c:d'][.=\"e:f\"]") == {"a", "b"}
    assert paths.prefixes("/ietf-netconf:rpc/ipsec-nf:wait-applied") == {
        "ietf-netconf", "ipsec-nf"}


def test_resolve_and_unknown_nodes(schema: Schema) -> None:
    vpn, name = paths.resolve(paths.parse("/ipsec-nf:ike/ipsec-nf:vpn/ipsec-nf:name"),
                              schema.top)[1:]
    assert vpn is not None and vpn.kind == "list" and vpn.keys == ("name",)
    assert name is not None and name.kind == "leaf"
    assert paths.resolve(paths.parse("/ipsec-nf:ike/ipsec-nf:nope/ipsec-nf:name"),
                         schema.top)[1:] == [None, None]
    assert paths.resolve(paths.parse("/nobody:ike"), schema.top) == [None]
    by_name = paths.resolve(paths.parse("/ipsec-nf:ike/vpn"), schema.top)[1]
    assert by_name is vpn  # a step without prefix matches by name
    assert paths.find(None, "ipsec-nf", "ike") is None


def test_chain_of_an_element_and_unknown_ones(schema: Schema) -> None:
    doc = config([])
    secret = doc.find(f".//{{{NS}}}secret")
    assert [sn.name for _, sn in paths.chain(secret, schema.top, doc) if sn] == [
        "ike", "pre-shared-key", "secret"]
    stray = etree.SubElement(secret.getparent(), "{urn:x}stray")
    chain = paths.chain(stray, schema.top, doc)
    assert chain[-1][1] is None
    assert paths.element_step(None, stray) == Step("urn:x", "stray")
    assert paths.path_step(None, stray) == "/stray"
    # without base the chain starts at the document's root element
    ike = doc.find(f"{{{NS}}}ike")
    assert paths.chain(ike.find(f"{{{NS}}}vpn"), schema.top)[0][0] is doc


def test_deny_all(schema: Schema) -> None:
    top = schema.top
    assert paths.in_deny_all("/ipsec-nf:ike/ipsec-nf:pre-shared-key[ipsec-nf:name='k']"
                             "/ipsec-nf:secret", top)
    assert not paths.in_deny_all("/ipsec-nf:ike/ipsec-nf:pre-shared-key"
                                 "[ipsec-nf:name='k']/ipsec-nf:name", top)
    assert paths.in_deny_all("/ietf-netconf-acm:nacm/ietf-netconf-acm:groups", top)
    assert not paths.in_deny_all("/ipsec-nf:ike/ipsec-nf:bogus", top)
    assert not paths.in_deny_all(None, top)
    assert paths.in_deny_all("/ipsec-nf:ike/ipsec-nf:vpn[", top)  # unreadable: masked
    assert paths.in_deny_all([Step("ietf-netconf-acm", "nacm")], top)
