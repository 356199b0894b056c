"""Our netlink XFRM driver on this host's kernel, in a network namespace of its own (the host's
own SAD/SPD are never touched): what needs no ESP in the kernel.

- the SPD: policies with templates, if_id, lifetimes added, read back, compared with
  `ip xfrm policy` (iproute2, an independent reader), updated, deleted; a batch of 300;
  ``flush`` removes ours only (a policy added with `ip xfrm` stays);
- events: an acquire from a packet hitting a policy without SA (the kernel sends it without
  ESP), a policy's soft then hard expire, policy changes, read blocking and with
  ``async for``;
- SAs: refused with XfrmUnsupported naming the kernel's reason when the kernel has no ESP
  (southbound/kernel_esp.py tells); added and read back where it has;
- the state tree's reader: /proc/net/xfrm_stat of the namespace, every counter, under the
  RouterOS names, moving with the traffic that made the kernel count.

Needs root and `ip netns`; it fails, never skips, when they are missing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from itertools import count

import pytest

from southbound.kernel_esp import esp_sources
from southbound.kernel_state import STAT_NAMES, KernelStateReader, parse_xfrm_stat
from southbound.xfrm.api import XfrmExists, XfrmNotFound, XfrmUnsupported
from southbound.xfrm.netlink import XfrmNetlink
from southbound.xfrm.types import (
    AcquireEvent,
    Action,
    AeadAlgorithm,
    Change,
    Direction,
    Group,
    Lifetime,
    Mode,
    PolicyChanged,
    PolicyExpireEvent,
    PolicyId,
    Selector,
    Template,
    XfrmPolicy,
    XfrmState,
)

A = ipaddress.ip_address("192.0.2.1")
B = ipaddress.ip_address("192.0.2.2")
_N = count()


def sh(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


@pytest.fixture
def ns() -> Iterator[str]:
    name = f"xfrm{os.getpid()}n{next(_N)}"
    r = sh("ip", "netns", "add", name)
    assert r.returncode == 0, f"ip netns add: {r.stderr}"
    try:
        # a link to send on: 192.0.2.1/24 on one end of a veth pair inside the namespace
        for cmd in (("link", "set", "lo", "up"),
                    ("link", "add", "x0", "type", "veth", "peer", "name", "x1"),
                    ("addr", "add", f"{A}/24", "dev", "x0"),
                    ("link", "set", "x0", "up"), ("link", "set", "x1", "up")):
            r = sh("ip", "-n", name, *cmd)
            assert r.returncode == 0, f"ip {' '.join(cmd)}: {r.stderr}"
        yield name
    finally:
        sh("ip", "netns", "del", name)


@pytest.fixture
def drv(ns: str) -> Iterator[XfrmNetlink]:
    d = XfrmNetlink(ns)
    yield d
    d.close()


def net(text: str) -> ipaddress.IPv4Network:
    return ipaddress.ip_network(text)


def ip_policy(ns: str) -> str:
    r = sh("ip", "-n", ns, "xfrm", "policy")
    assert r.returncode == 0, r.stderr
    return r.stdout


def send_udp(ns: str, dst: ipaddress.IPv4Address, port: int) -> None:
    """One UDP datagram from inside NS (the send may fail: the kernel dropped it)."""
    sh("ip", "netns", "exec", ns, "bash", "-c", f"echo x > /dev/udp/{dst}/{port}")


def test_policy_round_trip_against_ip_xfrm(ns: str, drv: XfrmNetlink) -> None:
    sel = Selector(net("10.1.0.0/16"), net("10.2.0.0/24"), proto=17, sport=500, dport=4500)
    pol = XfrmPolicy(sel, Direction.OUT, priority=2000, if_id=0x42,
                     templates=(Template(dst=B, src=A, reqid=7),
                                # optional: transport only (the kernel refuses other
                                # modes in an outbound policy)
                                Template(dst=B, src=A, reqid=8, mode=Mode.TRANSPORT,
                                         optional=True)),
                     lifetime=Lifetime(hard_add_seconds=3600))
    got = drv.add_policy(pol)
    assert got.index > 0
    assert (got.selector, got.direction, got.priority, got.if_id, got.templates,
            got.lifetime) == (sel, pol.direction, 2000, 0x42, pol.templates, pol.lifetime)
    assert got.current is not None and got.current.add_time > 0
    with pytest.raises(XfrmExists):
        drv.add_policy(pol)
    text = ip_policy(ns)
    # iproute2 names the protocol only with netbase's /etc/protocols
    assert re.search(r"src 10.1.0.0/16 dst 10.2.0.0/24 proto (udp|17) sport 500 dport 4500",
                     text), text
    assert "dir out priority 2000" in text and "if_id 0x42" in text, text
    assert f"tmpl src {A} dst {B}\n\t\tproto esp reqid 7 mode tunnel" in text, text
    assert "level use" in text, text
    assert drv.get_policy(pol.id) == got
    assert drv.get_policy(PolicyId(sel, Direction.IN)) is None
    # update: a blocking policy now; index kept
    upd = drv.update_policy(XfrmPolicy(sel, Direction.OUT, action=Action.BLOCK, priority=5,
                                       if_id=0x42))
    assert (upd.action, upd.priority, upd.templates, upd.index) == (
        Action.BLOCK, 5, (), got.index)
    assert "action block priority 5" in ip_policy(ns)
    assert drv.dump_policies() == [drv.get_policy(pol.id)]
    drv.delete_policy(pol.id)
    with pytest.raises(XfrmNotFound):
        drv.delete_policy(pol.id)
    assert ip_policy(ns).strip() == "" and drv.dump_policies() == []


def test_batch_and_flush_leave_others_policies(ns: str, drv: XfrmNetlink) -> None:
    pols = [XfrmPolicy(Selector(net(f"10.{i // 250}.{i % 250}.0/24"), net("10.255.0.0/16")),
                       Direction.FWD, templates=(Template(dst=B, src=A, reqid=i + 1),))
            for i in range(300)]
    assert drv.add_policies(pols) == [None] * 300
    errors = drv.add_policies(pols[:2])  # a second time: each one refused, in order
    assert [type(e) for e in errors] == [XfrmExists, XfrmExists]
    theirs = sh("ip", "-n", ns, "xfrm", "policy", "add", "src", "10.9.9.0/24", "dst",
                "10.255.0.0/16", "dir", "fwd")
    assert theirs.returncode == 0, theirs.stderr
    assert len(drv.dump_policies()) == 301
    assert drv.flush(policies=[p.id for p in pols] + [PolicyId(Selector.any(4),
                                                               Direction.IN)]) == 300
    left = drv.dump_policies()
    assert [str(p.selector.src) for p in left] == ["10.9.9.0/24"]
    assert "src 10.9.9.0/24 dst 10.255.0.0/16" in ip_policy(ns)


def test_acquire_from_a_packet_without_sa(ns: str, drv: XfrmNetlink) -> None:
    tmpl = Template(dst=B, src=A, reqid=5, mode=Mode.TRANSPORT)
    pol = drv.add_policy(XfrmPolicy(Selector(net(f"{A}/32"), net(f"{B}/32")), Direction.OUT,
                                    templates=(tmpl,)))
    with drv.events([Group.ACQUIRE]) as events:
        send_udp(ns, B, 9)
        got: list[AcquireEvent] = []
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            got = [e for e in events.read(0.5) if isinstance(e, AcquireEvent)]
    assert got, "the kernel sent no acquire"
    acq = got[0]
    assert (acq.src, acq.dst, acq.template, acq.policy.index) == (A, B, tmpl, pol.index)
    assert (acq.selector.proto, acq.selector.dport, acq.selector.dst) == (17, 9, net(f"{B}/32"))
    assert acq.seq > 0


def test_policy_soft_then_hard_expire_and_changes(ns: str, drv: XfrmNetlink) -> None:
    sel = Selector(net("10.3.0.0/16"), net("10.4.0.0/16"))
    with drv.events([Group.EXPIRE, Group.POLICY]) as events:
        drv.add_policy(XfrmPolicy(sel, Direction.IN,
                                  lifetime=Lifetime(soft_add_seconds=1, hard_add_seconds=2)))
        seen: list = []
        deadline = time.monotonic() + 15
        while sum(isinstance(e, PolicyExpireEvent) for e in seen) < 2 and (
                time.monotonic() < deadline):
            seen += events.read(0.5)
    expiries = [e.hard for e in seen if isinstance(e, PolicyExpireEvent)]
    assert expiries == [False, True], seen
    changes = [(e.change, e.id.selector) for e in seen if isinstance(e, PolicyChanged)]
    # the hard expire is the only word of the removal: no DELPOLICY follows it
    assert changes == [(Change.NEW, sel)], changes
    assert drv.dump_policies() == []  # a hard expire removes the policy


def test_events_async_for(ns: str, drv: XfrmNetlink) -> None:
    sel = Selector(net("10.5.0.0/16"), net("10.6.0.0/16"))

    async def first_change() -> PolicyChanged:
        with drv.events([Group.POLICY]) as events:
            await asyncio.get_running_loop().run_in_executor(
                None, drv.add_policy, XfrmPolicy(sel, Direction.OUT))
            async for event in events:
                if isinstance(event, PolicyChanged):
                    return event
        raise AssertionError("stream ended")

    ev = asyncio.run(asyncio.wait_for(first_change(), 10))
    assert ev.change == Change.NEW and ev.policy.selector == sel


def test_sa_refused_without_kernel_esp_else_installed(ns: str, drv: XfrmNetlink) -> None:
    st = XfrmState(A, B, 0x1001, reqid=1,
                   aead=AeadAlgorithm("rfc4106(gcm(aes))", bytes(20), 128))
    if esp_sources():  # a kernel with ESP: the SA is there and reads back
        drv.add_state(st)
        assert [s.spi for s in drv.dump_states()] == [0x1001]
        drv.delete_state(st.id)
    else:
        with pytest.raises(XfrmUnsupported) as err:
            drv.add_state(st)
        # the kernel's reason, and which SA; never the key
        assert "not found" in str(err.value) and "spi 0x00001001" in str(err.value)
        assert bytes(20).hex() not in str(err.value)
        assert drv.dump_states() == []


def test_xfrm_stat_reader_every_counter_moving_with_traffic(ns: str, drv: XfrmNetlink) -> None:
    def proc() -> dict[str, int]:
        r = sh("ip", "netns", "exec", ns, "cat", "/proc/net/xfrm_stat")
        assert r.returncode == 0, r.stderr
        return parse_xfrm_stat(r.stdout)

    reader = KernelStateReader(tables=True, netns=ns)
    drv.add_policy(XfrmPolicy(Selector(net(f"{A}/32"), net(f"{B}/32")), Direction.OUT,
                              action=Action.BLOCK))
    for _ in range(3):
        send_udp(ns, B, 9)
    kernel = proc()
    assert kernel["XfrmOutPolBlock"] >= 3
    # the reader reads /proc/net of the namespace it runs in: run it there
    r = sh("ip", "netns", "exec", ns, ".venv/bin/python", "-c",
           "import json; from southbound.kernel_state import read_statistics; "
           "print(json.dumps(read_statistics()))")
    assert r.returncode == 0, r.stderr
    import json

    tree = json.loads(r.stdout)
    assert tree == {STAT_NAMES[k]: v for k, v in kernel.items()}  # every counter, named
    assert tree["out-policy-blocked"] == kernel["XfrmOutPolBlock"]
    # the tables part of the same reader, over the driver in that namespace
    policies = reader.read()["kernel"]["policy"]
    assert [(p["direction"], p["action"]) for p in policies] == [("out", "block")]
    reader.close()


def test_per_socket_policies_are_not_in_the_spd(ns: str, drv: XfrmNetlink) -> None:
    """A socket's own policy (charon's IKE bypass: IP_XFRM_POLICY) is in the kernel's dump
    (`ip xfrm policy` prints "socket in"), not in the driver's."""
    from southbound.xfrm import layouts, messages
    from southbound.xfrm.codec.policies import policy_fields

    msg = messages.xfrm_userpolicy_info()
    msg.update(policy_fields(XfrmPolicy(Selector.any(4), Direction.IN)))
    msg["attrs"] = []
    msg.encode()
    bypass = bytes(msg.data)[16:16 + layouts.sizeof(layouts.USERPOLICY_INFO)]
    script = (
        "import socket, sys, time\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"s.setsockopt(socket.IPPROTO_IP, 17, bytes.fromhex('{bypass.hex()}'))\n"
        "print('set', flush=True)\n"
        "sys.stdin.read()\n")
    holder = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", script],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "set"
        assert "socket in" in ip_policy(ns)
        mine = drv.add_policy(XfrmPolicy(Selector(net("10.7.0.0/16"), net("10.8.0.0/16")),
                                         Direction.OUT))
        assert drv.dump_policies() == [mine]
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
