"""The kernel's XFRM C structures (linux/xfrm.h) as flat field lists for pyroute2.

pyroute2 packs and unpacks fields one by one (no C alignment), so the C structures' padding
is written out as ``x`` fields; the sizes are those of x86_64 and every 64-bit Linux (checked
by tests/unit/southbound/test_xfrm_codec.py against the kernel's sizeof).

Nested C structures (``xfrm_selector`` in ``xfrm_usersa_info``, ...) are flattened with a
prefix (``sel_daddr``); :mod:`southbound.xfrm.codec` turns them into our typed values.
"""

from __future__ import annotations

import functools
import struct

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

