"""The bulk path of the XFRM driver: XFRM_MSG_NEWSA/NEWPOLICY requests packed straight from
our typed values with precompiled ``struct.Struct``s, and ACKs read without pyroute2.

:mod:`southbound.xfrm.messages` (pyroute2's nlmsg/nla classes) stays the reference and the
path of everything else (single requests, dumps, events); the bytes made here are the same
bytes, checked by tests/unit/southbound/test_xfrm_codec.py. Why: building a message through
pyroute2 (dicts of fields, nla objects, field-by-field ``encode``) and parsing each ACK
through its Marshal cost several times what the kernel spends installing the SA or policy
(docs/benchmarks.md, xfrm_install).
"""

from __future__ import annotations

import functools
import socket
import struct
from collections.abc import Iterator

from southbound.xfrm.constants import (
    XFRM_INF,
    XFRM_STATE_ESN,
)
from southbound.xfrm.types import Proto, Selector, XfrmPolicy, XfrmState

NLMSG_ERROR = 2
NLM_F_ACK_TLVS = 0x200  # extended-ACK attributes follow the error
NLMSGERR_ATTR_MSG = 1

HDR = struct.Struct("=IHHII")  # struct nlmsghdr: length, type, flags, seq, pid
NLA = struct.Struct("=HH")  # struct nlattr: length, type
_ERR = struct.Struct("=i")
# struct xfrm_selector; ports are stored big-endian (htons'd here: one native-order Struct)
_SEL = struct.Struct("=16s16sHHHHHBBB3xiI")
# xfrm_usersa_info after its selector: xfrm_id, saddr, lifetime_cfg, lifetime_cur, stats,
# seq, reqid, family, mode, replay_window, flags
_SA_REST = struct.Struct("=16sIB3x16s8Q4Q3IIIHBBB7x")
# xfrm_userpolicy_info after its selector: lifetime_cfg, lifetime_cur, priority, index,
# dir, action, flags, share
_POL_REST = struct.Struct("=8Q4QIIBBBB4x")
_TMPL = struct.Struct("=16sIB3xH2x16sIBBBxIII")  # struct xfrm_user_tmpl
_ALGO = struct.Struct("=HH64sI")  # nlattr + struct xfrm_algo (key follows)
_ALGO2 = struct.Struct("=HH64sII")  # nlattr + xfrm_algo_auth / xfrm_algo_aead (key follows)
_ENCAP = struct.Struct("=HHHHH2x16s")  # nlattr + struct xfrm_encap_tmpl
_ESN = struct.Struct("=HH6I")  # nlattr + struct xfrm_replay_state_esn (bitmap follows)
_U32 = struct.Struct("=HHI")  # nlattr + __u32

XFRMA_ALG_CRYPT = 2
XFRMA_ALG_COMP = 3
XFRMA_ENCAP = 4
XFRMA_TMPL = 5
XFRMA_ALG_AEAD = 18
XFRMA_ALG_AUTH_TRUNC = 20
XFRMA_REPLAY_ESN_VAL = 23
XFRMA_IF_ID = 31

_AF = {4: socket.AF_INET, 6: socket.AF_INET6}
_INF = XFRM_INF
_ZERO_CUR = (0, 0, 0, 0)
_ZERO_STATS = (0, 0, 0)
_htons = socket.htons
_htonl = socket.htonl


def _addr(addr) -> bytes:  # noqa: ANN001 - an ipaddress address or None
    return b"" if addr is None else addr.packed


@functools.lru_cache(maxsize=65536)
def selector_bytes(sel: Selector) -> bytes:
    """The 56 bytes of SEL's struct xfrm_selector (cached: SAs and policies share them)."""
    return _SEL.pack(
        sel.dst.network_address.packed, sel.src.network_address.packed,
        _htons(sel.dport), 0xFFFF if sel.dport else 0,
        _htons(sel.sport), 0xFFFF if sel.sport else 0,
        _AF[sel.src.version], sel.dst.prefixlen, sel.src.prefixlen, sel.proto,
        sel.ifindex, 0,
    )


@functools.lru_cache(maxsize=1024)
def _any_selector(family: int) -> bytes:
    return selector_bytes(Selector.any(family))


@functools.lru_cache(maxsize=1024)
def _lifetime(lft) -> tuple[int, ...]:  # noqa: ANN001 - a types.Lifetime
    """xfrm_lifetime_cfg's 8 values of LFT (None: XFRM_INF for counts, 0 for seconds)."""
    def inf(v: int | None) -> int:
        return _INF if v is None else v

    return (inf(lft.soft_bytes), inf(lft.hard_bytes), inf(lft.soft_packets),
            inf(lft.hard_packets), lft.soft_add_seconds or 0, lft.hard_add_seconds or 0,
            lft.soft_use_seconds or 0, lft.hard_use_seconds or 0)


def _nla_with_key(head: bytes, key: bytes) -> bytes:
    """An attribute HEAD (header included) followed by KEY, padded to 4 bytes."""
    body = head + key
    return body + b"\0" * (-len(body) & 3)


