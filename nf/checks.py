"""Checks beyond the YANG model, injected by the composition root (what the backend can do).

A check is a callable given the effective config of what is being validated; it returns
:class:`Refusal`-like objects (anything with ``vpn``, ``leaf`` and ``message``): a VPN whose
effective parameters the backend below cannot carry out. nf/ never imports the backend: the
checks are built by ``tools/app.py`` from the backend's data plane and handed to
``Datastores.checks``, which runs them at validate, edit (test-then-set) and commit time.

A refusal names its leaf as the VPN sees it (``("ipsec-policy", "esp-proposal[id='1']",
"esn")``); :func:`locate` turns that into the path of the node that holds the value: the VPN's
own override when it sets it, otherwise its template (a proposal list set in the VPN replaces
the template's, a leaf overrides the template's leaf: ``nf/templates.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from nf import i2nsf_ike, paths
from nf.effective import EffectiveConfig
from nf.errors import InvalidValue, RpcError
from nf.paths import Step

MODULE = "ipsec-nf"
APP_TAG = "not-supported-by-backend"
_TEMPLATE_LIST = {"ike-policy": "ike-policy-template", "ipsec-policy": "ipsec-policy-template"}


class Refusal(Protocol):
    """What a check reports: a VPN's setting the backend cannot carry out."""

    @property
    def vpn(self) -> str:
        """The VPN's name."""

    @property
    def leaf(self) -> tuple[str, ...]:
        """Steps from the VPN to the node, e.g. ``("security-policy[name='p']", "mode")``."""

    @property
    def message(self) -> str:
        """Why, for the rpc-error (names the backend and the setting).

        A refusal may also have an ``app_tag`` (the error-app-tag; default
        ``not-supported-by-backend``)."""


Check = Callable[[EffectiveConfig], Iterable[Refusal]]


def _step(step: str) -> Step:
    """One step of a refusal's leaf (``name`` or ``name[key='value']``) in our module;
    ValueError (nf.paths.PathError) if it is not one step."""
    steps = paths.parse(step)
    if len(steps) != 1 or steps[0].module or steps[0].position is not None \
            or step.lstrip().startswith("/"):
        raise paths.PathError(f"bad step {step!r}")
    return Step(MODULE, steps[0].name, steps[0].keys)


def locate(config: Mapping[str, Any], vpn: str, leaf: tuple[str, ...]) -> str:
    """The data path of the node holding ``leaf`` of ``vpn`` in the config dict ``config``
    (keyed or libyang's: lists as dicts by name or as lists)."""
    ike = config.get("ike", {})
    vpns = ike.get("vpn", {})
    entry = vpns.get(vpn, {}) if isinstance(vpns, Mapping) else next(
        (v for v in vpns if v.get("name") == vpn), {})
    if not entry and (conn := i2nsf_ike.conn_path(config, vpn)) is not None:
        return conn  # an RFC 9061 conn-entry: the entry (its leaves have other names)
    ike_step = Step(MODULE, "ike")
    if leaf and leaf[0] in _TEMPLATE_LIST and len(leaf) > 1:
        own = entry.get(leaf[0], {})
        first = _step(leaf[1])
        if first.name not in own and own.get("template"):
            template = Step(MODULE, _TEMPLATE_LIST[leaf[0]], (("name", own["template"]),))
            return paths.build([ike_step, template, *(_step(s) for s in leaf[1:])])
    here = Step(MODULE, "vpn", (("name", vpn),))
    return paths.build([ike_step, here, *(_step(s) for s in leaf)])


def run_checks(checks: Iterable[Check], effective: EffectiveConfig,
               config: Mapping[str, Any]) -> None:
    """Run every check on ``effective``; raise one RpcError with an rpc-error per refusal
    (error-path to the node that holds the value in ``config``)."""
    # a refusal of an entry outside the VPNs (a certificate) brings its own ``path``
    errors = [InvalidValue.item(r.message,
                                getattr(r, "path", None) or locate(config, r.vpn, r.leaf),
                                app_tag=getattr(r, "app_tag", APP_TAG))
              for check in checks for r in check(effective)]
    if errors:
        raise RpcError(*errors)
