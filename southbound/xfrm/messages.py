"""The kernel's XFRM netlink structures (linux/xfrm.h) on pyroute2's nlmsg/nla classes.

pyroute2 0.9.x defines no XFRM SA/SP messages (only the xfrm *interface* link kind), so they
are declared here. pyroute2 packs and unpacks fields one by one (no C alignment), so the C
structures' padding is written out as ``x`` fields; the sizes are those of x86_64 and every
64-bit Linux (checked by tests/unit/test_xfrm_messages.py against the kernel's sizeof).

Nested C structures (``xfrm_selector`` in ``xfrm_usersa_info``, ...) are flattened with a
prefix (``sel_daddr``); :mod:`southbound.xfrm.codec` turns them into our typed values.
"""

from __future__ import annotations

import functools
import socket
import struct

from pyroute2.netlink import NLMSG_ERROR, NotInitialized, nla, nlmsg
from pyroute2.netlink.marshal import Marshal

# ------------------------------------------------------------------------ message types
XFRM_MSG_NEWSA = 0x10
XFRM_MSG_DELSA = 0x11
XFRM_MSG_GETSA = 0x12
XFRM_MSG_NEWPOLICY = 0x13
XFRM_MSG_DELPOLICY = 0x14
XFRM_MSG_GETPOLICY = 0x15
XFRM_MSG_ALLOCSPI = 0x16
XFRM_MSG_ACQUIRE = 0x17
XFRM_MSG_EXPIRE = 0x18
XFRM_MSG_UPDPOLICY = 0x19
XFRM_MSG_UPDSA = 0x1A
XFRM_MSG_POLEXPIRE = 0x1B
XFRM_MSG_FLUSHSA = 0x1C
XFRM_MSG_FLUSHPOLICY = 0x1D
XFRM_MSG_NEWAE = 0x1E
XFRM_MSG_GETAE = 0x1F
XFRM_MSG_REPORT = 0x20
XFRM_MSG_MIGRATE = 0x21
XFRM_MSG_MAPPING = 0x26

XFRM_INF = 0xFFFFFFFFFFFFFFFF  # "no limit" of a byte/packet lifetime
XFRM_STATE_ESN = 128  # xfrm_usersa_info.flags
XFRM_POLICY_TYPE_MAIN = 0
XFRM_POLICY_MAX = 3  # per-socket policies have dir XFRM_POLICY_MAX + dir
UDP_ENCAP_ESPINUDP = 2

# netlink socket options (linux/netlink.h)
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11

# ------------------------------------------------------------- nested C structures, flat
# struct xfrm_selector (56 bytes)
SELECTOR = (
    ("sel_daddr", "16s"),
    ("sel_saddr", "16s"),
    ("sel_dport", ">H"),
    ("sel_dport_mask", ">H"),
    ("sel_sport", ">H"),
    ("sel_sport_mask", ">H"),
    ("sel_family", "H"),
    ("sel_prefixlen_d", "B"),
    ("sel_prefixlen_s", "B"),
    ("sel_proto", "B"),
    ("__pad_sel", "3x"),
    ("sel_ifindex", "i"),
    ("sel_user", "I"),
)
# struct xfrm_id (24 bytes)
ID = (("id_daddr", "16s"), ("id_spi", ">I"), ("id_proto", "B"), ("__pad_id", "3x"))
# struct xfrm_lifetime_cfg (64 bytes)
LFT_CFG = tuple(
    (f"lft_{name}", "Q")
    for name in (
        "soft_byte_limit",
        "hard_byte_limit",
        "soft_packet_limit",
        "hard_packet_limit",
        "soft_add_expires_seconds",
        "hard_add_expires_seconds",
        "soft_use_expires_seconds",
        "hard_use_expires_seconds",
    )
)
# struct xfrm_lifetime_cur (32 bytes)
LFT_CUR = tuple((f"curlft_{n}", "Q") for n in ("bytes", "packets", "add_time", "use_time"))
# struct xfrm_stats (12 bytes)
STATS = (("stats_replay_window", "I"), ("stats_replay", "I"), ("stats_integrity_failed", "I"))