def _algo(atype: int, name: str, key: bytes) -> bytes:
    return _nla_with_key(_ALGO.pack(_ALGO.size + len(key), atype, name.encode(), len(key) * 8),
                         key)


def _algo2(atype: int, name: str, key: bytes, bits: int) -> bytes:
    return _nla_with_key(
        _ALGO2.pack(_ALGO2.size + len(key), atype, name.encode(), len(key) * 8, bits), key)


def state_message(st: XfrmState, mtype: int, flags: int, seq: int) -> bytes:
    """The whole netlink message (header included) installing ST: the bytes that
    :class:`messages.xfrm_usersa_info` with codec.states.state_fields/state_attrs encodes."""
    sel = _any_selector(st.src.version) if st.selector is None else selector_bytes(st.selector)
    esn_attr = st.esn or st.replay_window > 32
    window = st.replay_window
    body = sel + _SA_REST.pack(
        _addr(st.dst), _htonl(st.spi), int(st.proto), _addr(st.src),
        *_lifetime(st.lifetime), *_ZERO_CUR, *_ZERO_STATS,
        0, st.reqid, _AF[st.src.version], int(st.mode),
        0 if esn_attr else min(window, 255), st.flags | (XFRM_STATE_ESN if st.esn else 0),
    )
    parts = [body]
    if st.aead is not None:
        a = st.aead
        parts.append(_algo2(XFRMA_ALG_AEAD, a.name, a.key, a.icv_bits))
    if st.enc is not None:
        parts.append(_algo(XFRMA_ALG_COMP if st.proto == Proto.COMP else XFRMA_ALG_CRYPT,
                           st.enc.name, st.enc.key))
    if st.auth is not None:
        a = st.auth
        parts.append(_algo2(XFRMA_ALG_AUTH_TRUNC, a.name, a.key, a.trunc_bits))
    if st.encap is not None:
        e = st.encap
        parts.append(_ENCAP.pack(_ENCAP.size, XFRMA_ENCAP, int(e.type), _htons(e.sport),
                                 _htons(e.dport), _addr(e.oa)))
    if esn_attr:
        words = (window + 31) // 32
        parts.append(_ESN.pack(_ESN.size + 4 * words, XFRMA_REPLAY_ESN_VAL,
                               words, 0, 0, 0, 0, window) + b"\0" * (4 * words))
    if st.if_id:
        parts.append(_U32.pack(_U32.size, XFRMA_IF_ID, st.if_id))
    payload = b"".join(parts)
    return HDR.pack(HDR.size + len(payload), mtype, flags, seq, 0) + payload


def policy_message(pol: XfrmPolicy, mtype: int, flags: int, seq: int) -> bytes:
    """The whole netlink message installing POL: the bytes that
    :class:`messages.xfrm_userpolicy_info` with codec.policies.policy_fields/policy_attrs
    encodes."""
    sel = pol.selector
    parts = [selector_bytes(sel), _POL_REST.pack(
        *_lifetime(pol.lifetime), *_ZERO_CUR, pol.priority, pol.index,
        int(pol.direction), int(pol.action), 0, 0)]
    if pol.templates:
        family = sel.src.version
        tmpls = b"".join(
            _TMPL.pack(_addr(t.dst), _htonl(t.spi), int(t.proto),
                       _AF[t.dst.version if t.dst is not None else family], _addr(t.src),
                       t.reqid, int(t.mode), 0, 1 if t.optional else 0,
                       0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
            for t in pol.templates)
        parts.append(NLA.pack(NLA.size + len(tmpls), XFRMA_TMPL) + tmpls)
    if pol.if_id:
        parts.append(_U32.pack(_U32.size, XFRMA_IF_ID, pol.if_id))
    payload = b"".join(parts)
    return HDR.pack(HDR.size + len(payload), mtype, flags, seq, 0) + payload


def acks(data: bytes) -> Iterator[tuple[int, int, str | None]]:
    """(sequence number, errno, kernel text or None) of every NLMSG_ERROR in DATA (a netlink
    datagram, as NETLINK_CAP_ACK sends them: the request's payload is not echoed)."""
    off, end = 0, len(data)
    while off + HDR.size <= end:
        length, mtype, flags, seq, _ = HDR.unpack_from(data, off)
        if length < HDR.size:
            break
        if mtype == NLMSG_ERROR:
            code = -_ERR.unpack_from(data, off + HDR.size)[0]
            text = None
            if code and flags & NLM_F_ACK_TLVS:
                text = _ack_text(data, off + HDR.size + 4 + HDR.size, off + length)
            yield seq, code, text
        off += (length + 3) & ~3


def _ack_text(data: bytes, off: int, end: int) -> str | None:
    """NLMSGERR_ATTR_MSG among the extended-ACK attributes in DATA[OFF:END]."""
    while off + NLA.size <= end:
        alen, atype = NLA.unpack_from(data, off)
        if alen < NLA.size:
            return None
        if atype & 0x3FFF == NLMSGERR_ATTR_MSG:
            raw = bytes(data[off + NLA.size : off + alen])
            return raw.split(b"\0", 1)[0].decode("utf-8", "replace")
        off += (alen + 3) & ~3
    return None
