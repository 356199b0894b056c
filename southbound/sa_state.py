"""charon's operational state (VICI ``list-sas``, ``stats``, ``get-counters``) in the YANG
shapes of ``yang/ipsec-nf.yang`` (pure functions over raw VICI dicts with bytes values).

Every field charon 5.9.8 gives is carried; values are typed as the model types them (numbers
as ints, flags as bools, algorithms in the config's enumerations); a value the model has no
name for (an algorithm or a state of another charon) is left out rather than invented.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from southbound.algorithms import sa_algorithms
from southbound.convert import vici_int, vici_str

#: The counters plugin's names, the vRouter manual's `counters` / `vpn-counters` leaves.
COUNTERS = (
    "ike-rekey-init", "ike-rekey-resp", "child-rekey", "invalid", "invalid-spi",
    "ike-init-in-req", "ike-init-in-resp", "ike-init-out-req", "ike-init-out-resp",
    "ike-auth-in-req", "ike-auth-in-resp", "ike-auth-out-req", "ike-auth-out-resp",
    "create-child-in-req", "create-child-in-resp", "create-child-out-req",
    "create-child-out-resp", "info-in-req", "info-in-resp", "info-out-req", "info-out-resp",
)
#: charon's IKE_SA and CHILD_SA state names (ike_sa_state_names, child_sa_state_names), and
#: its IPsec modes: the model's enumerations.
IKE_STATES = frozenset({"created", "connecting", "established", "passive", "rekeying",
                        "rekeyed", "deleting", "destroying"})
CHILD_STATES = frozenset({"created", "routed", "installing", "installed", "updating",
                          "rekeying", "rekeyed", "retrying", "deleting", "deleted",
                          "destroying"})
MODES = frozenset({"tunnel", "transport", "beet", "pass", "drop"})
_PRIORITIES = ("critical", "high", "medium", "low")
_TRAFFIC = ("bytes-in", "packets-in", "bytes-out", "packets-out")


def _bool(v: Any) -> bool:
    return vici_str(v).lower() in ("yes", "1", "true")


def _hex(v: Any) -> int | None:
    """A hex-encoded VICI number (marks, interface ids, CPIs) as an int."""
    try:
        return int(vici_str(v), 16)
    except (TypeError, ValueError):
        return None


def _clock(v: Any) -> int | None:
    """An age or countdown in seconds; a countdown already run out (charon lists the time
    left of a rekey under way, or of an SA being replaced, as negative) is 0."""
    n = vici_int(v)
    return None if n is None else max(n, 0)


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None and value != "" and value != []:
        out[key] = value


def _enum(v: Any, allowed: frozenset[str]) -> str | None:
    text = vici_str(v).lower() if v is not None else ""
    return text if text in allowed else None


def _texts(values: Any) -> list[str]:
    return [vici_str(v) for v in values or []] if isinstance(values, list) else []


def _algorithms(sa: Mapping[str, Any], prf: bool) -> dict[str, str]:
    return sa_algorithms({k: vici_str(v) for k, v in sa.items() if isinstance(v, bytes)}, prf)


def child_sa_state(child: Mapping[str, Any]) -> dict[str, Any]:
    """One ``child-sas`` entry of list-sas in the YANG ``child-sa`` shape."""
    out: dict[str, Any] = {}
    _put(out, "unique-id", vici_int(child.get("uniqueid")))
    _put(out, "name", child.get("name") and vici_str(child["name"]))
    _put(out, "state", _enum(child.get("state"), CHILD_STATES))
    _put(out, "reqid", vici_int(child.get("reqid")))
    _put(out, "protocol", _enum(child.get("protocol"), frozenset({"esp", "ah"})))
    _put(out, "mode", _enum(child.get("mode"), MODES))
    if "encap" in child:
        out["udp-encap"] = _bool(child["encap"])
    for key in ("spi-in", "spi-out", "label"):
        _put(out, key, child.get(key) and vici_str(child[key]))
    for key in ("cpi-in", "cpi-out", "mark-in", "mark-mask-in", "mark-out", "mark-mask-out",
                "if-id-in", "if-id-out"):
        _put(out, key, _hex(child.get(key)) if key in child else None)
    out.update(_algorithms(child, prf=False))
    if "esn" in child:
        out["esn"] = _bool(child["esn"])
    for key in _TRAFFIC:
        _put(out, key, vici_int(child.get(key)))
    for key in ("use-in", "use-out", "rekey-time", "life-time"):
        _put(out, key, _clock(child.get(key)))
    _put(out, "installed-time", _clock(child.get("install-time")))
    if "local-ts" in child:
        out["local-ts"] = {"subnet": _texts(child["local-ts"])}
    if "remote-ts" in child:
        out["remote-ts"] = {"subnet": _texts(child["remote-ts"])}
    return out


def ike_sa_state(entry: Mapping[str, Any]) -> dict[str, Any]:
    """One list-sas entry ``{name: {...}}`` (bytes values) in the YANG ``ike-sa`` shape."""
    ((name, sa),) = entry.items()
    out: dict[str, Any] = {}
    _put(out, "unique-id", vici_int(sa.get("uniqueid")))
    out["name"] = vici_str(name)
    _put(out, "version", vici_int(sa.get("version")))
    _put(out, "state", _enum(sa.get("state"), IKE_STATES))
    if "initiator" in sa:
        out["initiator"] = _bool(sa["initiator"])
    for key, vici_key in (("local-address", "local-host"), ("remote-address", "remote-host"),
                          ("local-id", "local-id"), ("remote-id", "remote-id"),
                          ("remote-eap-id", "remote-eap-id"),
                          ("remote-xauth-id", "remote-xauth-id"),
                          ("initiator-spi", "initiator-spi"),
                          ("responder-spi", "responder-spi")):
        _put(out, key, sa.get(vici_key) and vici_str(sa[vici_key]))
    _put(out, "local-port", vici_int(sa.get("local-port")))
    _put(out, "remote-port", vici_int(sa.get("remote-port")))
    for key in ("nat-local", "nat-remote", "nat-fake", "nat-any"):
        out[key] = _bool(sa.get(key, b"no"))
    for key in ("if-id-in", "if-id-out"):
        _put(out, key, _hex(sa.get(key)) if key in sa else None)
    out.update(_algorithms(sa, prf=True))
    _put(out, "established-time", _clock(sa.get("established")))
    _put(out, "rekey-time", _clock(sa.get("rekey-time")))
    _put(out, "reauth-time", _clock(sa.get("reauth-time")))
    for key in ("local-vips", "remote-vips", "tasks-queued", "tasks-active", "tasks-passive"):
        _put(out, key, _texts(sa.get(key)))
    children = [child_sa_state(c) for c in (sa.get("child-sas") or {}).values()]
    out["udp-encap"] = out["nat-any"] or any(c.get("udp-encap") for c in children)
    if "mobike" in sa:
        out["mobike"] = _bool(sa["mobike"])
    out["child-sa-count"] = len(children)
    for key in _TRAFFIC:  # the peer's totals (RouterOS active-peers rx/tx)
        out[key] = sum(c.get(key, 0) for c in children)
    if children:
        out["child-sa"] = children
    return out


def task_processing(stats: Mapping[str, Any]) -> dict[str, Any]:
    """``task-processing`` (the vRouter manual's names) from the VICI ``stats`` reply."""
    workers = stats.get("workers") or {}
    active = workers.get("active") or {}
    queues = stats.get("queues") or {}
    threads: dict[str, Any] = {}
    _put(threads, "total", vici_int(workers.get("total")))
    _put(threads, "idle", vici_int(workers.get("idle")))
    for p in _PRIORITIES:
        _put(threads, p, vici_int(active.get(p)))
    tasks: dict[str, Any] = {}
    for p in _PRIORITIES:
        _put(tasks, p, vici_int(queues.get(p)))
    _put(tasks, "scheduled", vici_int(stats.get("scheduled")))
    return {"worker-threads": threads, "task-queues": tasks}


def ike_sas(stats: Mapping[str, Any]) -> dict[str, int]:
    """``ike-sas`` totals from the VICI ``stats`` reply."""
    ikesas = stats.get("ikesas") or {}
    return {"total": vici_int(ikesas.get("total")) or 0,
            "half-open": vici_int(ikesas.get("half-open")) or 0}


def counters(values: Mapping[str, Any]) -> dict[str, int]:
    """One ``counters`` set (a get-counters section) as the model's counter64 leaves."""
    out: dict[str, int] = {}
    for name in COUNTERS:
        v = values.get(name)  # ints already (ViciClient's counters): no text round trip
        _put(out, name, v if type(v) is int else vici_int(v))
    return out


def vpn_counters(per_conn: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``vpn-counters`` entries from ``get-counters all=yes`` (sorted by name)."""
    return [{"name": name, **counters(values)} for name, values in sorted(per_conn.items())
            if name and isinstance(values, Mapping)]


#: list-sas fields that move with the clock alone (an IKE SA's, a CHILD SA's) and the leaves
#: they become: an entry that differs only in these is not converted again.
_IKE_CLOCK = {"established": "established-time", "rekey-time": "rekey-time",
              "reauth-time": "reauth-time"}
_CHILD_CLOCK = {"use-in": "use-in", "use-out": "use-out", "rekey-time": "rekey-time",
                "life-time": "life-time", "install-time": "installed-time"}
_IKE_LEAVES, _CHILD_LEAVES = tuple(_IKE_CLOCK.values()), tuple(_CHILD_CLOCK.values())


def _apart(sa: Mapping[str, Any]) -> tuple[dict[str, Any], tuple]:
    """A raw list-sas entry without its clock fields (a copy: the reply is not changed; each
    CHILD SA copied likewise), and those fields' values apart: the steady part compares with
    the last read's in C (``==``) instead of a Python filter per field."""
    steady = dict(sa)
    clocks: list[Any] = [steady.pop(f, None) for f in _IKE_CLOCK]
    children = steady.get("child-sas")
    if isinstance(children, Mapping):
        copies = {}
        for n, c in children.items():
            c = dict(c)
            clocks.extend([c.pop(f, None) for f in _CHILD_CLOCK])
            copies[n] = c
        steady["child-sas"] = copies
    return steady, tuple(clocks)


class IkeSaConverter:
    """:func:`ike_sa_state` over a whole list-sas, remembering each SA's conversion: an SA
    whose raw entry is the same as at the last read but for the clock fields (ages,
    countdowns) gets a copy of its last entry with those leaves renewed, and one the same in
    every field gets its last entry itself (the same object), so a read costs the conversion
    of what changed (plus one comparison per SA), not of the whole table. The result is equal
    to converting every entry; an entry once given is never changed (snapshots share it).
    :meth:`vpn_counters` likewise gives a VPN's last entry while its counters are the same."""

    def __init__(self) -> None:
        self._memo: dict[Any, tuple[Any, ...]] = {}
        self._vpns: dict[str, tuple[Mapping[str, Any], dict[str, Any]]] = {}
        self._packets: dict[tuple, tuple] = {}  # southbound/sa_packets.py's memory
        self._counters: tuple[bytes, list[dict[str, Any]]] | None = None  # and the counters'

    def vpn_counters(self, per_conn: Mapping[str, Any], whole: bool = True
                     ) -> list[dict[str, Any]]:
        """:func:`vpn_counters` of ``per_conn``, each VPN's entry the last one given when its
        counters did not change; ``whole``: ``per_conn`` is every VPN's (a full read: the
        others are forgotten), else some VPNs' only (a targeted read)."""
        memo = {} if whole else dict(self._vpns)
        out = []
        for name, values in sorted(per_conn.items()):
            if not name or not isinstance(values, Mapping):
                continue
            hit = self._vpns.get(name)
            entry = hit[1] if hit is not None and hit[0] == values else {
                "name": name, **counters(values)}
            memo[name] = (values, entry)
            out.append(entry)
        self._vpns = memo
        return out

    def convert(self, entries: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The ``ike-sa`` entries of one list-sas reply (of every IKE SA: the SAs not in it
        are forgotten)."""
        memo: dict[Any, tuple[Any, ...]] = {}
        out = [self._one(entry, memo) for entry in entries]
        self._memo = memo
        return out

    def update(self, entries: list[Mapping[str, Any]], asked: Iterable[int]
               ) -> list[dict[str, Any]]:
        """The ``ike-sa`` entries of list-sas replies for the IKE SAs with unique-ids
        ``asked`` only (a targeted read): those not listed are forgotten, every other SA is
        remembered as it was."""
        memo = dict(self._memo)  # a copy: a read left to its timeout may still be running
        for uid in asked:
            memo.pop(str(uid).encode(), None)
        out = [self._one(entry, memo) for entry in entries]
        self._memo = memo
        return out

    def _one(self, entry: Mapping[str, Any], memo: dict[Any, tuple[Any, ...]]
             ) -> dict[str, Any]:
        ((name, sa),) = entry.items()
        key = sa.get("uniqueid")
        steady, clocks = _apart(sa)
        hit = self._memo.get(key)
        conv = None
        if hit is not None and hit[0] == name and hit[1] == steady:
            # the same SA: the same object when its clocks did not move either (a snapshot
            # is never changed: sharing it is safe), else a copy with them renewed
            conv = hit[3] if hit[2] == clocks else _renewed(hit[3], hit[2], clocks)
        if conv is None:
            conv = ike_sa_state(entry)
        memo[key] = (name, steady, clocks, conv)
        return conv


def _renewed(conv: dict[str, Any], old: tuple, new: tuple) -> dict[str, Any] | None:
    """``conv`` (an SA's last conversion, made from raw clock fields ``old``) with the clock
    leaves of ``new`` (the same SA's fields now, in :func:`_apart`'s order) written into a
    copy; only the fields that moved are converted. None when a leaf would appear or go
    (the leaves' order would differ from a conversion's: converted again)."""
    out = dict(conv)
    if "child-sa" in out:
        out["child-sa"] = [dict(c) for c in out["child-sa"]]
    ike = len(_IKE_LEAVES)
    for i, (a, b) in enumerate(zip(old, new, strict=True)):
        if a == b:
            continue
        if i < ike:
            target, leaf = out, _IKE_LEAVES[i]
        else:
            j, k = divmod(i - ike, len(_CHILD_LEAVES))
            target, leaf = out["child-sa"][j], _CHILD_LEAVES[k]
        value = _fast_clock(b)
        if (value is None) != (leaf not in target):
            return None
        if value is not None:
            target[leaf] = value
    return out


def _fast_clock(v: Any) -> int | None:
    """:func:`_clock`; int() reads the ASCII digits of a bytes value itself."""
    if type(v) is not bytes:
        return _clock(v)
    try:
        return max(int(v), 0)
    except ValueError:
        return None
