"""RFC 8639 subscriptions and RFC 8641 YANG-Push against the real server (`ipsec-nf serve` in
a network namespace, with its charon), through ncclient: the RPCs are sent as raw XML and
the notifications read with take_notification. Every notification received is also
validated by libyang against its YANG definition."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from lxml import etree
from ncclient.operations import RPCError
from ncclient.xml_ import to_ele

from nf.schema import Schema
from tests.integration.tools.gateway import Server, add_user, connect, netns

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS = "urn:ipsec-nf:yang:ipsec-nf"
SN = "urn:ietf:params:xml:ns:yang:ietf-subscribed-notifications"
YP = "urn:ietf:params:xml:ns:yang:ietf-yang-push"
NOTIF = "urn:ietf:params:xml:ns:netconf:notification:1.0"
DS = "urn:ietf:params:xml:ns:yang:ietf-datastores"
VIEWER, VIEWER_PW = "viewer", "viewer-test-pw"
SECRET = "0seaJ31RfzHNRvUSH0oUYg7znTW0I="
_SCHEMA: list[Schema] = []

TEMPLATES = f"""<config xmlns="{NC}"><ike xmlns="{NS}">
  <ike-policy-template><name>ike1</name><ike-proposal><id>1</id><enc-alg>aes128-cbc</enc-alg>
    <auth-alg>hmac-sha512</auth-alg><prf-alg>hmac-sha512</prf-alg><dh-group>modp2048</dh-group>
  </ike-proposal></ike-policy-template>
  <ipsec-policy-template><name>esp1</name><esp-proposal><id>1</id><enc-alg>aes128-cbc</enc-alg>
    <auth-alg>hmac-sha256</auth-alg></esp-proposal></ipsec-policy-template>
  <pre-shared-key><name>siteb</name><id>a.example.net</id><id>b.example.net</id>
    <secret>{SECRET}</secret></pre-shared-key>
</ike></config>"""


def vpn(name: str) -> str:
    return f"""<config xmlns="{NC}"><ike xmlns="{NS}"><vpn><name>{name}</name>
  <ike-policy><template>ike1</template></ike-policy>
  <ipsec-policy><template>esp1</template></ipsec-policy>
  <local-address>198.51.100.1</local-address><remote-address>198.51.100.2</remote-address>
  <local-id>a.example.net</local-id><remote-id>b.example.net</remote-id>
  <security-policy><name>trunk</name><local-ts><subnet>192.168.0.0/24</subnet></local-ts>
    <remote-ts><subnet>192.168.99.0/24</subnet></remote-ts></security-policy>
</vpn></ike></config>"""


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gateway with templates and a pre-shared key; users admin and viewer (no group)."""
    tmp = tmp_path_factory.mktemp("push")
    state = tmp / "state"
    add_user(state)
    add_user(state, user=VIEWER, password=VIEWER_PW)
    with netns("push") as ns, Server(ns, tmp / "s", [
            "--state-dir", str(state), "--listen", "127.0.0.1:8830"]) as server:
        server.wait_listening()
        with connect(ns) as m:
            m.edit_config(target="candidate", config=TEMPLATES)
            m.commit()
        yield ns


def schema() -> Schema:
    if not _SCHEMA:
        _SCHEMA.append(Schema())
    return _SCHEMA[0]


def rpc(m: Any, body: str) -> etree._Element:
    """Send one operation; the rpc-reply element (RPCError on an rpc-error)."""
    return to_ele(m.dispatch(to_ele(body)).xml)


def establish(m: Any, inner: str) -> int:
    reply = rpc(m, f'<establish-subscription xmlns="{SN}" xmlns:yp="{YP}" xmlns:ds="{DS}">'
                   f"{inner}</establish-subscription>")
    return int(reply.findtext(f"{{{SN}}}id"))


def take(m: Any, timeout: float = 5.0) -> etree._Element | None:
    """The next notification's event element (validated by libyang), or None."""
    n = m.take_notification(block=True, timeout=timeout)
    if n is None:
        return None
    root = to_ele(n.notification_xml)
    assert root.tag == f"{{{NOTIF}}}notification"
    body = next(c for c in root if c.tag != f"{{{NOTIF}}}eventTime")
    schema().check_notification(etree.tostring(body, encoding="unicode"))
    return body


