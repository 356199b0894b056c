"""One NETLINK_XFRM socket's requests and replies: messages numbered and sent (alone, in
datagrams, or as a bulk batch), then their ACKs, replies and dumps read back.

Requests ask for an ACK with NETLINK_CAP_ACK (the kernel does not echo our message, with its
keys, back in errors); batches are sent in chunks whose ACKs fit the receive buffer. The bulk
path (:meth:`NetlinkExchange.fast_batch`) sends messages packed by
:mod:`southbound.xfrm.fastpack` and reads their ACKs without pyroute2's Marshal.
"""

from __future__ import annotations

import errno as E
import itertools
import os
from collections.abc import Iterator
from typing import Any

from pyroute2.netlink import (
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_EXCL,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    nlmsg,
)

from southbound.xfrm import fastpack, messages
from southbound.xfrm.api import XfrmError
from southbound.xfrm.netlink_socket import (
    ACK_BUF,
    CHUNK,
    FAST_CHUNK,
    FAST_SEND,
    RECV_SIZE,
    kernel_error,
    open_socket,
)


class NetlinkExchange:
    """Requests and their replies over one NETLINK_XFRM socket (one user at a time).

    ``netns``: the name of a network namespace (``ip netns``) to work in; None: our own.
    """

    def __init__(self, netns: str | None = None) -> None:
        self._sock = open_socket(netns)
        self._marshal = messages.MarshalXfrm()
        self._seq = itertools.count(int.from_bytes(os.urandom(2), "big") + 1)

    def send(self, msg: Any, mtype: int, flags: int) -> int:
        """Number and send MSG as a message of type MTYPE with FLAGS; its sequence number."""
        seq = next(self._seq) & 0xFFFFFFFF
        msg["header"]["type"] = mtype
        msg["header"]["flags"] = flags
        msg["header"]["sequence_number"] = seq
        msg["header"]["pid"] = 0
        msg.encode()
        self._sock.send(bytes(msg.data))
        return seq

    def send_many(self, msgs: list[tuple[Any, int, int]]) -> list[int]:
        """Encode MSGS and send them in as few datagrams as fit; their sequence numbers."""
        seqs: list[int] = []
        buf = bytearray()
        for msg, mtype, flags in msgs:
            seq = next(self._seq) & 0xFFFFFFFF
            msg["header"].update(type=mtype, flags=flags, sequence_number=seq, pid=0)
            msg.encode()
            if len(buf) + len(msg.data) > 60000 and buf:
                self._sock.send(bytes(buf))
                buf.clear()
            buf.extend(msg.data)
            seqs.append(seq)
        if buf:
            self._sock.send(bytes(buf))
        return seqs

    def messages(self) -> Iterator[Any]:
        """The messages of the next datagram received, parsed."""
        data = self._sock.recv(RECV_SIZE)
        yield from self._marshal.parse(data)

    def acks(self, seqs: list[int]) -> dict[int, tuple[int, str | None]]:
        """Wait for the ACK (or error) of every sequence number: {seq: (errno, kernel text)}."""
        want = set(seqs)
        out: dict[int, tuple[int, str | None]] = {}
        while want:
            for msg in self.messages():
                seq = msg["header"]["sequence_number"]
                if seq not in want or msg["header"]["type"] != NLMSG_ERROR:
                    continue
                code = abs(msg["error"])
                out[seq] = (code, msg.get_attr("NLMSGERR_ATTR_MSG") if code else None)
                want.discard(seq)
        return out

    def request(self, msg: Any, mtype: int, flags: int, what: str) -> None:
        """Send MSG and wait for its ACK; the kernel's error as an XfrmError naming WHAT."""
        seq = self.send(msg, mtype, NLM_F_REQUEST | NLM_F_ACK | flags)
        code, text = self.acks([seq])[seq]
        if code:
            raise kernel_error(code, what, text)

    def get(self, msg: Any, mtype: int, what: str) -> Any | None:
        """One object by key (its message), None when the kernel has none."""
        seq = self.send(msg, mtype, NLM_F_REQUEST)
        while True:
            for reply in self.messages():
                if reply["header"]["sequence_number"] != seq:
                    continue
                if reply["header"]["type"] == NLMSG_ERROR:
                    code = abs(reply["error"])
                    if code in (E.ENOENT, E.ESRCH):
                        return None
                    raise kernel_error(code, what, reply.get_attr("NLMSGERR_ATTR_MSG"))
                return reply

    def dump(self, mtype: int) -> list[Any]:
        """Every message of a dump request of type MTYPE."""
        req = nlmsg()
        seq = self.send(req, mtype, NLM_F_REQUEST | NLM_F_DUMP)
        out: list[Any] = []
        while True:
            for reply in self.messages():
                if reply["header"]["sequence_number"] != seq:
                    continue
                t = reply["header"]["type"]
                if t == NLMSG_DONE:
                    return out
                if t == NLMSG_ERROR:
                    code = abs(reply["error"])
                    if code:
                        raise kernel_error(code, "dump", None)
                    return out
                out.append(reply)

    def batch(self, items: list[tuple[Any, int, int]], names: list[str]) -> list[
            XfrmError | None]:
        """Send ITEMS (message, type, flags) CHUNK at a time and read their ACKs; one error
        (named by NAMES) or None per item, in order."""
        out: list[XfrmError | None] = []
        for start in range(0, len(items), CHUNK):
            chunk = items[start : start + CHUNK]
            seqs = self.send_many(chunk)
            acks = self.acks(seqs)
            for i, seq in enumerate(seqs):
                code, text = acks[seq]
                out.append(kernel_error(code, names[start + i], text) if code else None)
        return out

    def fast_batch(self, items: list, pack: Any, mtype: int, describe: Any) -> list[
            XfrmError | None]:
        """Add ITEMS with messages from PACK (:mod:`southbound.xfrm.fastpack`), FAST_CHUNK
        per round: packed, sent in datagrams of up to FAST_SEND bytes, then their ACKs read;
        one error (named by DESCRIBE, without keys) or None per item, in order."""
        flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
        out: list[XfrmError | None] = []
        send, recv_into = self._sock.send, self._sock.recv_into
        # one datagram per ACK: recv_into a reused buffer (recv(RECV_SIZE) allocates and
        # shrinks a megabyte each time, measured as a third of the batch)
        buf_in = bytearray(ACK_BUF)
        view = memoryview(buf_in)
        for start in range(0, len(items), FAST_CHUNK):
            chunk = items[start : start + FAST_CHUNK]
            first = next(self._seq)
            for _ in range(len(chunk) - 1):
                next(self._seq)
            seqs = [(first + i) & 0xFFFFFFFF for i in range(len(chunk))]
            buf: list[bytes] = []
            size = 0
            for item, seq in zip(chunk, seqs, strict=True):
                msg = pack(item, mtype, flags, seq)
                if size + len(msg) > FAST_SEND and buf:
                    send(b"".join(buf))
                    buf, size = [], 0
                buf.append(msg)
                size += len(msg)
            if buf:
                send(b"".join(buf))
            want = set(seqs)
            got: dict[int, tuple[int, str | None]] = {}
            while want:
                n = recv_into(buf_in)
                for seq, code, text in fastpack.acks(view[:n]):
                    if seq in want:
                        want.discard(seq)
                        got[seq] = (code, text)
            for item, seq in zip(chunk, seqs, strict=True):
                code, text = got[seq]
                out.append(kernel_error(code, f"add {describe(item)}", text) if code else None)
        return out

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()
