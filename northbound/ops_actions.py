"""The SA actions: <initiate>, <terminate>, <rekey>, <clear>, <reset-counters>.

Each handler reads its input (already checked against the YANG input by the dispatcher: types,
ranges, one case of the target choice; NACM exec rules are the dispatcher's too), calls the
narrow :class:`nf.actions.SaActions` of the context, and answers the unique-ids of the SAs
affected. Action errors become rpc-errors: no such VPN, policy or SA is ``invalid-value``
with the error-path of the input leaf; a VPN that cannot be acted on now (disabled, not
applied, responder only) is ``operation-failed`` with app-tag ``vpn-not-ready``; a refusal
of the daemon or a peer that does not answer is ``operation-failed`` with app-tag
``action-failed`` and the daemon's reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from lxml import etree

from nf.actions import ActionError, ActionResult, NoSuchTarget, NotReady, SaActions, Target
from nf.errors import InvalidValue, OperationFailed, OperationNotSupported
from nf.schema import NS
from northbound import replies
from northbound.context import ServerContext

DEFAULT_TIMEOUT = 30


def _text(op: etree._Element, name: str) -> str | None:
    found = op.find(f"{{{NS}}}{name}")
    return None if found is None else (found.text or "").strip()


def _int(op: etree._Element, name: str) -> int | None:
    text = _text(op, name)
    return None if text is None else int(text)  # a uint32: libyang checked it


def _bool(op: etree._Element, name: str, default: bool) -> bool:
    text = _text(op, name)
    return default if text is None else text == "true"


def _target(op: etree._Element) -> Target:
    return Target(vpn=_text(op, "vpn"), security_policy=_text(op, "security-policy"),
                  ike_sa=_int(op, "ike-sa"), child_sa=_int(op, "child-sa"),
                  peer_id=_text(op, "peer-id"), virtual_ip=_text(op, "virtual-ip"))


def _timeout(op: etree._Element) -> float:
    found = _int(op, "timeout")
    return float(DEFAULT_TIMEOUT if found is None else found)


def _result(res: ActionResult) -> list[etree._Element]:
    out = []
    for leaf, ids in (("ike-sa", res.ike_sas), ("child-sa", res.child_sas)):
        for uid in ids:
            el = etree.Element(f"{{{NS}}}{leaf}", nsmap={None: NS})
            el.text = str(uid)
            out.append(el)
    return out or [replies.ok()]


async def _act(ctx: ServerContext, rpc: str,
               call: Callable[[SaActions], Awaitable[ActionResult | None]]
               ) -> list[etree._Element]:
    """Run one action through the context's SaActions; its errors as rpc-errors."""
    if ctx.actions is None:
        raise OperationNotSupported(f"{rpc} is not available: no IKE daemon backend")
    try:
        res = await call(ctx.actions)
    except ActionError as e:
        raise _rpc_error(rpc, e) from None
    finally:  # what the action did (or part of it) is read again by the next <get>
        if ctx.state is not None:
            ctx.state.expire()
    return [replies.ok()] if res is None else _result(res)


def _rpc_error(rpc: str, e: ActionError) -> Exception:
    path = f"/ipsec-nf:{rpc}/ipsec-nf:{e.param}" if e.param else None
    info: dict[str, str] = {"bad-element": e.param} if e.param else {}
    if isinstance(e, NoSuchTarget):
        return InvalidValue(e.message, path, **info)
    if isinstance(e, NotReady):
        return OperationFailed(e.message, path, app_tag="vpn-not-ready", **info)
    return OperationFailed(e.message, path, app_tag="action-failed", **info)


async def initiate(ctx: ServerContext, session: Any, op: etree._Element) -> list[etree._Element]:
    """Bring a VPN (or one of its security policies) up; answer the SAs established."""
    vpn = _text(op, "vpn") or ""  # mandatory: libyang checked it
    policy, timeout = _text(op, "security-policy"), _timeout(op)
    return await _act(ctx, "initiate", lambda a: a.initiate(vpn, policy, timeout))


async def terminate(ctx: ServerContext, session: Any, op: etree._Element) -> list[etree._Element]:
    """Close the SAs of a VPN, of one of its policies, or one SA; answer those closed."""
    target, force, timeout = _target(op), _bool(op, "force", True), _timeout(op)
    return await _act(ctx, "terminate", lambda a: a.terminate(target, force, timeout))


async def rekey(ctx: ServerContext, session: Any, op: etree._Element) -> list[etree._Element]:
    """Rekey SAs and wait for their successors; answer the new SAs."""
    target, reauth, timeout = _target(op), _bool(op, "reauth", False), _timeout(op)
    return await _act(ctx, "rekey", lambda a: a.rekey(target, reauth, timeout))


async def clear(ctx: ServerContext, session: Any, op: etree._Element) -> list[etree._Element]:
    """Close every SA of a VPN or of the gateway; answer the IKE SAs closed."""
    vpn, timeout = _text(op, "vpn"), _timeout(op)
    return await _act(ctx, "clear", lambda a: a.clear(vpn, timeout))


async def reset_counters(ctx: ServerContext, session: Any,
                         op: etree._Element) -> list[etree._Element]:
    """Reset the daemon's IKE event counters of a VPN, or all of them."""
    vpn = _text(op, "vpn")
    return await _act(ctx, "reset-counters", lambda a: a.reset_counters(vpn))


TABLE = {
    (NS, "initiate"): initiate,
    (NS, "terminate"): terminate,
    (NS, "rekey"): rekey,
    (NS, "clear"): clear,
    (NS, "reset-counters"): reset_counters,
}