def collect(m: Any, seconds: float) -> list[etree._Element]:
    out, end = [], time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        body = take(m, left)
        if body is not None:
            out.append(body)
    return out


def name(body: etree._Element) -> str:
    return etree.QName(body).localname


def test_capabilities_and_yang_library_announce_the_features(gw: str) -> None:
    with connect(gw) as m:
        caps = list(m.server_capabilities)
        sn = next(c for c in caps if "module=ietf-subscribed-notifications" in c)
        yp = next(c for c in caps if "module=ietf-yang-push" in c)
        assert "features=encode-xml,replay,subtree,xpath" in sn
        assert "features=on-change" in yp
        lib = m.get(filter=("subtree", '<yang-library xmlns="urn:ietf:params:xml:ns:yang:'
                                       'ietf-yang-library"/>')).data_ele
    y = "urn:ietf:params:xml:ns:yang:ietf-yang-library"
    feats = {m.findtext(f"{{{y}}}name"): sorted(f.text for f in m.iterfind(f"{{{y}}}feature"))
             for m in lib.iter(f"{{{y}}}module")}
    assert feats["ietf-subscribed-notifications"] == ["encode-xml", "replay", "subtree", "xpath"]
    assert feats["ietf-yang-push"] == ["on-change"]
    # what libyang implements for leafrefs under features we lack is no data we serve
    only = {m.findtext(f"{{{y}}}name") for m in lib.iter(f"{{{y}}}import-only-module")}
    assert {"ietf-interfaces", "ietf-network-instance", "ietf-yang-patch"} <= only
    assert not only & set(feats)


def test_periodic_running_delivers_at_its_period_without_secrets(gw: str) -> None:
    with connect(gw) as m:
        sid = establish(m, f'<yp:datastore>ds:running</yp:datastore>'
                           f'<yp:datastore-subtree-filter><ike xmlns="{NS}"><pre-shared-key/>'
                           f'</ike></yp:datastore-subtree-filter>'
                           f'<yp:periodic><yp:period>50</yp:period></yp:periodic>')
        got = collect(m, 3.0)
        assert all(name(b) == "push-update" for b in got)
        assert 4 <= len(got) <= 8, len(got)  # every 0.5 s over 3 s
        first = got[0]
        assert first.findtext(f"{{{YP}}}id") == str(sid)
        psk = first.find(f"{{{YP}}}datastore-contents/{{{NS}}}ike/{{{NS}}}pre-shared-key")
        assert psk is not None and psk.findtext(f"{{{NS}}}name") == "siteb"
        assert first.find(f".//{{{NS}}}secret") is None  # never pushed, even to admin
        assert first.find(f".//{{{NS}}}ike-policy-template") is None  # filtered out
        rpc(m, f'<delete-subscription xmlns="{SN}"><id>{sid}</id></delete-subscription>')
        collect(m, 0.3)  # what was on its way
        assert collect(m, 1.5) == []


