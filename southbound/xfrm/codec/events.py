"""The kernel's XFRM multicast messages as our XfrmEvent values."""

from __future__ import annotations

from southbound.xfrm.codec.fields import (
    Msg,
    addr_from,
    selector_from,
)
from southbound.xfrm.codec.policies import policy_from, template_from
from southbound.xfrm.codec.states import state_from
from southbound.xfrm.constants import (
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
)
from southbound.xfrm.types import (
    AcquireEvent,
    AsyncEvent,
    Change,
    Direction,
    ExpireEvent,
    Flushed,
    LifetimeCurrent,
    MappingEvent,
    PolicyChanged,
    PolicyExpireEvent,
    PolicyId,
    Proto,
    ReportEvent,
    SaId,
    StateChanged,
    Template,
    XfrmEvent,
)


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
