"""RFC 9061's IKE case (``ietf-i2nsf-ike``) as VPNs and pre-shared keys of the effective config.

A ``conn-entry`` with the PAD entries it names and its SPD becomes one :class:`Vpn` (named as
the connection), a PAD entry with a pre-shared secret one :class:`PreSharedKey`; both are merged
into the effective config that :func:`nf.templates.resolve` makes of our own model, so one
reconciler loads both into charon. What cannot be converted, what contradicts our own model (a
connection named like one of our VPNs, or with the same peer and selectors) and the IKE-less
entries of the IKE-less case (``ietf-i2nsf-ikeless``, converted by ``nf/i2nsf_ikeless.py``
into ``EffectiveConfig.ikeless`` for the kernel's XFRM) that cannot be carried out are not
merged: they are recorded in ``EffectiveConfig.refusals`` and refused by :func:`check` at
validate, edit and commit, with the path of the node at fault.

The SA parameters (algorithms as IANA transform IDs, lifetimes, SPD entries) are converted by
``nf/i2nsf_ike_sa.py``; the state of the connections by ``nf/i2nsf_ike_state.py``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from nf import paths
from nf.effective import EffectiveConfig, PreSharedKey, Vpn
from nf.i2nsf_ike_sa import IKE, UNSUPPORTED  # noqa: F401 - the modules' names, re-exported
from nf.i2nsf_ike_sa import Refuse as _Refuse
from nf.i2nsf_ike_sa import entries as _entries
from nf.i2nsf_ike_sa import ike_policy as _ike_policy
from nf.i2nsf_ike_sa import ipsec_policy as _ipsec_policy
from nf.i2nsf_ike_sa import security_policy as _policy
from nf.i2nsf_ike_sa import step as _step
from nf.paths import Step

IKELESS = "ietf-i2nsf-ikeless"
TOP = "ipsec-ike"
IKELESS_TOP = "ipsec-ikeless"
PSK_PREFIX = "i2nsf-pad/"  # the effective keys of PAD entries: i2nsf-pad/<entry name>
CLASH = "model-clash"


@dataclass(frozen=True, slots=True)
class Refused:
    """A node of the RFC 9061 models that is refused (see :class:`nf.checks.Refusal`)."""

    vpn: str
    leaf: tuple[str, ...]
    message: str
    app_tag: str
    path: str


def conn_steps(name: str) -> tuple[Step, ...]:
    """The path steps of a conn-entry."""
    return (_step(TOP), _step("conn-entry", name))


def conn_path(config: Mapping[str, Any], vpn: str) -> str | None:
    """The path of the conn-entry ``vpn`` when the config has one (where a refusal of the
    backend's checks for that effective VPN points), else None."""
    if any(c.get("name") == vpn for c in _entries(config.get(TOP, {}).get("conn-entry"))):
        return paths.build(conn_steps(vpn))
    return None


# ------------------------------------------------------------------------------ identities

def _identity(pad: Mapping[str, Any], steps: tuple[Step, ...]) -> str:
    """charon's form of a PAD entry's identity."""
    for leaf in ("ipv4-address", "ipv6-address", "fqdn-string", "rfc822-address-string"):
        if leaf in pad:
            return str(pad[leaf])
    for leaf, prefix in (("dnx509", "asn1dn"), ("id-key", "keyid")):
        if leaf in pad:
            return f"{prefix}:#{base64.b64decode(pad[leaf]).hex()}"
    which = "gnx509" if "gnx509" in pad else "id-null"
    raise _Refuse((*steps, _step(which)),
                  f"identity {which} is not supported by the IKE daemon's configuration")


def _address(pad: Mapping[str, Any]) -> str | None:
    return pad.get("ipv4-address") or pad.get("ipv6-address")


def _secret(pad: Mapping[str, Any]) -> str | None:
    secret = pad.get("peer-authentication", {}).get("pre-shared", {}).get("secret")
    return "0x" + secret.replace(":", "") if secret else None


def _auth(pad: Mapping[str, Any], steps: tuple[Step, ...]) -> str:
    method = pad.get("peer-authentication", {}).get("auth-method", "pre-shared")
    if method != "pre-shared":
        raise _Refuse((*steps, _step("peer-authentication"), _step("auth-method")),
                      f"auth-method {method}: only pre-shared is carried out so far")
    if not _secret(pad):
        raise _Refuse((*steps, _step("peer-authentication")),
                      "auth-method pre-shared needs pre-shared/secret")
    return "pre-shared-key"


# ------------------------------------------------------------------------------ conversion

def _conn(conn: Mapping[str, Any], pads: Mapping[str, Mapping[str, Any]]) -> Vpn:
    name = conn["name"]
    steps = conn_steps(name)
    ends = {}
    for side in ("local", "remote"):
        ref = conn.get(side, {}).get(f"{side}-pad-entry-name")
        if ref not in pads:
            raise _Refuse((*steps, _step(side), _step(f"{side}-pad-entry-name")),
                          f"no pad-entry named {ref!r}")
        pad_steps = (_step(TOP), _step("pad"), _step("pad-entry", ref))
        ends[side] = (pads[ref], _identity(pads[ref], pad_steps), _auth(pads[ref], pad_steps))
    (lpad, lid, _), (rpad, rid, _) = ends["local"], ends["remote"]
    if _secret(lpad) != _secret(rpad) and _secret(lpad) and _secret(rpad):
        raise _Refuse((*steps, _step("remote"), _step("remote-pad-entry-name")),
                      "the local and remote PAD entries have different pre-shared secrets: the "
                      "IKE daemon uses one key for both directions of a pair of identities")
    entries = _entries(conn.get("spd", {}).get("spd-entry"))
    policies = tuple(_policy(e, (*steps, _step("spd"), _step("spd-entry", e["name"])))
                     for e in entries)
    protect = [e for e in entries if e.get("ipsec-policy-config", {})
               .get("processing-info", {}).get("action") == "protect"]
    ipsec, sa = _ipsec_policy(conn, protect, steps)
    tunnel = sa.get("tunnel", {})
    return Vpn(name=name, local_address=tunnel.get("local") or _address(lpad),
               remote_address=tunnel.get("remote") or _address(rpad),
               local_id=lid, remote_id=rid, ike=_ike_policy(conn, steps), ipsec=ipsec,
               security_policies=policies)


def _pad_keys(pads: Mapping[str, Mapping[str, Any]]) -> dict[str, PreSharedKey]:
    keys = {}
    for name, pad in pads.items():
        secret = _secret(pad)
        steps = (_step(TOP), _step("pad"), _step("pad-entry", name))
        if secret is None:
            continue
        try:
            ident = _identity(pad, steps)
        except _Refuse:
            continue  # refused where a connection uses it
        keys[PSK_PREFIX + name] = PreSharedKey(name=PSK_PREFIX + name, ids=(ident,),
                                               secret=secret)
    return keys


def _refused(vpn: str, e: _Refuse) -> Refused:
    return Refused(vpn, (), e.message, e.app_tag, paths.build(e.steps))


def _selectors(v: Vpn) -> set[tuple[frozenset[str], frozenset[str]]]:
    return {(frozenset(sp.local_ts.subnet), frozenset(sp.remote_ts.subnet))
            for sp in v.security_policies}


def _clashes(eff: EffectiveConfig, native_names: set[str], vpns: Mapping[str, Vpn]
             ) -> Iterator[Refused]:
    for name, v in vpns.items():
        here = paths.build((*conn_steps(name), _step("name")))
        if name in native_names:
            yield Refused(name, (), f"conn-entry {name!r} has the name of a vpn of ipsec-nf: "
                          "one connection cannot be configured by both models", CLASH, here)
            continue
        for other in eff.vpns.values():
            same = _selectors(v) & _selectors(other)
            if other.remote_address == v.remote_address and same:
                local, remote = (sorted(s) for s in next(iter(same)))
                yield Refused(name, (), (
                    f"conn-entry {name!r} has the peer {v.remote_address} and the selectors "
                    f"{','.join(local)} <-> {','.join(remote)} of the vpn {other.name!r} of "
                    "ipsec-nf: one tunnel cannot be configured by both models"), CLASH,
                    paths.build(conn_steps(name)))


def merge(eff: EffectiveConfig, config: Mapping[str, Any]) -> EffectiveConfig:
    """``eff`` (our model's effective config) with the IKE-case connections and PAD keys of
    ``config`` added, and what is refused in ``refusals``."""
    from nf import i2nsf_ikeless  # (it imports this module's names)

    top = config.get(TOP, {})
    if not top and IKELESS_TOP not in config:
        return eff
    pads = {p["name"]: p for p in _entries(top.get("pad", {}).get("pad-entry"))}
    ikeless, refused = i2nsf_ikeless.convert(config)
    vpns: dict[str, Vpn] = {}
    for conn in _entries(top.get("conn-entry")):
        try:
            vpns[conn["name"]] = _conn(conn, pads)
        except _Refuse as e:
            refused.append(_refused(conn["name"], e))
    native = {v["name"] for v in _entries(config.get("ike", {}).get("vpn"))}
    clashes = list(_clashes(eff, native, vpns))
    refused += clashes
    keys = _pad_keys(pads)
    refused += [Refused("", (), f"pre-shared-key {n!r} is named like the key of a PAD entry "
                        f"({PSK_PREFIX}<name>)", CLASH,
                        paths.build((Step("ipsec-nf", "ike"),
                                     Step("ipsec-nf", "pre-shared-key", (("name", n),)))))
                for n in keys if n in eff.psks]
    clashed = {r.vpn for r in clashes}
    return replace(
        eff, vpns=MappingProxyType({**eff.vpns, **{n: v for n, v in vpns.items()
                                                    if n not in clashed}}),
        psks=MappingProxyType({**keys, **eff.psks}),
        refusals=(*eff.refusals, *refused), ikeless=ikeless or None)


def check(eff: EffectiveConfig) -> Iterator[Refused]:
    """The refusals recorded by :func:`merge` (a check of ``nf.checks``)."""
    yield from eff.refusals
