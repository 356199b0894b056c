"""Our typed XFRM values ⇄ the flat fields (:mod:`southbound.xfrm.layouts`) and attributes of
the XFRM messages (:mod:`southbound.xfrm.messages`).

``*_fields`` functions give the fields of a message (a dict to ``update`` a message with) and
``*_attrs`` its attribute list; ``*_from`` functions read a decoded pyroute2 message back into
:mod:`southbound.xfrm.types` values. Nothing here touches a socket.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from southbound.xfrm import layouts
from southbound.xfrm.constants import (
    XFRM_INF,
    XFRM_MSG_ACQUIRE,
    XFRM_MSG_DELPOLICY,
    XFRM_MSG_DELSA,
    XFRM_MSG_EXPIRE,
    XFRM_MSG_FLUSHPOLICY,
    XFRM_MSG_FLUSHSA,
    XFRM_MSG_MAPPING,
    XFRM_MSG_NEWAE,
    XFRM_MSG_NEWPOLICY,
    XFRM_MSG_NEWSA,
    XFRM_MSG_POLEXPIRE,
    XFRM_MSG_REPORT,
    XFRM_MSG_UPDPOLICY,
    XFRM_MSG_UPDSA,
    XFRM_STATE_ESN,
)
from southbound.xfrm.types import (
    AcquireEvent,
    Action,
    AeadAlgorithm,
    Algorithm,
    AsyncEvent,
    AuthAlgorithm,
    Change,
    Direction,
    Encap,
    EncapType,
    ExpireEvent,
    Flushed,
    IPAddress,
    Lifetime,
    LifetimeCurrent,
    MappingEvent,
    Mode,
    PolicyChanged,
    PolicyExpireEvent,
    PolicyId,
    Proto,
    ReportEvent,
    SaId,
    SaStats,
    Selector,
    StateChanged,
    Template,
    XfrmEvent,
    XfrmPolicy,
    XfrmState,
)

AF = {4: socket.AF_INET, 6: socket.AF_INET6}
VERSION = {socket.AF_INET: 4, socket.AF_INET6: 6}

Msg = Any  # a decoded pyroute2 nlmsg/nla (a dict with attrs)


# ------------------------------------------------------------------------------ scalars


def plain(msg: Msg) -> dict[str, Any]:
    """MSG's fields as a plain dict (pyroute2's item access runs lookups: slow in bulk)."""
    return dict.copy(msg)


def attrs_of(msg: Msg) -> dict[str, Any]:
    """MSG's attributes by name (the first of each), struct values as plain dicts."""
    out: dict[str, Any] = {}
    for slot in dict.get(msg, "attrs") or ():
        name = slot.cell[0]
        if name not in out:
            value = slot.get_value()
            out[name] = dict.copy(value) if isinstance(value, dict) else value
    return out



def addr_bytes(addr: IPAddress | None) -> bytes:
    """xfrm_address_t of ADDR (IPv4 in the first 4 bytes; None: all zero)."""
    return b"" if addr is None else addr.packed.ljust(16, b"\0")


def addr_from(raw: bytes, family: int) -> IPAddress:
    """The address in xfrm_address_t RAW for socket family FAMILY."""
    raw = bytes(raw).ljust(16, b"\0")
    if family == socket.AF_INET:
        return ipaddress.IPv4Address(raw[:4])
    return ipaddress.IPv6Address(raw[:16])


