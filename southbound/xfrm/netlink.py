"""XfrmNetlink: the XFRM driver (:class:`southbound.xfrm.api.XfrmDriver`) on NETLINK_XFRM.

Messages are pyroute2 nlmsg classes (:mod:`southbound.xfrm.messages`) filled by
:mod:`southbound.xfrm.codec` and exchanged by :class:`southbound.xfrm.exchange.NetlinkExchange`
on a plain ``AF_NETLINK`` socket (:mod:`southbound.xfrm.netlink_socket`). pyroute2's own
``NetlinkSocket`` is not used: its synchronous API runs a private asyncio loop per call, which
cannot run inside the gateway's loop, and costs more than the request itself. The bulk adds
(``add_states``/``add_policies``) pack their messages with :mod:`southbound.xfrm.fastpack`.
Events come from :class:`southbound.xfrm.subscription.XfrmEvents`.
"""

from __future__ import annotations

import errno as E
from collections.abc import Iterable
from typing import Any, Self

from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST

from southbound.xfrm import fastpack, messages
from southbound.xfrm.api import XfrmError, XfrmNotFound
from southbound.xfrm.codec.fields import addr_bytes
from southbound.xfrm.codec.policies import policy_attrs, policy_fields, policy_from, policyid_fields
from southbound.xfrm.codec.states import said_fields, state_attrs, state_fields, state_from
from southbound.xfrm.constants import (
    XFRM_MSG_DELPOLICY,
    XFRM_MSG_DELSA,
    XFRM_MSG_GETPOLICY,
    XFRM_MSG_GETSA,
    XFRM_MSG_NEWPOLICY,
    XFRM_MSG_NEWSA,
    XFRM_MSG_UPDPOLICY,
    XFRM_MSG_UPDSA,
    XFRM_POLICY_MAX,
)
from southbound.xfrm.exchange import NetlinkExchange
from southbound.xfrm.subscription import XfrmEvents
from southbound.xfrm.types import DEFAULT_GROUPS, Group, PolicyId, SaId, XfrmPolicy, XfrmState


def _describe_state(st: XfrmState | SaId) -> str:
    return f"SA {st.proto.name.lower()} spi {st.spi:#010x} dst {st.dst}"


def _describe_policy(p: XfrmPolicy | PolicyId) -> str:
    sel = p.selector
    return f"policy {p.direction.name.lower()} {sel.src} -> {sel.dst}" + (
        f" if_id {p.if_id}" if p.if_id else "")


