"""Hostile input, by property: the framer and the RPC pipeline never fail in any other way
than their documented errors, and every answer is a well-formed rpc-reply."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from northbound.framing import Framer, FramingError
from tests.support import NC, NS

RPC_PARTS = st.sampled_from([
    "<get/>", "<get-config><source><running/></source></get-config>",
    "<get-config><source><nope/></source></get-config>", "<lock><target/></lock>",
    "<edit-config><target><candidate/></target><config/></edit-config>",
    f'<edit-config><target><candidate/></target><config><ike xmlns="{NS}"><vpn>'
    "<name>x</name><local-address>1.2.3.4</local-address></vpn></ike></config></edit-config>",
    "<commit><confirmed/><confirm-timeout>abc</confirm-timeout></commit>",
    "<kill-session><session-id>-1</session-id></kill-session>", "<unknown-op/>",
    '<get><filter type="xpath" select="((("/></get>', "<validate><source/></validate>",
    "<delete-config><target><running/></target></delete-config>", "",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=8), st.booleans())
def test_framer_takes_any_bytes(chunks: list[bytes], chunked: bool) -> None:
    f = Framer(max_message_size=4096)
    if chunked:
        f.switch_to_chunked()
    try:
        for c in chunks:
            for msg in f.feed(c):
                assert isinstance(msg, bytes)
    except FramingError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=6))
def test_framer_roundtrip(messages: list[bytes]) -> None:
    f = Framer()
    f.switch_to_chunked()
    wire = b"".join(f.encode(m) for m in messages if m)
    g = Framer()
    g.switch_to_chunked()
    assert g.feed(wire) == [m for m in messages if m]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(op=RPC_PARTS,
       mid=st.one_of(st.none(), st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF,
                                                      blacklist_characters='"<&'),
                                        max_size=10)),
       junk=st.binary(max_size=40), cut=st.integers(min_value=0, max_value=400))
def test_every_message_gets_a_wellformed_reply(call, op: str, mid: str | None, junk: bytes,
                                               cut: int) -> None:
    attr = "" if mid is None else f' message-id="{mid}"'
    msg = f'<rpc xmlns="{NC}"{attr}>{op}</rpc>'.encode()
    for variant in (msg, msg[:cut], junk, msg + junk):
        reply = call(variant, raw=True)
        assert reply.tag == f"{{{NC}}}rpc-reply"
        errors = reply.findall(f"{{{NC}}}rpc-error")
        for e in errors:
            assert e.findtext(f"{{{NC}}}error-tag"), etree.tostring(e)
            assert e.findtext(f"{{{NC}}}error-message")
            assert "internal error" not in e.findtext(f"{{{NC}}}error-message")
    # the server lives on and running still answers
    assert call("<get-config><source><running/></source></get-config>").find(
        f"{{{NC}}}data") is not None
