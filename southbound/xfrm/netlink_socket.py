"""The NETLINK_XFRM socket: opened (in a network namespace when asked) with its buffers and
ACK options, and the kernel's errno turned into our error classes."""

from __future__ import annotations

import errno as E
import os
import socket

from southbound.xfrm.api import XfrmError, XfrmExists, XfrmNotFound, XfrmUnsupported
from southbound.xfrm.constants import NETLINK_CAP_ACK, NETLINK_EXT_ACK, SOL_NETLINK

NETLINK_XFRM = 6
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
RCVBUF = 16 << 20
SNDBUF = 4 << 20

# bulk adds per round, and bytes per sendmsg: small enough that the kernel's own work (the
# SAD/SPD hash resizes it schedules as the tables grow) runs between rounds. With 1,024 per
# round in 1 MiB datagrams, 10,000 SA pairs took 358 s in the kernel VM against 56 s with 64
# in 64 KiB (ip -batch: 106-180 s; docs/benchmarks.md)
FAST_CHUNK = 64
FAST_SEND = 1 << 16
ACK_BUF = 1 << 16  # one ACK datagram (error + request header + extended-ACK text)
RECV_SIZE = 1 << 20
CHUNK = 256  # requests per batch chunk: their ACKs (CAP_ACK: 36 bytes each) fit RCVBUF


def open_socket(netns: str | None) -> socket.socket:
    """A NETLINK_XFRM socket in NETNS (None: this process's namespace)."""
    if netns is None:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_XFRM)
    else:
        from pyroute2 import netns as pr_netns

        sock = pr_netns.create_socket(
            netns=netns, family=socket.AF_NETLINK, socket_type=socket.SOCK_RAW,
            proto=NETLINK_XFRM, flags=0,
        )
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
    except OSError:  # not root: the ordinary limit
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, SNDBUF)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
    sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
    sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
    sock.bind((0, 0))
    return sock


def kernel_error(code: int, what: str, kernel_msg: str | None) -> XfrmError:
    """The XfrmError class for errno CODE while doing WHAT (no keys: WHAT names the SA/SP)."""
    text = f"{what}: {os.strerror(code)}"
    if kernel_msg:
        text += f" ({kernel_msg})"
    if code == E.EEXIST:
        return XfrmExists(code, text)
    if code in (E.ENOENT, E.ESRCH):
        return XfrmNotFound(code, text)
    if code in (E.EPROTONOSUPPORT, E.ENOSYS, E.EAFNOSUPPORT, E.EOPNOTSUPP):
        return XfrmUnsupported(code, text)
    return XfrmError(code, text)
