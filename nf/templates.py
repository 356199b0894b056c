"""Template resolution: a VPN's effective parameters are its template's, overridden leaf by leaf.

Pure functions from the validated config (libyang's dict form, defaults included) to the typed
effective config of :mod:`nf.effective`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields, replace
from types import MappingProxyType
from typing import Any, TypeVar

from nf import i2nsf_ike
from nf.effective import (
    AhProposal,
    Certificate,
    CertificateAuthority,
    DosProtection,
    EapKey,
    EapRadius,
    EffectiveConfig,
    EspProposal,
    GlobalOptions,
    IkePolicy,
    IkeProposal,
    IpsecPolicy,
    Logging,
    LogLevels,
    Pool,
    PreSharedKey,
    RadiusServer,
    SecurityPolicy,
    SpHash,
    Svti,
    TrafficSelector,
    Vpn,
)

T = TypeVar("T")


def _by_name(entries: list[dict[str, Any]] | dict[str, Any] | None) -> dict[str, dict]:
    if isinstance(entries, dict):
        return entries
    return {e["name"]: e for e in entries or []}


def _leaf(name: str) -> str:
    return name.replace("_", "-")


def _reader(cls: type[T], special: Mapping[str, tuple[str, Callable[[Any], Any]]] | None = None
            ) -> Callable[[Mapping[str, Any]], T]:
    """A builder of ``cls`` from a YANG dict: field ``foo_bar`` <- leaf ``foo-bar``.

    Leaves are taken as they are, an absent leaf leaves the field's default; ``special`` maps
    a field to its leaf's name and a conversion of the leaf's value.
    """
    special = dict(special or {})
    plain = tuple((f.name, _leaf(f.name)) for f in fields(cls)  # type: ignore[arg-type]
                  if f.name not in special)
    conv = tuple((f, leaf, c) for f, (leaf, c) in special.items())

    def build(d: Mapping[str, Any]) -> T:
        kw = {f: d[leaf] for f, leaf in plain if leaf in d}
        kw.update({f: c(d[leaf]) for f, leaf, c in conv if leaf in d})
        return cls(**kw)
    return build


def _each(build: Callable[[Mapping[str, Any]], T]) -> Callable[[Iterable[Any]], tuple[T, ...]]:
    return lambda entries: tuple(build(e) for e in entries or ())


def _leaflists(*names: str) -> dict[str, tuple[str, Callable[[Any], Any]]]:
    return {n: (_leaf(n), tuple) for n in names}


_ike_proposal = _reader(IkeProposal, _leaflists("enc_alg", "auth_alg", "prf_alg", "aead_alg",
                                                "dh_group"))
_esp_proposal = _reader(EspProposal, _leaflists("enc_alg", "auth_alg", "aead_alg", "dh_group",
                                                "esn"))
_ah_proposal = _reader(AhProposal, _leaflists("auth_alg", "dh_group", "esn"))
_ts = _reader(TrafficSelector, _leaflists("subnet"))
_ike_policy = _reader(IkePolicy, {"ike_proposals": ("ike-proposal", _each(_ike_proposal))})
_ipsec_policy = _reader(IpsecPolicy, {"esp_proposals": ("esp-proposal", _each(_esp_proposal)),
                                      "ah_proposals": ("ah-proposal", _each(_ah_proposal))})
_security_policy = _reader(SecurityPolicy, {"local_ts": ("local-ts", _ts),
                                            "remote_ts": ("remote-ts", _ts)})
_sp_hash = _reader(SpHash)
_global_options = _reader(GlobalOptions,
                          {"dos_protection": ("dos-protection", _reader(DosProtection)),
                           "sp_hash_ipv4": ("sp-hash-ipv4", _sp_hash),
                           "sp_hash_ipv6": ("sp-hash-ipv6", _sp_hash)})
_log_levels = _reader(LogLevels)
_logging = _reader(Logging, {"daemon": ("daemon", _log_levels),
                             "authpriv": ("authpriv", _log_levels)})


_radius_server = _reader(RadiusServer)
_eap_radius = _reader(EapRadius, {"servers": ("server", _each(_radius_server))})
_pool = _reader(Pool, {"addresses": ("address", tuple), **_leaflists("dns", "nbns", "dhcp")})
_certificate = _reader(Certificate)
_authority = _reader(CertificateAuthority, {"crl_uris": ("crl-uri", tuple),
                                            "ocsp_uris": ("ocsp-uri", tuple),
                                            "own_ca": ("own-ca", lambda _empty: True)})


_svti = _reader(Svti, {"ipv4_address": ("ipv4", lambda c: tuple(c.get("address", ()))),
                       "ipv6_address": ("ipv6", lambda c: tuple(c.get("address", ())))})


def eap_key_entry(k: Mapping[str, Any]) -> EapKey:
    """The effective form of one EAP key."""
    return EapKey(name=k["name"], ids=tuple(k.get("id", ())), secret=k["secret"])


def _remote_access(ike: Mapping[str, Any]) -> dict[str, Any]:
    """The remote-access lists of ``ike`` as EffectiveConfig fields."""
    return {
        "pools": MappingProxyType({n: _pool(p) for n, p in _by_name(ike.get("pool")).items()}),
        "certificates": MappingProxyType({n: _certificate(c) for n, c in
                                          _by_name(ike.get("certificate")).items()}),
        "authorities": MappingProxyType({n: _authority(c) for n, c in
                                         _by_name(ike.get("certificate-authority")).items()}),
        "eap_keys": MappingProxyType({n: eap_key_entry(k) for n, k in
                                      _by_name(ike.get("eap-key")).items()}),
    }


def global_options(options: Mapping[str, Any] | None,
                   logging: Mapping[str, Any] | None = None,
                   eap_radius: Mapping[str, Any] | None = None) -> GlobalOptions:
    """The daemon's global settings: a config dict's ``global-options`` container, its
    ``logging`` container (``/ike/logging``) as the field ``logging`` and ``eap-radius`` as
    ``eap_radius``."""
    global _last_options
    try:  # (each edit of a VPN resolves the same options again: kept by their JSON text)
        key: str | None = json.dumps((options, logging, eap_radius))
    except TypeError:
        key = None
    last = _last_options  # (one read: another thread may replace it)
    if key is None or last[0] != key:
        last = (key, replace(_global_options(options or {}), logging=_logging(logging or {}),
                             eap_radius=_eap_radius(eap_radius or {})))
        _last_options = last
    return last[1]


_last_options: tuple[str | None, Any] = (None, None)  # (inputs as JSON text, GlobalOptions)


def psk_entry(p: Mapping[str, Any]) -> PreSharedKey:
    """The effective form of one pre-shared key."""
    return PreSharedKey(name=p["name"], ids=tuple(p.get("id", ())), secret=p["secret"])


class _Policies:
    """The templates by name, for resolving VPNs; a VPN that overrides no leaf of a template
    gets the template's policy itself (one shared value instead of one per VPN)."""

    def __init__(self, ike_templates: Mapping[str, Mapping[str, Any]],
                 ipsec_templates: Mapping[str, Mapping[str, Any]],
                 certificates: Mapping[str, Mapping[str, Any]] | None = None,
                 authorities: Mapping[str, Mapping[str, Any]] | None = None,
                 pools: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.ike_templates, self.ipsec_templates = ike_templates, ipsec_templates
        self.certificates, self.authorities = certificates or {}, authorities or {}
        self.pools = pools or {}
        self._ike: dict[Any, IkePolicy] = {}
        self._ipsec: dict[Any, IpsecPolicy] = {}

    def ike(self, own: Mapping[str, Any]) -> IkePolicy:
        """The effective IKE policy of a VPN's ``ike-policy`` container."""
        template = self.ike_templates.get(own.get("template"), {})
        if own.keys() - {"template"}:
            return _ike_policy(_overlay(template, own))
        name = own.get("template")
        if name not in self._ike:
            self._ike[name] = _ike_policy(template)
        return self._ike[name]

    def ipsec(self, own: Mapping[str, Any]) -> IpsecPolicy:
        """The effective IPsec policy of a VPN's ``ipsec-policy`` container."""
        template = self.ipsec_templates.get(own.get("template"), {})
        if own.keys() - {"template"}:
            return _ipsec_policy(_overlay(template, own))
        name = own.get("template")
        if name not in self._ipsec:
            self._ipsec[name] = _ipsec_policy(template)
        return self._ipsec[name]


def _overlay(template: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """Template leaves, then the VPN's own; a proposal list in the VPN replaces the whole list."""
    return {**template, **own}


# A bulk change resolves each changed VPN three times: the checks at edit-config, the checks
# at commit and the reconciler's update, each time from the very same entry dicts (the commit
# reuses the dicts libyang gave at edit-config, running's dict takes them). So a VPN's Vpn is
# kept, keyed by its entry dict's identity and checked against the identity of everything it
# was built from (the entry and the template, certificate, authority and pool entries it
# names): the dicts of a validated config are never changed in place, a new value is a new
# dict. The composition root forgets them once a commit is handed on (:func:`forget`).
MEMO_LIMIT = 50_000  # entries: above one bulk edit of the largest configs measured
_memo: dict[int, tuple[tuple[Any, ...], Vpn]] = {}


def forget() -> None:
    """Drop the VPNs kept by :func:`_vpn` (after a commit: nothing is kept beyond a change)."""
    _memo.clear()


def _vpn(vpn: Mapping[str, Any], policies: _Policies) -> Vpn:
    ike_own = vpn.get("ike-policy", {})
    ipsec_own = vpn.get("ipsec-policy", {})
    deps = (vpn, policies.ike_templates.get(ike_own.get("template")) if ike_own else None,
            policies.ipsec_templates.get(ipsec_own.get("template")) if ipsec_own else None,
            *(policies.certificates.get(n) for n in vpn.get("certificate", ())),
            *(policies.authorities.get(n) for n in vpn.get("remote-ca-certificate", ())),
            *(policies.pools.get(n) for n in vpn.get("vip-pool", ())))
    hit = _memo.get(id(vpn))
    if hit is not None and len(hit[0]) == len(deps) and all(
            a is b for a, b in zip(hit[0], deps, strict=True)):
        return hit[1]
    out = _build_vpn(vpn, ike_own, ipsec_own, policies)
    if len(_memo) >= MEMO_LIMIT:
        _memo.clear()
    _memo[id(vpn)] = (deps, out)  # (the entry is in deps: its id stays its own)
    return out


def _build_vpn(vpn: Mapping[str, Any], ike_own: Mapping[str, Any],
               ipsec_own: Mapping[str, Any], policies: _Policies) -> Vpn:
    return Vpn(
        name=vpn["name"],
        ike_template=ike_own.get("template"),
        ipsec_template=ipsec_own.get("template"),
        local_address=vpn.get("local-address"),
        remote_address=vpn.get("remote-address"),
        remote_port=vpn.get("remote-port"),
        passive=vpn.get("passive", False),
        local_id=vpn.get("local-id"),
        remote_id=vpn.get("remote-id"),
        ike=policies.ike(ike_own),
        ipsec=policies.ipsec(ipsec_own),
        security_policies=tuple(_security_policy(sp) for sp in vpn.get("security-policy", ())
                                if not sp.get("disabled")),
        **_vpn_remote_access(vpn, policies),
    )


def _vpn_remote_access(vpn: Mapping[str, Any], policies: _Policies) -> dict[str, Any]:
    """A VPN's remote-access leaves, with the PEM of the certificates it names."""
    certs = tuple(vpn.get("certificate", ()))
    cas = tuple(vpn.get("remote-ca-certificate", ()))
    pools = tuple(vpn.get("vip-pool", ()))
    return {
        "vip_pools": pools,
        "vip_pool_addresses": tuple(tuple(policies.pools.get(n, {}).get("address", ()))
                                    for n in pools),
        "local_eap_id": vpn.get("local-eap-id"),
        "remote_eap_id": vpn.get("remote-eap-id"),
        "certificates": certs,
        "remote_ca_certificates": cas,
        "certificate_pem": tuple(policies.certificates.get(n, {}).get("certificate", "")
                                 for n in certs),
        "remote_ca_pem": tuple(policies.authorities.get(n, {}).get("certificate", "")
                               for n in cas),
    }


def resolve_vpn(
    vpn: Mapping[str, Any], ike_templates: Mapping[str, Mapping[str, Any]],
    ipsec_templates: Mapping[str, Mapping[str, Any]],
) -> Vpn:
    """The effective parameters of one VPN (config dict entry) given the templates by name."""
    return _vpn(vpn, _Policies(ike_templates, ipsec_templates))


def _policies(ike: Mapping[str, Any]) -> _Policies:
    return _Policies(_by_name(ike.get("ike-policy-template")),
                     _by_name(ike.get("ipsec-policy-template")),
                     _by_name(ike.get("certificate")), _by_name(ike.get("certificate-authority")),
                     _by_name(ike.get("pool")))


def _copy(m: Mapping[str, T]) -> dict[str, T]:
    # a read-only view's copy() is its dict's (fast) copy; dict(view) goes item by item
    return m.copy() if isinstance(m, MappingProxyType) else dict(m)


def resolve(config: Mapping[str, Any]) -> EffectiveConfig:
    """The effective config of a validated config dict (a disabled VPN is left out), with the
    RFC 9061 IKE-case connections merged in (nf/i2nsf_ike.py)."""
    return i2nsf_ike.merge(_resolve_native(config), config)


def _resolve_native(config: Mapping[str, Any]) -> EffectiveConfig:
    ike = config.get("ike", {})
    policies = _policies(ike)
    return EffectiveConfig(
        enabled=ike.get("enabled", True),
        global_options=global_options(ike.get("global-options"), ike.get("logging"),
                                      ike.get("eap-radius")),
        vpns=MappingProxyType({n: _vpn(v, policies)
                               for n, v in _by_name(ike.get("vpn")).items()
                               if not v.get("disabled")}),
        psks=MappingProxyType({n: psk_entry(p)
                               for n, p in _by_name(ike.get("pre-shared-key")).items()}),
        **_remote_access(ike),
        svtis=MappingProxyType({n: _svti(s) for n, s in _by_name(ike.get("svti")).items()}),
    )


def update(effective: EffectiveConfig, config: Mapping[str, Any], vpns: Iterable[str],
           psks: Iterable[str]) -> EffectiveConfig:
    """A new effective config in which only the named VPNs and keys are resolved again.

    Everything else (``enabled``, ``global_options``, the other entries) is kept from
    ``effective``: use it when only VPN and key entries changed.
    """
    ike = config.get("ike", {})
    policies = _policies(ike)
    all_vpns, all_psks = _by_name(ike.get("vpn")), _by_name(ike.get("pre-shared-key"))
    new_vpns, new_psks = _copy(effective.vpns), _copy(effective.psks)
    for n in vpns:
        if n in all_vpns and not all_vpns[n].get("disabled"):
            new_vpns[n] = _vpn(all_vpns[n], policies)
        else:
            new_vpns.pop(n, None)
    for n in psks:
        if n in all_psks:
            new_psks[n] = psk_entry(all_psks[n])
        else:
            new_psks.pop(n, None)
    return replace(effective, vpns=MappingProxyType(new_vpns), psks=MappingProxyType(new_psks))
