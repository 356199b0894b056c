"""Policies, ours ⇄ the kernel's: XfrmPolicy ⇄ xfrm_userpolicy_info and its templates."""

from __future__ import annotations

from typing import Any

from southbound.xfrm import layouts
from southbound.xfrm.codec.fields import (
    AF,
    Msg,
    addr_bytes,
    addr_from,
    attrs_of,
    current_from,
    lifetime_fields,
    lifetime_from,
    plain,
    selector_fields,
    selector_from,
)
from southbound.xfrm.types import (
    Action,
    Direction,
    Mode,
    PolicyId,
    Proto,
    Template,
    XfrmPolicy,
)


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
