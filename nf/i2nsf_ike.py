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

Algorithms are IANA transform IDs: ``nf.i2nsf_algorithms`` maps them to our names.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from nf import i2nsf_algorithms as alg
from nf import paths
from nf.effective import (
    EffectiveConfig,
    EspProposal,
    IkePolicy,
    IkeProposal,
    IpsecPolicy,
    PreSharedKey,
    SecurityPolicy,
    TrafficSelector,
    Vpn,
)
from nf.paths import Step

IKE = "ietf-i2nsf-ike"
IKELESS = "ietf-i2nsf-ikeless"
TOP = "ipsec-ike"
IKELESS_TOP = "ipsec-ikeless"
PSK_PREFIX = "i2nsf-pad/"  # the effective keys of PAD entries: i2nsf-pad/<entry name>
CLASH = "model-clash"
UNSUPPORTED = "not-supported-by-backend"
_START = {"add": "none", "on-demand": "trap", "start": "start"}
_ACTIONS = {"protect": "esp", "bypass": "bypass", "discard": "discard"}


@dataclass(frozen=True, slots=True)
class Refused:
    """A node of the RFC 9061 models that is refused (see :class:`nf.checks.Refusal`)."""

    vpn: str
    leaf: tuple[str, ...]
    message: str
    app_tag: str
    path: str


class _Refuse(Exception):
    def __init__(self, steps: tuple[Step, ...], message: str, app_tag: str = UNSUPPORTED):
        super().__init__(message)
        self.steps, self.message, self.app_tag = steps, message, app_tag


def _entries(node: Any) -> list[dict[str, Any]]:
    """A list of the config dict as a list (libyang's form or keyed by name)."""
    if isinstance(node, Mapping):
        return list(node.values())
    return list(node or [])


def _step(name: str, key: str | None = None, module: str = IKE) -> Step:
    return Step(module, name, (("name", key),) if key is not None else ())


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


# ------------------------------------------------------------------------------ algorithms

def _encryptions(entries: list[dict[str, Any]], steps: tuple[Step, ...]
                 ) -> tuple[list[str], list[str]]:
    """(non-AEAD, AEAD) model names of an encryption list, in order."""
    plain, aead = [], []
    for e in entries:
        row = alg.encryption(e.get("algorithm-type", 12), e.get("key-length", 128))
        if row is None:
            raise _Refuse((*steps[:-1], Step(steps[-1].module, steps[-1].name,
                                             (("id", str(e["id"])),))),
                          f"encryption transform {e.get('algorithm-type')} with key length "
                          f"{e.get('key-length')} is not supported")
        (aead if row.aead else plain).append(row.model)
    return plain, aead


def _models(ids: list[int], table: Mapping[int, Any], none_id: int, what: str,
            steps: tuple[Step, ...]) -> list[str]:
    """Our model's names of transform ``ids`` in ``table`` (``none_id``, "none", is left
    out); an ID outside the table is refused as an unsupported ``what``."""
    out = []
    for i in ids:
        if i == none_id:
            continue
        if i not in table:
            raise _Refuse(steps, f"{what} {i} is not supported")
        out.append(table[i].model)
    return out


def _integrity(ids: list[int], steps: tuple[Step, ...]) -> list[str]:
    return _models(ids, alg.INTEGRITY, alg.NO_INTEGRITY, "integrity transform", steps)


def _dh(ids: list[int], steps: tuple[Step, ...]) -> list[str]:
    return _models(ids, alg.DH_GROUPS, alg.NO_DH, "Diffie-Hellman group", steps)


def _ike_policy(conn: Mapping[str, Any], steps: tuple[Step, ...]) -> IkePolicy:
    integ_ids = list(conn.get("ike-sa-intr-alg", [12]))
    integ = _integrity(integ_ids, (*steps, _step("ike-sa-intr-alg")))
    plain, aead = _encryptions(_entries(conn.get("ike-sa-encr-alg")),
                               (*steps, _step("ike-sa-encr-alg")))
    prf = [alg.PRF[i].model for i in integ_ids if i in alg.PRF]
    dh = _dh([conn.get("dh-group", 14)], (*steps, _step("dh-group")))
    proposals = []
    if aead:
        proposals.append(IkeProposal(id=1, aead_alg=tuple(aead), prf_alg=tuple(prf),
                                     dh_group=tuple(dh)))
    if plain:
        if not integ:
            raise _Refuse((*steps, _step("ike-sa-intr-alg")),
                          "a non-AEAD IKE encryption needs an integrity algorithm")
        proposals.append(IkeProposal(id=len(proposals) + 1, enc_alg=tuple(plain),
                                     auth_alg=tuple(integ), prf_alg=tuple(prf),
                                     dh_group=tuple(dh)))
    soft = conn.get("ike-sa-lifetime-soft", {})
    over = conn.get("ike-sa-lifetime-hard", {}).get("over-time", 0)
    frag = conn.get("fragmentation", {})
    if frag.get("mtu") is not None:
        raise _Refuse((*steps, _step("fragmentation"), _step("mtu")),
                      "the IKE daemon sets the fragment size for all connections, not per "
                      "connection")
    encap = conn.get("encapsulation-type", {}).get("espencap", "none")
    if encap == "espintcp":
        raise _Refuse((*steps, _step("encapsulation-type"), _step("espencap")),
                      "ESP in TCP (RFC 8229) is not supported by the IKE daemon")
    return IkePolicy(
        ike_proposals=tuple(proposals), local_auth_method="pre-shared-key",
        remote_auth_method="pre-shared-key", version=2,
        # initial-contact true: never send INITIAL_CONTACT (charon sends it unless unique=never)
        unique_sa="never" if conn.get("initial-contact") else None,
        rekey_time=f"{soft.get('rekey-time', 0)}s", reauth_time=f"{soft.get('reauth-time', 0)}s",
        over_time=f"{over}s" if over else None,
        fragmentation="yes" if frag.get("enabled") else "no",
        udp_encap=True if encap == "espinudp" else None)


