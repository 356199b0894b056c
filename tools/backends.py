"""The backend choices of `ipsec-nf` and what each one refuses: one place for `serve` and
`check`, so an offline check refuses exactly what the server would at validate and commit."""

from __future__ import annotations

from nf.checks import Check, pure
from nf.effective import EffectiveConfig
from nf.i2nsf_ike import Refused
from nf.i2nsf_ikeless import backend_refusals
from nf.pki import pki_refusals
from southbound.backend import DataPlane, ResourceKind
from southbound.charon_backend import DATAPLANES, KINDS, refusals
from southbound.kernel_esp import kernel_esp_missing

DEFAULT_BACKEND = "kernel-libipsec"
BACKENDS = tuple(DATAPLANES)


def dataplane(backend: str) -> DataPlane:
    """The data plane of a backend name (``--backend``); KeyError for an unknown one."""
    return DATAPLANES[backend]


def backend_checks(dp: DataPlane) -> list[Check]:
    """The checks beyond the YANG model that the datastores run at validate, edit and commit
    (``Datastores.checks``) for a charon backend on data plane ``dp``."""
    # (pki_refusals reads the clock: a certificate may have expired since the edit)
    return [pure(lambda effective: refusals(dp, effective)), pki_refusals,
            lambda effective: ikeless_refusals(dp, effective)]


def ikeless_refusals(dp: DataPlane, effective: EffectiveConfig) -> list[Refused]:
    """Every RFC 9061 IKE-less entry when ``dp`` has no kernel ESP to install it in (the
    kernel-libipsec backend; kernel-netlink on a kernel without esp4/esp6)."""
    if not effective.ikeless:
        return []
    missing = kernel_esp_missing() if dp.name == "kernel-netlink" else None
    return list(backend_refusals(effective.ikeless, dp.name, missing))


def backend_kinds() -> tuple[ResourceKind, ...]:
    """The resource kinds the charon backend loads (what is selected from the effective
    config, and each entry's payload)."""
    return KINDS


__all__ = ["BACKENDS", "DEFAULT_BACKEND", "backend_checks", "backend_kinds", "dataplane"]
