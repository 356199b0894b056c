"""The kernel's XFRM netlink messages (linux/xfrm.h) on pyroute2's nlmsg classes.

pyroute2 0.9.x defines no XFRM SA/SP messages (only the xfrm *interface* link kind), so they
are declared here, on the structures of :mod:`southbound.xfrm.layouts` and the attributes of
:mod:`southbound.xfrm.attributes`; :class:`MarshalXfrm` parses a netlink stream into them.
"""

from __future__ import annotations

from pyroute2.netlink import NLMSG_ERROR, nlmsg
from pyroute2.netlink.marshal import Marshal

from southbound.xfrm.attributes import xfrm_nlas
from southbound.xfrm.constants import (
    XFRM_MSG_ACQUIRE,
    XFRM_MSG_DELPOLICY,
    XFRM_MSG_DELSA,
    XFRM_MSG_EXPIRE,
    XFRM_MSG_FLUSHPOLICY,
    XFRM_MSG_FLUSHSA,
    XFRM_MSG_MAPPING,
    XFRM_MSG_NEWAE,
    XFRM_MSG_NEWPOLICY,
    XFRM_MSG_NEWSA,
    XFRM_MSG_POLEXPIRE,
    XFRM_MSG_REPORT,
    XFRM_MSG_UPDPOLICY,
    XFRM_MSG_UPDSA,
)
from southbound.xfrm.layouts import (
    AEVENT_ID,
    USER_ACQUIRE,
    USER_EXPIRE,
    USER_MAPPING,
    USER_POLEXPIRE,
    USER_REPORT,
    USERPOLICY_ID,
    USERPOLICY_INFO,
    USERSA_ID,
    USERSA_INFO,
)
from southbound.xfrm.packing import Packed


class xfrm_usersa_info(Packed, xfrm_nlas, nlmsg):
    """XFRM_MSG_NEWSA / UPDSA (and dump replies): an SA."""

    __slots__ = ()
    fields = USERSA_INFO


class xfrm_usersa_id(Packed, xfrm_nlas, nlmsg):
    """XFRM_MSG_GETSA / DELSA requests; DELSA notifications (with XFRMA_SA)."""

    __slots__ = ()
    fields = USERSA_ID


class xfrm_userpolicy_info(Packed, xfrm_nlas, nlmsg):
    """XFRM_MSG_NEWPOLICY / UPDPOLICY (and dump replies): a policy."""

    __slots__ = ()
    fields = USERPOLICY_INFO


class xfrm_userpolicy_id(Packed, xfrm_nlas, nlmsg):
    """XFRM_MSG_GETPOLICY / DELPOLICY requests; DELPOLICY notifications (with XFRMA_POLICY)."""

    __slots__ = ()
    fields = USERPOLICY_ID


class xfrm_user_acquire(Packed, xfrm_nlas, nlmsg):
    """XFRM_MSG_ACQUIRE."""

    __slots__ = ()
    fields = USER_ACQUIRE


class xfrm_user_expire(Packed, xfrm_nlas, nlmsg):
    """XFRM_MSG_EXPIRE."""

    __slots__ = ()
    fields = USER_EXPIRE


class xfrm_user_polexpire(Packed, xfrm_nlas, nlmsg):
    """XFRM_MSG_POLEXPIRE."""

    __slots__ = ()
    fields = USER_POLEXPIRE


class xfrm_user_report(Packed, xfrm_nlas, nlmsg):
    """XFRM_MSG_REPORT."""

    __slots__ = ()
    fields = USER_REPORT


class xfrm_user_mapping(Packed, xfrm_nlas, nlmsg):
    """XFRM_MSG_MAPPING."""

    __slots__ = ()
    fields = USER_MAPPING


class xfrm_aevent_id(Packed, xfrm_nlas, nlmsg):
    """XFRM_MSG_NEWAE / GETAE."""

    __slots__ = ()
    fields = AEVENT_ID


class xfrm_usersa_flush(Packed, xfrm_nlas, nlmsg):
    """XFRM_MSG_FLUSHSA notifications (struct xfrm_usersa_flush)."""

    __slots__ = ()
    fields = (("proto", "B"), ("__pad_flush", "3x"))


class xfrm_flushpolicy(xfrm_nlas, nlmsg):
    """XFRM_MSG_FLUSHPOLICY notifications (no body; XFRMA_POLICY_TYPE)."""

    __slots__ = ()
    fields = ()


class xfrm_nlmsgerr(Packed, nlmsg):
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
