"""edit-config to the letter: default-operation none (RFC 6241 7.2), yang:insert before/after
(RFC 7950 7.7.9, 7.8.6, 15.7), empty non-presence containers (RFC 7950 7.5.1), nodes given
twice in one edit. On the datastore, with persistence, undo and commit history."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree

from nf.datastore import Datastores
from nf.errors import RpcError
from nf.history import History, diff
from nf.journal import Journal
from nf.schema import Schema
from nf.validate import validate
from tests.support import DATA, NC, NS

NACM = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
YANG = "urn:ietf:params:xml:ns:yang:1"
XMLNS = f'xmlns:nc="{NC}" xmlns:yang="{YANG}"'


def ike(body: str, extra: str = "") -> etree._Element:
    return etree.fromstring(f'<config xmlns="{NC}" {XMLNS} {extra}>'
                            f'<ike xmlns="{NS}">{body}</ike></config>')


def nacm(body: str, extra: str = "") -> etree._Element:
    return etree.fromstring(f'<config xmlns="{NC}" {XMLNS} {extra}>'
                            f'<nacm xmlns="{NACM}">{body}</nacm></config>')


def rule_list(name: str, attrs: str = "") -> str:
    return (f"<rule-list {attrs}><name>{name}</name><group>g-{name}</group>"
            f"<rule><name>r</name><module-name>ipsec-nf</module-name>"
            "<access-operations>read</access-operations><action>permit</action></rule>"
            "</rule-list>")


def xml(ds: Datastores, name: str = "running") -> bytes:
    return etree.tostring(ds.tree(name), method="c14n")


def refused(ds: Datastores, config: etree._Element, target: str = "running",
            **kw: str) -> RpcError:
    """The edit fails, and the datastore is as it was."""
    before = xml(ds, target)
    with pytest.raises(RpcError) as ei:
        ds.edit(target, config, sid=1, **kw)
    assert xml(ds, target) == before
    return ei.value


def rule_lists(ds: Datastores, name: str = "running") -> list[str]:
    return [e.text for e in ds.tree(name).iterfind(f"{{{NACM}}}nacm/{{{NACM}}}rule-list/"
                                                   f"{{{NACM}}}name")]


def enc_algs(ds: Datastores, name: str = "running") -> list[str]:
    return [e.text for e in ds.tree(name).iterfind(
        f".//{{{NS}}}ike-policy-template/{{{NS}}}ike-proposal/{{{NS}}}enc-alg")]


def proposals(ds: Datastores, name: str = "running") -> list[str]:
    return [e.text for e in ds.tree(name).iterfind(
        f".//{{{NS}}}ike-policy-template/{{{NS}}}ike-proposal/{{{NS}}}id")]


@pytest.fixture
def ds(schema: Schema, tmp_path: Path) -> Datastores:
    d = Datastores(schema, tmp_path)
    d.edit("running", etree.parse(str(DATA / "site_a.xml")).getroot(), sid=1)
    return d


# ---- 1. default-operation none (RFC 6241 7.2) ------------------------------

@pytest.mark.parametrize("body", [
    # a delete under a VPN that does not exist
    "<vpn><name>nope</name><local-id nc:operation='delete'/></vpn>",
    "<vpn><name>nope</name><local-id nc:operation='remove'/></vpn>",
    # a merge (or create) under it would create the VPN: it is not there
    "<vpn><name>nope</name><local-id nc:operation='merge'>x</local-id></vpn>",
    "<vpn><name>nope</name><security-policy nc:operation='create'><name>p</name>"
    "</security-policy></vpn>",
    # a leaf and a leaf-list value without operation that are not there
    "<vpn><name>siteA-siteB</name><ike-policy><rekey-time/></ike-policy></vpn>",
    "<pre-shared-key><name>siteb</name><id>nobody.example.net</id></pre-shared-key>",
])
def test_none_refuses_data_whose_level_is_missing(ds: Datastores, body: str) -> None:
    e = refused(ds, ike(body), default_op="none").errors[0]
    assert e.tag == "data-missing", e
    assert e.path is not None and e.path.startswith("/ipsec-nf:ike/ipsec-nf:")


def test_none_works_where_the_levels_exist(ds: Datastores) -> None:
    # the VPN exists: its leaf is deleted; a leaf named without operation changes nothing
    ds.edit("running", ike("<vpn><name>siteA-siteB</name><local-id>ignored</local-id>"
                           "<remote-id nc:operation='delete'/></vpn>"), sid=1, default_op="none")
    vpn = ds.tree("running").find(f"{{{NS}}}ike/{{{NS}}}vpn")
    assert vpn.findtext(f"{{{NS}}}local-id") == "secgwa.example.net"
    assert vpn.find(f"{{{NS}}}remote-id") is None
    # non-presence containers exist through their children: nacm and groups need no operation
    ds.edit("running", nacm("<groups><group nc:operation='create'><name>ops</name>"
                            "<user-name>olga</user-name></group></groups>"), sid=1,
            default_op="none")
    assert ds.tree("running").find(f"{{{NACM}}}nacm/{{{NACM}}}groups/{{{NACM}}}group") \
        is not None


def test_none_with_remove_of_nothing_creates_nothing(schema: Schema, tmp_path: Path) -> None:
    d = Datastores(schema, tmp_path)
    d.edit("running", ike("<vpn nc:operation='remove'><name>x</name></vpn>"), sid=1,
           default_op="none")
    d.edit("running", nacm("<groups><group nc:operation='remove'><name>x</name></group>"
                           "</groups>"), sid=1, default_op="none")
    assert len(d.tree("running")) == 0
    assert not (tmp_path / "running.1.log").exists() and not (tmp_path / "running.0.log").exists()


# ---- 2. yang:insert before / after (RFC 7950 7.7.9, 7.8.6) -------------------

def with_rule_lists(ds: Datastores, *names: str) -> None:
    ds.edit("running", nacm("".join(rule_list(n) for n in names)), sid=1)
    assert rule_lists(ds) == list(names)


def test_insert_new_entries_before_and_after(ds: Datastores) -> None:
    with_rule_lists(ds, "a", "b", "c")
    ds.edit("running", nacm(rule_list("d", 'yang:insert="before" yang:key="[n:name=\'b\']"'),
                            f'xmlns:n="{NACM}"'), sid=1)
    assert rule_lists(ds) == ["a", "d", "b", "c"]
    ds.edit("running", nacm(rule_list("e", 'yang:insert="after" yang:key="[n:name=\'c\']"'),
                            f'xmlns:n="{NACM}"'), sid=1)
    ds.edit("running", nacm(rule_list("f", "yang:insert='first'")), sid=1)
    assert rule_lists(ds) == ["f", "a", "d", "b", "c", "e"]
    # rules inside a rule-list, with create; double quotes and no prefix are accepted too
    ds.edit("running", nacm("<rule-list><name>a</name>"
                            "<rule nc:operation='create' yang:insert='before' "
                            "yang:key='[name=\"r\"]'><name>r0</name>"
                            "<action>deny</action></rule></rule-list>"), sid=1)
    rules = ds.tree("running").xpath("//n:rule-list[n:name='a']/n:rule/n:name/text()",
                                     namespaces={"n": NACM})
    assert rules == ["r0", "r"]


def test_merge_and_replace_move_existing_entries(ds: Datastores) -> None:
    with_rule_lists(ds, "a", "b", "c", "d")
    k = f'xmlns:n="{NACM}"'
    ds.edit("running", nacm("<rule-list yang:insert='before' yang:key=\"[n:name='a']\">"
                            "<name>c</name></rule-list>", k), sid=1)
    assert rule_lists(ds) == ["c", "a", "b", "d"]
    ds.edit("running", nacm(rule_list("c", "nc:operation='replace' yang:insert='after' "
                                           "yang:key=\"[n:name='d']\""), k), sid=1)
    assert rule_lists(ds) == ["a", "b", "d", "c"]
    ds.edit("running", nacm("<rule-list yang:insert='last'><name>a</name></rule-list>"), sid=1)
    ds.edit("running", nacm("<rule-list yang:insert='first'><name>d</name></rule-list>"),
            sid=1)
    assert rule_lists(ds) == ["d", "b", "c", "a"]
    # a replace that changes the content and moves
    ds.edit("running", nacm("<rule-list nc:operation='replace' yang:insert='first'>"
                            "<name>a</name><group>other</group></rule-list>"), sid=1)
    assert rule_lists(ds) == ["a", "d", "b", "c"]
    # named after itself, or already there: nothing changes, nothing is stored
    size, version = ds.running_j.log_size, ds.version
    ds.edit("running", nacm("<rule-list yang:insert='after' yang:key=\"[n:name='b']\">"
                            "<name>b</name></rule-list>"
                            "<rule-list yang:insert='before' yang:key=\"[n:name='b']\">"
                            "<name>d</name></rule-list>"
                            "<rule-list yang:insert='last'><name>c</name></rule-list>", k), sid=1)
    assert rule_lists(ds) == ["a", "d", "b", "c"]
    assert (ds.running_j.log_size, ds.version) == (size, version)


def test_leaf_list_values_and_nested_lists(ds: Datastores) -> None:
    p = "<ike-policy-template><name>iketemp1</name><ike-proposal><id>1</id>{}</ike-proposal>" \
        "</ike-policy-template>"
    ds.edit("running", ike(p.format(
        "<enc-alg yang:insert='before' yang:value='aes128-cbc'>aes256-cbc</enc-alg>"
        "<enc-alg yang:insert='after' yang:value='aes256-cbc'>aes192-cbc</enc-alg>")), sid=1)
    assert enc_algs(ds) == ["aes256-cbc", "aes192-cbc", "aes128-cbc"]
    ds.edit("running", ike(p.format(  # move an existing value
        "<enc-alg yang:insert='after' yang:value='aes128-cbc'>aes256-cbc</enc-alg>")), sid=1)
    assert enc_algs(ds) == ["aes192-cbc", "aes128-cbc", "aes256-cbc"]
    # a proposal list inside a template entry
    new = "<ike-proposal {}><id>{}</id><enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha256" \
          "</auth-alg><dh-group>modp2048</dh-group></ike-proposal>"
    k = f'xmlns:i="{NS}"'
    ds.edit("running", ike("<ike-policy-template><name>iketemp1</name>"
                           + new.format("yang:insert='before' yang:key=\"[i:id='1']\"", 2)
                           + new.format("yang:insert='after' yang:key=\"[i:id='2']\"", 3)
                           + "</ike-policy-template>", k), sid=1)
    assert proposals(ds) == ["2", "3", "1"]


def test_inserts_inside_a_new_subtree_are_made_one_at_a_time(ds: Datastores) -> None:
    k = f'xmlns:n="{NACM}"'
    # a whole new nacm: rule-lists in document order, each placed as it says
    ds.edit("running", nacm(rule_list("a") + rule_list("b", "yang:insert='first'")
                            + rule_list("c", "yang:insert='after' yang:key=\"[n:name='b']\"")
                            + rule_list("d"), k), sid=1)
    assert rule_lists(ds) == ["b", "c", "a", "d"]
    # a reference to an entry that comes later in the edit is not there yet
    prop = ("<ike-proposal {}><id>{}</id><aead-alg>aes128-gcm-128</aead-alg>"
            "<prf-alg>hmac-sha256</prf-alg><dh-group>modp2048</dh-group></ike-proposal>")
    e = refused(ds, ike("<ike-policy-template nc:operation='create'><name>t9</name>"
                        + prop.format("yang:insert='before' yang:key=\"[i:id='2']\"", 1)
                        + prop.format("", 2) + "</ike-policy-template>",
                        f'xmlns:i="{NS}"')).errors[0]
    assert (e.tag, e.app_tag) == ("bad-attribute", "missing-instance")
    assert e.path.endswith("/ipsec-nf:ike-proposal[ipsec-nf:id='1']")
    # the other order is fine
    ds.edit("running", ike("<ike-policy-template nc:operation='create'><name>t9</name>"
                           + prop.format("", 2)
                           + prop.format("yang:insert='before' yang:key=\"[i:id='2']\"", 1)
                           + "</ike-policy-template>", f'xmlns:i="{NS}"'), sid=1)
    ids = ds.tree("running").xpath("//i:ike-policy-template[i:name='t9']/i:ike-proposal/i:id"
                                   "/text()", namespaces={"i": NS})
    assert ids == ["1", "2"]


@pytest.mark.parametrize("attrs,tag,attr", [
    ("yang:insert='before' yang:key=\"[n:name='zz']\"", "bad-attribute", "key"),
    ("yang:insert='after'", "missing-attribute", "key"),
    ("yang:insert='before' yang:key=\"n:name='a'\"", "bad-attribute", "key"),
    ("yang:insert='before' yang:key=\"[n:group='a']\"", "bad-attribute", "key"),
    ("yang:insert='before' yang:key=\"[n:name='a'][n:name='b']\"", "bad-attribute", "key"),
    ("yang:insert='before' yang:key=\"[i:name='a']\"", "bad-attribute", "key"),
    ("yang:insert='before' yang:key=\"[q:name='a']\"", "bad-attribute", "key"),
    ("yang:insert='before' yang:value='a'", "unknown-attribute", "value"),
    ("yang:insert='middle'", "bad-attribute", "insert"),
])
def test_bad_insert_attributes(ds: Datastores, attrs: str, tag: str, attr: str) -> None:
    with_rule_lists(ds, "a", "b")
    e = refused(ds, nacm(rule_list("c", attrs), f'xmlns:n="{NACM}" xmlns:i="{NS}"')).errors[0]
    assert e.tag == tag, e
    assert e.info == {"bad-attribute": attr, "bad-element": "rule-list"}
    assert e.path == "/ietf-netconf-acm:nacm/ietf-netconf-acm:rule-list" \
                     "[ietf-netconf-acm:name='c']"
    if tag == "bad-attribute" and attr == "key" and "zz" in attrs:
        assert e.app_tag == "missing-instance"
    assert rule_lists(ds) == ["a", "b"]


@pytest.mark.parametrize("body,attr,element", [
    # vpn and pre-shared-key ids are not ordered-by user; a leaf is not a list at all
    ("<vpn yang:insert='first'><name>siteA-siteB</name></vpn>", "insert", "vpn"),
    ("<pre-shared-key><name>siteb</name><id yang:insert='first'>x</id></pre-shared-key>",
     "insert", "id"),
    ("<vpn><name>siteA-siteB</name><local-id yang:insert='last'>x</local-id></vpn>",
     "insert", "local-id"),
    # yang:key belongs on lists, yang:value on leaf-lists
    ("<ike-policy-template><name>iketemp1</name><ike-proposal><id>1</id>"
     "<enc-alg yang:insert='before' yang:key='[id=1]'>aes256-cbc</enc-alg></ike-proposal>"
     "</ike-policy-template>", "key", "enc-alg"),
    ("<ike-policy-template><name>iketemp1</name><ike-proposal><id>1</id>"
     "<enc-alg yang:insert='before'>aes256-cbc</enc-alg></ike-proposal>"
     "</ike-policy-template>", "value", "enc-alg"),
])
def test_insert_where_it_does_not_belong(ds: Datastores, body: str, attr: str,
                                         element: str) -> None:
    e = refused(ds, ike(body)).errors[0]
    want = "missing-attribute" if "before'>" in body else "unknown-attribute"
    assert e.tag == want, e
    assert e.info == {"bad-attribute": attr, "bad-element": element}


def test_insert_of_a_missing_value_and_undo(ds: Datastores) -> None:
    e = refused(ds, ike("<ike-policy-template><name>iketemp1</name><ike-proposal><id>1</id>"
                        "<enc-alg yang:insert='after' yang:value='aes128-cbc'>aes256-cbc"
                        "</enc-alg><enc-alg yang:insert='after' yang:value='3des-cbc'>"
                        "aes192-cbc</enc-alg></ike-proposal></ike-policy-template>")).errors[0]
    assert (e.tag, e.app_tag, e.info["bad-attribute"]) == ("bad-attribute", "missing-instance",
                                                          "value")
    assert e.path.endswith("/ipsec-nf:enc-alg[.='aes192-cbc']")
    # a move that a later error of the same edit undoes: the order is as before
    with_rule_lists(ds, "a", "b", "c")
    refused(ds, nacm("<rule-list yang:insert='first'><name>c</name></rule-list>"
                     "<rule-list><name>a</name><rule><name>r</name><action>bad</action></rule>"
                     "</rule-list>"))
    assert rule_lists(ds) == ["a", "b", "c"]


def test_order_survives_restart_candidate_and_history(schema: Schema, tmp_path: Path) -> None:
    ds = Datastores(schema, tmp_path)
    hist = History(tmp_path)
    ds.on_change.append(lambda sid, edits, before, after: hist.record(before, after, "u",
                                                                      sid, ""))
    ds.edit("running", nacm(rule_list("a") + rule_list("b") + rule_list("c")), sid=1)
    # the prefix of yang:key is declared on the <rpc>, outside the <config> that is stored
    rpc = etree.fromstring(f'<rpc xmlns="{NC}" xmlns:acm="{NACM}"><edit-config><config>'
                           f'<nacm xmlns="{NACM}" xmlns:yang="{YANG}">'
                           "<rule-list yang:insert='before' yang:key=\"[acm:name='a']\">"
                           "<name>c</name></rule-list></nacm></config></edit-config></rpc>")
    ds.edit("candidate", rpc[0][0], sid=1)
    assert rule_lists(ds, "candidate") == ["c", "a", "b"]
    assert rule_lists(ds) == ["a", "b", "c"]
    ds.commit(sid=1)
    assert rule_lists(ds) == ["c", "a", "b"]
    ds.edit("running", nacm("<rule-list nc:operation='delete'><name>a</name></rule-list>"),
            sid=1)
    ds.edit("running", nacm(rule_list("a", "yang:insert='after' yang:key=\"[n:name='c']\""),
                            f'xmlns:n="{NACM}"'), sid=1)
    assert rule_lists(ds) == ["c", "a", "b"]
    # the journal replays the edits in order after a restart
    again = Datastores(schema, tmp_path)
    assert rule_lists(again) == ["c", "a", "b"]
    assert xml(again) == xml(ds)
    # history: the move shows in the diff, and rollback gives each order back
    before, after = hist.images(hist.by_back(2))
    d = diff(before, after, "old", "new")
    assert re.search(r"^-\s*<name>c</name>", d, re.M) and re.search(r"^\+\s*<name>c</name>",
                                                                    d, re.M), d
    for back, order in ((1, ["c", "b"]), (2, ["c", "a", "b"]), (3, ["a", "b", "c"])):
        old = hist.undo(ds.tree("running"), schema.top, back)
        got = old.xpath("//n:rule-list/n:name/text()", namespaces={"n": NACM})
        assert got == order, (back, got)


# ---- 3. empty non-presence containers (RFC 7950 7.5.1) ------------------------

def test_deleting_the_last_child_removes_the_containers(schema: Schema, tmp_path: Path) -> None:
    ds = Datastores(schema, tmp_path)
    hist = History(tmp_path)
    ds.on_change.append(lambda sid, edits, before, after: hist.record(before, after, "u",
                                                                      sid, ""))
    ds.edit("running", etree.parse(str(DATA / "site_a.xml")).getroot(), sid=1)
    start = xml(ds)
    ds.edit("running", nacm("<groups><group><name>ops</name><user-name>olga</user-name>"
                            "</group></groups>"), sid=1)
    ds.edit("running", nacm("<groups><group nc:operation='delete'><name>ops</name></group>"
                            "</groups>"), sid=1)
    assert xml(ds) == start  # no <nacm/>, no <groups/>
    before, after = hist.images(hist.by_back(0))
    assert list(after.values()) == [None]
    d = diff(before, after, "a", "b")
    assert "<groups>" in d and not [x for x in d.splitlines() if x[:1] == "+" and x[:3] != "+++"]
    # with a rule-list beside it, only groups goes
    ds.edit("running", nacm(rule_list("a") + "<groups><group><name>ops</name></group>"
                            "</groups>"), sid=1)
    ds.edit("running", nacm("<groups><group nc:operation='remove'><name>ops</name></group>"
                            "</groups>"), sid=1)
    assert ds.tree("running").find(f"{{{NACM}}}nacm/{{{NACM}}}groups") is None
    assert rule_lists(ds) == ["a"]
    # a security policy's selector emptied; the options emptied; replaced by nothing
    ds.edit("running", ike("<vpn><name>siteA-siteB</name><security-policy><name>trunk</name>"
                           "<local-ts><subnet nc:operation='delete'>192.168.0.0/24</subnet>"
                           "</local-ts>"
                           "</security-policy></vpn>"
                           "<global-options><dos-protection><cookie-threshold>9"
                           "</cookie-threshold></dos-protection></global-options>"), sid=1)
    sp = ds.tree("running").find(f".//{{{NS}}}security-policy")
    assert sp.find(f"{{{NS}}}local-ts") is None
    ds.edit("running", ike("<global-options><dos-protection><cookie-threshold "
                           "nc:operation='delete'/></dos-protection></global-options>"), sid=1)
    assert ds.tree("running").find(f".//{{{NS}}}global-options") is None
    ds.edit("running", ike("<vpn><name>siteA-siteB</name><security-policy><name>trunk</name>"
                           "<remote-ts nc:operation='replace'/></security-policy></vpn>"), sid=1)
    assert sp.find(f"{{{NS}}}remote-ts") is None
    # deleting every entry removes <ike> itself, in running and in what is stored
    ds.edit("running", ike("<vpn nc:operation='delete'><name>siteA-siteB</name></vpn>"
                           "<pre-shared-key nc:operation='delete'><name>siteb</name>"
                           "</pre-shared-key><ike-policy-template nc:operation='delete'>"
                           "<name>iketemp1</name></ike-policy-template>"
                           "<ipsec-policy-template nc:operation='delete'><name>ipsectemp1"
                           "</name></ipsec-policy-template>"), sid=1)
    assert ds.tree("running").find(f"{{{NS}}}ike") is None
    again = Datastores(schema, tmp_path)
    assert xml(again) == xml(ds)


def test_empty_containers_are_never_stored(ds: Datastores, schema: Schema,
                                           tmp_path: Path) -> None:
    start = xml(ds)
    for target in ("running", "candidate"):
        ds.edit(target, ike("<global-options><dos-protection/></global-options>"), sid=1)
        ds.edit(target, nacm("<groups/>"), sid=1)
        ds.edit(target, ike("<global-options nc:operation='create'/>"), sid=1)
        assert xml(ds, target) == start, target
    ds.copy_config("candidate", 1, config=etree.fromstring(
        f'<config xmlns="{NC}"><nacm xmlns="{NACM}"><groups/></nacm></config>'))
    assert len(ds.tree("candidate")) == 0
    ds.discard_changes(1)
    ds.copy_config("startup", 1, source="running")
    assert xml(ds, "startup") == start
    stored = (tmp_path / "running.xml").read_bytes() if (tmp_path / "running.xml").exists() \
        else b""
    assert b"groups" not in stored and b"dos-protection" not in stored


def test_a_stored_empty_container_is_dropped_at_load(schema: Schema, tmp_path: Path) -> None:
    # a running.xml written before empty containers were dropped
    j = Journal(tmp_path, "running")
    root = etree.fromstring(f'<config><ike xmlns="{NS}"><global-options><dos-protection/>'
                            f'</global-options></ike><nacm xmlns="{NACM}"><groups/></nacm>'
                            "</config>")
    j.write_base(root)
    ds = Datastores(schema, tmp_path)
    assert len(ds.tree("running")) == 0
    assert len(ds.tree("candidate")) == 0
    # and a startup.xml of that time
    (tmp_path / "startup.xml").write_bytes(etree.tostring(root))
    ds = Datastores(schema, tmp_path)
    assert len(ds.tree("startup")) == 0 and len(ds.tree("running")) == 0


# ---- 4. a node given twice in one edit ----------------------------------------

VPN = "<vpn><name>{}</name><ike-policy><template>iketemp1</template></ike-policy>" \
      "<ipsec-policy><template>ipsectemp1</template></ipsec-policy>{}</vpn>"


@pytest.mark.parametrize("body,path", [
    (VPN.format("siteA-siteB", "<remote-address>198.51.100.7</remote-address>"
                               "<remote-address>198.51.100.8</remote-address>"),
     "/ipsec-nf:ike/ipsec-nf:vpn[ipsec-nf:name='siteA-siteB']/ipsec-nf:remote-address"),
    (VPN.format("new", "<remote-address>198.51.100.7</remote-address>"
                       "<remote-address>198.51.100.8</remote-address>"),
     "/ipsec-nf:ike/ipsec-nf:vpn[ipsec-nf:name='new']/ipsec-nf:remote-address"),
    (VPN.format("siteA-siteB", "<security-policy><name>trunk</name><local-ts>"
                               "<protocol>6</protocol><protocol>17</protocol>"
                               "</local-ts></security-policy>"),
     "/ipsec-nf:ike/ipsec-nf:vpn[ipsec-nf:name='siteA-siteB']/ipsec-nf:security-policy"
     "[ipsec-nf:name='trunk']/ipsec-nf:local-ts/ipsec-nf:protocol"),
    (VPN.format("siteA-siteB", "<security-policy><name>trunk</name><local-ts>"
                               "<subnet>10.0.0.0/8</subnet><subnet>10.0.0.0/8</subnet>"
                               "</local-ts></security-policy>"),
     "/ipsec-nf:ike/ipsec-nf:vpn[ipsec-nf:name='siteA-siteB']/ipsec-nf:security-policy"
     "[ipsec-nf:name='trunk']/ipsec-nf:local-ts/ipsec-nf:subnet[.='10.0.0.0/8']"),
    ("<vpn><name>siteA-siteB</name><name>other</name><local-id>x</local-id></vpn>",
     "/ipsec-nf:ike/ipsec-nf:vpn[ipsec-nf:name='siteA-siteB']/ipsec-nf:name"),
    ("<pre-shared-key><name>siteb</name><id>p</id><id>p</id></pre-shared-key>",
     "/ipsec-nf:ike/ipsec-nf:pre-shared-key[ipsec-nf:name='siteb']/ipsec-nf:id[.='p']"),
    ("<vpn><name>siteA-siteB</name><local-id>x</local-id></vpn>"
     "<vpn><name>siteA-siteB</name><remote-id>y</remote-id></vpn>",
     "/ipsec-nf:ike/ipsec-nf:vpn[ipsec-nf:name='siteA-siteB']"),
    ("<global-options><threads>8</threads></global-options>"
     "<global-options><threads>9</threads></global-options>",
     "/ipsec-nf:ike/ipsec-nf:global-options"),
])
@pytest.mark.parametrize("op", ["merge", "replace", "create", "continue-on-error"])
def test_a_node_given_twice_is_refused(ds: Datastores, body: str, path: str, op: str) -> None:
    if op == "continue-on-error":
        kw = {"error_option": "continue-on-error"}
    else:
        kw = {"default_op": "merge"}
        if op != "merge":  # the operation on the outer entry: the check is the same
            body = body.replace("<vpn>", f"<vpn nc:operation='{op}'>", 1).replace(
                "<pre-shared-key>", f"<pre-shared-key nc:operation='{op}'>", 1).replace(
                "<global-options>", f"<global-options nc:operation='{op}'>", 1)
    e = refused(ds, ike(body), **kw).errors[0]
    assert e.tag == "bad-element", e
    assert e.path == path
    assert e.info == {"bad-element": re.sub(r"\[[^]]*\]", "", path).rsplit(":", 1)[-1]}
    assert "more than once" in e.message


def test_a_top_container_twice_and_the_candidate(ds: Datastores) -> None:
    two = etree.fromstring(f'<config xmlns="{NC}"><ike xmlns="{NS}"><enabled>false</enabled>'
                           f'</ike><ike xmlns="{NS}"><enabled>true</enabled></ike></config>')
    assert refused(ds, two, "candidate").errors[0].path == "/ipsec-nf:ike"
    with pytest.raises(RpcError) as ei:
        ds.validate_config(two)
    assert ei.value.errors[0].tag == "bad-element"


def test_libyang_duplicates_map_to_the_same_error(schema: Schema) -> None:
    root = etree.fromstring(f'<ike xmlns="{NS}"><pre-shared-key><name>a</name>'
                            "<secret>x</secret><secret>y</secret></pre-shared-key></ike>")
    with pytest.raises(RpcError) as ei:
        validate(schema, [root])
    e = ei.value.errors[0]
    assert (e.tag, e.info) == ("bad-element", {"bad-element": "secret"})
    assert "x" not in e.message.replace("instance", "")  # no secret in the message
