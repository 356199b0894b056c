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

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from nf.effective import EffectiveConfig
from nf.errors import ErrorInfo, RpcError

MODULE = "ipsec-nf"
APP_TAG = "not-supported-by-backend"
_STEP = re.compile(r"^([\w.-]+)(?:\[([\w.-]+)='([^']*)'\])?$")
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
        """Why, for the rpc-error (names the backend and the setting)."""


Check = Callable[[EffectiveConfig], Iterable[Refusal]]


def _quote(value: str) -> str:
    return f'"{value}"' if "'" in value else f"'{value}'"


def _step(step: str) -> str:
    m = _STEP.match(step)
    if m is None:
        raise ValueError(f"bad step {step!r}")
    name, key, value = m.groups()
    out = f"/{MODULE}:{name}"
    return out + (f"[{MODULE}:{key}={_quote(value)}]" if key else "")


def locate(config: Mapping[str, Any], vpn: str, leaf: tuple[str, ...]) -> str:
    """The data path of the node holding ``leaf`` of ``vpn`` in the config dict ``config``
    (keyed or libyang's: lists as dicts by name or as lists)."""
    ike = config.get("ike", {})
    vpns = ike.get("vpn", {})
    entry = vpns.get(vpn, {}) if isinstance(vpns, Mapping) else next(
        (v for v in vpns if v.get("name") == vpn), {})
    here = f"/{MODULE}:ike/{MODULE}:vpn[{MODULE}:name={_quote(vpn)}]"
    if leaf and leaf[0] in _TEMPLATE_LIST and len(leaf) > 1:
        own = entry.get(leaf[0], {})
        first = _STEP.match(leaf[1])
        if first is not None and first.group(1) not in own and own.get("template"):
            name = _quote(own["template"])
            template = f"/{MODULE}:ike/{MODULE}:{_TEMPLATE_LIST[leaf[0]]}[{MODULE}:name={name}]"
            return template + "".join(_step(s) for s in leaf[1:])
    return here + "".join(_step(s) for s in leaf)


def run_checks(checks: Iterable[Check], effective: EffectiveConfig,
               config: Mapping[str, Any]) -> None:
    """Run every check on ``effective``; raise one RpcError with an rpc-error per refusal
    (error-path to the node that holds the value in ``config``)."""
    errors = [ErrorInfo("invalid-value", r.message, locate(config, r.vpn, r.leaf),
                        app_tag=APP_TAG)
              for check in checks for r in check(effective)]
    if errors:
        raise RpcError(*errors)
