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

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar, cast

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
C = TypeVar("C", bound=Callable[..., Any])


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


def pure(check: C) -> C:
    """Mark ``check`` as a function of the effective config alone (no clock, file, store or
    kernel read): equal configs, equal refusals. :class:`CheckRuns` does not run it again on
    the very values it already passed."""
    try:
        setattr(check, "pure", True)  # noqa: B010 - (a function's attribute)
    except AttributeError:  # (a bound method, a builtin: marked in a wrapper)
        return cast(C, _Pure(check))
    return check


class _Pure:
    """A callable marked :func:`pure`."""

    pure = True

    def __init__(self, check: Callable[..., Any]) -> None:
        self.check = check

    def __call__(self, *args: Any) -> Any:
        return self.check(*args)


def _shape(data: Mapping[str, Any]) -> dict[str, Any]:
    """The two outer levels of libyang's dict (lists as tuples), holding the same values."""
    return {name: {k: tuple(v) if isinstance(v, list) else v for k, v in top.items()}
            if isinstance(top, dict) else tuple(top) if isinstance(top, list) else top
            for name, top in data.items()}


def _is(a: Any, b: Any) -> bool:
    """The same value, or tuples of the same values."""
    return a is b or (isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b)
                      and all(x is y for x, y in zip(a, b, strict=True)))


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Are two shapes made of the very same values (identity, not equality: a validated
    config's dicts are never changed in place, a new value is a new object)?"""
    if a.keys() != b.keys():
        return False
    for name, top in a.items():
        other = b[name]
        if isinstance(top, dict) and isinstance(other, dict):
            if top.keys() != other.keys() or not all(_is(v, other[k]) for k, v in top.items()):
                return False
        elif not _is(top, other):
            return False
    return True


class CheckRuns:
    """The injected checks of one set of datastores, run on validated data (libyang's dict).

    The last data they all passed on is kept with its effective config: a commit of exactly
    what an edit-config checked (the candidate's checked dicts: the very same entries) is not
    resolved again, and only the checks that look beyond the config run again on it (the
    clock, the gateway's CA and its CRL, the kernel); the :func:`pure` ones found nothing in
    these very values.
    """

    def __init__(self, resolve: Callable[[Mapping[str, Any]], EffectiveConfig]) -> None:
        self._resolve = resolve
        self._passed: tuple[tuple[Check, ...], dict[str, Any], EffectiveConfig] | None = None

    def run(self, checks: Sequence[Check], data: Mapping[str, Any]) -> None:
        """:func:`run_checks` of ``checks`` on ``data``'s effective config; RpcError."""
        checks, shape, last = tuple(checks), _shape(data), self._passed
        if last is not None and last[0] == checks and _same(last[1], shape):
            run_checks([c for c in checks if not getattr(c, "pure", False)], last[2], data)
            return
        self._passed = None
        effective = self._resolve(data)
        run_checks(checks, effective, data)
        self._passed = (checks, shape, effective)
