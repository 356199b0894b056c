"""Pure conversions between the effective config (:mod:`nf.effective`) / YANG state and VICI.

* :func:`conn_for` builds the ``load-conn`` payload of one VPN,
* :func:`shared_for` the ``load-shared`` payload of one pre-shared key,
* :func:`conn_digest` / :func:`shared_digest` stable digests telling the reconciler what changed,
* :func:`vici_str` / :func:`vici_int` read VICI values (the SA state itself is
  :mod:`southbound.sa_state`'s).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import os
from collections.abc import Iterable
from typing import Any

from nf.effective import (
    AhProposal,
    EspProposal,
    IkeProposal,
    IpsecPolicy,
    PreSharedKey,
    SecurityPolicy,
    TrafficSelector,
    Vpn,
)
from southbound.algorithms import (
    dh_to_vici,
    enc_to_vici,
    integ_to_vici,
    prf_to_vici,
)

_AUTH = {
    "pre-shared-key": "psk",
    "certificate": "pubkey",
    "eap-mschapv2": "eap-mschapv2",
    "eap-md5": "eap-md5",
    "eap-radius": "eap-radius",
}
_MODE = {"bypass": "pass", "discard": "drop"}
# the selectors of a route-based policy (bound to an SVTI interface) left without subnet:
# everything, IPv4 and IPv6; the routes into the xfrm interface decide what is encrypted
ROUTE_BASED_TS = ("0.0.0.0/0", "::/0")
# the model's ip-protocol names (yang/ipsec-nf.yang) and their numbers: charon is given the
# number, so its /etc/protocols (or the lack of one) cannot change what a name means
PROTOCOLS = {"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51,
             "icmpv6": 58, "ospf": 89, "sctp": 132}


class SecretBytes(bytes):
    """Key material: bytes whose repr/str never show the value."""

    def __repr__(self) -> str:
        return "SecretBytes(<redacted>)"

    __str__ = __repr__


def _yn(value: Any) -> str:
    return "yes" if value else "no"


def decode_secret(secret: str) -> SecretBytes:
    """Decode a vRouter secret: text (optionally double-quoted), ``0x`` hex or ``0s`` base64.

    Raises ValueError (without the secret in the message) when the encoding is invalid.
    The prefix counts only at the very start, as in the YANG pattern of ``secret-string``:
    `` 0xzz`` is text, not a bad hex string.
    """
    text = secret
    try:
        if text[:2].lower() == "0x":
            return SecretBytes(bytes.fromhex(text[2:].replace(" ", "")))
        if text[:2].lower() == "0s":
            return SecretBytes(base64.b64decode(text[2:], validate=True))
    except (ValueError, binascii.Error):
        raise ValueError("secret is not valid hex/base64") from None
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    return SecretBytes(text.encode("utf-8"))


def _proposal(parts: list[list[str]]) -> str:
    return "-".join(alg for group in parts for alg in group)


def ike_proposals(proposals: Iterable[IkeProposal]) -> list[str]:
    """strongSwan proposal strings of a VPN's IKE proposals."""
    out = []
    for p in proposals:
        prf = [prf_to_vici(a) for a in p.prf_alg]
        dh = [dh_to_vici(a) for a in p.dh_group]
        if p.aead_alg:
            out.append(_proposal([[enc_to_vici(a) for a in p.aead_alg], prf, dh]))
        else:
            enc = [enc_to_vici(a) for a in p.enc_alg]
            integ = [integ_to_vici(a) for a in p.auth_alg]
            out.append(_proposal([enc, integ, prf, dh]))
    return out


def _esn(esn: tuple[bool, ...]) -> list[str]:
    """charon's ESN transforms of the model's esn leaf-list, in order: ``true`` only is
    ``esn``, ``false`` only (the default) nothing, both ``esn-noesn`` or ``noesn-esn``."""
    if len(esn) < 2:
        return ["esn"] if True in esn else []
    return ["esn" if e else "noesn" for e in esn]


def esp_proposals(proposals: Iterable[EspProposal]) -> list[str]:
    """strongSwan proposal strings of a VPN's ESP proposals."""
    out = []
    for p in proposals:
        dh = [dh_to_vici(a) for a in p.dh_group]
        esn = _esn(p.esn)
        if p.aead_alg:
            out.append(_proposal([[enc_to_vici(a) for a in p.aead_alg], dh, esn]))
        else:
            enc = [enc_to_vici(a) for a in p.enc_alg]
            integ = [integ_to_vici(a) for a in p.auth_alg]
            out.append(_proposal([enc, integ, dh, esn]))
    return out