# ------------------------------------------------------------------------------ SPD

def _ts(sel: Mapping[str, Any], side: str, steps: tuple[Step, ...]) -> TrafficSelector:
    proto = sel.get("inner-protocol", "any")
    ports = _entries(sel.get(f"{side}-ports"))
    if len(ports) > 1:
        raise _Refuse((*steps, _step(f"{side}-ports")),
                      f"several {side}-ports ranges: one range per traffic selector is "
                      "carried out (use one spd-entry per range)")
    port = None
    if ports and not (ports[0]["start"] == 0 and ports[0]["end"] == 65535):
        s, e = ports[0]["start"], ports[0]["end"]
        port = s if s == e else f"{s}-{e}"
    return TrafficSelector(subnet=(sel[f"{side}-prefix"],),
                           protocol=None if proto == "any" else int(proto), port=port)


def _policy(entry: Mapping[str, Any], steps: tuple[Step, ...]) -> SecurityPolicy:
    cfg = entry.get("ipsec-policy-config", {})
    sel = cfg.get("traffic-selector", {})
    ts_steps = (*steps, _step("ipsec-policy-config"), _step("traffic-selector"))
    info = cfg.get("processing-info", {})
    sa = info.get("ipsec-sa-cfg", {})
    return SecurityPolicy(name=entry["name"], local_ts=_ts(sel, "local", ts_steps),
                          remote_ts=_ts(sel, "remote", ts_steps),
                          mode=sa.get("mode", "transport"),
                          action=_ACTIONS[info.get("action", "discard")])


def _esp(sa: Mapping[str, Any], fs_groups: list[int], steps: tuple[Step, ...]
         ) -> tuple[EspProposal, ...]:
    esp = sa.get("esp-algorithms", {})
    esp_steps = (*steps, _step("esp-algorithms"))
    plain, aead = _encryptions(_entries(esp.get("encryption")), (*esp_steps,
                                                                 _step("encryption")))
    integ = _integrity(list(esp.get("integrity", [0])), (*esp_steps, _step("integrity")))
    dh = tuple(_dh(fs_groups, steps))
    esn = (bool(sa.get("ext-seq-num", False)),)
    out = []
    if aead:
        out.append(EspProposal(id=1, aead_alg=tuple(aead), dh_group=dh, esn=esn))
    if plain:
        if not integ:
            raise _Refuse((*esp_steps, _step("integrity")),
                          "a non-AEAD ESP encryption needs an integrity algorithm")
        out.append(EspProposal(id=len(out) + 1, enc_alg=tuple(plain), auth_alg=tuple(integ),
                               dh_group=dh, esn=esn))
    if not out:
        raise _Refuse((*esp_steps, _step("encryption")),
                      "ESP without encryption (NULL) is not supported")
    return tuple(out)


def _seconds(n: int) -> str | None:
    return f"{n}s" if n else None


def _ipsec_policy(conn: Mapping[str, Any], protect: list[dict[str, Any]],
                  steps: tuple[Step, ...]) -> tuple[IpsecPolicy, dict[str, Any]]:
    """The CHILD SA parameters and the first protect entry's ipsec-sa-cfg."""
    info = conn.get("child-sa-info", {})
    fs = list(info.get("fs-groups", [0]))
    soft, hard = info.get("child-sa-lifetime-soft", {}), info.get("child-sa-lifetime-hard", {})
    if soft.get("action", "replace") != "replace":
        raise _Refuse((*steps, _step("child-sa-info"), _step("child-sa-lifetime-soft"),
                       _step("action")),
                      "the IKE daemon renews CHILD SAs at the soft lifetime: only replace")
    proposals: tuple[EspProposal, ...] = ()
    first: dict[str, Any] = {}
    window = None
    for entry in protect:
        cfg = entry.get("ipsec-policy-config", {})
        sa = cfg.get("processing-info", {}).get("ipsec-sa-cfg", {})
        entry_steps = (*steps, _step("spd"), _step("spd-entry", entry["name"]),
                       _step("ipsec-policy-config"), _step("processing-info"),
                       _step("ipsec-sa-cfg"))
        mine = _esp(sa, fs, entry_steps)
        if not first:
            first, proposals, window = sa, mine, cfg.get("anti-replay-window-size", 64)
        elif mine != proposals or cfg.get("anti-replay-window-size", 64) != window:
            raise _Refuse(entry_steps, "the protect entries of one conn-entry must have the "
                          "same ESP algorithms and anti-replay window (one proposal list per "
                          "connection here)")
    tunnel = first.get("tunnel", {})
    copy_dscp = tunnel.get("bypass-dscp", True)
    return IpsecPolicy(
        esp_proposals=proposals, start_action=_START[conn.get("autostartup", "add")],
        replay_window=window, rekey_time=f"{soft.get('time', 0)}s",
        rekey_bytes=soft.get("bytes", 0), rekey_packets=soft.get("packets", 0),
        life_time=_seconds(hard.get("time", 0)), life_bytes=hard.get("bytes") or None,
        life_packets=hard.get("packets") or None,
        encap_copy_dscp=copy_dscp, decap_copy_dscp=copy_dscp,
        encap_copy_df=tunnel.get("df-bit", "clear") == "copy",
    ), first


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
