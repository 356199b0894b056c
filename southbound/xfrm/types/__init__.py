"""Immutable values of the kernel's XFRM SAD/SPD and of its events (no netlink in here).

Addresses are :mod:`ipaddress` objects; a family is never stored beside them (it follows from
the addresses, and a state or policy mixing families is refused when built). Keys are bytes
and never shown by ``repr`` (secrets stay out of logs and errors).

Limits: ``None`` means "no limit" (the kernel's XFRM_INF for bytes/packets, 0 for seconds).

- :mod:`.selector`: addresses, :class:`Selector`, :class:`XfrmValueError`;
- :mod:`.lifetime`: :class:`Lifetime` (limits) and :class:`LifetimeCurrent` (use);
- :mod:`.sa`: :class:`XfrmState` (an SA), its algorithms, encapsulation, :class:`SaId`;
- :mod:`.policy`: :class:`XfrmPolicy`, :class:`Template`, :class:`PolicyId`;
- :mod:`.events`: what the kernel reports (:data:`XfrmEvent`) and its multicast groups.

The driver's callers import these values from this package.
"""

from __future__ import annotations

from southbound.xfrm.types.events import (
    DEFAULT_GROUPS,
    AcquireEvent,
    AsyncEvent,
    AsyncFlag,
    Change,
    ExpireEvent,
    Flushed,
    Group,
    MappingEvent,
    PolicyChanged,
    PolicyExpireEvent,
    ReportEvent,
    StateChanged,
    XfrmEvent,
)
from southbound.xfrm.types.lifetime import (
    Lifetime,
    LifetimeCurrent,
)
from southbound.xfrm.types.policy import (
    Action,
    Direction,
    PolicyId,
    Template,
    XfrmPolicy,
)
from southbound.xfrm.types.sa import (
    AeadAlgorithm,
    Algorithm,
    AuthAlgorithm,
    Encap,
    EncapType,
    Mode,
    Proto,
    SaId,
    SaStats,
    XfrmState,
)
from southbound.xfrm.types.selector import (
    IPAddress,
    IPNetwork,
    Selector,
    XfrmValueError,
    family_of,
)

__all__ = [
    "AcquireEvent",
    "Action",
    "AeadAlgorithm",
    "Algorithm",
    "AsyncEvent",
    "AsyncFlag",
    "AuthAlgorithm",
    "Change",
    "DEFAULT_GROUPS",
    "Direction",
    "Encap",
    "EncapType",
    "ExpireEvent",
    "Flushed",
    "Group",
    "IPAddress",
    "IPNetwork",
    "Lifetime",
    "LifetimeCurrent",
    "MappingEvent",
    "Mode",
    "PolicyChanged",
    "PolicyExpireEvent",
    "PolicyId",
    "Proto",
    "ReportEvent",
    "SaId",
    "SaStats",
    "Selector",
    "StateChanged",
    "Template",
    "XfrmEvent",
    "XfrmPolicy",
    "XfrmState",
    "XfrmValueError",
    "family_of",
]