def ah_proposals(proposals: Iterable[AhProposal]) -> list[str]:
    """strongSwan proposal strings of a VPN's AH proposals."""
    out = []
    for p in proposals:
        integ = [integ_to_vici(a) for a in p.auth_alg]
        dh = [dh_to_vici(a) for a in p.dh_group]
        out.append(_proposal([integ, dh, _esn(p.esn)]))
    return out


def traffic_selector(ts: TrafficSelector | None, route_based: bool = False) -> list[str]:
    """strongSwan traffic selector strings, one per subnet, e.g. ``10.0.0.0/24`` port 80
    protocol tcp -> ``["10.0.0.0/24[6/80]"]``; no subnet is ``dynamic`` (the side's own
    address), or everything (``0.0.0.0/0`` and ``::/0``) for a ``route_based`` policy (bound
    to an SVTI interface: routing decides what is encrypted). Ranges ``FIRST-LAST`` of
    addresses and ports are charon's own syntax."""
    ts = ts or TrafficSelector()
    proto, port = ts.protocol, ts.port
    proto = PROTOCOLS.get(proto, proto) if isinstance(proto, str) else proto
    if proto is None and port is None:
        suffix = ""
    elif port is None:
        suffix = f"[{proto}]"
    else:
        # charon's VICI parser knows "any" (not "%any") for a protocol left open
        suffix = f"[{'any' if proto is None else proto}/{port}]"
    default = ROUTE_BASED_TS if route_based else ("dynamic",)
    return [f"{subnet}{suffix}" for subnet in ts.subnet or default]


def copy_dscp(encap: bool | None, decap: bool | None) -> str:
    """VICI ``copy_dscp`` value from the model's encap/decap-copy-dscp booleans."""
    return {(True, True): "yes", (True, False): "out", (False, True): "in"}.get(
        (bool(encap), bool(decap)), "no")


def _child(sp: SecurityPolicy, ipsec: IpsecPolicy, trap_as_start: bool = False,
           passive: bool = False) -> dict[str, Any]:
    action = sp.action or "esp"
    child: dict[str, Any] = {
        "local_ts": traffic_selector(sp.local_ts, sp.route_based),
        "remote_ts": traffic_selector(sp.remote_ts, sp.route_based),
        "mode": _MODE.get(action, sp.mode or "tunnel"),
    }
    # route-based (an SVTI interface): the SAs and policies carry the xfrm interface's if_id
    if sp.svti_id_in is not None:
        child["if_id_in"] = str(sp.svti_id_in)
    if sp.svti_id_out is not None:
        child["if_id_out"] = str(sp.svti_id_out)
    if sp.priority:
        child["priority"] = str(sp.priority)
    if action == "ah":
        if ipsec.ah_proposals:
            child["ah_proposals"] = ah_proposals(ipsec.ah_proposals)
    elif action == "esp" and ipsec.esp_proposals:
        child["esp_proposals"] = esp_proposals(ipsec.esp_proposals)
    start, close = ipsec.start_action, ipsec.close_action
    if action in _MODE:
        start = "trap"  # shunt policies are only installed with start_action = trap
    dpd = ipsec.dpd_action
    if action not in _MODE and passive:
        # a responder never initiates: no trap, no start, no restart (charon's "none"/"clear")
        start, close, dpd = "none", "none", "clear"
    elif action not in _MODE and trap_as_start:
        start = "start" if start == "trap" else start
        close = "start" if close == "trap" else close
        dpd = "restart" if dpd == "trap" else dpd
    simple = {
        "start_action": start,
        "close_action": close,
        "dpd_action": dpd,
        "replay_window": ipsec.replay_window,
        "rekey_time": ipsec.rekey_time,
        "rekey_bytes": ipsec.rekey_bytes,
        "rekey_packets": ipsec.rekey_packets,
        "life_time": ipsec.life_time,
        "rand_time": ipsec.rand_time,
        "life_bytes": ipsec.life_bytes,
        "rand_bytes": ipsec.rand_bytes,
        "life_packets": ipsec.life_packets,
        "rand_packets": ipsec.rand_packets,
    }
    child.update({k: str(v) for k, v in simple.items() if v is not None})
    if ipsec.encap_copy_dscp is not None or ipsec.decap_copy_dscp is not None:
        child["copy_dscp"] = copy_dscp(ipsec.encap_copy_dscp, ipsec.decap_copy_dscp)
    if ipsec.encap_copy_df is not None:
        child["copy_df"] = _yn(ipsec.encap_copy_df)
    return child


