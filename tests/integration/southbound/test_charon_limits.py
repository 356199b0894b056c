"""What a real charon cannot take, and how the reconciler reports it: the VICI message limit
(checked against charon itself, so our constant is charon's), an oversized VPN failed with a
clear reason while a small one committed afterwards is applied, and a connection replaced
behind our back noticed from what charon reports.

Needs root and ``ip netns`` (CI runs as root): fails loudly, never skips, when unusable.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import vici

from nf.effective import EffectiveConfig, SecurityPolicy, TrafficSelector
from southbound.charon import CharonProcess
from southbound.charon_backend import DATAPLANES, VPN, CharonBackend
from southbound.reconciler import Reconciler
from southbound.vici_client import (
    MAX_MESSAGE,
    ViciClient,
    ViciEncodingError,
    request_size,
)
from tests.unit.southbound.test_convert import VPN as SITE_VPN

pytestmark = pytest.mark.e2e


@pytest.fixture
def charon(tmp_path: Path) -> Iterator[CharonProcess]:
    """A real charon in a throw-away namespace."""
    if os.geteuid() != 0:
        pytest.fail("this test needs root (ip netns, charon); run it as root")
    ns = f"chl{os.getpid() % 100000}"
    res = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(f"`ip netns add` is not usable here: {res.stderr.strip()}")
    proc = CharonProcess(tmp_path / "charon", netns=ns)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        proc.start()
        yield proc
    finally:
        proc.stop()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def conn_with_children(n: int) -> dict:
    return {"version": "2", "local": {"auth": "psk"}, "remote": {"auth": "psk"},
            "children": {f"c{i}": {"local_ts": ["10.0.0.0/24"],
                                   "remote_ts": [f"10.{i // 250}.{i % 250}.0/24"],
                                   "esp_proposals": ["aes128-sha256"]} for i in range(n)}}


def raw_session(charon: CharonProcess) -> vici.Session:
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(10)
    sock.connect(str(charon.socket_path))
    return vici.Session(sock)


def test_max_message_is_charons_limit(charon: CharonProcess) -> None:
    under, over = conn_with_children(5400), conn_with_children(5800)
    assert request_size("load-conn", {"u": under}) <= MAX_MESSAGE
    assert request_size("load-conn", {"o": over}) > MAX_MESSAGE
    # charon itself, without our check: takes the first, closes the session on the second
    raw = raw_session(charon)
    raw.load_conn({"u": under})
    assert b"u" in raw.get_conns()["conns"]
    raw = raw_session(charon)
    with pytest.raises(OSError):
        raw.load_conn({"o": over})
        raw.get_conns()
    # our client refuses it before sending, with the reason
    with ViciClient(charon.socket_path) as c:
        with pytest.raises(ViciEncodingError, match="at most 524288 bytes"):
            c.load_conn("o", over)
        assert c.get_conns() == {"u"}  # the session is still good


def policies(n: int) -> tuple[SecurityPolicy, ...]:
    return tuple(SecurityPolicy(
        name=f"p{i}", local_ts=TrafficSelector(subnet=("10.0.0.0/24",)),
        remote_ts=TrafficSelector(subnet=(f"10.{i // 250}.{i % 250}.0/24",))) for i in range(n))


def test_an_entry_charon_cannot_take_fails_alone(charon: CharonProcess) -> None:
    huge = replace(SITE_VPN, name="huge", security_policies=policies(10_000))
    small = replace(SITE_VPN, name="small")

    async def body() -> None:
        rec = Reconciler(CharonBackend(charon.socket_path, DATAPLANES["kernel-libipsec"]))
        task = asyncio.create_task(rec.run())
        try:
            rec.set_desired(replace(EffectiveConfig.empty(), vpns={"huge": huge}))
            assert await rec.wait_applied(10)
            st = rec.status.get(VPN, "huge")
            assert st is not None and st.status == "failed"
            assert "charon's VICI accepts at most 524288 bytes" in (st.message or "")
            rec.set_desired(replace(EffectiveConfig.empty(),
                                    vpns={"huge": huge, "small": small}), {VPN: ["small"]})
            assert await rec.wait_applied(10)
            assert rec.status.get(VPN, "small").status == "applied"  # type: ignore[union-attr]
            with ViciClient(charon.socket_path) as c:
                assert c.get_conns() == {"small"}
            assert rec.health().status == "up"
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    asyncio.run(body())


def test_a_connection_replaced_behind_our_back_is_loaded_again(
        charon: CharonProcess) -> None:
    async def body() -> None:
        rec = Reconciler(CharonBackend(charon.socket_path, DATAPLANES["kernel-libipsec"]),
                         sync_interval=0.5)
        task = asyncio.create_task(rec.run())
        try:
            rec.set_desired(replace(EffectiveConfig.empty(), vpns={"v": SITE_VPN}))
            assert await rec.wait_converged(10)
            first = rec.syncs
            while rec.syncs < first + 2:  # read back once after the load
                await asyncio.sleep(0.1)
            with ViciClient(charon.socket_path) as c:
                before = c.list_conns()
                c.load_conn("v", {"version": "1", "local": {"auth": "psk"},
                                  "remote": {"auth": "psk"}})
            repairs = rec.drift_repairs
            for _ in range(50):
                await asyncio.sleep(0.1)
                with ViciClient(charon.socket_path) as c:
                    if c.list_conns() == before:
                        break
            with ViciClient(charon.socket_path) as c:
                assert c.list_conns() == before, "the replaced connection was not restored"
            assert rec.drift_repairs > repairs
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    asyncio.run(body())
