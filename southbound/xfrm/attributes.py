"""The XFRMA_* netlink attributes (linux/xfrm.h) shared by every XFRM message."""

from __future__ import annotations

from pyroute2.netlink import nla

from southbound.xfrm.layouts import LFT_CUR, USERPOLICY_INFO, USERSA_INFO, sizeof
from southbound.xfrm.packing import HTON, NTOH, Packed, tmpl_layout


class _WithTrailingBytes(Packed, nla):
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

    class xfrm_encap_tmpl(Packed, nla):
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
            st, names, swaps, zero = tmpl_layout()
            for tmpl in dict.get(self, "templates") or ():
                values = []
                for name, bits in zip(names, swaps, strict=True):
                    value = tmpl.get(name, zero[name])
                    values.append(HTON[bits](value) if bits else value)
                self.data.extend(st.pack(*values))
                offset += st.size
            return offset, 0

        def ft_decode(self, offset):
            st, names, swaps, _ = tmpl_layout()
            end = self.offset + self.length
            out = []
            while offset + st.size <= end:
                values = st.unpack_from(self.data, offset)
                out.append({name: NTOH[bits](v) if bits else v
                            for name, bits, v in zip(names, swaps, values, strict=True)})
                offset += st.size
            self["templates"] = out
            del self["attrs"]
            if self.get("value") is not None:
                del self["value"]

    class xfrm_usersa_info_nla(Packed, nla):
        """XFRMA_SA: a whole struct xfrm_usersa_info (in DELSA notifications)."""

        __slots__ = ()
        fields = USERSA_INFO

    class xfrm_userpolicy_info_nla(Packed, nla):
        """XFRMA_POLICY: a whole struct xfrm_userpolicy_info (DELPOLICY notifications)."""

        __slots__ = ()
        fields = USERPOLICY_INFO

    class xfrm_lifetime_cur(Packed, nla):
        """XFRMA_LTIME_VAL: struct xfrm_lifetime_cur."""

        __slots__ = ()
        fields = tuple((n.removeprefix("curlft_"), f) for n, f in LFT_CUR)

    class xfrm_replay_state(Packed, nla):
        """XFRMA_REPLAY_VAL: struct xfrm_replay_state."""

        __slots__ = ()
        fields = (("oseq", "I"), ("seq", "I"), ("bitmap", "I"))

    class xfrm_replay_state_esn(Packed, nla):
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

    class xfrm_address(Packed, nla):
        """xfrm_address_t (16 bytes; an IPv4 address in the first 4)."""

        __slots__ = ()
        fields = (("addr", "16s"),)

    class xfrm_userpolicy_type(Packed, nla):
        """XFRMA_POLICY_TYPE: struct xfrm_userpolicy_type."""

        __slots__ = ()
        fields = (("type", "B"), ("__pad_pt", "x"), ("reserved1", "H"), ("reserved2", "B"),
                  ("__pad_pt2", "x"))

    class xfrm_mark(Packed, nla):
        """XFRMA_MARK: struct xfrm_mark."""

        __slots__ = ()
        fields = (("v", "I"), ("m", "I"))