def _auth(method: str | None, ident: str | None) -> dict[str, str]:
    section = {"auth": _AUTH.get(method or "pre-shared-key", method or "psk")}
    if ident:
        section["id"] = ident
    return section


def _one_peer(remote: str | None) -> bool:
    """Whether ``remote`` names one peer (an address or a host name), not a set of peers
    (absent, ``%any``, a prefix or a ``FIRST-LAST`` range)."""
    if remote in (None, "%any") or "/" in remote:
        return False
    first, sep, last = remote.partition("-")
    if not sep:
        return True
    try:
        ipaddress.ip_address(first), ipaddress.ip_address(last)
    except ValueError:
        return True  # a host name with a dash
    return False


def is_passive(vpn: Vpn) -> bool:
    """Whether ``vpn`` only responds: ``passive``, or no one peer address to send to (none,
    ``%any``, a subnet or a range of peers)."""
    return vpn.passive or not _one_peer(vpn.remote_address)


def conn_for(vpn: Vpn, trap_as_start: bool = False) -> dict[str, Any]:
    """The VICI ``load-conn`` payload (without the outer name) of one effective VPN.

    ``trap_as_start`` turns trap start/close actions into start: kernel-libipsec (user-space
    ESP) never raises an acquire for a trap policy, so on-demand negotiation cannot work there.
    """
    ike, ipsec = vpn.ike, vpn.ipsec
    conn: dict[str, Any] = {}
    if ike.version is not None:
        conn["version"] = str(ike.version)
    if vpn.local_address:
        conn["local_addrs"] = [vpn.local_address]
    if vpn.remote_address:
        conn["remote_addrs"] = [vpn.remote_address]
    if vpn.remote_port is not None:
        conn["remote_port"] = str(vpn.remote_port)
    if ike.ike_proposals:
        conn["proposals"] = ike_proposals(ike.ike_proposals)
    simple = {
        "rekey_time": ike.rekey_time,
        "reauth_time": ike.reauth_time,
        "keyingtries": ike.keying_tries,
        "unique": ike.unique_sa,
        "dpd_delay": ike.dpd_delay,
        "dpd_timeout": ike.dpd_timeout,
        "over_time": ike.over_time,
        "rand_time": ike.rand_time,
        "fragmentation": ike.fragmentation,
    }
    conn.update({k: str(v) for k, v in simple.items() if v is not None})
    for key, value in (("aggressive", ike.aggressive), ("encap", ike.udp_encap),
                       ("mobike", ike.mobike)):
        if value is not None:
            conn[key] = _yn(value)
    conn["local"] = _auth(ike.local_auth_method, vpn.local_id)
    conn["remote"] = _auth(ike.remote_auth_method, vpn.remote_id)
    from southbound.remote_access import conn_extras  # (it imports this module)
    conn_extras(conn, vpn)  # pools, EAP ids, certificates, authorities
    passive = is_passive(vpn)
    conn["children"] = {sp.name: _child(sp, ipsec, trap_as_start, passive)
                        for sp in vpn.security_policies}
    return conn


def shared_for(psk: PreSharedKey) -> dict[str, Any]:
    """The VICI ``load-shared`` payload (without ``id``) of one pre-shared key.

    The key material is a :class:`SecretBytes` (hidden from repr/str).
    """
    return {"type": "IKE", "data": decode_secret(psk.secret),
            "owners": [str(i) for i in psk.ids]}


def _digest(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def conn_digest(vpn: Vpn, trap_as_start: bool = False) -> str:
    """Stable digest of the load-conn payload of ``vpn``: equal iff the payload is equal."""
    return _digest(conn_for(vpn, trap_as_start))


# Digests of secrets are keyed with a per-process random key, so a digest seen in memory or in
# a log cannot be used to guess a weak secret offline. Stable for the life of the process.
_SECRET_DIGEST_KEY = os.urandom(32)


def shared_digest(psk: PreSharedKey) -> str:
    """Stable (per process) keyed digest of the load-shared payload of ``psk``."""
    payload = shared_for(psk)
    mac = hmac.new(_SECRET_DIGEST_KEY, bytes(payload["data"]), hashlib.sha256)
    mac.update(json.dumps([payload["type"], payload["owners"]]).encode())
    return mac.hexdigest()


# ------------------------------------------------------------------------------- VICI values

def vici_str(v: Any) -> str:
    """A VICI value (bytes) as text."""
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def vici_int(v: Any) -> int | None:
    """A VICI value as an integer, or None."""
    try:
        return int(vici_str(v))
    except (TypeError, ValueError):
        return None