def test_on_change_running_sees_a_vpn_added_and_removed(gw: str) -> None:
    with connect(gw) as m, connect(gw) as editor:
        sid = establish(m, f'<yp:datastore>ds:running</yp:datastore>'
                           f'<yp:datastore-xpath-filter xmlns:ipnf="{NS}">/ipnf:ike/ipnf:vpn'
                           f'</yp:datastore-xpath-filter><yp:on-change/>')
        sync = take(m)
        assert sync is not None and name(sync) == "push-update"  # sync-on-start
        editor.edit_config(target="candidate", config=vpn("pushed"))
        editor.commit()
        change = take(m)
        assert change is not None and name(change) == "push-change-update", change
        assert change.findtext(f"{{{YP}}}id") == str(sid)
        edits = change.findall(f"{{{YP}}}datastore-changes/{{{YP}}}yang-patch/{{{YP}}}edit")
        assert [(e.findtext(f"{{{YP}}}operation"), e.findtext(f"{{{YP}}}target"))
                for e in edits] == [("create", "/ipsec-nf:ike/vpn=pushed")]
        value = edits[0].find(f"{{{YP}}}value/{{{NS}}}vpn")
        assert value is not None and value.findtext(f"{{{NS}}}remote-address") == "198.51.100.2"
        editor.edit_config(target="candidate", config=(
            f'<config xmlns="{NC}"><ike xmlns="{NS}"><vpn xmlns:nc="{NC}" nc:operation="delete">'
            f"<name>pushed</name></vpn></ike></config>"))
        editor.commit()
        change = take(m)
        assert change is not None
        edits = change.findall(f".//{{{YP}}}edit")
        assert [(e.findtext(f"{{{YP}}}operation"), e.findtext(f"{{{YP}}}target"))
                for e in edits] == [("delete", "/ipsec-nf:ike/vpn=pushed")]
        # a change outside the filter sends nothing
        editor.edit_config(target="candidate", config=(
            f'<config xmlns="{NC}"><ike xmlns="{NS}"><pre-shared-key><name>other</name>'
            f"<id>c.example.net</id><secret>another-secret</secret></pre-shared-key>"
            f"</ike></config>"))
        editor.commit()
        assert take(m, 1.0) is None


def test_on_change_dampening_and_excluded_changes(gw: str) -> None:
    with connect(gw) as m, connect(gw) as editor:
        establish(m, f'<yp:datastore>ds:running</yp:datastore>'
                     f'<yp:datastore-subtree-filter><ike xmlns="{NS}"><vpn/></ike>'
                     f'</yp:datastore-subtree-filter>'
                     f'<yp:on-change><yp:dampening-period>150</yp:dampening-period>'
                     f'<yp:sync-on-start>false</yp:sync-on-start>'
                     f'<yp:excluded-change>delete</yp:excluded-change></yp:on-change>')
        start = time.monotonic()
        for n in ("d1", "d2", "d3"):  # three commits inside one dampening period
            editor.edit_config(target="candidate", config=vpn(n))
            editor.commit()
        got = collect(m, 2.5)
        # no sync push-update; the first change at once, the two others in one more update
        # once the dampening period is over
        assert [name(b) for b in got] == ["push-change-update", "push-change-update"], got
        targets = [[e.findtext(f"{{{YP}}}target") for e in b.iter(f"{{{YP}}}edit")]
                   for b in got]
        assert targets == [["/ipsec-nf:ike/vpn=d1"],
                           ["/ipsec-nf:ike/vpn=d2", "/ipsec-nf:ike/vpn=d3"]]
        assert time.monotonic() - start >= 1.5
        editor.edit_config(target="candidate", config=(
            f'<config xmlns="{NC}"><ike xmlns="{NS}" xmlns:nc="{NC}">'
            + "".join(f'<vpn nc:operation="delete"><name>{n}</name></vpn>'
                      for n in ("d1", "d2", "d3")) + "</ike></config>"))
        editor.commit()
        assert collect(m, 2.0) == []  # deletes are excluded


