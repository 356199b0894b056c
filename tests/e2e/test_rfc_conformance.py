"""Issue 11, "correct to the letter of the RFCs", against the real server over NETCONF/SSH
(ipsec-nf serve in a network namespace, with its charon; ncclient as the client): NACM
counters (RFC 8341), the with-defaults 'default' attribute (RFC 6243), the stream list and
replay (RFC 5277), NMDA features in the YANG library (RFC 8526), repeated parameters
(RFC 6241/7950), and everything <get> returns checked against the YANG modules."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import asyncssh
import pytest
from lxml import etree
from ncclient import manager
from ncclient.operations.rpc import RPCError
from ncclient.xml_ import to_ele

from nf.schema import Schema
from tests.support import wait_for
from tools.lab import NETCONF_PORT, PASSWORD, USER, Lab, configure, running

NS = "urn:ipsec-nf:yang:ipsec-nf"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NACM = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
NMDA = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"
DS = "urn:ietf:params:xml:ns:yang:ietf-datastores"
OR = "urn:ietf:params:xml:ns:yang:ietf-origin"
YL = "urn:ietf:params:xml:ns:yang:ietf-yang-library"
NMN = "urn:ietf:params:xml:ns:netmod:notification"
NOTIF = "urn:ietf:params:xml:ns:netconf:notification:1.0"
WD = "urn:ietf:params:xml:ns:netconf:default:1.0"
WD_MODULE = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults"
NCN = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"
P = {"i": NS, "nc": NC, "a": NACM, "n": NMDA, "y": YL, "s": NMN, "wd": WD}
ROOT = Path(__file__).resolve().parents[2]
COUNTERS = ("denied-operations", "denied-data-writes", "denied-notifications")
RULES = f"""<config xmlns="{NC}"><nacm xmlns="{NACM}"><rule-list><name>operators</name>
  <group>operators</group>
  <rule><name>no-config-events</name><module-name>ietf-netconf-notifications</module-name>
    <notification-name>netconf-config-change</notification-name>
    <access-operations>read</access-operations><action>deny</action></rule>
