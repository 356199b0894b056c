"""XfrmNetlink: the XFRM driver (:class:`southbound.xfrm.api.XfrmDriver`) on NETLINK_XFRM.

Messages are pyroute2 nlmsg classes (:mod:`southbound.xfrm.messages`) and are parsed by
pyroute2's Marshal; the socket is a plain ``AF_NETLINK`` socket (opened in another network
namespace through ``pyroute2.netns.create_socket`` when ``netns`` is given). pyroute2's own
``NetlinkSocket`` is not used: its synchronous API runs a private asyncio loop per call, which
cannot run inside the gateway's loop, and costs more than the request itself.

Requests ask for an ACK with NETLINK_CAP_ACK (the kernel does not echo our message, with its
keys, back in errors); batches are sent in chunks whose ACKs fit the receive buffer. The bulk
adds (``add_states``/``add_policies``) pack their messages with :mod:`southbound.xfrm.fastpack`
(the same bytes, without pyroute2's per-field work) and read their ACKs without the Marshal.
"""

from __future__ import annotations

import asyncio
import errno as E
import itertools
import logging
import os
import select
import socket
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any, Self

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
from southbound.xfrm.api import XfrmError, XfrmExists, XfrmNotFound, XfrmUnsupported
from southbound.xfrm.codec.events import event_from
from southbound.xfrm.codec.fields import addr_bytes
from southbound.xfrm.codec.policies import policy_attrs, policy_fields, policy_from, policyid_fields
from southbound.xfrm.codec.states import said_fields, state_attrs, state_fields, state_from
from southbound.xfrm.constants import (
    NETLINK_ADD_MEMBERSHIP,
    NETLINK_CAP_ACK,
    NETLINK_EXT_ACK,
    SOL_NETLINK,
    XFRM_MSG_DELPOLICY,
    XFRM_MSG_DELSA,
    XFRM_MSG_GETPOLICY,
    XFRM_MSG_GETSA,
    XFRM_MSG_NEWPOLICY,
    XFRM_MSG_NEWSA,
    XFRM_MSG_UPDPOLICY,
    XFRM_MSG_UPDSA,
    XFRM_POLICY_MAX,
)
from southbound.xfrm.types import (
    DEFAULT_GROUPS,
    Group,
    PolicyId,
    SaId,
    XfrmEvent,
    XfrmPolicy,
    XfrmState,
)

log = logging.getLogger(__name__)

NETLINK_XFRM = 6
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
RCVBUF = 16 << 20
SNDBUF = 4 << 20
FAST_CHUNK = 1024  # bulk adds per round (one send): their ACK skbs fit RCVBUF
FAST_SEND = 1 << 20  # bytes per sendmsg of the bulk path (below SNDBUF)
ACK_BUF = 1 << 16  # one ACK datagram (error + request header + extended-ACK text)
RECV_SIZE = 1 << 20
CHUNK = 256  # requests per batch chunk: their ACKs (CAP_ACK: 36 bytes each) fit RCVBUF


def _open(netns: str | None) -> socket.socket:
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


def _error(code: int, what: str, kernel_msg: str | None) -> XfrmError:
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


def _describe_state(st: XfrmState | SaId) -> str:
    return f"SA {st.proto.name.lower()} spi {st.spi:#010x} dst {st.dst}"


def _describe_policy(p: XfrmPolicy | PolicyId) -> str:
    sel = p.selector
    return f"policy {p.direction.name.lower()} {sel.src} -> {sel.dst}" + (
        f" if_id {p.if_id}" if p.if_id else "")