# struct xfrm_usersa_info (224 bytes)
USERSA_INFO = (
    SELECTOR
    + ID
    + (("saddr", "16s"),)
    + LFT_CFG
    + LFT_CUR
    + STATS
    + (
        ("seq", "I"),
        ("reqid", "I"),
        ("family", "H"),
        ("mode", "B"),
        ("replay_window", "B"),
        ("flags", "B"),
        ("__pad_sa", "7x"),
    )
)
# struct xfrm_usersa_id (24 bytes)
USERSA_ID = (
    ("daddr", "16s"),
    ("spi", ">I"),
    ("family", "H"),
    ("proto", "B"),
    ("__pad_said", "x"),
)
# struct xfrm_userpolicy_info (168 bytes)
USERPOLICY_INFO = (
    SELECTOR
    + LFT_CFG
    + LFT_CUR
    + (
        ("priority", "I"),
        ("index", "I"),
        ("dir", "B"),
        ("action", "B"),
        ("flags", "B"),
        ("share", "B"),
        ("__pad_pol", "4x"),
    )
)
# struct xfrm_userpolicy_id (64 bytes)
USERPOLICY_ID = SELECTOR + (("index", "I"), ("dir", "B"), ("__pad_polid", "3x"))
# struct xfrm_user_tmpl (64 bytes)
USER_TMPL = ID + (
    ("family", "H"),
    ("__pad_t1", "2x"),
    ("saddr", "16s"),
    ("reqid", "I"),
    ("mode", "B"),
    ("share", "B"),
    ("optional", "B"),
    ("__pad_t2", "x"),
    ("aalgos", "I"),
    ("ealgos", "I"),
    ("calgos", "I"),
)


