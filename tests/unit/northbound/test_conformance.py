"""Conformance details (issue 11) through the dispatcher, on real datastores and the real
schema: repeated and unknown parameters, RFC 6243 default tags in and out, NACM counters,
the RFC 5277 stream list and replay ordering, and <get> checked against the YANG modules."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from lxml import etree

from nf.nacm import NacmCounters
from nf.schema import Schema
from northbound import monitoring, ops
from northbound.context import ServerContext
from northbound.notifications import NMN, Notifications, config_change
from northbound.rpc import Dispatcher
from tests.support import DATA, NC, NS, P

WD = "urn:ietf:params:xml:ns:netconf:default:1.0"
WD_MODULE = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults"
NACM = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
NMDA = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"
DS = "urn:ietf:params:xml:ns:yang:ietf-datastores"
OR = "urn:ietf:params:xml:ns:yang:ietf-origin"
YL = "urn:ietf:params:xml:ns:yang:ietf-yang-library"
NOTIF = "urn:ietf:params:xml:ns:netconf:notification:1.0"
Q = {**P, "wd": WD, "a": NACM, "n": NMDA, "y": YL, "s": NMN}
TEMPLATE = "<ike-policy-template><name>iketemp1</name>{}</ike-policy-template>"


def err(r: etree._Element) -> tuple[str | None, str | None, str | None]:
    """(error-tag, error-app-tag, bad-element) of a reply."""
    return (r.findtext("nc:rpc-error/nc:error-tag", namespaces=P),
            r.findtext("nc:rpc-error/nc:error-app-tag", namespaces=P),
            r.findtext("nc:rpc-error/nc:error-info/nc:bad-element", namespaces=P))


def edit(body: str, target: str = "running", extra: str = "") -> str:
    return (f"<edit-config><target><{target}/></target>{extra}<config>"
            f'<ike xmlns="{NS}">{body}</ike></config></edit-config>')


def running(call) -> etree._Element:
    return call("<get-config><source><running/></source></get-config>")


# ---- item 6: every parameter at most as often as its YANG allows, in one place -------------

@pytest.mark.parametrize("body,bad", [
    ("<edit-config><target><candidate/></target><target><running/></target><config/>"
     "</edit-config>", "target"),
    ("<get-config><source><running/></source><source><candidate/></source></get-config>",
     "source"),
    ('<get><filter type="subtree"/><filter type="subtree"/></get>', "filter"),
    (f'<get-config><source><running/></source><with-defaults xmlns="{WD_MODULE}">trim'
     f'</with-defaults><with-defaults xmlns="{WD_MODULE}">report-all</with-defaults>'
     "</get-config>", "with-defaults"),
    ("<commit><confirmed/><confirm-timeout>5</confirm-timeout><confirm-timeout>600"
     "</confirm-timeout></commit>", "confirm-timeout"),
    ("<cancel-commit><persist-id>a</persist-id><persist-id>b</persist-id></cancel-commit>",
     "persist-id"),
    (f'<wait-applied xmlns="{NS}"><timeout>1</timeout><timeout>2</timeout></wait-applied>',
     "timeout"),
    ("<kill-session><session-id>3</session-id><session-id>4</session-id></kill-session>",
     "session-id"),
    ("<lock><target><candidate/><candidate/></target></lock>", "candidate"),
    (f'<get-data xmlns="{NMDA}" xmlns:ds="{DS}"><datastore>ds:running</datastore>'
     "<datastore>ds:operational</datastore></get-data>", "datastore"),
    (f'<create-subscription xmlns="{NOTIF}"><stream>NETCONF</stream><stream>NETCONF'
     "</stream></create-subscription>", "stream"),
    ('<get-schema xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring">'
     "<identifier>ipsec-nf</identifier><identifier>ietf-netconf</identifier></get-schema>",
     "identifier"),
])
def test_repeated_parameter_is_refused(call, body: str, bad: str) -> None:
    assert err(call(body)) == ("bad-element", "too-many-elements", bad)


def test_repeated_edit_changes_nothing(call) -> None:
    before = etree.tostring(running(call))
    r = call("<edit-config><target><running/></target><default-operation>merge"
             "</default-operation><default-operation>replace</default-operation><config>"
             f'<ike xmlns="{NS}"/></config></edit-config>')
    assert err(r)[0] == "bad-element"
    r = call(f'<edit-config><target><running/></target><config><ike xmlns="{NS}"><vpn>'
             "<name>siteA-siteB</name><local-id>first.example.net</local-id></vpn></ike>"
             f'</config><config><ike xmlns="{NS}"><vpn><name>siteA-siteB</name><local-id>'
             "last.example.net</local-id></vpn></ike></config></edit-config>")
    assert err(r) == ("bad-element", "too-many-elements", "config")
    assert etree.tostring(running(call)) == before


@pytest.mark.parametrize("body,expect", [
    ("<get-config><source><running/><candidate/></source></get-config>",
     ("bad-element", None, "candidate")),  # two cases of one choice (RFC 7950 8.3.1)
    ("<copy-config><target><candidate/></target><source><running/><config/></source>"
     "</copy-config>", ("bad-element", None, "config")),
    ("<get><frobnicate/></get>", ("unknown-element", None, "frobnicate")),
    ('<get><x xmlns="urn:example:nowhere"/></get>', ("unknown-namespace", None, "x")),
    ("<edit-config><target><candidate/></target><url>file:///x</url></edit-config>",
     ("unknown-element", None, "url")),  # no :url: if-feature url is false
])
def test_input_shape_errors(call, body: str, expect: tuple) -> None:
    assert err(call(body)) == expect


def test_comment_augment_and_subscription_parameters_accepted(call) -> None:
    assert call(f'<commit><comment xmlns="{NS}">why</comment></commit>').find(
        "nc:ok", P) is not None


# ---- item 2: RFC 6243 'default' attribute -----------------------------------------------

def tagged(call, source: str = "running") -> etree._Element:
    return call(f"<get-config><source><{source}/></source><with-defaults xmlns="
                f'"{WD_MODULE}">report-all-tagged</with-defaults></get-config>')


def test_tag_namespace_and_only_unset_leaves_tagged(call) -> None:
    call(edit(TEMPLATE.format("<keying-tries>1</keying-tries>")))  # set, equal to default
    r = tagged(call)
    t = r.find("nc:data/i:ike/i:ike-policy-template", Q)
    assert t.find("i:rekey-time", Q).get(f"{{{WD}}}default") == "true"
    assert t.find("i:keying-tries", Q).get(f"{{{WD}}}default") is None
    assert b"ietf-netconf-with-defaults" not in etree.tostring(r)
    assert etree.tostring(r).count(b'xmlns:wd="urn:ietf:params:xml:ns:netconf:default:1.0"')


def test_tagged_leaf_in_edit_returns_to_default(call) -> None:
    call(edit(TEMPLATE.format("<rekey-time>3h</rekey-time>")))
    assert b"<rekey-time>3h</rekey-time>" in etree.tostring(running(call))
    r = call(edit(TEMPLATE.format(f'<rekey-time xmlns:wd="{WD}" wd:default="true">4h'
                                  "</rekey-time>")))
    assert r.find("nc:ok", P) is not None, etree.tostring(r)
    assert b"rekey-time" not in etree.tostring(running(call))
    assert tagged(call).find("nc:data/i:ike/i:ike-policy-template/i:rekey-time", Q).get(
        f"{{{WD}}}default") == "true"
    # '1' is a boolean true too; 'false' is no tag and sets the value as usual
    call(edit(TEMPLATE.format(f'<rekey-time xmlns:wd="{WD}" wd:default="false">4h'
                              "</rekey-time>")))
    assert b"<rekey-time>4h</rekey-time>" in etree.tostring(running(call))
    call(edit(TEMPLATE.format(f'<rekey-time xmlns:wd="{WD}" wd:default="1">4h</rekey-time>')))
    assert b"rekey-time" not in etree.tostring(running(call))


@pytest.mark.parametrize("leaf,tag", [
    (f'<rekey-time xmlns:wd="{WD}" wd:default="true">3h</rekey-time>', "invalid-value"),
    (f'<rekey-time xmlns:wd="{WD}" wd:default="yes">4h</rekey-time>', "bad-attribute"),
    (f'<rekey-time xmlns:m="{WD_MODULE}" m:default="true">4h</rekey-time>',
     "unknown-attribute"),
    (f'<ike-proposal xmlns:wd="{WD}" wd:default="true"><id>1</id></ike-proposal>',
     "bad-attribute"),
])
def test_bad_default_tags_refused(call, leaf: str, tag: str) -> None:
    before = etree.tostring(running(call))
    assert err(call(edit(TEMPLATE.format(leaf))))[0] == tag
    assert etree.tostring(running(call)) == before


def test_tagged_output_copies_back_unchanged(call) -> None:
    call(edit(TEMPLATE.format("<keying-tries>1</keying-tries>")))
    data = tagged(call).find("nc:data", P)
    config = etree.Element(f"{{{NC}}}config")
    config.extend(list(data))
    r = call("<copy-config><target><candidate/></target><source>"
             f"{etree.tostring(config).decode()}</source></copy-config>")
    assert r.find("nc:ok", P) is not None, etree.tostring(r)
    cand = call("<get-config><source><candidate/></source></get-config>")
    assert leaves(cand.find("nc:data", P)) == leaves(running(call).find("nc:data", P))
    assert b"default:1.0" not in etree.tostring(cand)
    r = call("<validate><source>" + etree.tostring(config).decode() + "</source></validate>")
    assert r.find("nc:ok", P) is not None, etree.tostring(r)


def leaves(el: etree._Element) -> list[tuple[str, str]]:
    """Every leaf of a tree as (path of names, value), sorted (libyang prints in schema
    order)."""
    return sorted(("/".join(etree.QName(a).localname for a in [*reversed(list(
        e.iterancestors())), e]), (e.text or "").strip()) for e in el.iter()
        if isinstance(e.tag, str) and not len(e))


def test_copy_config_refuses_unknown_with_defaults(call) -> None:
    r = call("<copy-config><target><startup/></target><source><running/></source>"
             f'<with-defaults xmlns="{WD_MODULE}">everything</with-defaults></copy-config>')
    assert err(r)[0] == "invalid-value"


# ---- item 1: NACM counters ------------------------------------------------------------

def counters(call) -> dict[str, int]:
    r = call(f'<get><filter type="subtree"><nacm xmlns="{NACM}"/></filter></get>')
    nacm = r.find("nc:data/a:nacm", Q)
    return {k: int(nacm.findtext(f"a:{k}", namespaces=Q)) for k in (
        "denied-operations", "denied-data-writes", "denied-notifications")}


def test_nacm_counters_count_denials(new_context: Callable[..., ServerContext]) -> None:
    ctx = new_context()
    d = Dispatcher(ctx, ops.TABLE)

    def as_user(user: str, groups: list[str], body: str) -> etree._Element:
        s = SimpleNamespace(session_id=5, closing=False, data={}, user=user, groups=groups)
        return etree.fromstring(asyncio.run(d.handle(
            s, f'<rpc xmlns="{NC}" message-id="1">{body}</rpc>'.encode())))

    def call(body: str) -> etree._Element:
        return as_user("root", ["admin"], body)

    site = (DATA / "site_a.xml").read_text()
    call(f"<edit-config><target><running/></target>{site}</edit-config>")
    assert counters(call) == {"denied-operations": 0, "denied-data-writes": 0,
                              "denied-notifications": 0}
    assert err(as_user("eve", [], "<kill-session><session-id>9</session-id>"
                                  "</kill-session>"))[0] == "access-denied"
    two = ('<vpn><name>siteA-siteB</name><local-id>a.example.net</local-id></vpn>'
           '<pre-shared-key><name>x</name><secret>0sAAAA</secret></pre-shared-key>')
    r = as_user("eve", [], edit(two, extra="<error-option>continue-on-error</error-option>"))
    assert err(r)[0] == "access-denied"
    assert err(as_user("eve", [], "<copy-config><target><candidate/></target><source>"
                                  "<running/></source></copy-config>"))[0] == "access-denied"
    # reads are pruned silently, never counted; an admin is never denied
    as_user("eve", [], "<get/>")
    assert counters(call) == {"denied-operations": 1, "denied-data-writes": 2,
                              "denied-notifications": 0}
    assert ctx.nacm_counters == NacmCounters(1, 2, 0)


def test_exec_denial_path_names_the_operation(call) -> None:
    d = Dispatcher(call.ctx, ops.TABLE)
    s = SimpleNamespace(session_id=6, closing=False, data={}, user="eve", groups=[])
    r = etree.fromstring(asyncio.run(d.handle(s, f'<rpc xmlns="{NC}" message-id="2">'
                                                 "<delete-config><target><startup/></target>"
                                                 "</delete-config></rpc>".encode())))
    path = r.find("nc:rpc-error/nc:error-path", P)
    assert path.text == "/ietf-netconf:rpc/ietf-netconf:delete-config"
    assert path.nsmap["ietf-netconf"] == NC
    assert path.prefix is None


# ---- items 3, 4 and the YANG check of <get> ---------------------------------------------

def test_get_conforms_to_the_yang_modules(call) -> None:
    call("<lock><target><candidate/></target></lock>")
    r = call("<get/>")
    data = r.find("nc:data", P)
    assert data.find("s:netconf/s:streams/s:stream/s:name", Q).text == "NETCONF"
    assert data.find("a:nacm/a:denied-operations", Q) is not None
    call.ctx.schema.check_data("".join(etree.tostring(c, encoding="unicode") for c in data))
    r = call(f'<get-data xmlns="{NMDA}" xmlns:ds="{DS}"><datastore>ds:operational'
             "</datastore><with-origin/></get-data>")
    call.ctx.schema.check_data("".join(etree.tostring(c, encoding="unicode")
                                       for c in r.find("n:data", Q)))


def test_check_data_catches_nonconforming_state(call) -> None:
    import libyang

    with pytest.raises(libyang.LibyangError):  # a counter without its siblings (mandatory)
        call.ctx.schema.check_data(f'<nacm xmlns="{NACM}"><denied-operations>1'
                                   "</denied-operations></nacm>")
    with pytest.raises(libyang.LibyangError):
        call.ctx.schema.check_data(f'<netconf xmlns="{NMN}"><streams><stream><name>NETCONF'
                                   "</name></stream></streams></netconf>")


def test_streams_subtree_filter(call) -> None:
    r = call(f'<get><filter type="subtree"><netconf xmlns="{NMN}"><streams><stream><name>'
             "NETCONF</name><replaySupport/></stream></streams></netconf></filter></get>")
    stream = r.find("nc:data/s:netconf/s:streams/s:stream", Q)
    assert [etree.QName(c).localname for c in stream] == ["name", "replaySupport"]
    assert stream.findtext("s:replaySupport", namespaces=Q) == "true"
    assert len(r.find("nc:data", P)) == 1


def test_yang_library_features_and_content_id(call) -> None:
    r = call(f'<get><filter type="subtree"><yang-library xmlns="{YL}"/></filter></get>')
    lib = r.find("nc:data/y:yang-library", Q)
    mods = {m.findtext("y:name", namespaces=Q): m for m in lib.iterfind(
        "y:module-set/y:module", Q)}
    assert {f.text for f in mods["ietf-netconf-nmda"].iterfind("y:feature", Q)} == {
        "origin", "with-defaults"}
    assert {f.text for f in mods["ietf-netconf"].iterfind("y:feature", Q)} >= {
        "candidate", "confirmed-commit", "startup", "xpath", "validate"}
    assert "url" not in {f.text for f in mods["ietf-netconf"].iterfind("y:feature", Q)}
    assert "nc-notifications" in mods
    assert lib.find(".//y:location", Q) is None
    cid = lib.findtext("y:content-id", namespaces=Q)
    assert any(c.endswith(f"content-id={cid}") for c in call.ctx.capabilities)


def test_content_id_follows_features() -> None:
    s = Schema()
    before = monitoring.content_id(s)
    s.ctx.get_module("ietf-netconf-nmda").feature_disable_all()
    assert monitoring.content_id(s) != before


# ---- get-data details (review) ---------------------------------------------------------

def get_data(call, ds: str, extra: str = "") -> etree._Element:
    return call(f'<get-data xmlns="{NMDA}" xmlns:ds="{DS}" xmlns:or="{OR}"><datastore>ds:'
                f"{ds}</datastore>{extra}</get-data>")


def test_get_data_origin_filters(call) -> None:
    r = get_data(call, "operational", "<origin-filter>or:learned</origin-filter>")
    ike = r.find("n:data/i:ike", Q)
    assert ike.find("i:vpn", Q) is None and ike.find("i:ike-sa", Q) is not None
    r = get_data(call, "operational", "<origin-filter>or:intended</origin-filter>")
    assert r.find("n:data/i:ike/i:vpn", Q) is not None
    r = get_data(call, "operational",
                 "<negated-origin-filter>or:intended</negated-origin-filter>")
    assert r.find("n:data/i:ike/i:vpn", Q) is None
    assert err(get_data(call, "running", "<origin-filter>or:intended</origin-filter>"))[0] \
        == "unknown-element"
    assert err(get_data(call, "operational", "<origin-filter>or:nope</origin-filter>"))[0] \
        == "invalid-value"
    assert err(get_data(call, "operational", "<origin-filter>or:intended</origin-filter>"
                        "<negated-origin-filter>or:system</negated-origin-filter>"))[0] \
        == "bad-element"


def test_get_data_parameters_checked(call) -> None:
    assert err(get_data(call, "running", "<config-filter>yes</config-filter>"))[0] \
        == "invalid-value"
    # no :with-operational-defaults capability (RFC 8526 section 3.1.1)
    assert err(get_data(call, "operational", "<with-defaults>report-all</with-defaults>"))[0] \
        == "invalid-value"
    r = get_data(call, "running", "<with-defaults>report-all-tagged</with-defaults>")
    assert r.find("n:data/i:ike/i:ike-policy-template/i:rekey-time", Q).get(
        f"{{{WD}}}default") == "true"
    r = get_data(call, "operational", "<with-origin/>")
    assert r.find("n:data/i:ike", Q).get(f"{{{OR}}}origin") == "or:intended"
    for state in r.find("n:data", Q):
        if etree.QName(state).localname in ("netconf-state", "yang-library", "netconf"):
            assert not state.xpath(".//@or:origin", namespaces={"or": OR})


# ---- item 5 and the notification review ---------------------------------------------------

class FakeSession:
    """A subscriber whose link can be held, to replay slowly."""

    def __init__(self, sid: int) -> None:
        self.session_id, self.user, self.groups, self.data = sid, "root", ["admin"], {}
        self.got: list[etree._Element] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def send_notification(self, msg: bytes) -> bool:
        await self.gate.wait()
        self.got.append(etree.fromstring(msg)[1])
        return True


def sub_op(start: datetime | None = None, stop: datetime | None = None,
           filt: str = "") -> etree._Element:
    parts = [f"<startTime>{t.isoformat().replace('+00:00', 'Z')}</startTime>"
             if (t := start) else "",
             f"<stopTime>{t.isoformat().replace('+00:00', 'Z')}</stopTime>"
             if (t := stop) else "", filt]
    return etree.fromstring(f'<create-subscription xmlns="{NOTIF}">{"".join(parts)}'
                            "</create-subscription>")


def event(i: int) -> etree._Element:
    return config_change(None, [(f"/ipsec-nf:ike/ipsec-nf:vpn[ipsec-nf:name='v{i}']",
                                 "merge")])


def names(got: list[etree._Element]) -> list[str]:
    out = []
    for b in got:
        t = b.findtext(".//{*}target")
        out.append(t.split("'")[1] if t else etree.QName(b).localname)
    return out


def test_events_during_replay_follow_replay_complete_in_order() -> None:
    async def scenario() -> list[str]:
        n = Notifications()
        for i in range(3):
            n.publish(event(i))
        s = FakeSession(1)
        s.gate.clear()  # the link is slow: the replay is under way while events come
        n.subscribe(s, sub_op(datetime.now(UTC) - timedelta(hours=1)))
        await asyncio.sleep(0)
        for i in range(3, 6):
            n.publish(event(i))
            await asyncio.sleep(0)
        s.gate.set()
        for _ in range(50):
            await asyncio.sleep(0.01)
            if len(s.got) == 7:
                break
        n.publish(event(6))
        await asyncio.sleep(0.05)
        n.session_ended(s)
        return names(s.got)

    assert asyncio.run(scenario()) == ["v0", "v1", "v2", "replayComplete", "v3", "v4", "v5",
                                       "v6"]


def test_stop_time_and_control_events_bypass_filter_and_nacm() -> None:
    async def scenario() -> tuple[list[str], int]:
        n = Notifications()
        n.authorize = lambda session, body: None  # NACM drops every event type
        n.publish(event(0))
        s = FakeSession(2)
        now = datetime.now(UTC)
        filt = ('<filter type="subtree"><netconf-session-start xmlns="urn:ietf:params:xml:ns:'
                'yang:ietf-netconf-notifications"/></filter>')
        n.subscribe(s, sub_op(now - timedelta(hours=1), now + timedelta(seconds=0.2), filt))
        n.publish(event(1))
        await asyncio.sleep(0.5)
        return names(s.got), n.denied

    got, denied = asyncio.run(scenario())
    assert got == ["replayComplete", "notificationComplete"]
    assert denied == 0  # the filter did not select them: not a NACM drop


def test_denied_notification_counted_once_per_subscription() -> None:
    async def scenario() -> tuple[int, int]:
        n = Notifications()
        n.authorize = lambda session, body: None
        a, b = FakeSession(3), FakeSession(4)
        n.subscribe(a, sub_op())
        n.subscribe(b, sub_op())
        n.publish(event(0))
        await asyncio.sleep(0.05)
        return n.denied, len(a.got) + len(b.got)

    assert asyncio.run(scenario()) == (2, 0)


def test_config_change_target_declares_its_prefixes() -> None:
    body = config_change(None, [("/ietf-netconf-acm:nacm/ietf-netconf-acm:groups", "merge"),
                                ("/ipsec-nf:ike/ipsec-nf:vpn[ipsec-nf:name='a']", "merge")])
    for t in body.iterfind(".//{*}target"):
        for prefix in {p.split(":")[0] for p in t.text.split("/") if ":" in p}:
            assert prefix in t.nsmap, (prefix, t.text)
    Schema().check_notification(etree.tostring(body).decode())


def test_every_notification_we_send_conforms() -> None:
    from northbound import notifications as nt

    s = Schema()
    sess = SimpleNamespace(session_id=3, user="admin", source_host="203.0.113.1",
                           closing=False, data={"killed-by": 4})
    entry = SimpleNamespace(kind="vpn", name="v", status="failed", message="no", attempts=2)
    bodies = [event(1), nt.config_change(sess, []), nt.session_start(sess),
              nt.session_end(sess), nt.confirmed_commit(sess, "start", "600"),
              nt.confirmed_commit(None, "timeout", None),
              nt.sa_event("ike", "up", "v", "198.51.100.2", 7),
              nt.sa_event("child", "rekeyed", "v", None, 7, "trunk"),
              nt.apply_status_change(entry), nt._event(NMN, "replayComplete"),
              nt._event(NMN, "notificationComplete")]
    for body in bodies:
        s.check_notification(etree.tostring(body).decode())


def test_yang_library_lists_every_datastore(call) -> None:
    r = call(f'<get><filter type="subtree"><yang-library xmlns="{YL}"/></filter></get>')
    lib = r.find("nc:data/y:yang-library", Q)
    schema = lib.findtext("y:schema/y:name", namespaces=Q)
    assert lib.findtext("y:schema/y:module-set", namespaces=Q) == lib.findtext(
        "y:module-set/y:name", namespaces=Q)
    got = {}
    for ds in lib.iterfind("y:datastore", Q):
        name = ds.find("y:name", Q)
        prefix, _, ident = name.text.partition(":")
        assert name.nsmap[prefix] == DS
        got[ident] = ds.findtext("y:schema", namespaces=Q)
    assert got == dict.fromkeys(("running", "candidate", "startup", "intended", "operational"),
                                schema)


def test_lock_and_validate_take_an_nmda_datastore(call) -> None:
    target = f'<datastore xmlns="{NMDA}" xmlns:ds="{DS}">ds:candidate</datastore>'
    assert call(f"<lock><target>{target}</target></lock>").find("nc:ok", P) is not None
    assert err(call("<lock><target><candidate/></target></lock>"))[0] == "lock-denied"
    assert call(f"<unlock><target>{target}</target></unlock>").find("nc:ok", P) is not None
    assert call(f"<validate><source>{target}</source></validate>").find("nc:ok", P) is not None
    bad = f'<datastore xmlns="{NMDA}" xmlns:ds="{DS}">ds:operational</datastore>'
    assert err(call(f"<lock><target>{bad}</target></lock>"))[0] == "invalid-value"