class XfrmNetlink:
    """The kernel's SAD/SPD over one NETLINK_XFRM socket (not thread-safe: one user at a time).

    ``netns``: the name of a network namespace (``ip netns``) to work in; None: our own.
    """

    def __init__(self, netns: str | None = None) -> None:
        self._netns = netns
        self._sock = _open(netns)
        self._marshal = messages.MarshalXfrm()
        self._seq = itertools.count(int.from_bytes(os.urandom(2), "big") + 1)

    # ------------------------------------------------------------------- the exchange

    def _send(self, msg: Any, mtype: int, flags: int) -> int:
        seq = next(self._seq) & 0xFFFFFFFF
        msg["header"]["type"] = mtype
        msg["header"]["flags"] = flags
        msg["header"]["sequence_number"] = seq
        msg["header"]["pid"] = 0
        msg.encode()
        self._sock.send(bytes(msg.data))
        return seq

    def _send_many(self, msgs: list[tuple[Any, int, int]]) -> list[int]:
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

    def _messages(self) -> Iterator[Any]:
        data = self._sock.recv(RECV_SIZE)
        yield from self._marshal.parse(data)

    def _acks(self, seqs: list[int]) -> dict[int, tuple[int, str | None]]:
        """Wait for the ACK (or error) of every sequence number: {seq: (errno, kernel text)}."""
        want = set(seqs)
        out: dict[int, tuple[int, str | None]] = {}
        while want:
            for msg in self._messages():
                seq = msg["header"]["sequence_number"]
                if seq not in want or msg["header"]["type"] != NLMSG_ERROR:
                    continue
                code = abs(msg["error"])
                out[seq] = (code, msg.get_attr("NLMSGERR_ATTR_MSG") if code else None)
                want.discard(seq)
        return out

    def _request(self, msg: Any, mtype: int, flags: int, what: str) -> None:
        seq = self._send(msg, mtype, NLM_F_REQUEST | NLM_F_ACK | flags)
        code, text = self._acks([seq])[seq]
        if code:
            raise _error(code, what, text)

    def _get(self, msg: Any, mtype: int, what: str) -> Any | None:
        """One object by key (its message), None when the kernel has none."""
        seq = self._send(msg, mtype, NLM_F_REQUEST)
        while True:
            for reply in self._messages():
                if reply["header"]["sequence_number"] != seq:
                    continue
                if reply["header"]["type"] == NLMSG_ERROR:
                    code = abs(reply["error"])
                    if code in (E.ENOENT, E.ESRCH):
                        return None
                    raise _error(code, what, reply.get_attr("NLMSGERR_ATTR_MSG"))
                return reply

    def _dump(self, mtype: int) -> list[Any]:
        req = nlmsg()
        seq = self._send(req, mtype, NLM_F_REQUEST | NLM_F_DUMP)
        out: list[Any] = []
        while True:
            for reply in self._messages():
                if reply["header"]["sequence_number"] != seq:
                    continue
                t = reply["header"]["type"]
                if t == NLMSG_DONE:
                    return out
                if t == NLMSG_ERROR:
                    code = abs(reply["error"])
                    if code:
                        raise _error(code, "dump", None)
                    return out
                out.append(reply)

    # ---------------------------------------------------------------------------- SAD

    @staticmethod
    def _state_msg(state: XfrmState) -> Any:
        msg = messages.xfrm_usersa_info()
        msg.update(state_fields(state))
        msg["attrs"] = state_attrs(state)
        return msg

    def add_state(self, state: XfrmState) -> None:
        """Install STATE (XFRM_MSG_NEWSA); XfrmExists if its key is taken."""
        self._request(self._state_msg(state), XFRM_MSG_NEWSA, NLM_F_CREATE | NLM_F_EXCL,
                      f"add {_describe_state(state)}")

    def update_state(self, state: XfrmState) -> None:
        """Replace the SA with STATE's key (XFRM_MSG_UPDSA); XfrmNotFound if absent."""
        self._request(self._state_msg(state), XFRM_MSG_UPDSA, 0,
                      f"update {_describe_state(state)}")

    @staticmethod
    def _said_msg(sa: SaId) -> Any:
        msg = messages.xfrm_usersa_id()
        msg.update(said_fields(sa))
        msg["attrs"] = [("XFRMA_SRCADDR", {"addr": addr_bytes(sa.src)})] if sa.src else []
        return msg

    def delete_state(self, sa: SaId) -> None:
        """Remove the SA (XFRM_MSG_DELSA); XfrmNotFound if absent."""
        self._request(self._said_msg(sa), XFRM_MSG_DELSA, 0, f"delete {_describe_state(sa)}")

    def get_state(self, sa: SaId) -> XfrmState | None:
        """The SA with this key, with its current lifetime and statistics, or None."""
        reply = self._get(self._said_msg(sa), XFRM_MSG_GETSA, f"get {_describe_state(sa)}")
        return None if reply is None else state_from(reply)

    def dump_states(self) -> list[XfrmState]:
        """Every SA of the SAD, with keys, current lifetimes and statistics."""
        return [state_from(msg) for msg in self._dump(XFRM_MSG_GETSA)]

    def _batch(self, items: list[tuple[Any, int, int]], names: list[str]) -> list[
            XfrmError | None]:
        out: list[XfrmError | None] = []
        for start in range(0, len(items), CHUNK):
            chunk = items[start : start + CHUNK]
            seqs = self._send_many(chunk)
            acks = self._acks(seqs)
            for i, seq in enumerate(seqs):
                code, text = acks[seq]
                out.append(_error(code, names[start + i], text) if code else None)
        return out

    def _fast_batch(self, items: list, pack: Any, mtype: int, describe: Any) -> list[
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
                out.append(_error(code, f"add {describe(item)}", text) if code else None)
        return out

    def add_states(self, states: Iterable[XfrmState]) -> list[XfrmError | None]:
        """Install many SAs, pipelined; one error or None per state, in order."""
        return self._fast_batch(list(states), fastpack.state_message, XFRM_MSG_NEWSA,
                                _describe_state)

    # ---------------------------------------------------------------------------- SPD

    @staticmethod
    def _policy_msg(policy: XfrmPolicy) -> Any:
        msg = messages.xfrm_userpolicy_info()
        msg.update(policy_fields(policy))
        msg["attrs"] = policy_attrs(policy)
        return msg

    @staticmethod
    def _policyid_msg(pid: PolicyId) -> Any:
        msg = messages.xfrm_userpolicy_id()
        msg.update(policyid_fields(pid))
        msg["attrs"] = [("XFRMA_IF_ID", pid.if_id)] if pid.if_id else []
        return msg

    def _read_back(self, policy: XfrmPolicy) -> XfrmPolicy:
        got = self.get_policy(policy.id)
        if got is None:  # removed in between by someone else
            raise XfrmNotFound(E.ENOENT, f"{_describe_policy(policy)}: gone after it was set")
        return got

    def add_policy(self, policy: XfrmPolicy) -> XfrmPolicy:
        """Install POLICY (XFRM_MSG_NEWPOLICY); returns it as the kernel holds it."""
        self._request(self._policy_msg(policy), XFRM_MSG_NEWPOLICY,
                      NLM_F_CREATE | NLM_F_EXCL, f"add {_describe_policy(policy)}")
        return self._read_back(policy)

    def update_policy(self, policy: XfrmPolicy) -> XfrmPolicy:
        """Add or replace POLICY (XFRM_MSG_UPDPOLICY); returns it as the kernel holds it."""
        self._request(self._policy_msg(policy), XFRM_MSG_UPDPOLICY, NLM_F_CREATE,
                      f"update {_describe_policy(policy)}")
        return self._read_back(policy)

    def delete_policy(self, policy: PolicyId) -> None:
        """Remove the policy (XFRM_MSG_DELPOLICY); XfrmNotFound if absent."""
        self._request(self._policyid_msg(policy), XFRM_MSG_DELPOLICY, 0,
                      f"delete {_describe_policy(policy)}")

    def get_policy(self, policy: PolicyId) -> XfrmPolicy | None:
        """The policy with this key (selector+direction+if_id, or index), or None."""
        reply = self._get(self._policyid_msg(policy), XFRM_MSG_GETPOLICY,
                          f"get {_describe_policy(policy)}")
        return None if reply is None else policy_from(reply)

    def dump_policies(self) -> list[XfrmPolicy]:
        """Every policy of the SPD (socket policies excluded), with current lifetimes."""
        # the kernel's dump includes per-socket policies (dir 3..5: XFRM_POLICY_MAX + dir,
        # e.g. charon's IKE bypass; `ip xfrm policy` prints them as "socket in/out"): they
        # belong to a socket, not to the SPD
        return [policy_from(msg) for msg in self._dump(XFRM_MSG_GETPOLICY)
                if dict.get(msg, "dir", 0) < XFRM_POLICY_MAX]

    def add_policies(self, policies: Iterable[XfrmPolicy]) -> list[XfrmError | None]:
        """Install many policies, pipelined; one error or None per policy, in order."""
        return self._fast_batch(list(policies), fastpack.policy_message,
                                XFRM_MSG_NEWPOLICY, _describe_policy)

    # ------------------------------------------------------------------------- both

    def flush(self, states: Iterable[SaId] = (), policies: Iterable[PolicyId] = ()) -> int:
        """Remove exactly these SAs and policies (those already gone are skipped); returns
        how many were removed. Never XFRM_MSG_FLUSH*: what others hold stays."""
        flags = NLM_F_REQUEST | NLM_F_ACK
        items = [(self._said_msg(s), XFRM_MSG_DELSA, flags) for s in states]
        items += [(self._policyid_msg(p), XFRM_MSG_DELPOLICY, flags) for p in policies]
        names = [f"delete #{i}" for i in range(len(items))]
        removed = 0
        for err in self._batch(items, names):
            if err is None:
                removed += 1
            elif not isinstance(err, XfrmNotFound):
                raise err
        return removed

    def events(self, groups: Iterable[Group] = DEFAULT_GROUPS) -> XfrmEvents:
        """Subscribe to the kernel's XFRM events in GROUPS (a socket of its own)."""
        return XfrmEvents(self._netns, groups)

    def close(self) -> None:
        """Close the driver's socket."""
        self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class XfrmEvents:
    """A subscription to XFRM multicast groups (:class:`southbound.xfrm.api.XfrmEventStream`).

    A receive buffer overrun (ENOBUFS: events came faster than they were read) is logged and
    reading goes on; the events lost are gone (the kernel does not resend).
    """

    def __init__(self, netns: str | None, groups: Iterable[Group]) -> None:
        self._sock = _open(netns)
        for group in groups:
            self._sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, int(group))
        self._sock.setblocking(False)
        self._marshal = messages.MarshalXfrm()
        self.overruns = 0

    def fileno(self) -> int:
        """The socket's descriptor."""
        return self._sock.fileno()

    def _drain(self) -> list[XfrmEvent]:
        out: list[XfrmEvent] = []
        while True:
            try:
                data = self._sock.recv(RECV_SIZE)
            except BlockingIOError:
                return out
            except OSError as exc:
                if exc.errno == E.ENOBUFS:
                    self.overruns += 1
                    log.warning("xfrm events: receive buffer overrun, events lost")
                    continue
                raise
            for msg in self._marshal.parse(data):
                try:
                    event = event_from(msg)
                except (ValueError, KeyError) as exc:  # a message we cannot read: say so
                    log.warning("xfrm events: unreadable message type %s: %s",
                                msg["header"]["type"], exc)
                    continue
                if event is not None:
                    out.append(event)

    def read(self, timeout: float | None = None) -> list[XfrmEvent]:
        """The events that arrived; waits up to TIMEOUT seconds for the first (None: until
        one arrives) and returns [] when none did."""
        while True:
            ready, _, _ = select.select([self._sock], [], [], timeout)
            if not ready:
                return []
            events = self._drain()
            if events or timeout is not None:
                return events

    def __iter__(self) -> Iterator[XfrmEvent]:
        while self._sock.fileno() >= 0:
            yield from self.read(None)

    async def __aiter__(self) -> AsyncIterator[XfrmEvent]:
        loop = asyncio.get_running_loop()
        while self._sock.fileno() >= 0:
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(self.fileno(), _wake, ready)
            try:
                await ready
            finally:
                loop.remove_reader(self.fileno())
            for event in self._drain():
                yield event

    def close(self) -> None:
        """Leave the groups and close the socket."""
        self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