def _prefixed(prefix: str, fields: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """FIELDS renamed PREFIX+name (padding kept apart), to embed a structure in another."""
    return tuple(
        (name if name.startswith("__") else prefix + name, fmt) for name, fmt in fields
    )


# struct xfrm_user_acquire (280 bytes): id, saddr, sel, policy, algos, seq
USER_ACQUIRE = (
    ID
    + (("saddr", "16s"),)
    + SELECTOR
    + _prefixed("pol_", tuple((n.replace("__pad", "__pad_p"), f) for n, f in USERPOLICY_INFO))
    + (("aalgos", "I"), ("ealgos", "I"), ("calgos", "I"), ("seq", "I"))
)
# struct xfrm_user_expire (232 bytes)
USER_EXPIRE = USERSA_INFO + (("hard", "B"), ("__pad_exp", "7x"))
# struct xfrm_user_polexpire (176 bytes)
USER_POLEXPIRE = USERPOLICY_INFO + (("hard", "B"), ("__pad_pexp", "7x"))
# struct xfrm_user_report (60 bytes)
USER_REPORT = (("proto", "B"), ("__pad_rep", "3x")) + SELECTOR
# struct xfrm_user_mapping (64 bytes)
USER_MAPPING = _prefixed("id_", USERSA_ID) + (
    ("reqid", "I"),
    ("old_saddr", "16s"),
    ("new_saddr", "16s"),
    ("old_sport", ">H"),
    ("new_sport", ">H"),
)
# struct xfrm_aevent_id (48 bytes)
AEVENT_ID = _prefixed("id_", USERSA_ID) + (("saddr", "16s"), ("flags", "I"), ("reqid", "I"))


def sizeof(fields: tuple[tuple[str, str], ...]) -> int:
    """The size in bytes of a flattened structure (fields packed one by one)."""
    return sum(struct.calcsize(fmt) for _, fmt in fields)


@functools.cache
def _zeros(fields: tuple[tuple[str, str], ...]) -> dict[str, object]:
    return {name: b"" if fmt.endswith("s") else 0
            for name, fmt in fields if not fmt.endswith("x")}


def defaults(fields: tuple[tuple[str, str], ...]) -> dict[str, object]:
    """Zero values for every field of FIELDS (pyroute2 packs a missing ``16s`` as 0: an error)."""
    return dict(_zeros(fields))


# ------------------------------------------------------------- packing in one struct call


def _swap(fmt: str) -> int:
    """Bits of a big-endian field (``>H``/``>I``), 0 for a native one."""
    if fmt.startswith(">"):
        return 8 * struct.calcsize(fmt)
    return 0


_HTON = {0: lambda v: v, 16: socket.htons, 32: socket.htonl}
_NTOH = {0: lambda v: v, 16: socket.ntohs, 32: socket.ntohl}


class _Packed:
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
        got = _Packed._compiled_for.get(cls)
        if got is None:
            fmt = "=" + "".join(f.lstrip(">") for _, f in cls.fields)
            named = [(n, f) for n, f in cls.fields if not f.endswith("x")]
            got = (struct.Struct(fmt), [n for n, _ in named], [_swap(f) for _, f in named],
                   defaults(tuple(cls.fields)))
            _Packed._compiled_for[cls] = got
        return got

    def ft_encode(self, offset):
        st, names, swaps, zero = self._layout()
        get = dict.get
        values = []
        for name, bits in zip(names, swaps, strict=True):
            value = get(self, name)
            if value is None:
                value = zero[name]
            values.append(_HTON[bits](value) if bits else value)
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
            put(self, name, _NTOH[bits](value) if bits else value)
        offset += st.size
        if self.nla_map:
            self.decode_nlas((offset + 3) & ~3)
        else:
            del self["attrs"]
        if self["value"] is NotInitialized:
            del self["value"]


@functools.cache
def _tmpl_layout() -> tuple[struct.Struct, list[str], list[int], dict[str, object]]:
    """xfrm_user_tmpl as one Struct (the elements of XFRMA_TMPL), like :class:`_Packed`."""
    named = [(n, f) for n, f in USER_TMPL if not f.endswith("x")]
    return (struct.Struct("=" + "".join(f.lstrip(">") for _, f in USER_TMPL)),
            [n for n, _ in named], [_swap(f) for _, f in named], defaults(USER_TMPL))


# --------------------------------------------------------------------------- attributes


class _WithTrailingBytes(_Packed, nla):
    """An NLA of fixed fields followed by bytes to its end (``alg_key[0]`` in C), kept
    in ``self[TRAILING]``."""

    __slots__ = ()
    trailing = "alg_key"

    def ft_encode(self, offset):
        offset, _ = super().ft_encode(offset)
        tail = bytes(self.get(self.trailing) or b"")
        self.data.extend(tail)
        offset += len(tail)
        diff = ((offset + 3) & ~3) - offset
        self.data.extend(b"\0" * diff)
        return offset + diff, diff

    def ft_decode(self, offset):
        super().ft_decode(offset)
        start = offset + sizeof(tuple(self.fields))
        self[self.trailing] = bytes(self.data[start : self.offset + self.length])


class xfrm_nlas:
    """The XFRMA_* attributes shared by every XFRM message (a mixin of the message classes)."""

    __slots__ = ()
    prefix = "XFRMA_"
    nla_map = (
        (0, "XFRMA_UNSPEC", "none"),
        (1, "XFRMA_ALG_AUTH", "xfrm_algo"),
        (2, "XFRMA_ALG_CRYPT", "xfrm_algo"),
        (3, "XFRMA_ALG_COMP", "xfrm_algo"),
        (4, "XFRMA_ENCAP", "xfrm_encap_tmpl"),
        (5, "XFRMA_TMPL", "xfrm_tmpls"),
        (6, "XFRMA_SA", "xfrm_usersa_info_nla"),
        (7, "XFRMA_POLICY", "xfrm_userpolicy_info_nla"),
        (8, "XFRMA_SEC_CTX", "cdata"),
        (9, "XFRMA_LTIME_VAL", "xfrm_lifetime_cur"),
        (10, "XFRMA_REPLAY_VAL", "xfrm_replay_state"),
        (11, "XFRMA_REPLAY_THRESH", "uint32"),
        (12, "XFRMA_ETIMER_THRESH", "uint32"),
        (13, "XFRMA_SRCADDR", "xfrm_address"),
        (14, "XFRMA_COADDR", "xfrm_address"),
        (15, "XFRMA_LASTUSED", "uint64"),
        (16, "XFRMA_POLICY_TYPE", "xfrm_userpolicy_type"),
        (17, "XFRMA_MIGRATE", "cdata"),
        (18, "XFRMA_ALG_AEAD", "xfrm_algo_aead"),
        (19, "XFRMA_KMADDRESS", "cdata"),
        (20, "XFRMA_ALG_AUTH_TRUNC", "xfrm_algo_auth"),
        (21, "XFRMA_MARK", "xfrm_mark"),
        (22, "XFRMA_TFCPAD", "uint32"),
        (23, "XFRMA_REPLAY_ESN_VAL", "xfrm_replay_state_esn"),
        (24, "XFRMA_SA_EXTRA_FLAGS", "uint32"),
        (25, "XFRMA_PROTO", "uint8"),
        (26, "XFRMA_ADDRESS_FILTER", "cdata"),
        (27, "XFRMA_PAD", "none"),
        (28, "XFRMA_OFFLOAD_DEV", "cdata"),
        (29, "XFRMA_SET_MARK", "uint32"),
        (30, "XFRMA_SET_MARK_MASK", "uint32"),
        (31, "XFRMA_IF_ID", "uint32"),
        (32, "XFRMA_MTIMER_THRESH", "uint32"),
        (33, "XFRMA_SA_DIR", "uint8"),
        (34, "XFRMA_NAT_KEEPALIVE_INTERVAL", "uint32"),
        (35, "XFRMA_SA_PCPU", "uint32"),
        (36, "XFRMA_IPTFS_DROP_TIME", "uint32"),
        (37, "XFRMA_IPTFS_REORDER_WINDOW", "uint16"),
        (38, "XFRMA_IPTFS_DONT_FRAG", "flag"),
        (39, "XFRMA_IPTFS_INIT_DELAY", "uint32"),
        (40, "XFRMA_IPTFS_MAX_QSIZE", "uint32"),
        (41, "XFRMA_IPTFS_PKT_SIZE", "uint32"),
    )

    class xfrm_algo(_WithTrailingBytes):
        """struct xfrm_algo: name, key length in bits, key."""

        __slots__ = ()
        fields = (("alg_name", "64s"), ("alg_key_len", "I"))

    class xfrm_algo_auth(_WithTrailingBytes):
        """struct xfrm_algo_auth: name, key length and truncation in bits, key."""

        __slots__ = ()
        fields = (("alg_name", "64s"), ("alg_key_len", "I"), ("alg_trunc_len", "I"))

    class xfrm_algo_aead(_WithTrailingBytes):
        """struct xfrm_algo_aead: name, key length and ICV length in bits, key."""

        __slots__ = ()
        fields = (("alg_name", "64s"), ("alg_key_len", "I"), ("alg_icv_len", "I"))

    class xfrm_encap_tmpl(_Packed, nla):
        """struct xfrm_encap_tmpl (24 bytes)."""

        __slots__ = ()
        fields = (
            ("encap_type", "H"),
            ("encap_sport", ">H"),
            ("encap_dport", ">H"),
            ("__pad_encap", "2x"),
            ("encap_oa", "16s"),
        )

    class xfrm_tmpls(nla):
        """XFRMA_TMPL: an array of struct xfrm_user_tmpl, packed without NLA headers;
        ``self['templates']`` is a list of dicts with USER_TMPL's field names."""

        __slots__ = ()
        fields = ()

        def ft_encode(self, offset):
            st, names, swaps, zero = _tmpl_layout()
            for tmpl in dict.get(self, "templates") or ():
                values = []
                for name, bits in zip(names, swaps, strict=True):
                    value = tmpl.get(name, zero[name])
                    values.append(_HTON[bits](value) if bits else value)
                self.data.extend(st.pack(*values))
                offset += st.size
            return offset, 0

        def ft_decode(self, offset):
            st, names, swaps, _ = _tmpl_layout()
            end = self.offset + self.length
            out = []
            while offset + st.size <= end:
                values = st.unpack_from(self.data, offset)
                out.append({name: _NTOH[bits](v) if bits else v
                            for name, bits, v in zip(names, swaps, values, strict=True)})
                offset += st.size
            self["templates"] = out
            del self["attrs"]
            if self.get("value") is not None:
                del self["value"]

    class xfrm_usersa_info_nla(_Packed, nla):
        """XFRMA_SA: a whole struct xfrm_usersa_info (in DELSA notifications)."""

        __slots__ = ()
        fields = USERSA_INFO

    class xfrm_userpolicy_info_nla(_Packed, nla):
        """XFRMA_POLICY: a whole struct xfrm_userpolicy_info (DELPOLICY notifications)."""

        __slots__ = ()
        fields = USERPOLICY_INFO

    class xfrm_lifetime_cur(_Packed, nla):
        """XFRMA_LTIME_VAL: struct xfrm_lifetime_cur."""

        __slots__ = ()
        fields = tuple((n.removeprefix("curlft_"), f) for n, f in LFT_CUR)

    class xfrm_replay_state(_Packed, nla):
        """XFRMA_REPLAY_VAL: struct xfrm_replay_state."""

        __slots__ = ()
        fields = (("oseq", "I"), ("seq", "I"), ("bitmap", "I"))

    class xfrm_replay_state_esn(_Packed, nla):
        """XFRMA_REPLAY_ESN_VAL: struct xfrm_replay_state_esn and its bitmap (bmp_len words)."""

        __slots__ = ()
        fields = (
            ("bmp_len", "I"),
            ("oseq", "I"),
            ("seq", "I"),
            ("oseq_hi", "I"),
            ("seq_hi", "I"),
            ("replay_window", "I"),
        )

        def ft_encode(self, offset):
            offset, diff = super().ft_encode(offset)
            words = int(self.get("bmp_len") or 0)
            self.data.extend(b"\0" * (4 * words))
            return offset + 4 * words, diff

    class xfrm_address(_Packed, nla):
        """xfrm_address_t (16 bytes; an IPv4 address in the first 4)."""

        __slots__ = ()
        fields = (("addr", "16s"),)

    class xfrm_userpolicy_type(_Packed, nla):
        """XFRMA_POLICY_TYPE: struct xfrm_userpolicy_type."""

        __slots__ = ()
        fields = (("type", "B"), ("__pad_pt", "x"), ("reserved1", "H"), ("reserved2", "B"),
                  ("__pad_pt2", "x"))

    class xfrm_mark(_Packed, nla):
        """XFRMA_MARK: struct xfrm_mark."""

        __slots__ = ()
        fields = (("v", "I"), ("m", "I"))


class xfrm_usersa_info(_Packed, xfrm_nlas, nlmsg):
    """XFRM_MSG_NEWSA / UPDSA (and dump replies): an SA."""

    __slots__ = ()
    fields = USERSA_INFO


class xfrm_usersa_id(_Packed, xfrm_nlas, nlmsg):
    """XFRM_MSG_GETSA / DELSA requests; DELSA notifications (with XFRMA_SA)."""

    __slots__ = ()
    fields = USERSA_ID


class xfrm_userpolicy_info(_Packed, xfrm_nlas, nlmsg):
    """XFRM_MSG_NEWPOLICY / UPDPOLICY (and dump replies): a policy."""

    __slots__ = ()
    fields = USERPOLICY_INFO


class xfrm_userpolicy_id(_Packed, xfrm_nlas, nlmsg):
    """XFRM_MSG_GETPOLICY / DELPOLICY requests; DELPOLICY notifications (with XFRMA_POLICY)."""

    __slots__ = ()
    fields = USERPOLICY_ID


class xfrm_user_acquire(_Packed, xfrm_nlas, nlmsg):
    """XFRM_MSG_ACQUIRE."""

    __slots__ = ()
    fields = USER_ACQUIRE


class xfrm_user_expire(_Packed, xfrm_nlas, nlmsg):
    """XFRM_MSG_EXPIRE."""

    __slots__ = ()
    fields = USER_EXPIRE


class xfrm_user_polexpire(_Packed, xfrm_nlas, nlmsg):
    """XFRM_MSG_POLEXPIRE."""

    __slots__ = ()
    fields = USER_POLEXPIRE


class xfrm_user_report(_Packed, xfrm_nlas, nlmsg):
    """XFRM_MSG_REPORT."""

    __slots__ = ()
    fields = USER_REPORT


class xfrm_user_mapping(_Packed, xfrm_nlas, nlmsg):
    """XFRM_MSG_MAPPING."""

    __slots__ = ()
    fields = USER_MAPPING


class xfrm_aevent_id(_Packed, xfrm_nlas, nlmsg):
    """XFRM_MSG_NEWAE / GETAE."""

    __slots__ = ()
    fields = AEVENT_ID


class xfrm_usersa_flush(_Packed, xfrm_nlas, nlmsg):
    """XFRM_MSG_FLUSHSA notifications (struct xfrm_usersa_flush)."""

    __slots__ = ()
    fields = (("proto", "B"), ("__pad_flush", "3x"))


class xfrm_flushpolicy(xfrm_nlas, nlmsg):
    """XFRM_MSG_FLUSHPOLICY notifications (no body; XFRMA_POLICY_TYPE)."""

    __slots__ = ()
    fields = ()


class xfrm_nlmsgerr(_Packed, nlmsg):
    """NLMSG_ERROR (an ACK when ``error`` is 0) as it comes with NETLINK_CAP_ACK: the error,
    the header of our request (its payload, with keys, is not echoed) and extended-ACK TLVs."""

    __slots__ = ()
    fields = (
        ("error", "i"),
        ("orig_length", "I"),
        ("orig_type", "H"),
        ("orig_flags", "H"),
        ("orig_seq", "I"),
        ("orig_pid", "I"),
    )
    prefix = "NLMSGERR_ATTR_"
    nla_map = (
        ("NLMSGERR_ATTR_UNUSED", "none"),
        ("NLMSGERR_ATTR_MSG", "asciiz"),
        ("NLMSGERR_ATTR_OFFS", "uint32"),
        ("NLMSGERR_ATTR_COOKIE", "uint8"),
    )


class MarshalXfrm(Marshal):
    """pyroute2's parser of a netlink stream, with the XFRM message classes.

    Errors are parsed as :class:`xfrm_nlmsgerr`: pyroute2's own parser would decode the
    request echoed in an error with the request's class, and our requests are not echoed.
    """

    def parse_one_message(self, key, flags, sequence_number, data, offset, length):
        if key == NLMSG_ERROR:
            msg = xfrm_nlmsgerr(data, offset=offset)
            msg.decode()
            return msg
        return super().parse_one_message(key, flags, sequence_number, data, offset, length)

    msg_map = {
        XFRM_MSG_NEWSA: xfrm_usersa_info,
        XFRM_MSG_UPDSA: xfrm_usersa_info,
        XFRM_MSG_DELSA: xfrm_usersa_id,
        XFRM_MSG_NEWPOLICY: xfrm_userpolicy_info,
        XFRM_MSG_UPDPOLICY: xfrm_userpolicy_info,
        XFRM_MSG_DELPOLICY: xfrm_userpolicy_id,
        XFRM_MSG_ACQUIRE: xfrm_user_acquire,
        XFRM_MSG_EXPIRE: xfrm_user_expire,
        XFRM_MSG_POLEXPIRE: xfrm_user_polexpire,
        XFRM_MSG_REPORT: xfrm_user_report,
        XFRM_MSG_MAPPING: xfrm_user_mapping,
        XFRM_MSG_NEWAE: xfrm_aevent_id,
        XFRM_MSG_FLUSHSA: xfrm_usersa_flush,
        XFRM_MSG_FLUSHPOLICY: xfrm_flushpolicy,
    }
