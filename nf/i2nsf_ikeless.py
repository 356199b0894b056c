"""RFC 9061's IKE-less case (``ietf-i2nsf-ikeless``) as typed, immutable kernel SAs and policies.

The controller computes the keys and pushes SPD entries (policies) and SAD entries (SAs with
their keys); the gateway installs them in the kernel's SPD/SAD over netlink XFRM
(``southbound/ikeless_backend.py``) and reports expiries and acquires as the RFC's
notifications. :func:`convert` turns the config dict of ``ipsec-ikeless`` into an
:class:`IkelessConfig` (what the southbound installs) and the list of what cannot be carried
out, each a :class:`nf.i2nsf_ike.Refused` with the path of the node at fault: an algorithm ID
the kernel has no transform for, a key of the wrong length, a missing key, a setting the
kernel's XFRM has no field for. :func:`backend_refusals` refuses every entry on a gateway
whose backend has no kernel ESP (the kernel-libipsec backend; kernel-netlink on a kernel
without esp4/esp6), naming the reason.

Directions: in both lists ``local`` is the source and ``remote`` the destination of the
packets an entry applies to (``local-prefix``/``remote-prefix`` of the traffic selector,
``local``/``remote`` of the tunnel), as the RFC's example and the controllers written for it
use them; an inbound SA's tunnel ``local`` is the peer. This is the only reading that needs no
guess: a SAD entry has no direction leaf.

Not carried out and refused: ``seq-overflow`` true (this kernel never wraps the sequence
number), ESP in TCP, ``df-bit`` set, DSCP mappings and ``dscp-values``, several port ranges
or a range that is not a single port or all ports (an XFRM selector holds one port), a soft
lifetime ``action`` other than ``replace`` (in the IKE-less case the controller replaces the
SA when it is told of the soft expiry), ``bypass-dscp`` false. Taken but not used: the ``iv``
leaf (ESP sends a fresh IV in every packet, RFC 4303; the kernel makes it) and the SPD's
``esp-algorithms`` (an XFRM policy template names the protocol, not the algorithms: the SA's
own are used).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from nf import i2nsf_algorithms as alg
from nf import paths
from nf.effective_ikeless import (
    Encap,
    IkelessConfig,
    Key,
    Lifetime,
    SadEntry,
    Selector,
    SpdEntry,
)
from nf.i2nsf_ike import IKELESS, IKELESS_TOP, UNSUPPORTED, Refused
from nf.paths import Step

INVALID_KEY = "invalid-key"  # error-app-tag of a key that does not fit its algorithm
MISSING_KEY = "missing-key"

# bytes of key material beyond the cipher key (the salt/nonce the kernel takes at its end)
_SALT = {13: 4, 14: 3, 15: 3, 16: 3, 18: 4, 19: 4, 20: 4, 28: 4}
# cipher key lengths in bits per algorithm with several (IANA type 1); the others: one length
_KEY_BITS = {3: (192,), 28: (256,)}
# ICV bits of the AEADs (the kernel's aead alg_icv_len)
_ICV = {14: 64, 15: 96, 16: 128, 18: 64, 19: 96, 20: 128, 28: 128}
# integrity: key bytes and truncation bits (the kernel's auth_trunc alg_trunc_len)
_INTEG = {1: (16, 96), 2: (20, 96), 5: (16, 96), 8: (16, 96), 12: (32, 128), 13: (48, 192),
          14: (64, 256)}


class _Refuse(Exception):
    def __init__(self, steps: tuple[Step, ...], message: str, app_tag: str = UNSUPPORTED):
        super().__init__(message)
        self.steps, self.message, self.app_tag = steps, message, app_tag


def _step(name: str, key: str | None = None) -> Step:
    return Step(IKELESS, name, (("name", key),) if key is not None else ())


def entry_steps(db: str, name: str) -> tuple[Step, ...]:
    """The path steps of an spd-entry (``db`` "spd") or sad-entry ("sad")."""
    return (_step(IKELESS_TOP), _step(db), _step(f"{db}-entry", name))


def _entries(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, Mapping):
        return list(node.values())
    return list(node or [])


def _hex(value: str) -> bytes:
    return bytes.fromhex(value.replace(":", "")) if value else b""


def _port(ranges: list[dict[str, Any]], steps: tuple[Step, ...]) -> int | None:
    if len(ranges) > 1:
        raise _Refuse(steps, "several port ranges: an XFRM selector holds one port (use one "
                      "entry per port)")
    if not ranges or (ranges[0]["start"] == 0 and ranges[0]["end"] == 65535):
        return None
    s, e = int(ranges[0]["start"]), int(ranges[0]["end"])
    if s != e:
        raise _Refuse(steps, f"port range {s}-{e}: an XFRM selector holds one port or all "
                      "ports")
    return s


def _selector(sel: Mapping[str, Any], steps: tuple[Step, ...]) -> Selector:
    steps = (*steps, _step("traffic-selector"))
    src, dst = sel["local-prefix"], sel["remote-prefix"]
    if ipaddress.ip_network(src, strict=False).version != \
            ipaddress.ip_network(dst, strict=False).version:
        raise _Refuse((*steps, _step("remote-prefix")),
                      "local-prefix and remote-prefix are of different address families")
    proto = sel.get("inner-protocol", "any")
    return Selector(src=str(ipaddress.ip_network(src, strict=False)),
                    dst=str(ipaddress.ip_network(dst, strict=False)),
                    proto=None if proto == "any" else int(proto),
                    sport=_port(_entries(sel.get("local-ports")), (*steps, _step("local-ports"))),
                    dport=_port(_entries(sel.get("remote-ports")),
                                (*steps, _step("remote-ports"))))


def _tunnel(tun: Mapping[str, Any], steps: tuple[Step, ...]) -> tuple[str, str, bool, bool]:
    """(local, remote, copy DF, copy DSCP) of a tunnel container."""
    steps = (*steps, _step("tunnel"))
    if tun.get("df-bit", "clear") == "set":
        raise _Refuse((*steps, _step("df-bit")), "df-bit set: the kernel's XFRM copies the "
                      "inner DF bit or clears it (copy, clear), it has no 'always set'")
    if _entries(tun.get("dscp-mapping")):
        raise _Refuse((*steps, _step("dscp-mapping")), "DSCP mappings are not carried out: "
                      "the kernel copies the inner DSCP (bypass-dscp true)")
    if not tun.get("bypass-dscp", True):
        raise _Refuse((*steps, _step("bypass-dscp")), "bypass-dscp false is not carried out: "
                      "the kernel copies the inner DSCP to the outer header (the flag that "
                      "stops it is not set by this gateway's XFRM driver)")
    if tun.get("dscp-values"):
        raise _Refuse((*steps, _step("dscp-values")), "dscp-values: the kernel's SAs do not "
                      "select packets by DSCP")
    local, remote = str(tun["local"]), str(tun["remote"])
    if ipaddress.ip_address(local).version != ipaddress.ip_address(remote).version:
        raise _Refuse((*steps, _step("remote")), "tunnel local and remote are of different "
                      "address families")
    return local, remote, tun.get("df-bit", "clear") == "copy", bool(tun.get("bypass-dscp",
                                                                            True))


def _lifetime(node: Mapping[str, Any]) -> Lifetime:
    return Lifetime(time=int(node.get("time", 0)), bytes=int(node.get("bytes", 0)),
                    packets=int(node.get("packets", 0)), idle=int(node.get("idle", 0)))


def key_sizes(eid: int) -> tuple[int, ...]:
    """The key lengths in bytes (salt included) that encryption transform ``eid`` takes;
    empty when the kernel's XFRM cannot run it here."""
    salt = _SALT.get(eid, 0)
    if eid in alg.FIXED_KEY:
        return (_KEY_BITS[eid][0] // 8 + salt,)
    return tuple(sorted(k // 8 + salt for (i, k), a in alg.ENCRYPTION.items()
                        if i == eid and k and a.xfrm))


def _keys(esp: Mapping[str, Any], steps: tuple[Step, ...]
          ) -> tuple[Key | None, Key | None, Key | None]:
    """(cipher, integrity, AEAD) of an esp-sa container, with their keys checked."""
    enc, integ = esp.get("encryption", {}), esp.get("integrity", {})
    enc_steps, int_steps = (*steps, _step("encryption")), (*steps, _step("integrity"))
    eid = int(enc.get("encryption-algorithm", 12))
    key = _hex(enc.get("key", ""))
    if not key:
        raise _Refuse((*enc_steps, _step("key")),
                      f"encryption algorithm {eid} needs a key", MISSING_KEY)
    bits = 8 * (len(key) - _SALT.get(eid, 0))
    sizes = key_sizes(eid)
    if not sizes:
        raise _Refuse((*enc_steps, _step("encryption-algorithm")), (
            f"encryption transform {eid} is not supported by the kernel's XFRM here "
            f"(supported: {', '.join(map(str, sorted({i for i, _ in alg.ENCRYPTION})))})"))
    if len(key) not in sizes:
        name = next(a.iana_name for (i, _), a in alg.ENCRYPTION.items() if i == eid)
        raise _Refuse((*enc_steps, _step("key")), (
            f"a key of {len(key)} bytes does not fit encryption algorithm {eid} ({name}): it "
            f"takes {' or '.join(map(str, sizes))} bytes"
            + (f" (the cipher key and a {_SALT[eid]}-byte salt)" if eid in _SALT else "")),
            INVALID_KEY)
    row = alg.encryption(eid, bits)
    assert row is not None and row.xfrm is not None  # key_sizes found it
    iid = int(integ.get("integrity-algorithm", 12))
    ikey = _hex(integ.get("key", ""))
    if row.aead:
        if ikey:
            raise _Refuse((*int_steps, _step("key")), f"encryption algorithm {eid} "
                          f"({row.iana_name}) is an AEAD: it takes no integrity key")
        return None, None, Key(row.xfrm, key, _ICV[eid], eid)
    cipher = Key(row.xfrm, key, None, eid)
    if iid == alg.NO_INTEGRITY:
        raise _Refuse((*int_steps, _step("integrity-algorithm")),
                      f"encryption algorithm {eid} ({row.iana_name}) needs an integrity "
                      "algorithm (ESP without integrity is not carried out)")
    if iid not in alg.INTEGRITY or alg.INTEGRITY[iid].xfrm is None:
        raise _Refuse((*int_steps, _step("integrity-algorithm")),
                      f"integrity transform {iid} is not supported by the kernel's XFRM here "
                      f"(supported: {', '.join(map(str, sorted(alg.INTEGRITY)))})")
    if not ikey:
        raise _Refuse((*int_steps, _step("key")),
                      f"integrity algorithm {iid} needs a key", MISSING_KEY)
    size, trunc = _INTEG[iid]
    if len(ikey) != size:
        raise _Refuse((*int_steps, _step("key")), (
            f"a key of {len(ikey)} bytes does not fit integrity algorithm {iid} "
            f"({alg.INTEGRITY[iid].iana_name}): it takes {size} bytes"), INVALID_KEY)
    return cipher, Key(str(alg.INTEGRITY[iid].xfrm), ikey, trunc, iid), None


def _sad(entry: Mapping[str, Any]) -> SadEntry:
    name = entry["name"]
    steps = entry_steps("sad", name)
    cfg = entry.get("ipsec-sa-config", {})
    cs = (*steps, _step("ipsec-sa-config"))
    if cfg.get("protocol-parameters", "esp") != "esp":
        raise _Refuse((*cs, _step("protocol-parameters")), "only ESP is carried out")
    if cfg.get("seq-overflow", False):
        raise _Refuse((*cs, _step("seq-overflow")), "seq-overflow true: the kernel never lets "
                      "the outbound sequence number roll over (it stops sending, and "
                      "sadb-seq-overflow is sent)")
    if not cfg.get("traffic-selector"):
        raise _Refuse((*cs, _step("traffic-selector")), "a SAD entry needs a traffic-selector")
    sel = _selector(cfg["traffic-selector"], cs)
    mode = cfg.get("mode", "transport")
    copy_df, copy_dscp = False, True
    if mode == "tunnel":
        if not cfg.get("tunnel"):
            raise _Refuse((*cs, _step("tunnel")), "a tunnel-mode SA needs tunnel local and "
                          "remote")
        src, dst, copy_df, copy_dscp = _tunnel(cfg["tunnel"], cs)
    else:
        src, dst = (str(ipaddress.ip_network(p, strict=False).network_address)
                    for p in (sel.src, sel.dst))
        for p, leaf in ((sel.src, "local-prefix"), (sel.dst, "remote-prefix")):
            if ipaddress.ip_network(p, strict=False).num_addresses != 1:
                raise _Refuse((*cs, _step("traffic-selector"), _step(leaf)), (
                    f"a transport-mode SA is between two hosts: {leaf} {p} must be one "
                    "address"))
    enc, integ, aead = _keys(cfg.get("esp-sa", {}), (*cs, _step("esp-sa")))
    soft = cfg.get("sa-lifetime-soft", {})
    if soft.get("action", "replace") != "replace":
        raise _Refuse((*cs, _step("sa-lifetime-soft"), _step("action")), (
            f"soft lifetime action {soft['action']}: in the IKE-less case the gateway tells "
            "the controller (sadb-expire), which replaces the SA: only replace"))
    encap_node = cfg.get("encapsulation-type", {})
    encap = None
    kind = encap_node.get("espencap", "none")
    if kind == "espintcp":
        raise _Refuse((*cs, _step("encapsulation-type"), _step("espencap")),
                      "ESP in TCP (RFC 8229) is not carried out by the kernel's XFRM here")
    if kind == "espinudp":
        oaddr = list(encap_node.get("oaddr", []))
        if len(oaddr) > 1:
            raise _Refuse((*cs, _step("encapsulation-type"), _step("oaddr")),
                          "one original address (oaddr) per SA in the kernel")
        encap = Encap(int(encap_node.get("sport", 4500)), int(encap_node.get("dport", 4500)),
                      str(oaddr[0]) if oaddr else None)
    return SadEntry(name=name, reqid=int(entry.get("reqid", 0)), spi=int(cfg["spi"]),
                    src=src, dst=dst, mode=mode, selector=sel, encryption=enc,
                    integrity=integ, aead=aead, esn=bool(cfg.get("ext-seq-num", True)),
                    replay_window=int(cfg.get("anti-replay-window-size", 64)),
                    soft=_lifetime(soft), hard=_lifetime(cfg.get("sa-lifetime-hard", {})),
                    encap=encap, copy_df=copy_df, copy_dscp=copy_dscp)


def _spd(entry: Mapping[str, Any], index: int) -> SpdEntry:
    name = entry["name"]
    steps = entry_steps("spd", name)
    cfg = entry.get("ipsec-policy-config", {})
    cs = (*steps, _step("ipsec-policy-config"))
    sel = _selector(cfg.get("traffic-selector", {}), cs)
    info = cfg.get("processing-info", {})
    action = info.get("action", "discard")
    sa = info.get("ipsec-sa-cfg", {})
    ss = (*cs, _step("processing-info"), _step("ipsec-sa-cfg"))
    mode, src, dst = sa.get("mode", "transport"), None, None
    if action == "protect":
        if sa.get("protocol-parameters", "esp") != "esp":
            raise _Refuse((*ss, _step("protocol-parameters")), "only ESP is carried out")
        for leaf in ("pfp-flag", "stateful-frag-check", "seq-overflow"):
            if sa.get(leaf, False):
                raise _Refuse((*ss, _step(leaf)), f"{leaf} true is not carried out by the "
                              "kernel's XFRM")
        if sa.get("esp-algorithms", {}).get("tfc-pad", False):
            raise _Refuse((*ss, _step("esp-algorithms"), _step("tfc-pad")),
                          "TFC padding is not carried out")
        if mode == "tunnel":
            if not sa.get("tunnel"):
                raise _Refuse((*ss, _step("tunnel")), "a tunnel-mode policy needs tunnel "
                              "local and remote")
            src, dst, _, _ = _tunnel(sa["tunnel"], ss)
    direction = {"inbound": "in", "outbound": "out"}[entry["direction"]]
    return SpdEntry(name=name, direction=direction, reqid=int(entry.get("reqid", 0)),
                    selector=sel, action=action, mode=mode, src=src, dst=dst, index=index)


def _clashes(sad: Mapping[str, SadEntry], spd: Mapping[str, SpdEntry]) -> Iterator[Refused]:
    """Two entries the kernel would hold as one (same SA key, same policy key)."""
    seen: dict[Any, str] = {}
    for e in sad.values():
        key = ("sa", e.dst, e.spi)
        if key in seen:
            yield _refused(_Refuse(entry_steps("sad", e.name), (
                f"SAD entry {e.name!r} has the SPI {e.spi} and destination {e.dst} of "
                f"{seen[key]!r}: the kernel holds one SA per SPI and destination")))
        seen.setdefault(key, e.name)
    for p in spd.values():
        key = ("sp", p.direction, p.selector)
        if key in seen:
            yield _refused(_Refuse(entry_steps("spd", p.name), (
                f"SPD entry {p.name!r} has the direction and traffic selector of "
                f"{seen[key]!r}: the kernel holds one policy per selector and direction")))
        seen.setdefault(key, p.name)


def _refused(e: _Refuse) -> Refused:
    return Refused("", (), e.message, e.app_tag, paths.build(e.steps))


def convert(config: Mapping[str, Any]) -> tuple[IkelessConfig, list[Refused]]:
    """The IKE-less SAs and policies of ``config`` (the whole config dict) and what is refused
    (entries refused are left out of the value)."""
    top = config.get(IKELESS_TOP, {})
    refused: list[Refused] = []
    sad: dict[str, SadEntry] = {}
    spd: dict[str, SpdEntry] = {}
    for e in _entries(top.get("sad", {}).get("sad-entry")):
        try:
            sad[e["name"]] = _sad(e)
        except _Refuse as r:
            refused.append(_refused(r))
    for i, e in enumerate(_entries(top.get("spd", {}).get("spd-entry"))):
        try:
            spd[e["name"]] = _spd(e, i)
        except _Refuse as r:
            refused.append(_refused(r))
    refused += _clashes(sad, spd)
    return IkelessConfig(MappingProxyType(sad), MappingProxyType(spd)), refused


def backend_refusals(ikeless: IkelessConfig | None, backend: str,
                     no_kernel_esp: str | None) -> Iterator[Refused]:
    """Every IKE-less entry, when the gateway's backend cannot install it: ``backend`` is the
    data plane's name; ``no_kernel_esp`` why the kernel has no ESP (None: it has)."""
    if not ikeless:
        return
    if backend != "kernel-netlink":
        why = (f"the IKE-less case (RFC 9061) needs kernel ESP: its SAs and policies are "
               f"installed in the kernel's SAD/SPD, and the {backend} backend keeps ESP in "
               "user space (the kernel holds no SAs here): run ipsec-nf serve --backend "
               "kernel-netlink on a kernel with ESP")
    elif no_kernel_esp is not None:
        why = f"the IKE-less case (RFC 9061) needs kernel ESP: {no_kernel_esp}"
    else:
        return
    for db, entries in (("sad", ikeless.sad), ("spd", ikeless.spd)):
        for name in entries:
            yield Refused("", (), why, UNSUPPORTED, paths.build(entry_steps(db, name)))
