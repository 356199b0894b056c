"""SAs, ours ⇄ the kernel's: XfrmState ⇄ xfrm_usersa_info and its XFRMA_* attributes."""

from __future__ import annotations

from southbound.xfrm import layouts
from southbound.xfrm.codec.fields import (
    AF,
    Msg,
    addr_bytes,
    addr_from,
    attrs_of,
    cstr,
    current_from,
    lifetime_fields,
    lifetime_from,
    plain,
    selector_fields,
    selector_from,
)
from southbound.xfrm.constants import XFRM_STATE_ESN
from southbound.xfrm.types import (
    AeadAlgorithm,
    Algorithm,
    AuthAlgorithm,
    Encap,
    EncapType,
    Mode,
    Proto,
    SaId,
    SaStats,
    Selector,
    XfrmState,
)


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
        aead = AeadAlgorithm(cstr(a["alg_name"]), a["alg_key"][: a["alg_key_len"] // 8],
                             a["alg_icv_len"])
    if (a := attr("XFRMA_ALG_CRYPT") or attr("XFRMA_ALG_COMP")) is not None:
        enc = Algorithm(cstr(a["alg_name"]), a["alg_key"][: a["alg_key_len"] // 8])
    if (a := attr("XFRMA_ALG_AUTH_TRUNC")) is not None:
        auth = AuthAlgorithm(cstr(a["alg_name"]), a["alg_key"][: a["alg_key_len"] // 8],
                             a["alg_trunc_len"])
    elif (a := attr("XFRMA_ALG_AUTH")) is not None:
        auth = AuthAlgorithm(cstr(a["alg_name"]), a["alg_key"][: a["alg_key_len"] // 8], 96)
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
