"""pyroute2's field-by-field packing of the XFRM structures, done in one ``struct`` call."""

from __future__ import annotations

import functools
import socket
import struct

from pyroute2.netlink import NotInitialized

from southbound.xfrm.layouts import USER_TMPL, defaults


def _swap(fmt: str) -> int:
    """Bits of a big-endian field (``>H``/``>I``), 0 for a native one."""
    if fmt.startswith(">"):
        return 8 * struct.calcsize(fmt)
    return 0


HTON = {0: lambda v: v, 16: socket.htons, 32: socket.htonl}
NTOH = {0: lambda v: v, 16: socket.ntohs, 32: socket.ntohl}


class Packed:
    """pyroute2's field-by-field packing, done in one precompiled ``struct`` call.

    pyroute2 packs each field with its own ``struct.pack_into`` (and reads each value through
    nlmsg's ``get``): about half the cost of an XFRM request here (measured). One Struct of
    the whole field list, in native byte order without alignment (the padding is in the
    fields), with the big-endian fields (ports, SPI) swapped by htons/htonl, gives the same
    bytes.
    """

    __slots__ = ()
    _compiled_for: dict[type, tuple[struct.Struct, list[str], list[int], dict[str, object]]] = {}

    @classmethod
    def _layout(cls) -> tuple[struct.Struct, list[str], list[int], dict[str, object]]:
        got = Packed._compiled_for.get(cls)
        if got is None:
            fmt = "=" + "".join(f.lstrip(">") for _, f in cls.fields)
            named = [(n, f) for n, f in cls.fields if not f.endswith("x")]
            got = (struct.Struct(fmt), [n for n, _ in named], [_swap(f) for _, f in named],
                   defaults(tuple(cls.fields)))
            Packed._compiled_for[cls] = got
        return got

    def ft_encode(self, offset):
        st, names, swaps, zero = self._layout()
        get = dict.get
        values = []
        for name, bits in zip(names, swaps, strict=True):
            value = get(self, name)
            if value is None:
                value = zero[name]
            values.append(HTON[bits](value) if bits else value)
        self.data.extend(st.pack(*values))
        offset += st.size
        diff = ((offset + 3) & ~3) - offset
        self.data.extend(b"\0" * diff)
        return offset + diff, diff

    def ft_decode(self, offset):
        st, names, swaps, _ = self._layout()
        values = st.unpack_from(self.data, offset)
        put = dict.__setitem__
        for name, bits, value in zip(names, swaps, values, strict=True):
            put(self, name, NTOH[bits](value) if bits else value)
        offset += st.size
        if self.nla_map:
            self.decode_nlas((offset + 3) & ~3)
        else:
            del self["attrs"]
        if self["value"] is NotInitialized:
            del self["value"]


@functools.cache
def tmpl_layout() -> tuple[struct.Struct, list[str], list[int], dict[str, object]]:
    """xfrm_user_tmpl as one Struct (the elements of XFRMA_TMPL), like :class:`Packed`."""
    named = [(n, f) for n, f in USER_TMPL if not f.endswith("x")]
    return (struct.Struct("=" + "".join(f.lstrip(">") for _, f in USER_TMPL)),
            [n for n, _ in named], [_swap(f) for _, f in named], defaults(USER_TMPL))