def test_modify_and_kill(gw: str) -> None:
    with connect(gw) as m, connect(gw) as operator:
        sid = establish(m, '<yp:datastore>ds:operational</yp:datastore>'
                           '<yp:periodic><yp:period>500</yp:period></yp:periodic>')
        first = take(m)
        assert first is not None and name(first) == "push-update"
        # operational holds the state: the apply status
        assert first.find(f".//{{{NS}}}apply-status") is not None
        rpc(m, f'<modify-subscription xmlns="{SN}" xmlns:yp="{YP}" xmlns:ds="{DS}">'
               f"<id>{sid}</id><yp:datastore>ds:operational</yp:datastore>"
               f'<yp:datastore-subtree-filter><ike xmlns="{NS}"><pre-shared-key/></ike>'
               f"</yp:datastore-subtree-filter>"
               f"<yp:periodic><yp:period>40</yp:period></yp:periodic></modify-subscription>")
        modified = take(m)
        assert modified is not None and name(modified) == "subscription-modified"
        assert modified.findtext(f"{{{YP}}}periodic/{{{YP}}}period") == "40"
        got = collect(m, 1.0)
        assert len(got) >= 2 and all(name(b) == "push-update" for b in got)
        assert all(b.find(f".//{{{NS}}}apply-status") is None for b in got)  # new filter
        # the subscription and its receiver's counters in the operational state (RFC 8639)
        state = operator.get(filter=("subtree", f'<subscriptions xmlns="{SN}"/>')).data_ele
        entry = next(e for e in state.iter(f"{{{SN}}}subscription")
                     if e.findtext(f"{{{SN}}}id") == str(sid))
        assert entry.findtext(f"{{{YP}}}periodic/{{{YP}}}period") == "40"
        assert int(entry.findtext(f".//{{{SN}}}sent-event-records")) >= 4
        assert entry.findtext(f".//{{{SN}}}state") == "active"
        # another session cannot delete it, an administrator can kill it
        with pytest.raises(RPCError) as e:
            rpc(operator, f'<delete-subscription xmlns="{SN}"><id>{sid}</id>'
                          "</delete-subscription>")
        assert e.value.tag == "invalid-value"
        assert e.value.to_dict()["app_tag"] == "ietf-subscribed-notifications:no-such-subscription"
        with connect(gw, user=VIEWER, password=VIEWER_PW) as viewer:
            with pytest.raises(RPCError) as e:  # nacm:default-deny-all
                rpc(viewer, f'<kill-subscription xmlns="{SN}"><id>{sid}</id>'
                            "</kill-subscription>")
            assert e.value.tag == "access-denied"
        rpc(operator, f'<kill-subscription xmlns="{SN}"><id>{sid}</id></kill-subscription>')
        rest = collect(m, 1.0)
        assert rest and name(rest[-1]) == "subscription-terminated", rest
        assert rest[-1].findtext(f"{{{SN}}}reason").endswith(":no-such-subscription")
        assert collect(m, 0.5) == []


@pytest.mark.parametrize(("inner", "tag", "app_tag"), [
    ('<yp:datastore>ds:running</yp:datastore><yp:periodic><yp:period>1</yp:period>'
     '</yp:periodic>', "invalid-value", "ietf-yang-push:period-unsupported"),
    ('<yp:datastore>ds:candidate</yp:datastore><yp:on-change/>', "invalid-value",
     "ietf-yang-push:datastore-not-subscribable"),
    ("<stream>NOPE</stream>", "invalid-value",
     "ietf-subscribed-notifications:stream-unavailable"),
    # encode-json is an identity of a feature we do not have: libyang refuses the value
    ("<stream>NETCONF</stream><encoding>encode-json</encoding>", "invalid-value", None),
    # libyang checks the XPath syntax and prefixes (yang:xpath1.0); the functions of RFC 7950
    # section 10 are not offered in filters
    ("<stream>NETCONF</stream><stream-xpath-filter>re-match(., 'a')</stream-xpath-filter>",
     "invalid-value", "ietf-subscribed-notifications:filter-unsupported"),
    ('<yp:datastore>ds:running</yp:datastore>', "invalid-value", None),
    ('<yp:datastore>ds:running</yp:datastore><yp:periodic><yp:period>x</yp:period>'
     '</yp:periodic>', "invalid-value", None),
    ("<stream>NETCONF</stream><yp:datastore>ds:running</yp:datastore>", "bad-element", None),
    ("<stream>NETCONF</stream><dscp>3</dscp>", "unknown-element", None),
    ("<yp:periodic><yp:period>100</yp:period></yp:periodic>", "missing-element", None),
])
def test_bad_input_is_an_rpc_error(gw: str, inner: str, tag: str, app_tag: str | None) -> None:
    with connect(gw) as m:
        with pytest.raises(RPCError) as e:
            establish(m, inner)
        assert e.value.tag == tag, e.value.to_dict()
        if app_tag is not None:
            assert e.value.to_dict()["app_tag"] == app_tag
        assert m.take_notification(block=True, timeout=0.3) is None


def test_rfc5277_and_rfc8639_subscriptions_do_not_mix_on_a_session(gw: str) -> None:
    with connect(gw) as m:
        establish(m, "<stream>NETCONF</stream>")
        with pytest.raises(RPCError) as e:
            m.create_subscription()
        assert e.value.tag == "operation-not-supported"
    with connect(gw) as m:
        m.create_subscription()
        with pytest.raises(RPCError) as e:
            establish(m, "<stream>NETCONF</stream>")
        assert e.value.tag == "operation-not-supported"


