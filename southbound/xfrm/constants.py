"""The kernel's XFRM netlink numbers (linux/xfrm.h, linux/netlink.h): message types, flags,
socket options."""

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
