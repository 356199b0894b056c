"""The backend choices of `ipsec-nf` and what each one refuses: one place for `serve` and
`check`, so an offline check refuses exactly what the server would at validate and commit."""

from __future__ import annotations

from nf.checks import Check
from nf.pki import pki_refusals
from southbound.backend import DataPlane, ResourceKind
from southbound.charon_backend import DATAPLANES, KINDS, refusals

DEFAULT_BACKEND = "kernel-libipsec"
BACKENDS = tuple(DATAPLANES)


def dataplane(backend: str) -> DataPlane:
    """The data plane of a backend name (``--backend``); KeyError for an unknown one."""
    return DATAPLANES[backend]


def backend_checks(dp: DataPlane) -> list[Check]:
    """The checks beyond the YANG model that the datastores run at validate, edit and commit
    (``Datastores.checks``) for a charon backend on data plane ``dp``."""
    return [lambda effective: refusals(dp, effective), pki_refusals]


def backend_kinds() -> tuple[ResourceKind, ...]:
    """The resource kinds the charon backend loads (what is selected from the effective
    config, and each entry's payload)."""
    return KINDS


__all__ = ["BACKENDS", "DEFAULT_BACKEND", "backend_checks", "backend_kinds", "dataplane"]