def test_stream_subscription_filter_and_replay(gw: str) -> None:
    with connect(gw) as m, connect(gw) as editor:
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
        reply = rpc(m, f'<establish-subscription xmlns="{SN}"><stream>NETCONF</stream>'
                       '<stream-xpath-filter xmlns:ncn="urn:ietf:params:xml:ns:yang:'
                       'ietf-netconf-notifications">/ncn:netconf-config-change'
                       f"</stream-xpath-filter><replay-start-time>{since}</replay-start-time>"
                       "</establish-subscription>")
        # the log starts when the server did, after the time asked for (RFC 8639 2.4.2.1)
        revised = reply.findtext(f"{{{SN}}}replay-start-time-revision")
        assert revised is not None and revised > since
        replayed = []
        while (body := take(m)) is not None and name(body) != "replay-completed":
            replayed.append(body)
        assert body is not None, "no replay-completed"
        assert replayed and all(name(b) == "netconf-config-change" for b in replayed)
        editor.edit_config(target="candidate", config=vpn("streamed"))
        editor.commit()  # a session start/end and a config change: only the change passes
        live = take(m)
        assert live is not None and name(live) == "netconf-config-change"
        editor.edit_config(target="candidate", config=(
            f'<config xmlns="{NC}"><ike xmlns="{NS}"><vpn xmlns:nc="{NC}" nc:operation="delete">'
            f"<name>streamed</name></vpn></ike></config>"))
        editor.commit()
        assert take(m) is not None
        # a new filter: session starts only
        sid = reply.findtext(f"{{{SN}}}id")
        rpc(m, f'<modify-subscription xmlns="{SN}"><id>{sid}</id><stream-subtree-filter>'
               '<netconf-session-start xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-'
               'notifications"/></stream-subtree-filter></modify-subscription>')
        modified = take(m)
        assert modified is not None and name(modified) == "subscription-modified"
        assert modified.findtext(f"{{{SN}}}stream") == "NETCONF"
        with connect(gw):
            pass
        started = take(m)
        assert started is not None and name(started) == "netconf-session-start"
        assert take(m, 1.0) is None  # its netconf-session-end is filtered out


def test_a_read_restricted_user_gets_no_secret_and_only_what_it_may_read(gw: str) -> None:
    with connect(gw) as admin:  # viewer may not read templates
        admin.edit_config(target="candidate", config=(
            f'<config xmlns="{NC}"><nacm xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-acm">'
            "<groups><group><name>ro</name><user-name>viewer</user-name></group></groups>"
            "<rule-list><name>ro</name><group>ro</group><rule><name>no-templates</name>"
            f'<module-name>ipsec-nf</module-name><path xmlns:ipnf="{NS}">'
            "/ipnf:ike/ipnf:ike-policy-template</path><access-operations>read"
            "</access-operations><action>deny</action></rule></rule-list></nacm></config>"))
        admin.commit()
    try:
        with connect(gw, user=VIEWER, password=VIEWER_PW) as m:
            establish(m, '<yp:datastore>ds:running</yp:datastore><yp:on-change/>')
            sync = take(m)
            assert sync is not None and name(sync) == "push-update"
            ike = sync.find(f"{{{YP}}}datastore-contents/{{{NS}}}ike")
            assert ike is not None and ike.find(f"{{{NS}}}pre-shared-key") is not None
            assert SECRET not in etree.tostring(sync, encoding="unicode")
            assert ike.find(f"{{{NS}}}ike-policy-template") is None
            assert ike.find(f"{{{NS}}}ipsec-policy-template") is not None
    finally:
        with connect(gw) as admin:
            admin.edit_config(target="candidate", config=(
                f'<config xmlns="{NC}"><nacm xmlns="urn:ietf:params:xml:ns:yang:'
                f'ietf-netconf-acm" xmlns:nc="{NC}"><rule-list nc:operation="delete">'
                "<name>ro</name></rule-list></nacm></config>"))
            admin.commit()