</rule-list></nacm></config>"""


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.cli", *args], input=stdin, text=True,
                          capture_output=True, cwd=ROOT)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running(tmp_path_factory.mktemp("rfclab"), sites="AB") as lab:
        sd = str(lab.a.state_dir)
        for user, extra in (("reader", ("--group", "operators")), ("nobody", ())):
            r = cli("passwd", "--state-dir", sd, *extra, user, stdin=f"{user}-pw\n")
            assert r.returncode == 0, r.stderr
        configure(lab, lab.a, lab.b)  # site B is the peer, so that /ike has SAs to show
        with lab.connect(lab.a) as m:
            m.edit_config(target="running", config=RULES)
        yield lab


@pytest.fixture(scope="module")
def schema() -> Schema:
    return Schema()


def connect(lab: Lab, user: str):  # noqa: ANN201 - ncclient Manager
    return manager.connect(host=lab.a.mgmt, port=NETCONF_PORT, username=user,
                           password=f"{user}-pw", hostkey_verify=False, allow_agent=False,
                           look_for_keys=False, timeout=30)


def data_of(reply) -> etree._Element:  # noqa: ANN001 - ncclient reply
    return etree.fromstring(reply.xml.encode()).find("nc:data", P)


def nmda_data(reply) -> etree._Element:  # noqa: ANN001
    return etree.fromstring(reply.xml.encode()).find("n:data", P)


def get_data(m, ds: str, extra: str = ""):  # noqa: ANN001, ANN201
    return m.dispatch(to_ele(f'<get-data xmlns="{NMDA}" xmlns:ds="{DS}" xmlns:or="{OR}">'
                             f"<datastore>ds:{ds}</datastore>{extra}</get-data>"))


def counters(m) -> dict[str, int]:  # noqa: ANN001
    nacm = data_of(m.get(filter=("subtree", f'<nacm xmlns="{NACM}"/>'))).find("a:nacm", P)
    return {k: int(nacm.findtext(f"a:{k}", namespaces=P)) for k in COUNTERS}


def text(el: etree._Element) -> str:
    return "".join(etree.tostring(c, encoding="unicode") for c in el)


# ---- RFC 8341: /nacm counters --------------------------------------------------------------

def test_nacm_counters_count_every_denial_once(lab: Lab) -> None:
    with lab.connect(lab.a) as admin, connect(lab, "reader") as reader, \
            lab.connect(lab.a) as listener:
        before = counters(admin)
        reader.create_subscription()
        listener.create_subscription(filter=("subtree",
                                             f'<netconf-config-change xmlns="{NCN}"/>'))
        with connect(lab, "nobody") as nobody:
            with pytest.raises(RPCError) as ei:  # exec: kill-session is default-deny-all
                nobody.kill_session(str(admin.session_id))
            assert ei.value.tag == "access-denied"
            assert ei.value.path.strip() == "/ietf-netconf:rpc/ietf-netconf:kill-session"
            with pytest.raises(RPCError) as ei:  # write: write-default is deny
                nobody.edit_config(target="running", config=(
                    f'<config xmlns="{NC}"><ike xmlns="{NS}"><vpn><name>siteA-siteB</name>'
                    "<local-id>x.example.net</local-id></vpn></ike></config>"))
            assert ei.value.tag == "access-denied"
            nobody.get()  # reads are pruned, not counted
        # a config change the reader's subscription may not see (rule no-config-events)
        admin.edit_config(target="running", config=(
            f'<config xmlns="{NC}"><nacm xmlns="{NACM}"><groups><group><name>audit</name>'
            "</group></groups></nacm></config>"))
        want = {k: before[k] + 1 for k in COUNTERS}
        assert wait_for(lambda: counters(admin) == want, timeout=10), (counters(admin), want)
        time.sleep(1)
        assert counters(admin) == want  # once, not once per node or per retry
        oper = nmda_data(get_data(admin, "operational",
                                  f'<subtree-filter><nacm xmlns="{NACM}"/></subtree-filter>'))
        assert {k: int(oper.findtext(f"a:nacm/a:{k}", namespaces=P)) for k in COUNTERS} == want
        seen = []
        while (n := reader.take_notification(block=True, timeout=1)) is not None:
            seen.append(n.notification_xml)
        assert seen and not any("netconf-config-change" in x for x in seen), seen
        changes = []  # what was dropped for the reader: one event, so one count
        while (n := listener.take_notification(block=True, timeout=1)) is not None:
            changes.append(n.notification_xml)
        assert len(changes) == 1 and "groups" in changes[0], changes
        # /nacm is nacm:default-deny-all: the counters are not for everyone
        assert data_of(reader.get()).find("a:nacm", P) is None


# ---- RFC 6243: report-all-tagged ----------------------------------------------------------

TEMPLATE = (f'<config xmlns="{NC}" xmlns:wd="{WD}"><ike xmlns="{NS}"><ike-policy-template>'
            "<name>iketemp1</name>{}</ike-policy-template></ike></config>")


def template(data: etree._Element) -> etree._Element:
    return data.find("i:ike/i:ike-policy-template", P)


def test_report_all_tagged_uses_the_rfc_namespace(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        m.edit_config(target="running", config=TEMPLATE.format("<keying-tries>1</keying-tries>"))
        replies = [m.get_config("running", with_defaults="report-all-tagged"),
                   m.get(with_defaults="report-all-tagged")]
        for reply in replies:
            d = data_of(reply)  # the module namespace is for <with-defaults>, not the tag
            assert not d.xpath(f"//@*[namespace-uri()='{WD_MODULE}']")
            assert d.xpath(f"//@*[namespace-uri()='{WD}']")
            t = template(d)
            assert t.find("i:rekey-time", P).get(f"{{{WD}}}default") == "true"
            # set by the client (to the default value): not default data in explicit mode
            assert t.find("i:keying-tries", P).get(f"{{{WD}}}default") is None
        nm = nmda_data(get_data(m, "running", "<with-defaults>report-all-tagged</with-defaults>"))
        assert template(nm).find("i:rekey-time", P).get(f"{{{WD}}}default") == "true"
        with pytest.raises(RPCError) as ei:  # RFC 8526: no :with-operational-defaults
            get_data(m, "operational", "<with-defaults>report-all</with-defaults>")
        assert ei.value.tag == "invalid-value"
        m.edit_config(target="running", config=TEMPLATE.format(
            '<keying-tries xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" '
            'nc:operation="remove"/>'))


def test_tagged_default_in_edit_and_copy_config(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        m.edit_config(target="running", config=TEMPLATE.format("<rekey-time>3h</rekey-time>"))
        assert template(data_of(m.get_config("running"))).findtext(
            "i:rekey-time", namespaces=P) == "3h"
        # the client sends a leaf as report-all-tagged shows it: default data, not a value
        m.edit_config(target="running", config=TEMPLATE.format(
            '<rekey-time wd:default="true">4h</rekey-time>'))
        assert template(data_of(m.get_config("running"))).find("i:rekey-time", P) is None
        with pytest.raises(RPCError) as ei:
            m.edit_config(target="running", config=TEMPLATE.format(
                '<rekey-time wd:default="true">3h</rekey-time>'))
        assert ei.value.tag == "invalid-value"
        with pytest.raises(RPCError) as ei:
            m.edit_config(target="running", config=TEMPLATE.format(
                f'<rekey-time xmlns:m="{WD_MODULE}" m:default="true">4h</rekey-time>'))
        assert ei.value.tag == "unknown-attribute"
        # report-all-tagged output copied back is the same configuration
        tagged = data_of(m.get_config("running", with_defaults="report-all-tagged"))
        config = etree.Element(f"{{{NC}}}config")
        config.extend(list(tagged))
        m.dispatch(to_ele(f'<copy-config xmlns="{NC}"><target><candidate/></target><source>'
                          f"{etree.tostring(config).decode()}</source></copy-config>"))
        cand = m.get_config("candidate").xml
        assert "default:1.0" not in cand
        assert leaves(data_of(m.get_config("candidate"))) == leaves(
            data_of(m.get_config("running")))
        m.discard_changes()


def leaves(el: etree._Element) -> list[tuple[str, str]]:
    """Every leaf as (path of names, value), sorted: the order of siblings may differ."""
    return sorted(("/".join(etree.QName(a).localname for a in [*reversed(list(
        e.iterancestors())), e]), (e.text or "").strip()) for e in el.iter()
        if isinstance(e.tag, str) and not len(e))


# ---- RFC 5277: /netconf/streams, replay -----------------------------------------------------

def test_streams_listed_in_get(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        d = data_of(m.get(filter=("subtree", f'<netconf xmlns="{NMN}"><streams/></netconf>')))
        assert [etree.QName(c).localname for c in d] == ["netconf"]
        stream = d.find("s:netconf/s:streams/s:stream", P)
        assert stream.findtext("s:name", namespaces=P) == "NETCONF"
        assert stream.findtext("s:description", namespaces=P)
        assert stream.findtext("s:replaySupport", namespaces=P) == "true"
        created = datetime.fromisoformat(
            stream.findtext("s:replayLogCreationTime", namespaces=P).replace("Z", "+00:00"))
        assert created.timestamp() <= time.time()
        only = data_of(m.get(filter=("subtree", f'<netconf xmlns="{NMN}"><streams><stream>'
                                                "<name>NETCONF</name><replaySupport/></stream>"
                                                "</streams></netconf>")))
        assert [etree.QName(c).localname for c in only.find("s:netconf/s:streams/s:stream",
                                                            P)] == ["name", "replaySupport"]
        assert d.find("s:netconf", P) is not None and data_of(m.get()).find(
            "s:netconf/s:streams/s:stream", P) is not None


GROUP = re.compile(r"group\[ietf-netconf-acm:name='g(\d+)-")
PAD = "-" * 200  # longer events: the replay outgrows the subscriber's SSH window sooner


async def slow_subscriber(lab: Lab, start: str, pause: float, last: str
                          ) -> list[tuple[str, str]]:
    """A subscriber over its own SSH link with a small window that subscribes with replay,
    then reads nothing for ``pause`` seconds (the server's replay stalls on the window while
    events keep coming), then reads until event ``last``; returns (event, eventTime)s."""
    async with asyncssh.connect(lab.a.mgmt, NETCONF_PORT, username=USER, password=PASSWORD,
                                known_hosts=None) as conn:
        writer, reader, _ = await conn.open_session(subsystem="netconf", encoding=None,
                                                    window=4096, max_pktsize=4096)
        writer.write(f'<hello xmlns="{NC}"><capabilities><capability>urn:ietf:params:netconf:'
                     "base:1.0</capability></capabilities></hello>]]>]]>".encode())
        buf = b""
        while b"]]>]]>" not in buf:
            buf += await asyncio.wait_for(reader.read(65536), 30)
        buf = buf.split(b"]]>]]>", 1)[1]
        writer.write(f'<rpc xmlns="{NC}" message-id="1"><create-subscription xmlns="{NOTIF}">'
                     f"<startTime>{start}</startTime></create-subscription></rpc>]]>]]>"
                     .encode())
        await asyncio.sleep(pause)
        seen: list[tuple[str, str]] = []
        while not seen or seen[-1][0] != last:
            while b"]]>]]>" not in buf:
                buf += await asyncio.wait_for(reader.read(65536), 30)
            msg, buf = buf.split(b"]]>]]>", 1)
            doc = etree.fromstring(msg)
            if doc.tag == f"{{{NC}}}rpc-reply":
                assert doc.find(f"{{{NC}}}ok") is not None, msg
                continue
            t = doc.findtext(f"{{{NOTIF}}}eventTime")
            if doc.find(f"{{{NMN}}}replayComplete") is not None:
                seen.append(("replayComplete", t))
            elif (g := GROUP.search(msg.decode())) is not None:
                seen.append((f"g{g.group(1)}", t))
        return seen


def test_events_during_replay_are_delivered_after_replay_complete(lab: Lab) -> None:
    total, before_subscribing = 500, 300
    done = threading.Event()
    progress = [0]
    errors: list[BaseException] = []

    def generate() -> None:
        try:
            with lab.connect(lab.a) as gen:
                for i in range(total):
                    gen.edit_config(target="running", config=(
                        f'<config xmlns="{NC}"><nacm xmlns="{NACM}"><groups><group><name>g{i}'
                        f"{PAD}</name></group></groups></nacm></config>"))
                    progress[0] = i + 1
        except BaseException as e:  # reported by the test
            errors.append(e)
        finally:
            done.set()

    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    worker = threading.Thread(target=generate)
    worker.start()
    try:
        assert wait_for(lambda: progress[0] >= before_subscribing or done.is_set(),
                        timeout=120, every=0.05)
        seen = asyncio.run(slow_subscriber(lab, start, 3.0, f"g{total - 1}"))
    finally:
        worker.join(120)
    assert not errors, errors
    groups = [w for w, _ in seen if w != "replayComplete"]
    assert groups == [f"g{i}" for i in range(total)]  # none lost, none twice, in order
    marks = [i for i, (w, _) in enumerate(seen) if w == "replayComplete"]
    assert len(marks) == 1 and 0 < marks[0] < len(seen) - 1, marks
    complete_at = seen[marks[0]][1]
    raced = [w for w, t in seen[marks[0] + 1:] if t < complete_at]
    assert raced, ("no event was published while the replay was being sent: the scenario "
                   "this test is about did not happen", seen[marks[0] - 2:marks[0] + 3])
    with lab.connect(lab.a) as m:
        m.edit_config(target="running", config=(
            f'<config xmlns="{NC}" xmlns:nc="{NC}"><nacm xmlns="{NACM}"><groups '
            'nc:operation="remove"/></nacm></config>'))


def test_replay_complete_is_sent_whatever_the_filter(lab: Lab) -> None:
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    with lab.connect(lab.a) as m:
        # a filter that selects none of the stored events, nor replayComplete itself
        m.create_subscription(filter=("subtree", f'<netconf-capability-change xmlns="{NCN}"/>'),
                              start_time=start)
        n = m.take_notification(block=True, timeout=10)
        assert n is not None and "replayComplete" in n.notification_xml, n


def test_config_change_target_is_a_valid_instance_identifier(lab: Lab, schema: Schema) -> None:
    with lab.connect(lab.a) as listener, lab.connect(lab.a) as admin:
        listener.create_subscription()
        admin.edit_config(target="running", config=(
            f'<config xmlns="{NC}"><nacm xmlns="{NACM}"><groups><group><name>prefixes</name>'
            "</group></groups></nacm></config>"))
        for _ in range(10):
            n = listener.take_notification(block=True, timeout=10)
            assert n is not None
            if "netconf-config-change" in n.notification_xml:
                break
        body = n.notification_ele.find(f"{{{NCN}}}netconf-config-change")
        target = body.find(f"{{{NCN}}}edit/{{{NCN}}}target")
        assert target.nsmap.get("ietf-netconf-acm") == NACM, etree.tostring(target)
        schema.check_notification(etree.tostring(body).decode())


# ---- RFC 8526: features in the YANG library ----------------------------------------------

def test_yang_library_announces_the_features_in_use(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        lib = data_of(m.get(filter=("subtree", f'<yang-library xmlns="{YL}"/>'))).find(
            "y:yang-library", P)
        caps = list(m.server_capabilities)
    mods = {x.findtext("y:name", namespaces=P): {f.text for f in x.iterfind("y:feature", P)}
            for x in lib.iterfind("y:module-set/y:module", P)}
    assert {"origin", "with-defaults"} <= mods["ietf-netconf-nmda"]
    assert {"candidate", "confirmed-commit", "rollback-on-error", "validate", "startup",
            "xpath", "writable-running"} <= mods["ietf-netconf"]
    assert "url" not in mods["ietf-netconf"]
    assert "nc-notifications" in mods
    # RFC 8525: one entry per datastore the server supports, with its schema
    assert {d.findtext("y:name", namespaces=P).split(":")[1] for d in lib.iterfind(
        "y:datastore", P)} == {"running", "candidate", "startup", "intended", "operational"}
    cid = lib.findtext("y:content-id", namespaces=P)
    assert any(c.startswith("urn:ietf:params:netconf:capability:yang-library:1.1")
               and c.endswith(f"content-id={cid}") for c in caps)


def test_with_origin_and_origin_filters(lab: Lab, schema: Schema) -> None:
    with lab.connect(lab.a) as m:
        d = nmda_data(get_data(m, "operational", "<with-origin/>"))
        assert d.find("i:ike", P).get(f"{{{OR}}}origin") == "or:intended"
        state = [e for e in d if etree.QName(e).localname in ("netconf-state", "netconf")]
        assert state and not any(e.xpath(".//@or:origin", namespaces={"or": OR})
                                 for e in state)
        schema.check_data(text(d))
        d = nmda_data(get_data(m, "operational", "<origin-filter>or:system</origin-filter>"))
        assert d.find("i:ike/i:apply-status", P) is not None
        # a VPN shows only as the parent of its state (key and effective parameters): none of
        # its configured (intended) leaves
        vpn = d.find("i:ike/i:vpn", P)
        assert vpn is not None and {etree.QName(c).localname for c in vpn} == {
            "name", "effective"}, text(d)
        d = nmda_data(get_data(m, "operational", "<origin-filter>or:intended</origin-filter>"))
        assert d.find("i:ike/i:vpn", P) is not None


# ---- RFC 6241 / RFC 7950: every parameter once -------------------------------------------

REPEATED = [
    ("<edit-config><target><candidate/></target><target><running/></target><config>"
     f'<ike xmlns="{NS}"><vpn><name>siteA-siteB</name><local-id>twice.example.net</local-id>'
     "</vpn></ike></config></edit-config>", "target"),
    ("<edit-config><target><running/></target><config>"
     f'<ike xmlns="{NS}"><vpn><name>siteA-siteB</name><local-id>twice.example.net</local-id>'
     "</vpn></ike></config><config><ike xmlns=\"" + NS + "\"/></config></edit-config>",
     "config"),
    ("<get-config><source><running/></source><source><candidate/></source></get-config>",
     "source"),
    ("<copy-config><target><startup/></target><source><running/></source><source><candidate/>"
     "</source></copy-config>", "source"),
    (f'<get><filter type="subtree"><ike xmlns="{NS}"/></filter><filter type="subtree">'
     f'<nacm xmlns="{NACM}"/></filter></get>', "filter"),
    (f'<get><with-defaults xmlns="{WD_MODULE}">trim</with-defaults><with-defaults '
     f'xmlns="{WD_MODULE}">report-all</with-defaults></get>', "with-defaults"),
    ("<commit><confirmed/><confirm-timeout>30</confirm-timeout><confirm-timeout>60"
     "</confirm-timeout></commit>", "confirm-timeout"),
    ("<commit><persist-id>a</persist-id><persist-id>b</persist-id></commit>", "persist-id"),
    ("<cancel-commit><persist-id>a</persist-id><persist-id>b</persist-id></cancel-commit>",
     "persist-id"),
    (f'<wait-applied xmlns="{NS}"><timeout>0</timeout><timeout>1</timeout></wait-applied>',
     "timeout"),
    ("<lock><target><candidate/></target><target><running/></target></lock>", "target"),
    ("<kill-session><session-id>99</session-id><session-id>98</session-id></kill-session>",
     "session-id"),
    (f'<get-data xmlns="{NMDA}" xmlns:ds="{DS}"><datastore>ds:running</datastore>'
     "<datastore>ds:candidate</datastore></get-data>", "datastore"),
    (f'<create-subscription xmlns="{NOTIF}"><startTime>2020-01-01T00:00:00Z</startTime>'
     "<startTime>2021-01-01T00:00:00Z</startTime></create-subscription>", "startTime"),
]


@pytest.mark.parametrize("rpc,bad", REPEATED, ids=[f"{i}-{b}" for i, (_, b) in
                                                   enumerate(REPEATED)])
def test_a_parameter_given_twice_is_refused(lab: Lab, rpc: str, bad: str) -> None:
    with lab.connect(lab.a) as m:
        before = m.get_config("running").data_xml
        op = to_ele(rpc.replace(">", f' xmlns="{NC}">', 1) if "xmlns=" not in
                    rpc.split(">", 1)[0] else rpc)
        with pytest.raises(RPCError) as ei:
            m.dispatch(op)
        assert ei.value.tag == "bad-element", ei.value.xml
        assert ei.value.app_tag == "too-many-elements"
        info = etree.fromstring(ei.value.info.encode()) if ei.value.info else None
        assert info is not None and info.findtext(f"{{{NC}}}bad-element") == bad
        assert m.get_config("running").data_xml == before  # neither first nor last won


def test_two_cases_of_one_choice_are_refused(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        with pytest.raises(RPCError) as ei:
            m.dispatch(to_ele(f'<get-config xmlns="{NC}"><source><running/><candidate/>'
                              "</source></get-config>"))
        assert ei.value.tag == "bad-element"
        with pytest.raises(RPCError) as ei:
            m.dispatch(to_ele(f'<get-config xmlns="{NC}"><source><running/></source>'
                              "<frobnicate/></get-config>"))
        assert ei.value.tag == "unknown-element"


# ---- what <get> returns conforms to the YANG modules ----------------------------------------

def test_get_conforms_to_the_yang_modules(lab: Lab, schema: Schema) -> None:
    with lab.connect(lab.a) as m:
        sas = wait_for(lambda: data_of(m.get()).xpath("i:ike/i:ike-sa/i:child-sa",
                                                      namespaces=P), timeout=60)
        assert sas, "the tunnel to site B never came up: no SA state to check"
    with lab.connect(lab.a) as m, lab.connect(lab.a) as other:
        other.lock("candidate")  # a lock shows in netconf-state
        other.create_subscription()
        d = data_of(m.get())
        names = {etree.QName(c).localname for c in d}
        assert {"ike", "nacm", "netconf-state", "yang-library", "modules-state",
                "netconf"} <= names, names
        assert d.find("i:ike/i:apply-status/i:health", P) is not None
        assert d.find("i:ike/i:ike-sa/i:child-sa", P) is not None
        assert d.find(".//{urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring}global-lock",
                      None) is not None
        schema.check_data(text(d))  # raises with libyang's reason if anything is off
        schema.check_data(text(nmda_data(get_data(m, "operational", "<with-origin/>"))))
        schema.check_data(text(data_of(m.get(with_defaults="report-all"))))
        other.unlock("candidate")
