"""The kernel's view for the state tree (southbound/kernel_state.py) without a kernel: every
/proc/net/xfrm_stat counter under its RouterOS name (an unknown one under the kernel's), the
SPD/SAD entries with every field and no key, all valid data of ipsec-nf.yang (libyang)."""

from __future__ import annotations

import ipaddress

from lxml import etree

from nf.schema import NS, Schema
from nf.state import merge_state
from southbound.kernel_state import (
    STAT_NAMES,
    policy_tree,
    sa_tree,
    statistics_tree,
)
from southbound.xfrm.types import (
    Action,
    AeadAlgorithm,
    Algorithm,
    AuthAlgorithm,
    Direction,
    Encap,
    Lifetime,
    LifetimeCurrent,
    Mode,
    SaStats,
    Selector,
    Template,
    XfrmPolicy,
    XfrmState,
)

A, B = ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("192.0.2.2")
KEY = bytes.fromhex("00112233445566778899aabbccddeeff")

# /proc/net/xfrm_stat of a 6.18 kernel, plus a counter we do not know
STAT = """XfrmInError             \t1
XfrmInBufferError       \t2
XfrmInHdrError          \t3
XfrmInNoStates          \t4
XfrmInStateProtoError   \t5
XfrmInStateModeError    \t6
XfrmInStateSeqError     \t7
XfrmInStateExpired      \t8
XfrmInStateMismatch     \t9
XfrmInStateInvalid      \t10
XfrmInTmplMismatch      \t11
XfrmInNoPols            \t12
XfrmInPolBlock          \t13
XfrmInPolError          \t14
XfrmOutError            \t15
XfrmOutBundleGenError   \t16
XfrmOutBundleCheckError \t17
XfrmOutNoStates         \t18
XfrmOutStateProtoError  \t19
XfrmOutStateModeError   \t20
XfrmOutStateSeqError    \t21
XfrmOutStateExpired     \t22
XfrmOutPolBlock         \t23
XfrmOutPolDead          \t24
XfrmOutPolError         \t25
XfrmFwdHdrError         \t26
XfrmOutStateInvalid     \t27
XfrmAcquireError        \t28
XfrmOutStateDirError    \t29
XfrmInStateDirError     \t30
XfrmInIptfsError        \t31
XfrmOutNoQueueSpace     \t32
XfrmInFutureError       \t33
"""


def valid_xml(state: dict) -> etree._Element:
    """STATE merged into an empty config, validated by libyang; what libyang printed."""
    roots = merge_state([], state)
    xml = "".join(etree.tostring(r, encoding="unicode") for r in roots)
    dnode = Schema().ctx.parse_data_mem(xml, "xml", strict=True, validate_present=True)
    assert dnode is not None
    try:
        out = dnode.print_mem("xml", with_siblings=True)
    finally:
        dnode.free()
    return etree.fromstring(f"<r>{out}</r>".encode()).find(f"{{{NS}}}ike/{{{NS}}}kernel")


def test_every_counter_named_like_routeros() -> None:
    from southbound.kernel_state import parse_xfrm_stat

    tree = statistics_tree(parse_xfrm_stat(STAT))
    assert tree["in-no-states"] == 4 and tree["out-policy-errors"] == 25
    assert tree["out-no-queue-space"] == 32
    assert tree["other-counter"] == [{"name": "XfrmInFutureError", "value": 33}]
    assert len(tree) == len(STAT_NAMES) + 1
    kernel = valid_xml({"kernel": {"statistics": tree}})
    stats = kernel.find(f"{{{NS}}}statistics")
    assert len(stats) == 33  # 32 leaves and one other-counter: every counter shows


def test_spd_and_sad_entries_are_valid_and_keyless() -> None:
    pol = XfrmPolicy(Selector(ipaddress.ip_network("10.1.0.0/16"),
                              ipaddress.ip_network("10.2.0.0/16"), proto=6, dport=443),
                     Direction.OUT, action=Action.ALLOW, priority=375423, index=0x41, if_id=3,
                     templates=(Template(dst=B, src=A, reqid=1),
                                Template(dst=None, mode=Mode.TRANSPORT, optional=True)),
                     lifetime=Lifetime(hard_add_seconds=10),
                     current=LifetimeCurrent(add_time=1796000000))
    sas = [
        XfrmState(A, B, 0xC0DE0001, reqid=1, if_id=3, replay_window=64,
                  aead=AeadAlgorithm("rfc4106(gcm(aes))", KEY + b"salt", 128),
                  lifetime=Lifetime(soft_bytes=1000, hard_bytes=2000),
                  selector=Selector.any(4),
                  current=LifetimeCurrent(168, 2, 1796000000, 1796000005),
                  stats=SaStats(0, 1, 2, oseq=2, seq=0)),
        XfrmState(B, A, 0xC0DE0002, reqid=1, enc=Algorithm("cbc(aes)", KEY),
                  auth=AuthAlgorithm("hmac(sha256)", KEY * 2, 128), encap=Encap(4500, 4500),
                  esn=True, current=LifetimeCurrent(), stats=SaStats()),
    ]
    state = {"kernel": {"policy": [policy_tree(pol)], "sa": [sa_tree(s) for s in sas]}}
    assert KEY.hex() not in repr(state) and repr(KEY) not in repr(state)
    kernel = valid_xml(state)

    def text(el: etree._Element, path: str) -> str | None:
        return el.findtext(path.replace("i:", f"{{{NS}}}"))

    p = kernel.find(f"{{{NS}}}policy")
    assert text(p, "i:index") == "65" and text(p, "i:direction") == "out"
    assert text(p, "i:if-id") == "3" and text(p, "i:selector/i:dst-port") == "443"
    assert text(p, "i:template/i:dst-address") == "192.0.2.2"
    assert text(p, "i:lifetime/i:hard-add-seconds") == "10"
    assert text(p, "i:add-time") == "2026-11-30T00:53:20+00:00" and text(p, "i:use-time") is None
    s1, s2 = kernel.findall(f"{{{NS}}}sa")
    assert text(s1, "i:aead-algorithm") == "rfc4106(gcm(aes))"
    assert text(s1, "i:aead-key-size") == "160" and text(s1, "i:replay-window") == "64"
    assert text(s1, "i:current-bytes") == "168" and text(s1, "i:replay-drops") == "1"
    assert text(s1, "i:lifetime/i:hard-bytes") == "2000"
    assert text(s2, "i:enc-key-size") == "128" and text(s2, "i:auth-key-size") == "256"
    assert text(s2, "i:encapsulation/i:dst-port") == "4500" and text(s2, "i:esn") == "true"
