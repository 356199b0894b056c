"""What the charon backend cannot carry out in an effective config (checked at validate and
commit, refused with the entry's path): the data plane's limits, authentication methods whose
credentials it cannot load, remote-access settings charon would ignore, and VPNs too big for
one VICI message.
"""

from __future__ import annotations

from dataclasses import dataclass

from nf.effective import EffectiveConfig, Vpn
from southbound import conn_cache
from southbound.backend import DataPlane, Unsupported, dataplane_refusals
from southbound.remote_access import EAP_PREFIX
from southbound.vici_client import MAX_MESSAGE, ViciEncodingError

# authentication methods this backend can load what they need for (certificates and keys,
# authorities, EAP secrets, RADIUS servers: the remote-access kinds); eap-radius only for the
# peer (charon is a RADIUS client for the EAP of its peers, never for its own)
AUTH_METHODS = frozenset({"pre-shared-key", "certificate", "eap-mschapv2", "eap-md5",
                          "eap-radius"})
_EAP = frozenset({"eap-mschapv2", "eap-md5", "eap-radius"})


@dataclass(frozen=True)
class EntryUnsupported:
    """A refused entry outside the VPNs (nf.checks takes its ready ``path``)."""

    message: str
    path: str
    vpn: str = ""
    leaf: tuple[str, ...] = ()


def _quoted(value: str) -> str:
    return f"'{value}'" if "'" not in value else f'"{value}"'


def refusals(dp: DataPlane, effective: EffectiveConfig
             ) -> list[Unsupported | EntryUnsupported]:
    """What the charon backend on data plane ``dp`` cannot carry out in ``effective``: the
    data plane's limits, authentication methods whose credentials it cannot load, and VPNs
    too big for one VICI message."""
    out: list[Unsupported | EntryUnsupported] = [*dataplane_refusals(dp, effective)]
    for vpn in effective.vpns.values():
        for side in ("local", "remote"):
            method = getattr(vpn.ike, f"{side}_auth_method")
            if method is not None and method not in AUTH_METHODS:
                out.append(Unsupported(vpn.name, ("ike-policy", f"{side}-auth-method"), (
                    f"{side}-auth-method {method} is not supported by the charon backend")))
        out.extend(_remote_access_refusals(vpn, effective))
        out.extend(_too_big(vpn, dp))
    out.extend(EntryUnsupported(  # (EAP secrets share charon's table under that prefix)
        f"a pre-shared key name may not begin with {EAP_PREFIX!r}: the charon backend keeps "
        "the EAP keys under it", f"/ipsec-nf:ike/ipsec-nf:pre-shared-key[ipsec-nf:name={q}]")
        for n, q in ((n, _quoted(n)) for n in effective.psks) if n.startswith(EAP_PREFIX))
    if not dp.xfrm_interfaces:
        out.extend(EntryUnsupported(
            f"svti {n}: the {dp.name} backend has no xfrm interfaces (its ESP runs in user "
            "space, outside the kernel's xfrm interfaces); use the kernel-netlink backend",
            f"/ipsec-nf:ike/ipsec-nf:svti[ipsec-nf:name={_quoted(n)}]")
            for n in effective.svtis)
    return out


def _remote_access_refusals(vpn: Vpn, effective: EffectiveConfig) -> list[Unsupported]:
    """Remote-access settings charon would ignore or could not use: refused, not dropped."""
    out = []
    local, remote = vpn.ike.local_auth_method, vpn.ike.remote_auth_method
    if local == "eap-radius":
        out.append(Unsupported(vpn.name, ("ike-policy", "local-auth-method"), (
            "local-auth-method eap-radius: charon forwards its peers' EAP to RADIUS, it does "
            "not authenticate itself through RADIUS; use eap-mschapv2 or eap-md5 with an "
            "eap-key")))
    if remote == "eap-radius" and not effective.global_options.eap_radius.servers:
        out.append(Unsupported(vpn.name, ("ike-policy", "remote-auth-method"), (
            "remote-auth-method eap-radius needs a RADIUS server in /ike/eap-radius/server")))
    if vpn.local_eap_id is not None and local not in _EAP:
        out.append(Unsupported(vpn.name, ("local-eap-id",), (
            f"local-eap-id is only used with an EAP local-auth-method, not {local}")))
    if vpn.remote_eap_id is not None and remote not in _EAP:
        out.append(Unsupported(vpn.name, ("remote-eap-id",), (
            f"remote-eap-id is only used with an EAP remote-auth-method, not {remote}")))
    if vpn.certificates and local != "certificate":
        out.append(Unsupported(vpn.name, ("certificate",), (
            f"a certificate is only used with local-auth-method certificate, not {local}")))
    if vpn.remote_ca_certificates and remote != "certificate":
        out.append(Unsupported(vpn.name, ("remote-ca-certificate",), (
            "remote-ca-certificate is only used with remote-auth-method certificate, not "
            f"{remote}")))
    return out


def _too_big(vpn: Vpn, dp: DataPlane) -> list[Unsupported]:
    """The VPN as charon would be given it does not fit one VICI message (charon drops the
    session on a request over 512 KiB, or VICI cannot encode a value over 65,535 bytes)."""
    try:
        size = conn_cache.size(vpn, not dp.can_trap)  # built once, kept for the reconciler
    except ViciEncodingError as e:
        return [Unsupported(vpn.name, (), f"the VPN cannot be given to charon: {e}")]
    if size <= MAX_MESSAGE:
        return []
    return [Unsupported(vpn.name, (), (
        f"the VPN is {size} bytes as charon's load-conn message, over VICI's limit of "
        f"{MAX_MESSAGE}: use fewer security policies, proposals or traffic selectors"))]
