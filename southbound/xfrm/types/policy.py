"""A policy of the kernel's SPD (``xfrm_userpolicy_info``): direction, action, the SAs it
requires (templates) and its identity."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from southbound.xfrm.types.lifetime import Lifetime, LifetimeCurrent
from southbound.xfrm.types.sa import Mode, Proto
from southbound.xfrm.types.selector import IPAddress, Selector


class Direction(IntEnum):
    """The direction of a policy (XFRM_POLICY_IN/OUT/FWD)."""

    IN = 0
    OUT = 1
    FWD = 2


class Action(IntEnum):
    """What a policy does with matching packets (XFRM_POLICY_ALLOW/BLOCK)."""

    ALLOW = 0
    BLOCK = 1


@dataclass(frozen=True)
class Template:
    """One SA a policy requires (``xfrm_user_tmpl``).

    ``spi`` 0: any SA; ``src``/``dst`` are the tunnel endpoints (tunnel mode) or None (the
    packet's addresses, transport mode). ``optional`` is ``ip xfrm``'s "level use".
    """

    dst: IPAddress | None
    src: IPAddress | None = None
    proto: Proto = Proto.ESP
    mode: Mode = Mode.TUNNEL
    reqid: int = 0
    spi: int = 0
    optional: bool = False


@dataclass(frozen=True)
class PolicyId:
    """The kernel's key of a policy: its selector and direction (and if_id), or its index."""

    selector: Selector
    direction: Direction
    if_id: int = 0
    index: int = 0  # non-zero: the policy with this index (selector then ignored)


@dataclass(frozen=True)
class XfrmPolicy:
    """A policy of the kernel's SPD (``xfrm_userpolicy_info`` with its templates).

    ``index`` 0 when writing: the kernel chooses one (read back by :meth:`XfrmDriver.add_policy`).
    """

    selector: Selector
    direction: Direction
    action: Action = Action.ALLOW
    priority: int = 0
    index: int = 0
    templates: tuple[Template, ...] = ()
    if_id: int = 0
    lifetime: Lifetime = Lifetime()
    # read-only
    current: LifetimeCurrent | None = None

    @property
    def id(self) -> PolicyId:
        """The kernel's key of this policy."""
        return PolicyId(self.selector, self.direction, self.if_id)
