"""A full ``list-sas`` converted from the raw VICI messages, decoding only the IKE SAs whose
message changed in more than its clock values.

Each IKE SA comes as one VICI event message. Most of a full read of 1,000 IKE SAs was
decoding those messages (``vici_stream.decode``) and converting them, although between two
reads an SA usually differs only in its ages and countdowns. Here each message is split
into its *steady* bytes (the message with its clock key-value elements cut out) and those
elements (:func:`split`). A message whose steady bytes, and the places and names of its clock
elements in them, are those of a message converted before is the same SA with only its
clock values moved: its last conversion is reused (the very same object when the values did
not move either), with the moved clock values converted (``sa_state._renewed``); any other
message is decoded and converted as before.

Why reuse is exact: a message is remembered only after decoding it and checking that every
clock element found is one of the SA's (or a CHILD SA's) clock fields, value and all, in
order: the cut places are element boundaries. A message with the same steady bytes and the
same cut places has the same elements everywhere else (values carry their lengths), and
each cut piece is again a whole key-value element (its length byte checked): it decodes to
the same entry but for those clock values. A clock-like byte run inside another value
(an identity, say) shifts or adds a cut place, so such a message does not match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import accumulate
from typing import Any

from vici.exception import CommandException

from southbound import sa_state
from southbound.vici_client import ViciError, _ints, _s
from southbound.vici_stream import checked, decode

# a clock field's key-value element: type 3, the key's length and name, a 2-byte value
# length (below 256), the value (charon writes a decimal number; checked against the length)
_CLOCK_KV = re.compile(
    rb"\x03(\x0bestablished|\x0arekey-time|\x0breauth-time|\x06use-in|\x07use-out"
    rb"|\x09life-time|\x0cinstall-time)\x00([\x00-\xff])(-?[0-9]*)")
_IKE = {k.encode(): i for i, k in enumerate(sa_state._IKE_CLOCK)}
_CHILD = {k.encode(): i for i, k in enumerate(sa_state._CHILD_CLOCK)}


def split(packet: bytes) -> tuple[tuple[bytes, tuple, tuple], tuple[bytes, ...]] | None:
    """``((steady bytes, cut places in them, clock keys), clock values)`` of one message;
    None when a clock element's value is not a number of its stated length."""
    parts = _CLOCK_KV.split(packet)  # [piece, key, length, value, piece, ...] (in C)
    pieces, values = parts[0::4], tuple(parts[3::4])
    if bytes(map(len, values)) != b"".join(parts[2::4]):
        return None
    places = tuple(accumulate(map(len, pieces[:-1])))
    return (b"".join(pieces), places, tuple(parts[1::4])), values


def _order(sa: dict[str, Any], keys: tuple[bytes, ...], values: tuple[bytes, ...],
           clocks: tuple) -> tuple[int, ...] | None:
    """Where each clock element of a decoded message (``keys``/``values`` in message order)
    sits in ``sa_state._apart``'s clock tuple ``clocks``; None unless they are exactly the
    SA's and its CHILD SAs' clock fields."""
    order = []
    per_child = len(_CHILD)
    for k, v in sa.items():
        if k.encode() in _IKE and type(v) is bytes:
            order.append(_IKE[k.encode()])
        elif k == "child-sas" and isinstance(v, dict):
            for j, child in enumerate(v.values()):
                if not isinstance(child, dict):
                    return None
                order.extend(len(_IKE) + j * per_child + _CHILD[c.encode()]
                             for c, cv in child.items()
                             if c.encode() in _CHILD and type(cv) is bytes)
    if len(order) != len(keys) or tuple(clocks[p] for p in order) != values:
        return None
    names = [*_IKE, *list(_CHILD) * ((len(clocks) - len(_IKE)) // per_child)]
    if any(names[p] != k[1:] for p, k in zip(order, keys, strict=True)):
        return None
    return tuple(order)


def convert(converter: sa_state.IkeSaConverter, packets: Iterable[bytes]
            ) -> list[dict[str, Any]]:
    """The ``ike-sa`` entries of one full list-sas given as raw messages (``packets``):
    what ``converter.convert`` gives for them decoded, decoding only the changed ones. The
    converter's memory of each SA (for targeted reads) is renewed likewise."""
    conversion = Conversion(converter)
    for packet in packets:
        conversion.add(packet)
    return conversion.finish()


class Conversion:
    """:func:`convert` one message at a time, as they come (a read converts each IKE SA while
    charon writes the next ones: the conversion of 1,000 SAs, ~45 ms, is no longer added to
    the ~130 ms charon takes to list them). The converter's memory is renewed by
    :meth:`finish` only: a read broken off leaves it as it was."""

    def __init__(self, converter: sa_state.IkeSaConverter) -> None:
        self.converter = converter
        self._old = converter._packets
        self._new: dict[tuple, tuple] = {}
        self._memo: dict[Any, tuple[Any, ...]] = {}
        self._out: list[dict[str, Any]] = []

    def add(self, packet: bytes) -> None:
        """Convert the next IKE SA's message."""
        new, memo = self._new, self._memo
        parts = split(packet)
        conv = None
        if parts is not None:
            key, values = parts
            hit = self._old.get(key)
            if hit is not None:
                uid, name, steady, order, last, was = hit
                clocks = list(was)
                for p, v in zip(order, values, strict=True):
                    clocks[p] = v
                now = tuple(clocks)
                conv = last if now == was else sa_state._renewed(last, was, now)
                if conv is not None:
                    new[key] = (uid, name, steady, order, conv, now)
                    memo[uid] = (name, steady, now, conv)
        if conv is None:
            entry = decode(packet)
            conv = self.converter._one(entry, memo)
            ((name, sa),) = entry.items()
            uid = sa.get("uniqueid")
            _, steady, clocks, _ = memo[uid]
            order = _order(sa, parts[0][2], parts[1], clocks) if parts is not None else None
            if order is not None and parts is not None:
                new[parts[0]] = (uid, name, steady, order, conv, clocks)
        self._out.append(conv)

    def finish(self) -> list[dict[str, Any]]:
        """The entries converted, in the order of the messages; the converter renewed."""
        self.converter._memo = self._memo
        self.converter._packets = self._new
        return self._out


def vpn_counters(converter: sa_state.IkeSaConverter, message: bytes) -> list[dict[str, Any]]:
    """The ``vpn-counters`` entries of get-counters all=yes's answer (``message``, raw): the
    very list given for the last answer when charon's answer is the same to the byte (the
    counters only move with IKE traffic), else decoded and converted (each VPN's entry kept
    while its counters are the same: ``converter.vpn_counters``). Raises
    :class:`ViciError` when charon answered failure (no counters plugin)."""
    last = converter._counters
    if last is not None and last[0] == message:
        return last[1]
    try:
        reply = checked(message)
    except CommandException as exc:
        raise ViciError("get-counters", str(exc).removeprefix("Command failed: ")) from None
    per_conn = {_s(c): _ints(v) for c, v in (reply.get("counters") or {}).items()}
    out = converter.vpn_counters(per_conn)
    converter._counters = (message, out)
    return out
