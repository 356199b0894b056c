"""The IKE-less backend's resource kinds for the reconciler: ``ikeless-sa`` (one XFRM state
per SAD entry, loaded first) and ``ikeless-policy`` (an SPD entry's policies), each selected from
``EffectiveConfig.ikeless``, with its payload and digest."""

from __future__ import annotations

from collections.abc import Mapping

from nf.effective import EffectiveConfig
from nf.effective_ikeless import IkelessConfig, SadEntry, SpdEntry
from southbound.backend import ResourceKind
from southbound.ikeless_convert import xfrm_policies, xfrm_state
from southbound.ikeless_digest import policy_digest, state_digest

SA = "ikeless-sa"
SP = "ikeless-policy"


def _select_sad(eff: EffectiveConfig) -> Mapping[str, SadEntry]:
    ikl: IkelessConfig | None = eff.ikeless
    return ikl.sad if ikl and eff.enabled else {}


def _select_spd(eff: EffectiveConfig) -> Mapping[str, SpdEntry]:
    ikl: IkelessConfig | None = eff.ikeless
    return ikl.spd if ikl and eff.enabled else {}


KINDS = (
    ResourceKind(SA, 10, select=_select_sad,
                 payload=lambda e, _dp: {"states": (xfrm_state(e),)},
                 digest=lambda _e, payload: state_digest(payload["states"][0]), secret=True),
    ResourceKind(SP, 20, select=_select_spd,
                 payload=lambda p, _dp: {"policies": xfrm_policies(p)},
                 digest=lambda _p, payload: policy_digest(payload["policies"])),
)
