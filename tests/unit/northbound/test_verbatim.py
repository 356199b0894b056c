"""Whole reads printed from the datastore's own nodes (northbound/verbatim.py): the reply is
the general path's, byte for byte, and only the reads it can serve take that way."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from lxml import etree

from northbound import ops, replies, verbatim
from northbound.rpc import Dispatcher
from tests.support import DATA, NC, NS, P
from tests.unit.northbound.conftest import make_context

NACM = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
WD = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults"


def _vpns(n: int, first: int = 0, decl: str = "") -> str:
    return "".join(
        f"<vpn{decl}><name>v{i}</name><ike-policy><template>iketemp1</template></ike-policy>"
        "<ipsec-policy><template>ipsectemp1</template></ipsec-policy>"
        f"<local-address>198.51.100.1</local-address><remote-address>198.51.100.{2 + i % 200}"
        "</remote-address><local-id>a.example.net</local-id>"
        f"<remote-id>b{i}.example.net</remote-id></vpn>" for i in range(first, first + n))


NACM_CONFIG = (
    f'<nacm xmlns="{NACM}"><groups><group><name>ops</name><user-name>alice</user-name>'
    '</group></groups><rule-list><name>r</name><group>ops</group><rule><name>hide</name>'
    f'<path xmlns:ipnf="{NS}">/ipnf:ike/ipnf:vpn[ipnf:name=\'v3\']</path>'
    "<access-operations>read</access-operations><action>deny</action></rule></rule-list></nacm>")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """A dispatcher on real datastores: site A plus 40 VPNs (more than narrow.MANY: the
    general path's one-copy branch) and NACM rules in running, a few more VPNs in candidate,
    site A as the client wrote it (whitespace and all) in startup."""
    d = Dispatcher(make_context(tmp_path_factory.mktemp("verbatim")), ops.TABLE)
    admin = SimpleNamespace(session_id=1, closing=False, data={}, user="root", groups=["admin"])

    def run(body: str, session: SimpleNamespace = admin, msg_attrs: str = "") -> bytes:
        msg = f'<rpc xmlns="{NC}" message-id="7"{msg_attrs}>{body}</rpc>'.encode()
        return asyncio.run(d.handle(session, msg))

    site = (DATA / "site_a.xml").read_text()  # pretty-printed: whitespace text in startup
    compact = etree.tostring(etree.fromstring(site, etree.XMLParser(remove_blank_text=True)),
                             encoding="unicode")
    for body in (
        f"<edit-config><target><running/></target>{compact}</edit-config>",
        f"<copy-config><target><startup/></target><source>{site}</source></copy-config>",
        f'<edit-config><target><running/></target><config xmlns="{NC}"><ike xmlns="{NS}">'
        f"{_vpns(40)}</ike>{NACM_CONFIG}</config></edit-config>",
        f'<edit-config><target><candidate/></target><config xmlns="{NC}"><ike xmlns="{NS}">'
        f"{_vpns(3, 100)}</ike></config></edit-config>",
    ):
        assert b"<ok/>" in run(body), run(body)
    run.admin = admin
    return run


def _both(server, body: str, monkeypatch: pytest.MonkeyPatch, **kw) -> tuple[bytes, bytes, int]:
    """The reply with verbatim.get_config as it is, and with it off (the general path); how
    many of the two calls verbatim served."""
    served = []
    real = verbatim.get_config

    def spy(*a):  # noqa: ANN002, ANN202
        out = real(*a)
        served.append(out is not None)
        return out

    monkeypatch.setattr(verbatim, "get_config", spy)
    fast = server(body, **kw)
    monkeypatch.setattr(verbatim, "get_config", lambda *a: None)
    slow = server(body, **kw)
    monkeypatch.setattr(verbatim, "get_config", real)
    return fast, slow, sum(served)


def _get_config(source: str, filt: str | None, extra: str = "") -> str:
    f = "" if filt is None else f'<filter type="subtree">{filt}</filter>'
    return f"<get-config><source><{source}/></source>{f}{extra}</get-config>"


WHOLE_READS = [
    None,  # everything
    f'<ike xmlns="{NS}"/>',
    f'<ike xmlns="{NS}"><vpn/></ike>',  # the whole VPN list (bench/reads.py)
    f'<ike xmlns="{NS}"><vpn/><pre-shared-key/></ike>',
    f'<ike xmlns="{NS}"><ike-policy-template/></ike>',
    f'<ike xmlns="{NS}"><vpn> </vpn></ike>',  # blank text: still a selection node
    f'<nacm xmlns="{NACM}"><rule-list/></nacm>',  # a prefix declared inside the entries
    f'<nacm xmlns="{NACM}"/>',
    f'<ike xmlns="{NS}"><pool/></ike>',  # nothing stored: <data/>
    "",  # an empty filter selects nothing
]


@pytest.mark.parametrize("source", ["running", "candidate", "startup"])
@pytest.mark.parametrize("filt", WHOLE_READS)
def test_whole_reads_are_the_general_paths_bytes(server, monkeypatch, source, filt) -> None:
    fast, slow, served = _both(server, _get_config(source, filt), monkeypatch)
    assert served == 1
    assert fast == slow
    assert etree.fromstring(fast).find("nc:data", P) is not None


def test_reply_attributes_are_kept(server, monkeypatch) -> None:
    body = _get_config("running", f'<ike xmlns="{NS}"><vpn/></ike>')
    fast, slow, served = _both(server, body, monkeypatch,
                               msg_attrs=' xmlns:x="urn:example:x" x:tag="t1"')
    assert served == 1 and fast == slow
    r = etree.fromstring(fast)
    assert r.get("{urn:example:x}tag") == "t1" and r.get("message-id") == "7"
    assert len(r.findall("nc:data/i:ike/i:vpn", P)) == 41


@pytest.mark.parametrize("filt,extra,user", [
    (f'<ike xmlns="{NS}"><vpn><name>v1</name></vpn></ike>', "", "root"),  # by key
    (f'<ike xmlns="{NS}"><vpn><name/></vpn></ike>', "", "root"),  # nested selection
    (f'<ike xmlns="{NS}"><vpn/><vpn/></ike>', "", "root"),  # the same node twice
    ('<ike xmlns=""><vpn/></ike>', "", "root"),  # no namespace: any module's ike
    (f'<ike xmlns="{NS}"><vpn/></ike><nacm xmlns="{NACM}"/>', "", "root"),  # two tops
    (f'<ike xmlns="{NS}">x</ike>', "", "root"),  # a content match
    (f'<ike xmlns="{NS}"><vpn/></ike>', f'<with-defaults xmlns="{WD}">report-all'
     "</with-defaults>", "root"),
    (f'<ike xmlns="{NS}"><vpn/></ike>', "", "alice"),  # NACM rules apply: v3 hidden
])
def test_other_reads_take_the_general_path(server, monkeypatch, filt, extra, user) -> None:
    session = server.admin if user == "root" else SimpleNamespace(
        session_id=2, closing=False, data={}, user=user, groups=[])
    fast, slow, served = _both(server, _get_config("running", filt, extra), monkeypatch,
                               session=session)
    assert served == 0 and fast == slow
    if user == "alice":
        names = etree.fromstring(fast).xpath("//i:vpn/i:name/text()", namespaces=P)
        assert "v3" not in names and "v4" in names


def test_xpath_filter_takes_the_general_path(server, monkeypatch) -> None:
    body = (f'<get-config><source><running/></source><filter type="xpath" xmlns:i="{NS}" '
            'select="/i:ike/i:vpn"/></get-config>')
    fast, slow, served = _both(server, body, monkeypatch)
    assert served == 0 and fast == slow


def test_a_stored_redundant_declaration_gives_the_same_xml(server, monkeypatch) -> None:
    """A client that repeats the namespace on each entry: the entries may be stored with the
    declaration; printed in place it is dropped (the same XML; c14n equal)."""
    body = (f'<edit-config><target><running/></target><config xmlns="{NC}"><ike xmlns="{NS}">'
            f'{_vpns(2, 200, decl=f" xmlns={chr(34)}{NS}{chr(34)}")}</ike></config></edit-config>')
    assert b"<ok/>" in server(body)
    fast, slow, served = _both(server, _get_config("running", f'<ike xmlns="{NS}"><vpn/></ike>'),
                               monkeypatch)
    assert served == 1
    c14n = [etree.tostring(etree.fromstring(x), method="c14n") for x in (fast, slow)]
    assert c14n[0] == c14n[1]


def test_verbatim_is_the_only_child() -> None:
    v = replies.Verbatim(b"<data/>")
    assert replies.reply({"message-id": "1"}, v).endswith(
        b'<rpc-reply xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="1">'
        b"<data/></rpc-reply>")
    with pytest.raises(ValueError):
        replies.reply({"message-id": "1"}, v, replies.ok())
    with pytest.raises(ValueError):
        replies.reply({"message-id": "1"}, replies.ok(), v)



def test_both_ways_of_printing_are_taken(server, monkeypatch) -> None:
    """Selected children in one run: the top node printed whole, the others cut off; else
    each selected child printed (the byte comparisons above cover both)."""
    calls: list[str] = []
    real = verbatim._in_context
    monkeypatch.setattr(verbatim, "_in_context",
                        lambda shell, c, starts: calls.append(c.tag) or real(shell, c, starts))
    vpn = f"{{{NS}}}vpn"
    out = server(_get_config("running", f'<ike xmlns="{NS}"><vpn/></ike>'))  # psk between
    assert calls == [vpn] * len(etree.fromstring(out).findall("nc:data/i:ike/i:vpn", P)) > [vpn]
    calls.clear()
    server(_get_config("running", f'<ike xmlns="{NS}"><ike-policy-template/></ike>'))
    assert vpn in calls and f"{{{NS}}}ike-policy-template" not in calls


NMDA = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"
DS = "urn:ietf:params:xml:ns:yang:ietf-datastores"


def _get_data(ds: str, filt: str | None, extra: str = "") -> str:
    f = "" if filt is None else f"<subtree-filter>{filt}</subtree-filter>"
    return (f'<get-data xmlns="{NMDA}" xmlns:ds="{DS}"><datastore>ds:{ds}</datastore>{f}{extra}'
            "</get-data>")


@pytest.mark.parametrize("ds", ["running", "candidate", "startup", "intended"])
@pytest.mark.parametrize("filt", WHOLE_READS)
def test_get_data_whole_reads_are_the_general_paths_bytes(server, monkeypatch, ds,
                                                          filt) -> None:
    fast, slow, served = _both_read(server, _get_data(ds, filt), monkeypatch)
    assert served == 1
    assert fast == slow
    assert etree.fromstring(fast).find(f"{{{NMDA}}}data") is not None


@pytest.mark.parametrize("ds,extra", [
    ("operational", ""),
    ("running", "<config-filter>true</config-filter>"),
    ("running", "<max-depth>2</max-depth>"),
    ("running", "<with-defaults>report-all</with-defaults>"),
])
def test_other_get_data_take_the_general_path(server, monkeypatch, ds, extra) -> None:
    fast, slow, served = _both_read(server, _get_data(ds, f'<ike xmlns="{NS}"><vpn/></ike>',
                                                      extra), monkeypatch)
    assert served == 0
    if ds != "operational":  # (operational: state read at each call)
        assert fast == slow


def _both_read(server, body: str, monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, bytes, int]:
    """As _both, for verbatim.read (get-data)."""
    served = []
    real = verbatim.read

    def spy(*a):  # noqa: ANN002, ANN202
        out = real(*a)
        served.append(out is not None)
        return out

    monkeypatch.setattr(verbatim, "read", spy)
    fast = server(body)
    monkeypatch.setattr(verbatim, "read", lambda *a: None)
    slow = server(body)
    monkeypatch.setattr(verbatim, "read", real)
    return fast, slow, sum(served)


@pytest.mark.parametrize("ike_op,vpn_op", [("", ""), (' nc:operation="merge"', ""),
                                           ("", ' nc:operation="replace"')])
def test_prefixed_rpcs_store_no_protocol_declarations(tmp_path, monkeypatch, ike_op,
                                                      vpn_op) -> None:
    """ncclient writes ``<nc:rpc xmlns:nc=...>``: the payload has the NETCONF namespace in
    scope. The stored nodes do not declare it (nor another protocol namespace), so whole
    reads after such edits are still printed from the stored nodes, with the same bytes."""
    ctx = make_context(tmp_path)
    d = Dispatcher(ctx, ops.TABLE)
    admin = SimpleNamespace(session_id=1, closing=False, data={}, user="root", groups=["admin"])

    def run(body: str) -> bytes:
        msg = (f'<nc:rpc xmlns:nc="{NC}" xmlns:yang="urn:ietf:params:xml:ns:yang:1" '
               f'message-id="9">{body}</nc:rpc>').encode()
        return asyncio.run(d.handle(admin, msg))

    def edit(target: str, payload: str) -> None:
        out = run(f"<nc:edit-config><nc:target><nc:{target}/></nc:target>"
                  f"<nc:config>{payload}</nc:config></nc:edit-config>")
        assert b"<ok/>" in out, out

    site = (DATA / "site_a.xml").read_text()
    compact = etree.fromstring(site, etree.XMLParser(remove_blank_text=True))
    edit("running", "".join(etree.tostring(c, encoding="unicode") for c in compact))
    edit("candidate", f'<ike xmlns="{NS}"{ike_op}>{_vpns(3, decl=vpn_op)}</ike>')
    edit("candidate", f'<ike xmlns="{NS}"><vpn nc:operation="create">'
         f'{_vpns(1, 10)[5:]}</ike>')
    assert b"<ok/>" in run("<nc:commit/>")
    edit("running", f'<ike xmlns="{NS}">{_vpns(2, 20)}</ike>')
    for name in ("running", "candidate"):
        top = ctx.ds.tree(name).find(f"{{{NS}}}ike")
        assert NC not in top.nsmap.values(), (name, top.nsmap)
        assert all(NC not in v.nsmap.values() for v in top), name
    served: list[bool] = []
    real = verbatim.get_config
    monkeypatch.setattr(verbatim, "get_config",
                        lambda *a: served.append(real(*a) is not None) or real(*a))
    req = (f'<nc:get-config><nc:source><nc:running/></nc:source><nc:filter type="subtree">'
           f'<ike xmlns="{NS}"><vpn/></ike></nc:filter></nc:get-config>')
    fast = run(req)
    monkeypatch.setattr(verbatim, "get_config", lambda *a: None)
    slow = run(req)
    assert served == [True]
    assert fast == slow
    assert len(etree.fromstring(fast).findall("nc:data/i:ike/i:vpn", P)) == 7  # and site A's


def test_a_kept_printing_lasts_while_running_does(tmp_path, monkeypatch) -> None:
    """The last big whole read of running is given again until running changes, by any
    way it can change (edit on running, commit, copy-config);
    each reply is what the general path gives at that moment."""
    monkeypatch.setattr(verbatim, "KEEP_MIN", 0)
    ctx = make_context(tmp_path)
    d = Dispatcher(ctx, ops.TABLE)
    admin = SimpleNamespace(session_id=1, closing=False, data={}, user="root", groups=["admin"])

    def run(body: str) -> bytes:
        return asyncio.run(d.handle(admin, f'<rpc xmlns="{NC}" message-id="1">{body}</rpc>'
                                    .encode()))

    def ok(body: str) -> None:
        out = run(body)
        assert b"<ok/>" in out, out

    site = (DATA / "site_a.xml").read_text()
    ok(f"<edit-config><target><running/></target>{site}</edit-config>")
    printed: list[int] = []
    real = verbatim._print
    monkeypatch.setattr(verbatim, "_print",
                        lambda *a: printed.append(1) or real(*a))
    whole = _get_config("running", f'<ike xmlns="{NS}"><vpn/></ike>')

    def read(expect_printed: bool, remote_id: str | None = None) -> None:
        before = len(printed)
        fast = run(whole)
        assert len(printed) == before + expect_printed
        with monkeypatch.context() as m:
            m.setattr(verbatim, "get_config", lambda *a: None)
            assert fast == run(whole)
        if remote_id is not None:
            assert f"<remote-id>{remote_id}</remote-id>".encode() in fast

    def remote(name: str, value: str) -> str:
        return (f'<config xmlns="{NC}"><ike xmlns="{NS}"><vpn><name>{name}</name>'
                f"<remote-id>{value}</remote-id></vpn></ike></config>")

    read(True)
    read(False)
    run(_get_config("running", f'<ike xmlns="{NS}"/>'))  # another request: printed, kept
    read(True)
    ok(f"<edit-config><target><running/></target>{remote('siteA-siteB', 'r1.example')}"
       "</edit-config>")
    read(True, "r1.example")
    read(False, "r1.example")
    ok(f"<edit-config><target><candidate/></target>{remote('siteA-siteB', 'r2.example')}"
       "</edit-config>")
    read(False, "r1.example")  # the candidate is not running
    ok("<commit/>")
    read(True, "r2.example")
    bad = run(f'<edit-config><target><running/></target><config xmlns="{NC}">'
              f'<ike xmlns="{NS}"><vpn><name>siteA-siteB</name><remote-id>x</remote-id></vpn>'
              "<vpn><name>n</name><bogus/></vpn></ike></config></edit-config>")
    assert b"<rpc-error>" in bad
    read(False, "r2.example")  # refused: running is as it was
    ok("<copy-config><target><running/></target><source><startup/></source></copy-config>")
    read(True)
    assert b"<vpn>" not in run(whole)  # startup is empty here
    ok(f"<copy-config><target><running/></target><source>{site}</source></copy-config>")
    read(True)
