"""The JSON text of an SA table entry made from a template: the text cut at its clock
leaves' values once, then filled with the moved values after a clock-only refresh
(northbound/gnmi/entries.py), instead of encoding the whole entry again (at 1,000 SAs the
encoding was 55-75 ms of a Get after each read; filling is ~5 ms)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from nf.observed import CLOCK
from northbound.gnmi import data


@dataclass(frozen=True, slots=True)
class Template:
    """An entry's JSON text cut at its clock leaves' values: ``pieces`` around them, and
    where each one is in the entry's JSON value (``slots``: keys and list places)."""

    pieces: tuple[str, ...]
    slots: tuple[tuple[str | int, ...], ...]


# a clock slot in a template's text: a string no printing of data can hold as a whole value
# unless a peer put it there (a noncharacter, then the slot's number); checked by count
_MARK = "\ufdd0"
_SLOT = re.compile('"\ufdd0([0-9]+)"')


def encoded(value: Any) -> tuple[bytes, Template | None]:
    """``value``'s encoding (``data.encode``'s bytes) and its template (None when a value of
    the data looks like a slot: then the entry is encoded whole each time)."""
    slots: list[tuple[str | int, ...]] = []
    parts = _SLOT.split(data.dumps(_marked(value, (), slots)))
    pieces, found = parts[0::2], parts[1::2]
    if found != [str(i) for i in range(len(slots))]:
        return data.encode(value), None
    t = Template(tuple(pieces), tuple(slots))
    return filled(t, value) or data.encode(value), t


def _marked(value: Any, at: tuple[str | int, ...], slots: list) -> Any:
    """A copy of ``value`` with each clock leaf (a text or a number) replaced by its slot."""
    if type(value) is dict:
        out = {}
        for k, v in value.items():
            tv = type(v)
            if (tv is str or tv is int) and k.rpartition(":")[2] in CLOCK:
                out[k] = f"{_MARK}{len(slots)}"
                slots.append((*at, k))
            elif tv is dict or tv is list:
                out[k] = _marked(v, (*at, k), slots)
            else:
                out[k] = v
        return out
    if type(value) is list:
        return [_marked(x, (*at, i), slots) for i, x in enumerate(value)]
    return value


def filled(t: Template, value: Any) -> bytes | None:
    """The encoding of ``value`` made from template ``t`` (made from a value of the same
    shape: the same keys, lists of the same lengths) and ``value``'s clock leaves; None
    when a slot does not hold a clock value (digits as text, or a number)."""
    out = [t.pieces[0]]
    for slot, piece in zip(t.slots, t.pieces[1:], strict=True):
        v = value
        try:
            for step in slot:
                v = v[step]
        except (KeyError, IndexError, TypeError):
            return None
        tv = type(v)
        if tv is str and v.isascii() and v.isdigit():
            out.append(f'"{v}"')
        elif tv is int:
            out.append(str(v))
        else:
            return None
        out.append(piece)
    return "".join(out).encode()
