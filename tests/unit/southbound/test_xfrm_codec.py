"""The XFRM driver's message layer without a kernel: structure sizes (linux/xfrm.h on 64-bit
Linux), encode -> decode round trips of states, policies and events through pyroute2's
classes, and that keys never show in a value's repr."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from southbound.xfrm import fastpack, layouts, messages
from southbound.xfrm.codec.events import event_from
from southbound.xfrm.codec.fields import addr_bytes, selector_fields
from southbound.xfrm.codec.policies import policy_attrs, policy_fields, policy_from
from southbound.xfrm.codec.states import state_attrs, state_fields, state_from
from southbound.xfrm.constants import (
    XFRM_INF,
    XFRM_MSG_ACQUIRE,
    XFRM_MSG_EXPIRE,
    XFRM_MSG_NEWPOLICY,
    XFRM_MSG_NEWSA,
    XFRM_MSG_POLEXPIRE,
)
from southbound.xfrm.types import (
    AcquireEvent,
    AeadAlgorithm,
    Algorithm,
    AuthAlgorithm,
    Direction,
    Encap,
    ExpireEvent,
    Lifetime,
    Mode,
    PolicyExpireEvent,
    Proto,
    Selector,
    Template,
    XfrmPolicy,
    XfrmState,
    XfrmValueError,
)

A4, B4 = ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("192.0.2.2")
A6, B6 = ipaddress.ip_address("2001:db8::1"), ipaddress.ip_address("2001:db8::2")


@pytest.mark.parametrize(("fields", "size"), [
    (layouts.SELECTOR, 56), (layouts.ID, 24), (layouts.USERSA_INFO, 224), (layouts.USERSA_ID, 24),
    (layouts.USERPOLICY_INFO, 168), (layouts.USERPOLICY_ID, 64), (layouts.USER_TMPL, 64),
    (layouts.USER_ACQUIRE, 280), (layouts.USER_EXPIRE, 232), (layouts.USER_POLEXPIRE, 176),
    (layouts.USER_REPORT, 60), (layouts.USER_MAPPING, 64), (layouts.AEVENT_ID, 48),
])
def test_structure_sizes_are_the_kernels(fields, size: int) -> None:
    assert layouts.sizeof(fields) == size


def encode(msg_class, fields: dict, attrs: list, mtype: int) -> bytes:
    msg = msg_class()
    msg.update(fields)
    msg["attrs"] = attrs
    msg["header"]["type"] = mtype
    msg.encode()
    return bytes(msg.data)


def decode(data: bytes):
    return list(messages.MarshalXfrm().parse(data))


def state_bytes(st: XfrmState) -> bytes:
    return encode(messages.xfrm_usersa_info, state_fields(st), state_attrs(st),
                  XFRM_MSG_NEWSA)


@pytest.mark.parametrize("st", [
    XfrmState(A4, B4, 0xC0DE0001, reqid=3, if_id=7, replay_window=64,
              aead=AeadAlgorithm("rfc4106(gcm(aes))", bytes(range(20)), 128),
              lifetime=Lifetime(soft_bytes=100, hard_packets=10, hard_add_seconds=60)),
    XfrmState(A6, B6, 0x100, mode=Mode.TRANSPORT, enc=Algorithm("cbc(aes)", b"k" * 16),
              auth=AuthAlgorithm("hmac(sha256)", b"a" * 32, 128),
              encap=Encap(4500, 4501), esn=True, replay_window=128),
    XfrmState(A4, B4, 0x200, proto=Proto.AH, auth=AuthAlgorithm("hmac(sha1)", b"s" * 20, 96),
              replay_window=32),
])
def test_state_round_trip(st: XfrmState) -> None:
    data = state_bytes(st)
    assert len(data) % 4 == 0
    (msg,) = decode(data)
    got = state_from(msg)
    # what the kernel adds on reads (selector "any", counters) aside, the same SA
    assert got.selector == Selector.any(st.family)
    assert got.current is not None and got.stats is not None
    assert got.__class__(**{**got.__dict__, "selector": None, "current": None,
                            "stats": None}) == st


def test_replay_window_over_32_or_esn_uses_the_esn_attribute() -> None:
    st = XfrmState(A4, B4, 1, enc=Algorithm("cbc(aes)", b"k" * 16), replay_window=64)
    fields, attrs = state_fields(st), dict(state_attrs(st))
    assert fields["replay_window"] == 0  # the kernel refuses both at once
    assert attrs["XFRMA_REPLAY_ESN_VAL"]["replay_window"] == 64
    assert attrs["XFRMA_REPLAY_ESN_VAL"]["bmp_len"] == 2
    small = XfrmState(A4, B4, 1, enc=Algorithm("cbc(aes)", b"k" * 16), replay_window=32)
    assert state_fields(small)["replay_window"] == 32
    assert "XFRMA_REPLAY_ESN_VAL" not in dict(state_attrs(small))


def test_limits_none_are_the_kernels_infinity() -> None:
    f = state_fields(XfrmState(A4, B4, 1))
    assert f["lft_soft_byte_limit"] == f["lft_hard_packet_limit"] == XFRM_INF
    assert f["lft_hard_add_expires_seconds"] == 0


def test_policy_round_trip_with_templates() -> None:
    sel = Selector(ipaddress.ip_network("10.1.0.0/16"), ipaddress.ip_network("10.2.0.0/24"),
                   proto=6, sport=1024, dport=443)
    pol = XfrmPolicy(sel, Direction.FWD, priority=9, index=0x1C2, if_id=5,
                     templates=(Template(dst=B4, src=A4, reqid=4),
                                Template(dst=None, proto=Proto.COMP, mode=Mode.TRANSPORT,
                                         optional=True)),
                     lifetime=Lifetime(hard_add_seconds=10))
    data = encode(messages.xfrm_userpolicy_info, policy_fields(pol), policy_attrs(pol),
                  XFRM_MSG_NEWPOLICY)
    (msg,) = decode(data)
    got = policy_from(msg)
    assert got.current is not None
    assert got.__class__(**{**got.__dict__, "current": None}) == pol


def test_selector_prefixes_and_family() -> None:
    with pytest.raises(XfrmValueError):
        Selector(ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32"))
    with pytest.raises(XfrmValueError):
        XfrmState(A4, B6, 1)
    with pytest.raises(XfrmValueError):
        XfrmState(A4, B4, 1, aead=AeadAlgorithm("x", b"", 64), enc=Algorithm("y", b""))


def test_keys_never_in_repr() -> None:
    key = bytes.fromhex("00112233445566778899aabbccddeeff")
    st = XfrmState(A4, B4, 1, enc=Algorithm("cbc(aes)", key),
                   auth=AuthAlgorithm("hmac(sha256)", key, 128),
                   aead=None)
    assert key.hex() not in repr(st) and repr(key) not in repr(st)


def test_expire_and_polexpire_events_decode() -> None:
    st = XfrmState(A4, B4, 0xABCD, aead=AeadAlgorithm("rfc4106(gcm(aes))", b"k" * 20, 128))
    fields = {**state_fields(st), "hard": 1}
    data = encode(messages.xfrm_user_expire, fields, state_attrs(st), XFRM_MSG_EXPIRE)
    (msg,) = decode(data)
    ev = event_from(msg)
    assert isinstance(ev, ExpireEvent) and ev.hard and ev.sa.spi == 0xABCD
    assert ev.state.aead == st.aead
    pol = XfrmPolicy(Selector.any(4), Direction.OUT, templates=(Template(dst=B4),))
    data = encode(messages.xfrm_user_polexpire, {**policy_fields(pol), "hard": 0},
                  policy_attrs(pol), XFRM_MSG_POLEXPIRE)
    (msg,) = decode(data)
    ev = event_from(msg)
    assert isinstance(ev, PolicyExpireEvent) and not ev.hard
    assert ev.policy.templates == pol.templates


def test_acquire_event_decodes() -> None:
    pol = XfrmPolicy(Selector(ipaddress.ip_network("10.1.0.0/16"),
                              ipaddress.ip_network("10.2.0.0/16")), Direction.OUT, index=17,
                     templates=(Template(dst=B4, src=A4, reqid=9),))
    flow = Selector(ipaddress.ip_network("10.1.0.5/32"), ipaddress.ip_network("10.2.0.7/32"),
                    proto=17, dport=53)
    fields = layouts.defaults(layouts.USER_ACQUIRE)
    fields.update(id_daddr=addr_bytes(B4), id_proto=50, saddr=addr_bytes(A4),
                  seq=1234, aalgos=0xFFFFFFFF, ealgos=0xFFFFFFFF, calgos=0xFFFFFFFF)
    fields.update(selector_fields(flow))
    fields.update({"pol_" + k: v for k, v in policy_fields(pol).items()})
    data = encode(messages.xfrm_user_acquire, fields, policy_attrs(pol), XFRM_MSG_ACQUIRE)
    (msg,) = decode(data)
    ev = event_from(msg)
    assert isinstance(ev, AcquireEvent)
    assert (ev.src, ev.dst, ev.seq, ev.selector) == (A4, B4, 1234, flow)
    assert ev.template == pol.templates[0] and ev.policy.index == 17
    assert ev.policy.selector == pol.selector


def test_an_error_ack_is_read_without_the_request() -> None:
    # NLMSG_ERROR with NETLINK_CAP_ACK: error, our request's header, an extended-ACK text
    text = b"Requested type not found\0"
    nla = struct.pack("HH", 4 + len(text), 1) + text
    nla += b"\0" * (-len(nla) % 4)
    body = struct.pack("i", -93) + struct.pack("IHHII", 240, XFRM_MSG_NEWSA, 5, 7, 0) + nla
    data = struct.pack("IHHII", 16 + len(body), 2, 0x300, 7, 0) + body
    (msg,) = decode(data)
    assert msg["error"] == -93 and msg["orig_type"] == XFRM_MSG_NEWSA
    assert msg.get_attr("NLMSGERR_ATTR_MSG") == "Requested type not found"


# ----------------------------------------------------- the bulk path (southbound/xfrm/fastpack)

_NET4 = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("10.1.0.0/16"))
_NET6 = (ipaddress.ip_network("2001:db8:1::/48"), ipaddress.ip_network("2001:db8:2::/48"))
FAST_STATES = [
    XfrmState(A4, B4, 0xC0DE0001, reqid=3, replay_window=32,
              aead=AeadAlgorithm("rfc4106(gcm(aes))", bytes(range(20)), 128)),
    XfrmState(A6, B6, 0xDEADBEEF, reqid=7, enc=Algorithm("cbc(aes)", b"k" * 16),
              auth=AuthAlgorithm("hmac(sha256)", b"a" * 32, 128), esn=True, replay_window=64,
              if_id=9, lifetime=Lifetime(soft_bytes=1000, hard_packets=5, soft_add_seconds=30,
                                         hard_add_seconds=60, soft_use_seconds=5),
              selector=Selector(*_NET6, proto=6, sport=80, dport=443)),
    XfrmState(A4, B4, 1, mode=Mode.TRANSPORT, enc=Algorithm("cbc(aes)", b"k" * 24),
              auth=AuthAlgorithm("hmac(sha1)", b"s" * 20, 96), encap=Encap(4500, 4501),
              replay_window=0, selector=Selector(*_NET4, ifindex=3)),
    XfrmState(A4, B4, 0x200, proto=Proto.AH, auth=AuthAlgorithm("hmac(sha1)", b"s" * 20, 96),
              replay_window=200, encap=Encap(4500, 4500, oa=A4)),
]
FAST_POLICIES = [
    XfrmPolicy(selector=Selector(*_NET4), direction=Direction.OUT, priority=5, if_id=4,
               templates=(Template(dst=B4, src=A4, proto=Proto.ESP, reqid=3),),
               lifetime=Lifetime(hard_add_seconds=9, soft_bytes=7)),
    XfrmPolicy(selector=Selector(*_NET6, proto=17, dport=53), direction=Direction.IN,
               templates=(Template(dst=None, mode=Mode.TRANSPORT, optional=True),
                          Template(dst=B6, src=A6, spi=5, reqid=1))),
    XfrmPolicy(selector=Selector(*_NET4, proto=1, sport=8), direction=Direction.FWD),
]


@pytest.mark.parametrize("st", FAST_STATES)
def test_fast_state_message_is_pyroute2s(st: XfrmState) -> None:
    msg = messages.xfrm_usersa_info()
    msg.update(state_fields(st))
    msg["attrs"] = state_attrs(st)
    msg["header"].update(type=XFRM_MSG_NEWSA, flags=0x605, sequence_number=4242, pid=0)
    msg.encode()
    assert fastpack.state_message(st, XFRM_MSG_NEWSA, 0x605, 4242) == bytes(msg.data)


@pytest.mark.parametrize("pol", FAST_POLICIES)
def test_fast_policy_message_is_pyroute2s(pol: XfrmPolicy) -> None:
    msg = messages.xfrm_userpolicy_info()
    msg.update(policy_fields(pol))
    msg["attrs"] = policy_attrs(pol)
    msg["header"].update(type=XFRM_MSG_NEWPOLICY, flags=0x605, sequence_number=1, pid=0)
    msg.encode()
    assert fastpack.policy_message(pol, XFRM_MSG_NEWPOLICY, 0x605, 1) == bytes(msg.data)


def test_fast_ack_reader() -> None:
    text = b"Requested type not found\0"
    nla = struct.pack("HH", 4 + len(text), 1) + text + b"\0" * (-len(text) & 3)
    err = struct.pack("i", -93) + struct.pack("IHHII", 240, XFRM_MSG_NEWSA, 5, 7, 0) + nla
    ok = struct.pack("i", 0) + struct.pack("IHHII", 240, XFRM_MSG_NEWSA, 5, 8, 0)
    data = (struct.pack("IHHII", 16 + len(err), 2, 0x300, 7, 0) + err
            + struct.pack("IHHII", 16 + len(ok), 2, 0x100, 8, 0) + ok)
    assert list(fastpack.acks(data)) == [(7, 93, "Requested type not found"), (8, 0, None)]