def _net_from(raw: bytes, plen: int, family: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    raw = bytes(raw)
    if family == socket.AF_INET:
        return ipaddress.IPv4Network((int.from_bytes(raw[:4], "big"), plen), strict=False)
    return ipaddress.IPv6Network((int.from_bytes(raw[:16].ljust(16, b"\0"), "big"), plen),
                                 strict=False)


def _limit(value: int | None, seconds: bool) -> int:
    if value is None:
        return 0 if seconds else XFRM_INF
    return value


def _unlimit(value: int, seconds: bool) -> int | None:
    if seconds:
        return value or None
    return None if value == XFRM_INF else value


def _cstr(raw: bytes) -> str:
    return bytes(raw).split(b"\0", 1)[0].decode("ascii", "replace")


# ---------------------------------------------------------------------------- selectors


def selector_fields(sel: Selector, prefix: str = "sel_") -> dict[str, object]:
    """The xfrm_selector fields of SEL."""
    return {
        prefix + "daddr": addr_bytes(sel.dst.network_address),
        prefix + "saddr": addr_bytes(sel.src.network_address),
        prefix + "dport": sel.dport,
        prefix + "dport_mask": 0xFFFF if sel.dport else 0,
        prefix + "sport": sel.sport,
        prefix + "sport_mask": 0xFFFF if sel.sport else 0,
        prefix + "family": AF[sel.family],
        prefix + "prefixlen_d": sel.dst.prefixlen,
        prefix + "prefixlen_s": sel.src.prefixlen,
        prefix + "proto": sel.proto,
        prefix + "ifindex": sel.ifindex,
        prefix + "user": 0,
    }


def selector_from(msg: Msg, prefix: str = "sel_", family: int = 0) -> Selector:
    """The selector in MSG's PREFIX fields (FAMILY: the SA's, when the selector has none)."""
    fam = msg[prefix + "family"] or family or socket.AF_INET
    return Selector(
        src=_net_from(msg[prefix + "saddr"], msg[prefix + "prefixlen_s"], fam),
        dst=_net_from(msg[prefix + "daddr"], msg[prefix + "prefixlen_d"], fam),
        proto=msg[prefix + "proto"],
        sport=msg[prefix + "sport"] & msg[prefix + "sport_mask"],
        dport=msg[prefix + "dport"] & msg[prefix + "dport_mask"],
        ifindex=msg[prefix + "ifindex"],
    )


# ---------------------------------------------------------------------------- lifetimes

_LFT = (
    ("soft_bytes", "soft_byte_limit", False),
    ("hard_bytes", "hard_byte_limit", False),
    ("soft_packets", "soft_packet_limit", False),
    ("hard_packets", "hard_packet_limit", False),
    ("soft_add_seconds", "soft_add_expires_seconds", True),
    ("hard_add_seconds", "hard_add_expires_seconds", True),
    ("soft_use_seconds", "soft_use_expires_seconds", True),
    ("hard_use_seconds", "hard_use_expires_seconds", True),
)


def lifetime_fields(lft: Lifetime, prefix: str = "lft_") -> dict[str, object]:
    """The xfrm_lifetime_cfg fields of LFT."""
    return {prefix + kname: _limit(getattr(lft, ours), secs) for ours, kname, secs in _LFT}


def lifetime_from(msg: Msg, prefix: str = "lft_") -> Lifetime:
    """The Lifetime in MSG's xfrm_lifetime_cfg fields."""
    return Lifetime(**{ours: _unlimit(msg[prefix + kname], secs) for ours, kname, secs in _LFT})


def current_from(msg: Msg, prefix: str = "curlft_") -> LifetimeCurrent:
    """The LifetimeCurrent in MSG's xfrm_lifetime_cur fields."""
    return LifetimeCurrent(
        bytes=msg[prefix + "bytes"],
        packets=msg[prefix + "packets"],
        add_time=msg[prefix + "add_time"],
        use_time=msg[prefix + "use_time"],
    )


# -------------------------------------------------------------------------------- states


def _algo(name: str, key: bytes, **extra: int) -> dict[str, object]:
    return {"alg_name": name.encode(), "alg_key_len": len(key) * 8, "alg_key": key, **extra}


def state_fields(st: XfrmState) -> dict[str, object]:
    """The xfrm_usersa_info fields of ST."""
    sel = st.selector or Selector.any(st.family)
    out = layouts.defaults(layouts.USERSA_INFO)
    out.update(selector_fields(sel))
    out.update(lifetime_fields(st.lifetime))
    flags = st.flags | (XFRM_STATE_ESN if st.esn else 0)
    out.update(
        id_daddr=addr_bytes(st.dst),
        id_spi=st.spi,
        id_proto=int(st.proto),
        saddr=addr_bytes(st.src),
        reqid=st.reqid,
        family=AF[st.family],
        mode=int(st.mode),
        replay_window=min(st.replay_window, 255) if not _needs_esn_attr(st) else 0,
        flags=flags,
    )
    return out


def _needs_esn_attr(st: XfrmState) -> bool:
    """ESN, or a window beyond the legacy 32-bit bitmap, needs XFRMA_REPLAY_ESN_VAL
    (the kernel caps usersa_info.replay_window at 32 otherwise), as charon does."""
    return st.esn or st.replay_window > 32


def state_attrs(st: XfrmState) -> list[tuple[str, object]]:
    """The XFRMA_* attributes of ST (algorithms, encap, replay, if_id)."""
    attrs: list[tuple[str, object]] = []
    if st.aead is not None:
        attrs.append(
            ("XFRMA_ALG_AEAD", _algo(st.aead.name, st.aead.key, alg_icv_len=st.aead.icv_bits))
        )
    if st.enc is not None:
        kind = "XFRMA_ALG_COMP" if st.proto == Proto.COMP else "XFRMA_ALG_CRYPT"
        attrs.append((kind, _algo(st.enc.name, st.enc.key)))
    if st.auth is not None:
        attrs.append(
            (
                "XFRMA_ALG_AUTH_TRUNC",
                _algo(st.auth.name, st.auth.key, alg_trunc_len=st.auth.trunc_bits),
            )
        )
    if st.encap is not None:
        attrs.append(
            (
                "XFRMA_ENCAP",
                {
                    "encap_type": int(st.encap.type),
                    "encap_sport": st.encap.sport,
                    "encap_dport": st.encap.dport,
                    "encap_oa": addr_bytes(st.encap.oa),
                },
            )
        )
    if _needs_esn_attr(st):
        words = (st.replay_window + 31) // 32
        attrs.append(
            (
                "XFRMA_REPLAY_ESN_VAL",
                {"bmp_len": words, "oseq": 0, "seq": 0, "oseq_hi": 0, "seq_hi": 0,
                 "replay_window": st.replay_window},
            )
        )
    if st.if_id:
        attrs.append(("XFRMA_IF_ID", st.if_id))
    return attrs


def said_fields(sa: SaId) -> dict[str, object]:
    """The xfrm_usersa_id fields of SA."""
    return {
        "daddr": addr_bytes(sa.dst),
        "spi": sa.spi,
        "family": AF[sa.family],
        "proto": int(sa.proto),
    }


def state_from(msg: Msg) -> XfrmState:
    """The XfrmState of a decoded xfrm_usersa_info message (or XFRMA_SA attribute)."""
    attr = attrs_of(msg).get
    msg = plain(msg)
    fam = msg["family"]

    enc = auth = aead = None
    if (a := attr("XFRMA_ALG_AEAD")) is not None:
        aead = AeadAlgorithm(_cstr(a["alg_name"]), a["alg_key"][: a["alg_key_len"] // 8],
                             a["alg_icv_len"])
    if (a := attr("XFRMA_ALG_CRYPT") or attr("XFRMA_ALG_COMP")) is not None:
        enc = Algorithm(_cstr(a["alg_name"]), a["alg_key"][: a["alg_key_len"] // 8])
    if (a := attr("XFRMA_ALG_AUTH_TRUNC")) is not None:
        auth = AuthAlgorithm(_cstr(a["alg_name"]), a["alg_key"][: a["alg_key_len"] // 8],
                             a["alg_trunc_len"])
    elif (a := attr("XFRMA_ALG_AUTH")) is not None:
        auth = AuthAlgorithm(_cstr(a["alg_name"]), a["alg_key"][: a["alg_key_len"] // 8], 96)
    encap = None
    if (e := attr("XFRMA_ENCAP")) is not None:
        oa = bytes(e["encap_oa"])
        encap = Encap(
            sport=e["encap_sport"],
            dport=e["encap_dport"],
            type=EncapType(e["encap_type"]),
            oa=addr_from(oa, fam) if any(oa) else None,
        )
    window = msg["replay_window"]
    oseq = seq = 0
    if (r := attr("XFRMA_REPLAY_ESN_VAL")) is not None:
        window = r["replay_window"]
        oseq = (r["oseq_hi"] << 32) | r["oseq"]
        seq = (r["seq_hi"] << 32) | r["seq"]
    elif (r := attr("XFRMA_REPLAY_VAL")) is not None:
        oseq, seq = r["oseq"], r["seq"]
    sel = selector_from(msg, family=fam)
    return XfrmState(
        src=addr_from(msg["saddr"], fam),
        dst=addr_from(msg["id_daddr"], fam),
        spi=msg["id_spi"],
        proto=Proto(msg["id_proto"]),
        mode=Mode(msg["mode"]),
        reqid=msg["reqid"],
        enc=enc,
        auth=auth,
        aead=aead,
        replay_window=window,
        lifetime=lifetime_from(msg),
        encap=encap,
        if_id=attr("XFRMA_IF_ID") or 0,
        selector=sel,
        esn=bool(msg["flags"] & XFRM_STATE_ESN),
        flags=msg["flags"] & ~XFRM_STATE_ESN,
        current=current_from(msg),
        stats=SaStats(
            replay_window=msg["stats_replay_window"],
            replay=msg["stats_replay"],
            integrity_failed=msg["stats_integrity_failed"],
            oseq=oseq,
            seq=seq,
        ),
    )


# ------------------------------------------------------------------------------ policies


def template_fields(t: Template, family: int) -> dict[str, object]:
    """One xfrm_user_tmpl (as XFRMA_TMPL's list element) of T in a policy of FAMILY (4/6)."""
    fam = t.dst.version if t.dst is not None else family
    return {
        "id_daddr": addr_bytes(t.dst),
        "id_spi": t.spi,
        "id_proto": int(t.proto),
        "family": AF[fam],
        "saddr": addr_bytes(t.src),
        "reqid": t.reqid,
        "mode": int(t.mode),
        "share": 0,
        "optional": 1 if t.optional else 0,
        # "any algorithm" masks, as ip xfrm and charon send them
        "aalgos": 0xFFFFFFFF,
        "ealgos": 0xFFFFFFFF,
        "calgos": 0xFFFFFFFF,
    }


def template_from(raw: dict[str, Any]) -> Template:
    """The Template of one decoded xfrm_user_tmpl."""
    fam = raw["family"]
    dst = bytes(raw["id_daddr"])
    src = bytes(raw["saddr"])
    return Template(
        dst=addr_from(dst, fam) if any(dst) else None,
        src=addr_from(src, fam) if any(src) else None,
        proto=Proto(raw["id_proto"]),
        mode=Mode(raw["mode"]),
        reqid=raw["reqid"],
        spi=raw["id_spi"],
        optional=bool(raw["optional"]),
    )


def policy_fields(pol: XfrmPolicy) -> dict[str, object]:
    """The xfrm_userpolicy_info fields of POL."""
    out = layouts.defaults(layouts.USERPOLICY_INFO)
    out.update(selector_fields(pol.selector))
    out.update(lifetime_fields(pol.lifetime))
    out.update(
        priority=pol.priority,
        index=pol.index,
        dir=int(pol.direction),
        action=int(pol.action),
        flags=0,
        share=0,
    )
    return out


def policy_attrs(pol: XfrmPolicy) -> list[tuple[str, object]]:
    """The XFRMA_* attributes of POL (templates, if_id)."""
    attrs: list[tuple[str, object]] = []
    if pol.templates:
        attrs.append(
            (
                "XFRMA_TMPL",
                {"templates": [template_fields(t, pol.selector.family) for t in pol.templates]},
            )
        )
    if pol.if_id:
        attrs.append(("XFRMA_IF_ID", pol.if_id))
    return attrs


def policyid_fields(pid: PolicyId) -> dict[str, object]:
    """The xfrm_userpolicy_id fields of PID."""
    out = layouts.defaults(layouts.USERPOLICY_ID)
    out.update(selector_fields(pid.selector))
    out.update(index=pid.index, dir=int(pid.direction))
    return out


def policy_from(msg: Msg, prefix: str = "", attrs: Msg | None = None) -> XfrmPolicy:
    """The XfrmPolicy of a decoded xfrm_userpolicy_info (fields under PREFIX; attributes
    from ATTRS, default MSG)."""
    attr = attrs_of(attrs if attrs is not None else msg).get
    msg = plain(msg)
    tmpls = attr("XFRMA_TMPL")
    return XfrmPolicy(
        selector=selector_from(msg, prefix + "sel_"),
        direction=Direction(msg[prefix + "dir"]),
        action=Action(msg[prefix + "action"]),
        priority=msg[prefix + "priority"],
        index=msg[prefix + "index"],
        templates=tuple(template_from(t) for t in (tmpls or {}).get("templates", ())),
        if_id=attr("XFRMA_IF_ID") or 0,
        lifetime=lifetime_from(msg, prefix + "lft_"),
        current=current_from(msg, prefix + "curlft_"),
    )


# -------------------------------------------------------------------------------- events


def _said_from(msg: Msg, prefix: str = "") -> SaId:
    fam = msg[prefix + "family"]
    return SaId(addr_from(msg[prefix + "daddr"], fam), msg[prefix + "spi"],
                Proto(msg[prefix + "proto"]))


def event_from(msg: Msg) -> XfrmEvent | None:
    """The XfrmEvent of a decoded multicast message (None: a type we do not report)."""
    mtype = msg["header"]["type"]
    if mtype == XFRM_MSG_ACQUIRE:
        fam = msg["pol_sel_family"] or msg["sel_family"]
        tmpls = (msg.get_attr("XFRMA_TMPL") or {}).get("templates", ())
        tmpl = template_from(tmpls[0]) if tmpls else Template(
            dst=addr_from(msg["id_daddr"], fam), proto=Proto(msg["id_proto"]))
        return AcquireEvent(
            src=addr_from(msg["saddr"], fam),
            dst=addr_from(msg["id_daddr"], fam),
            template=tmpl,
            selector=selector_from(msg, "sel_", fam),
            policy=policy_from(msg, "pol_", attrs=msg),
            seq=msg["seq"],
            if_id=msg.get_attr("XFRMA_IF_ID") or 0,
        )
    if mtype == XFRM_MSG_EXPIRE:
        return ExpireEvent(state_from(msg), hard=bool(msg["hard"]))
    if mtype == XFRM_MSG_POLEXPIRE:
        return PolicyExpireEvent(policy_from(msg), hard=bool(msg["hard"]))
    if mtype == XFRM_MSG_REPORT:
        fam = msg["sel_family"]
        co = msg.get_attr("XFRMA_COADDR")
        return ReportEvent(msg["proto"], selector_from(msg, "sel_", fam),
                           addr_from(co["addr"], fam) if co else None)
    if mtype == XFRM_MSG_MAPPING:
        fam = msg["id_family"]
        return MappingEvent(
            sa=_said_from(msg, "id_"),
            reqid=msg["reqid"],
            old_addr=addr_from(msg["old_saddr"], fam),
            old_port=msg["old_sport"],
            new_addr=addr_from(msg["new_saddr"], fam),
            new_port=msg["new_sport"],
        )
    if mtype == XFRM_MSG_NEWAE:
        ltime = msg.get_attr("XFRMA_LTIME_VAL")
        replay = msg.get_attr("XFRMA_REPLAY_ESN_VAL") or msg.get_attr("XFRMA_REPLAY_VAL")
        return AsyncEvent(
            sa=_said_from(msg, "id_"),
            reqid=msg["reqid"],
            flags=msg["flags"],
            current=LifetimeCurrent(**{k: ltime[k] for k in
                                       ("bytes", "packets", "add_time", "use_time")})
            if ltime else None,
            oseq=replay["oseq"] if replay else 0,
            seq=replay["seq"] if replay else 0,
        )
    if mtype in (XFRM_MSG_NEWSA, XFRM_MSG_UPDSA):
        st = state_from(msg)
        change = Change.NEW if mtype == XFRM_MSG_NEWSA else Change.UPDATE
        return StateChanged(change, st, st.id)
    if mtype == XFRM_MSG_DELSA:
        inner = msg.get_attr("XFRMA_SA")
        return StateChanged(Change.DELETE, state_from(inner) if inner else None, _said_from(msg))
    if mtype in (XFRM_MSG_NEWPOLICY, XFRM_MSG_UPDPOLICY):
        pol = policy_from(msg)
        change = Change.NEW if mtype == XFRM_MSG_NEWPOLICY else Change.UPDATE
        return PolicyChanged(change, pol, pol.id)
    if mtype == XFRM_MSG_DELPOLICY:
        inner = msg.get_attr("XFRMA_POLICY")
        pol = policy_from(inner, attrs=msg) if inner else None
        pid = PolicyId(selector_from(msg), Direction(msg["dir"]),
                       if_id=msg.get_attr("XFRMA_IF_ID") or 0, index=msg["index"])
        return PolicyChanged(Change.DELETE, pol, pid)
    if mtype == XFRM_MSG_FLUSHSA:
        return Flushed("states", msg["proto"])
    if mtype == XFRM_MSG_FLUSHPOLICY:
        return Flushed("policies")
    return None
