"""RFC 9061's IKE-case state (``ietf-i2nsf-ike``) from the state engine's snapshot.

The config-false nodes of ``ietf-i2nsf-ike``, ``conn-entry/state`` (the connection's IKE SA)
and ``number-ike-sas`` (the box's IKE SA counts), are made from the native state the one state
engine already read from charon (``ike-sa`` and ``ike-sas``: ``southbound/sa_state.py``), so
a read costs no daemon request of its own. A ``conn-entry`` is loaded into charon as the VPN
of the same name (``nf/i2nsf_ike.py``), so its IKE SA is the ``ike-sa`` entry of that name.

The result is one member of the state tree, ``ietf-i2nsf-ike:ipsec-ike``, which
:func:`nf.state.merge_state` puts into the configured ``ipsec-ike`` tree (a conn-entry's state
into its entry), for NETCONF ``<get>``/``<get-data>``, gNMI and YANG-Push alike.

Not served, because charon does not report it: ``half-open-cookies`` (charon counts half-open
IKE SAs, not whether a cookie was asked of them) and ``encapsulation-type/oaddr`` (the
addresses before a NAT changed them).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from typing import Any

from nf.i2nsf_ike import IKE, TOP

MODULE_TOP = f"{IKE}:{TOP}"  # the state tree's key (nf.state merges "module:top" members)


def _names(conns: Any) -> list[str]:
    """The names of a config list (libyang's form, or keyed by name)."""
    return [c["name"] for c in (conns.values() if isinstance(conns, Mapping) else conns or ())]


def ike_spi(text: Any) -> int | None:
    """An IKE SPI as charon prints it (16 hex digits) as the RFC's ``ike-spi`` (uint64)."""
    try:
        return int(str(text), 16)
    except ValueError:
        return None


def _preferred(sas: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The IKE SA that is the connection's: an established one before any other (during a
    reauthentication or a simultaneous initiation there are two for a moment), the newest
    (fewest seconds since establishment) of those; else the first listed."""
    best: Mapping[str, Any] | None = None
    for sa in sas:
        if best is None:
            best = sa
            continue
        up, best_up = sa.get("state") == "established", best.get("state") == "established"
        if up and (not best_up or sa.get("established-time", 0)
                   < best.get("established-time", 0)):
            best = sa
    return best


def conn_state(sa: Mapping[str, Any]) -> dict[str, Any]:
    """One native ``ike-sa`` entry as the RFC's ``conn-entry/state`` container."""
    # charon lists "initiator: yes" only on the original initiator's side
    out: dict[str, Any] = {"initiator": bool(sa.get("initiator", False))}
    for ours, rfc in (("initiator-spi", "initiator-ikesa-spi"),
                      ("responder-spi", "responder-ikesa-spi")):
        spi = ike_spi(sa[ours]) if ours in sa else None
        if spi is not None:
            out[rfc] = spi
    out["nat-local"] = bool(sa.get("nat-local", False))
    out["nat-remote"] = bool(sa.get("nat-remote", False))
    if sa.get("udp-encap"):
        encap: dict[str, Any] = {"espencap": "espinudp"}
        if sa.get("local-port") is not None:
            encap["sport"] = sa["local-port"]
        if sa.get("remote-port") is not None:
            encap["dport"] = sa["remote-port"]
        out["encapsulation-type"] = encap
    else:
        out["encapsulation-type"] = {"espencap": "none"}
    for ours, rfc in (("established-time", "established"), ("rekey-time", "current-rekey-time"),
                      ("reauth-time", "current-reauth-time")):
        if sa.get(ours) is not None:
            out[rfc] = sa[ours]
    return out


def number_ike_sas(totals: Mapping[str, Any] | None) -> dict[str, int] | None:
    """The native ``ike-sas`` totals (charon's stats) as the RFC's ``number-ike-sas``."""
    if not totals:
        return None
    return {k: totals[k] for k in ("total", "half-open") if totals.get(k) is not None}


def state_tree(config: Mapping[str, Any], state: Mapping[str, Any],
               loaded: Container[str] | None = None) -> dict[str, Any]:
    """``{MODULE_TOP: ...}``: the IKE-case state of the conn-entries of ``config`` (running,
    as a dict) from ``state`` (the native state tree: ``ike-sa``, ``ike-sas``); ``{}`` when
    no IKE case is configured. ``loaded``: the names carried to the daemon (the effective
    VPNs); a conn-entry not among them has no state. A conn-entry without an IKE SA has no
    ``state`` container."""
    top = config.get(TOP)
    if not top:
        return {}
    names = _names(top.get("conn-entry"))
    if loaded is not None:
        names = [n for n in names if n in loaded]
    wanted = set(names)
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for sa in state.get("ike-sa") or ():
        if sa.get("name") in wanted:
            by_name.setdefault(sa["name"], []).append(sa)
    conns = []
    for name in names:
        sa = _preferred(by_name.get(name, ()))
        if sa is not None:
            conns.append({"name": name, "state": conn_state(sa)})
    out: dict[str, Any] = {}
    if conns:
        out["conn-entry"] = conns
    counts = number_ike_sas(state.get("ike-sas"))
    if counts:
        out["number-ike-sas"] = counts
    return {MODULE_TOP: out} if out else {}