class XfrmNetlink:
    """The kernel's SAD/SPD over one NETLINK_XFRM socket (not thread-safe: one user at a time).

    ``netns``: the name of a network namespace (``ip netns``) to work in; None: our own.
    """

    def __init__(self, netns: str | None = None) -> None:
        self._netns = netns
        self._exchange = NetlinkExchange(netns)

    # ---------------------------------------------------------------------------- SAD

    @staticmethod
    def _state_msg(state: XfrmState) -> Any:
        msg = messages.xfrm_usersa_info()
        msg.update(state_fields(state))
        msg["attrs"] = state_attrs(state)
        return msg

    def add_state(self, state: XfrmState) -> None:
        """Install STATE (XFRM_MSG_NEWSA); XfrmExists if its key is taken."""
        self._exchange.request(self._state_msg(state), XFRM_MSG_NEWSA,
                               NLM_F_CREATE | NLM_F_EXCL, f"add {_describe_state(state)}")

    def update_state(self, state: XfrmState) -> None:
        """Replace the SA with STATE's key (XFRM_MSG_UPDSA); XfrmNotFound if absent."""
        self._exchange.request(self._state_msg(state), XFRM_MSG_UPDSA, 0,
                               f"update {_describe_state(state)}")

    @staticmethod
    def _said_msg(sa: SaId) -> Any:
        msg = messages.xfrm_usersa_id()
        msg.update(said_fields(sa))
        msg["attrs"] = [("XFRMA_SRCADDR", {"addr": addr_bytes(sa.src)})] if sa.src else []
        return msg

    def delete_state(self, sa: SaId) -> None:
        """Remove the SA (XFRM_MSG_DELSA); XfrmNotFound if absent."""
        self._exchange.request(self._said_msg(sa), XFRM_MSG_DELSA, 0,
                               f"delete {_describe_state(sa)}")

    def get_state(self, sa: SaId) -> XfrmState | None:
        """The SA with this key, with its current lifetime and statistics, or None."""
        reply = self._exchange.get(self._said_msg(sa), XFRM_MSG_GETSA,
                                   f"get {_describe_state(sa)}")
        return None if reply is None else state_from(reply)

    def dump_states(self) -> list[XfrmState]:
        """Every SA of the SAD, with keys, current lifetimes and statistics."""
        return [state_from(msg) for msg in self._exchange.dump(XFRM_MSG_GETSA)]

    def add_states(self, states: Iterable[XfrmState]) -> list[XfrmError | None]:
        """Install many SAs, pipelined; one error or None per state, in order."""
        return self._exchange.fast_batch(list(states), fastpack.state_message, XFRM_MSG_NEWSA,
                                         _describe_state)

    # ---------------------------------------------------------------------------- SPD

    @staticmethod
    def _policy_msg(policy: XfrmPolicy) -> Any:
        msg = messages.xfrm_userpolicy_info()
        msg.update(policy_fields(policy))
        msg["attrs"] = policy_attrs(policy)
        return msg

    @staticmethod
    def _policyid_msg(pid: PolicyId) -> Any:
        msg = messages.xfrm_userpolicy_id()
        msg.update(policyid_fields(pid))
        msg["attrs"] = [("XFRMA_IF_ID", pid.if_id)] if pid.if_id else []
        return msg

    def _read_back(self, policy: XfrmPolicy) -> XfrmPolicy:
        got = self.get_policy(policy.id)
        if got is None:  # removed in between by someone else
            raise XfrmNotFound(E.ENOENT, f"{_describe_policy(policy)}: gone after it was set")
        return got

    def add_policy(self, policy: XfrmPolicy) -> XfrmPolicy:
        """Install POLICY (XFRM_MSG_NEWPOLICY); returns it as the kernel holds it."""
        self._exchange.request(self._policy_msg(policy), XFRM_MSG_NEWPOLICY,
                               NLM_F_CREATE | NLM_F_EXCL, f"add {_describe_policy(policy)}")
        return self._read_back(policy)

    def update_policy(self, policy: XfrmPolicy) -> XfrmPolicy:
        """Add or replace POLICY (XFRM_MSG_UPDPOLICY); returns it as the kernel holds it."""
        self._exchange.request(self._policy_msg(policy), XFRM_MSG_UPDPOLICY, NLM_F_CREATE,
                               f"update {_describe_policy(policy)}")
        return self._read_back(policy)

    def delete_policy(self, policy: PolicyId) -> None:
        """Remove the policy (XFRM_MSG_DELPOLICY); XfrmNotFound if absent."""
        self._exchange.request(self._policyid_msg(policy), XFRM_MSG_DELPOLICY, 0,
                               f"delete {_describe_policy(policy)}")

    def get_policy(self, policy: PolicyId) -> XfrmPolicy | None:
        """The policy with this key (selector+direction+if_id, or index), or None."""
        reply = self._exchange.get(self._policyid_msg(policy), XFRM_MSG_GETPOLICY,
                                   f"get {_describe_policy(policy)}")
        return None if reply is None else policy_from(reply)

    def dump_policies(self) -> list[XfrmPolicy]:
        """Every policy of the SPD (socket policies excluded), with current lifetimes."""
        # the kernel's dump includes per-socket policies (dir 3..5: XFRM_POLICY_MAX + dir,
        # e.g. charon's IKE bypass; `ip xfrm policy` prints them as "socket in/out"): they
        # belong to a socket, not to the SPD
        return [policy_from(msg) for msg in self._exchange.dump(XFRM_MSG_GETPOLICY)
                if dict.get(msg, "dir", 0) < XFRM_POLICY_MAX]

    def add_policies(self, policies: Iterable[XfrmPolicy]) -> list[XfrmError | None]:
        """Install many policies, pipelined; one error or None per policy, in order."""
        return self._exchange.fast_batch(list(policies), fastpack.policy_message,
                                         XFRM_MSG_NEWPOLICY, _describe_policy)

    # ------------------------------------------------------------------------- both

    def flush(self, states: Iterable[SaId] = (), policies: Iterable[PolicyId] = ()) -> int:
        """Remove exactly these SAs and policies (those already gone are skipped); returns
        how many were removed. Never XFRM_MSG_FLUSH*: what others hold stays."""
        flags = NLM_F_REQUEST | NLM_F_ACK
        items = [(self._said_msg(s), XFRM_MSG_DELSA, flags) for s in states]
        items += [(self._policyid_msg(p), XFRM_MSG_DELPOLICY, flags) for p in policies]
        names = [f"delete #{i}" for i in range(len(items))]
        removed = 0
        for err in self._exchange.batch(items, names):
            if err is None:
                removed += 1
            elif not isinstance(err, XfrmNotFound):
                raise err
        return removed

    def events(self, groups: Iterable[Group] = DEFAULT_GROUPS) -> XfrmEvents:
        """Subscribe to the kernel's XFRM events in GROUPS (a socket of its own)."""
        return XfrmEvents(self._netns, groups)

    def close(self) -> None:
        """Close the driver's socket."""
        self._exchange.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
