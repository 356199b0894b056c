"""Template resolution: a VPN's effective parameters are its template's, overridden leaf by leaf.

Pure functions over the validated config (libyang's dict form, defaults included).
"""

from __future__ import annotations

from typing import Any

IKE_LISTS = ("ike-proposal",)
IPSEC_LISTS = ("esp-proposal", "ah-proposal")
IKE_PROPOSAL_LEAFLISTS = ("enc-alg", "auth-alg", "prf-alg", "aead-alg", "dh-group")
ESP_PROPOSAL_LEAFLISTS = ("enc-alg", "auth-alg", "aead-alg", "dh-group")
AH_PROPOSAL_LEAFLISTS = ("auth-alg", "dh-group")
TS_LEAVES = ("subnet", "protocol", "port")


def _by_name(entries: list[dict[str, Any]] | dict[str, Any] | None) -> dict[str, dict]:
    if isinstance(entries, dict):
        return entries
    return {e["name"]: e for e in entries or []}


def psk_entry(p: dict[str, Any]) -> dict[str, Any]:
    """The effective form of one pre-shared key."""
    return {"name": p["name"], "id": list(p.get("id", [])), "secret": p["secret"]}


def _proposals(entries: list[dict[str, Any]], leaflists: tuple[str, ...]) -> list[dict[str, Any]]:
    out = []
    for p in entries:
        q = {"id": p["id"], **{k: list(p.get(k, [])) for k in leaflists}}
        if "esn" in p:
            q["esn"] = p["esn"]
        out.append(q)
    return out


def _overlay(template: dict[str, Any], own: dict[str, Any], lists: tuple[str, ...]) -> dict:
    """Template leaves, then the VPN's own; a proposal list in the VPN replaces the whole list."""
    eff = {k: v for k, v in template.items() if k != "name"}
    for k, v in own.items():
        if k != "template":
            eff[k] = v
    for k in lists:
        eff.setdefault(k, [])
    return eff


def resolve_vpn(
    vpn: dict[str, Any], ike_templates: dict[str, dict], ipsec_templates: dict[str, dict]
) -> dict[str, Any]:
    """The effective parameters of one VPN."""
    ike_own = vpn.get("ike-policy", {})
    ipsec_own = vpn.get("ipsec-policy", {})
    ike = _overlay(ike_templates.get(ike_own.get("template"), {}), ike_own, IKE_LISTS)
    ipsec = _overlay(ipsec_templates.get(ipsec_own.get("template"), {}), ipsec_own, IPSEC_LISTS)
    ike["ike-proposal"] = _proposals(ike["ike-proposal"], IKE_PROPOSAL_LEAFLISTS)
    ipsec["esp-proposal"] = _proposals(ipsec["esp-proposal"], ESP_PROPOSAL_LEAFLISTS)
    ipsec["ah-proposal"] = _proposals(ipsec["ah-proposal"], AH_PROPOSAL_LEAFLISTS)
    policies = [
        {
            "name": sp["name"],
            "local-ts": {k: sp.get("local-ts", {}).get(k) for k in TS_LEAVES},
            "remote-ts": {k: sp.get("remote-ts", {}).get(k) for k in TS_LEAVES},
            "mode": sp.get("mode", "tunnel"),
            "action": sp.get("action", "esp"),
        }
        for sp in vpn.get("security-policy", [])
    ]
    return {
        "name": vpn["name"],
        "ike-template": ike_own.get("template"),
        "ipsec-template": ipsec_own.get("template"),
        "local-address": vpn.get("local-address"),
        "remote-address": vpn.get("remote-address"),
        "local-id": vpn.get("local-id"),
        "remote-id": vpn.get("remote-id"),
        "ike": ike,
        "ipsec": ipsec,
        "security-policy": policies,
    }


def resolve(config: dict[str, Any]) -> dict[str, Any]:
    """The effective config (see southbound's contract) of a validated config dict."""
    ike = config.get("ike", {})
    ike_t = _by_name(ike.get("ike-policy-template"))
    ipsec_t = _by_name(ike.get("ipsec-policy-template"))
    return {
        "enabled": ike.get("enabled", True),
        "global-options": ike.get("global-options", {}),
        "psks": {n: psk_entry(p) for n, p in _by_name(ike.get("pre-shared-key")).items()},
        "vpns": {n: resolve_vpn(v, ike_t, ipsec_t) for n, v in _by_name(ike.get("vpn")).items()},
    }


def update(effective: dict[str, Any], config: dict[str, Any], vpns: set[str],
           psks: set[str]) -> dict[str, Any]:
    """A new effective config in which only the named VPNs and keys are resolved again."""
    ike = config.get("ike", {})
    ike_t = _by_name(ike.get("ike-policy-template"))
    ipsec_t = _by_name(ike.get("ipsec-policy-template"))
    out = {**effective, "vpns": dict(effective["vpns"]), "psks": dict(effective["psks"])}
    all_vpns, all_psks = _by_name(ike.get("vpn")), _by_name(ike.get("pre-shared-key"))
    for n in vpns:
        if n in all_vpns:
            out["vpns"][n] = resolve_vpn(all_vpns[n], ike_t, ipsec_t)
        else:
            out["vpns"].pop(n, None)
    for n in psks:
        if n in all_psks:
            out["psks"][n] = psk_entry(all_psks[n])
        else:
            out["psks"].pop(n, None)
    return out
