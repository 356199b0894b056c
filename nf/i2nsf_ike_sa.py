"""The SA parameters of an RFC 9061 IKE-case ``conn-entry`` in our effective config's terms.

Its IKE SA algorithms and lifetimes (:func:`ike_policy`), its SPD entries as our security
policies (:func:`security_policy`) and its CHILD SA parameters, the protect entries' ESP
algorithms (:func:`ipsec_policy`). Algorithms are IANA transform IDs, mapped by
``nf.i2nsf_algorithms``. What cannot be carried out raises :class:`Refuse` with the path of the
node at fault; ``nf/i2nsf_ike.py`` turns it into a refusal of the conn-entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nf import i2nsf_algorithms as alg
from nf.effective import (
    EspProposal,
    IkePolicy,
    IkeProposal,
    IpsecPolicy,
    SecurityPolicy,
    TrafficSelector,
)
from nf.paths import Step

IKE = "ietf-i2nsf-ike"
UNSUPPORTED = "not-supported-by-backend"
_START = {"add": "none", "on-demand": "trap", "start": "start"}
_ACTIONS = {"protect": "esp", "bypass": "bypass", "discard": "discard"}


class Refuse(Exception):
    """A node that cannot be carried out: its path steps, the message and the app-tag."""

    def __init__(self, steps: tuple[Step, ...], message: str, app_tag: str = UNSUPPORTED):
        super().__init__(message)
        self.steps, self.message, self.app_tag = steps, message, app_tag


def entries(node: Any) -> list[dict[str, Any]]:
    """A list of the config dict as a list (libyang's form or keyed by name)."""
    if isinstance(node, Mapping):
        return list(node.values())
    return list(node or [])


def step(name: str, key: str | None = None, module: str = IKE) -> Step:
    """One path step of ``module`` (a list entry's when ``key``, its ``name``, is given)."""
    return Step(module, name, (("name", key),) if key is not None else ())


# ------------------------------------------------------------------------------ algorithms

def _encryptions(entries: list[dict[str, Any]], steps: tuple[Step, ...]
                 ) -> tuple[list[str], list[str]]:
    """(non-AEAD, AEAD) model names of an encryption list, in order."""
    plain, aead = [], []
    for e in entries:
        row = alg.encryption(e.get("algorithm-type", 12), e.get("key-length", 128))
        if row is None:
            raise Refuse((*steps[:-1], Step(steps[-1].module, steps[-1].name,
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
            raise Refuse(steps, f"{what} {i} is not supported")
        out.append(table[i].model)
    return out


def _integrity(ids: list[int], steps: tuple[Step, ...]) -> list[str]:
    return _models(ids, alg.INTEGRITY, alg.NO_INTEGRITY, "integrity transform", steps)


def _dh(ids: list[int], steps: tuple[Step, ...]) -> list[str]:
    return _models(ids, alg.DH_GROUPS, alg.NO_DH, "Diffie-Hellman group", steps)


def ike_policy(conn: Mapping[str, Any], steps: tuple[Step, ...]) -> IkePolicy:
    """The IKE SA parameters of a conn-entry (at ``steps``): proposals, lifetimes, options."""
    integ_ids = list(conn.get("ike-sa-intr-alg", [12]))
    integ = _integrity(integ_ids, (*steps, step("ike-sa-intr-alg")))
    plain, aead = _encryptions(entries(conn.get("ike-sa-encr-alg")),
                               (*steps, step("ike-sa-encr-alg")))
    prf = [alg.PRF[i].model for i in integ_ids if i in alg.PRF]
    dh = _dh([conn.get("dh-group", 14)], (*steps, step("dh-group")))
    proposals = []
    if aead:
        proposals.append(IkeProposal(id=1, aead_alg=tuple(aead), prf_alg=tuple(prf),
                                     dh_group=tuple(dh)))
    if plain:
        if not integ:
            raise Refuse((*steps, step("ike-sa-intr-alg")),
                         "a non-AEAD IKE encryption needs an integrity algorithm")
        proposals.append(IkeProposal(id=len(proposals) + 1, enc_alg=tuple(plain),
                                     auth_alg=tuple(integ), prf_alg=tuple(prf),
                                     dh_group=tuple(dh)))
    soft = conn.get("ike-sa-lifetime-soft", {})
    over = conn.get("ike-sa-lifetime-hard", {}).get("over-time", 0)
    frag = conn.get("fragmentation", {})
    if frag.get("mtu") is not None:
        raise Refuse((*steps, step("fragmentation"), step("mtu")),
                     "the IKE daemon sets the fragment size for all connections, not per "
                     "connection")
    encap = conn.get("encapsulation-type", {}).get("espencap", "none")
    if encap == "espintcp":
        raise Refuse((*steps, step("encapsulation-type"), step("espencap")),
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
    ports = entries(sel.get(f"{side}-ports"))
    if len(ports) > 1:
        raise Refuse((*steps, step(f"{side}-ports")),
                     f"several {side}-ports ranges: one range per traffic selector is "
                     "carried out (use one spd-entry per range)")
    port = None
    if ports and not (ports[0]["start"] == 0 and ports[0]["end"] == 65535):
        s, e = ports[0]["start"], ports[0]["end"]
        port = s if s == e else f"{s}-{e}"
    return TrafficSelector(subnet=(sel[f"{side}-prefix"],),
                           protocol=None if proto == "any" else int(proto), port=port)


def security_policy(entry: Mapping[str, Any], steps: tuple[Step, ...]) -> SecurityPolicy:
    """One SPD entry (at ``steps``) as our security policy: selectors, mode, action."""
    cfg = entry.get("ipsec-policy-config", {})
    sel = cfg.get("traffic-selector", {})
    ts_steps = (*steps, step("ipsec-policy-config"), step("traffic-selector"))
    info = cfg.get("processing-info", {})
    sa = info.get("ipsec-sa-cfg", {})
    return SecurityPolicy(name=entry["name"], local_ts=_ts(sel, "local", ts_steps),
                          remote_ts=_ts(sel, "remote", ts_steps),
                          mode=sa.get("mode", "transport"),
                          action=_ACTIONS[info.get("action", "discard")])


def _esp(sa: Mapping[str, Any], fs_groups: list[int], steps: tuple[Step, ...]
         ) -> tuple[EspProposal, ...]:
    esp = sa.get("esp-algorithms", {})
    esp_steps = (*steps, step("esp-algorithms"))
    plain, aead = _encryptions(entries(esp.get("encryption")),
                               (*esp_steps, step("encryption")))
    integ = _integrity(list(esp.get("integrity", [0])), (*esp_steps, step("integrity")))
    dh = tuple(_dh(fs_groups, steps))
    esn = (bool(sa.get("ext-seq-num", False)),)
    out = []
    if aead:
        out.append(EspProposal(id=1, aead_alg=tuple(aead), dh_group=dh, esn=esn))
    if plain:
        if not integ:
            raise Refuse((*esp_steps, step("integrity")),
                         "a non-AEAD ESP encryption needs an integrity algorithm")
        out.append(EspProposal(id=len(out) + 1, enc_alg=tuple(plain), auth_alg=tuple(integ),
                               dh_group=dh, esn=esn))
    if not out:
        raise Refuse((*esp_steps, step("encryption")),
                     "ESP without encryption (NULL) is not supported")
    return tuple(out)


def _seconds(n: int) -> str | None:
    return f"{n}s" if n else None


def ipsec_policy(conn: Mapping[str, Any], protect: list[dict[str, Any]],
                 steps: tuple[Step, ...]) -> tuple[IpsecPolicy, dict[str, Any]]:
    """The CHILD SA parameters and the first protect entry's ipsec-sa-cfg."""
    info = conn.get("child-sa-info", {})
    fs = list(info.get("fs-groups", [0]))
    soft, hard = info.get("child-sa-lifetime-soft", {}), info.get("child-sa-lifetime-hard", {})
    if soft.get("action", "replace") != "replace":
        raise Refuse((*steps, step("child-sa-info"), step("child-sa-lifetime-soft"),
                      step("action")),
                     "the IKE daemon renews CHILD SAs at the soft lifetime: only replace")
    proposals: tuple[EspProposal, ...] = ()
    first: dict[str, Any] = {}
    window = None
    for entry in protect:
        cfg = entry.get("ipsec-policy-config", {})
        sa = cfg.get("processing-info", {}).get("ipsec-sa-cfg", {})
        entry_steps = (*steps, step("spd"), step("spd-entry", entry["name"]),
                       step("ipsec-policy-config"), step("processing-info"),
                       step("ipsec-sa-cfg"))
        mine = _esp(sa, fs, entry_steps)
        if not first:
            first, proposals, window = sa, mine, cfg.get("anti-replay-window-size", 64)
        elif mine != proposals or cfg.get("anti-replay-window-size", 64) != window:
            raise Refuse(entry_steps, "the protect entries of one conn-entry must have the "
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
