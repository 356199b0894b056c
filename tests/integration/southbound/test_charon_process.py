"""The lifecycle of our charon, for real, in a throw-away network namespace.

- charon dies with the process that started it (parent-death signal through
  ``ip netns exec`` / ``unshare`` / ``sh -c 'exec charon'``), even when the thread that called
  ``start`` has exited, and even when the whole ``ipsec-nf serve`` is killed with SIGKILL;
- a charon left over by an earlier server of the same run directory is stopped before a new
  one starts, and the new one binds UDP 500/4500;
- a charon that runs but could not bind its IKE sockets is a health failure, logged once;
- SIGTERM / stop() still stop charon cleanly, and the supervisor restarts a dead charon.

Needs root and ``ip netns`` (CI runs as root): fails loudly, never skips, when unusable.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from southbound.charon import CharonProcess
from southbound.charon_health import DOWN, SOCKETS_UNBOUND, UP, CharonHealth
from southbound.charon_spawn import leftover_charons
from southbound.charon_supervisor import CharonSupervisor
from tests.support import netns as support_netns
from tests.support import ns_pids

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[3]
BIND_ERRORS = ("could not create any sockets", "unable to bind socket", "NAT-T socket")


@pytest.fixture
def netns() -> Iterator[str]:
    """A fresh network namespace with lo up (and a documentation address on it)."""
    with support_netns("chp", ('192.0.2.1/32',)) as ns:
        yield ns


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie not yet reaped by its new parent counts)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def wait_until(pred: Callable[[], object], timeout: float, what: str | Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what() if callable(what) else what}")


def vici_answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(1.0)
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


def hold_ike_ports(ns: str, ports: tuple[int, ...] = (500, 4500),
                   v6: bool = True) -> subprocess.Popen[str]:
    """A process in ``ns`` that binds UDP ``ports`` (IPv4, and IPv6 if ``v6``) until killed."""
    fams = "[(socket.AF_INET, '0.0.0.0')" + (", (socket.AF_INET6, '::')]" if v6 else "]")
    code = (
        "import socket, time\n"
        "held = []\n"
        f"for fam, addr in {fams}:\n"
        f"    for port in {ports!r}:\n"
        "        s = socket.socket(fam, socket.SOCK_DGRAM)\n"
        "        if fam == socket.AF_INET6:\n"
        "            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)\n"
        "        s.bind((addr, port))\n"
        "        held.append(s)\n"
        "print('bound', flush=True)\n"
        "time.sleep(300)\n")
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", code],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "bound":
        proc.kill()
        pytest.fail(f"could not bind the IKE ports in {ns}: {proc.communicate()[1]}")
    return proc


def orphan_charon(charon: CharonProcess) -> subprocess.Popen[bytes]:
    """Start a charon of ``charon``'s run directory by hand, without any parent-death signal,
    as an earlier server (or an operator) would have left it."""
    charon.write_conf()
    charon.socket_path.unlink(missing_ok=True)
    env = dict(os.environ, STRONGSWAN_CONF=str(charon.conf_path))
    proc = subprocess.Popen(charon.command(), env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    wait_until(lambda: vici_answers(charon.socket_path), 10, "the orphan charon's VICI socket")
    return proc


def log_since(path: Path, offset: int) -> str:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


# -- CharonProcess ------------------------------------------------------------------------------

HELPER = """
import asyncio, sys, time
from pathlib import Path
from southbound.charon import CharonProcess

charon = CharonProcess(Path(sys.argv[1]), netns=sys.argv[2])
# start from an asyncio worker thread; asyncio.run then shuts the executor down, so the
# thread that called start() has exited before we look
asyncio.run(asyncio.to_thread(charon.start))
time.sleep(1.0)
print(charon.pid, charon.health().status, flush=True)
time.sleep(300)
"""


def test_charon_dies_with_its_parent_through_the_exec_chain(tmp_path: Path, netns: str) -> None:
    """The parent-death signal survives ip netns exec / unshare / sh -c exec and the exit of
    the thread that called start(); SIGKILL of the parent kills charon."""
    parent = subprocess.Popen([sys.executable, "-c", HELPER, str(tmp_path / "run"), netns],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline().split()
        if len(line) != 2:
            parent.kill()
            pytest.fail(f"helper did not start charon: {parent.communicate()[1]}")
        pid, status = int(line[0]), line[1]
        # alive after its starting thread exited, and the whole chain exec'd into charon
        assert status == UP, status
        assert not gone(pid)
        assert Path(f"/proc/{pid}/comm").read_text().strip() == "charon"
        assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
        assert (tmp_path / "run" / "charon.pid").read_text().strip() == str(pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        wait_until(lambda: gone(pid), 5, f"charon pid {pid} to die with its parent")
        wait_until(lambda: not ns_pids(netns), 5, lambda: f"{netns} to be empty: {ns_pids(netns)}")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)


def test_sockets_it_cannot_bind_are_a_health_failure_logged_once(
        tmp_path: Path, netns: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="southbound.charon")
    charon = CharonProcess(tmp_path / "run", netns=netns)
    assert charon.health().status == DOWN and charon.health().message == "not started"
    holder = hold_ike_ports(netns)
    try:
        charon.start()
        health = charon.health()
        assert charon.alive(), "charon should keep running without its sockets"
        assert health.status == SOCKETS_UNBOUND and not health.ok, health
        assert "could not create any sockets" in (health.message or ""), health
        assert "unable to bind socket: Address already in use" in (health.message or "")
        for _ in range(3):
            assert charon.health() == health
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1, [r.getMessage() for r in errors]
        assert "could not bind its IKE sockets" in errors[0].getMessage()
        charon.stop()
    finally:
        holder.kill()
        holder.wait()
        charon.stop()

    # only NAT-T (UDP 4500, IPv4) taken: charon runs with port 500 only, still a failure
    holder = hold_ike_ports(netns, ports=(4500,), v6=False)
    try:
        charon.start()
        health = charon.health()
        assert health.status == SOCKETS_UNBOUND, health
        assert "could not open IPv4 NAT-T socket" in (health.message or ""), health
        charon.stop()
    finally:
        holder.kill()
        holder.wait()
        charon.stop()

    # ports free again: a new start is healthy, and its own log part has no bind error
    offset = charon.log_path.stat().st_size
    charon.start()
    try:
        assert charon.health().status == UP and charon.health().message is None
        new_log = log_since(charon.log_path, offset)
        assert not any(e in new_log for e in BIND_ERRORS), new_log
    finally:
        charon.stop()
    assert charon.health() == CharonHealth(DOWN, "stopped")


def test_a_leftover_charon_is_stopped_before_a_new_one_starts(
        tmp_path: Path, netns: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="southbound.charon")
    charon = CharonProcess(tmp_path / "run", netns=netns)
    # a process that merely carries our STRONGSWAN_CONF but is no charon is left alone
    bystander = subprocess.Popen(["sleep", "60"],
                                 env=dict(os.environ, STRONGSWAN_CONF=str(charon.conf_path)))
    orphan = orphan_charon(charon)
    try:
        assert leftover_charons(charon.conf_path) == [orphan.pid]
        offset = charon.log_path.stat().st_size
        charon.start()
        try:
            assert orphan.wait(10) is not None
            assert charon.pid != orphan.pid
            assert charon.health().status == UP, charon.health()
            new_log = log_since(charon.log_path, offset)
            assert not any(e in new_log for e in BIND_ERRORS), new_log
            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert any(f"pid {orphan.pid}" in w and "left over" in w for w in warnings), warnings
            assert bystander.poll() is None, "a non-charon process was killed"
            assert leftover_charons(charon.conf_path) == [charon.pid]
        finally:
            charon.stop()
        assert leftover_charons(charon.conf_path) == []
        assert not charon.pid_path.exists() and not charon.socket_path.exists()
    finally:
        for proc in (orphan, bystander):
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


def test_a_start_during_a_stop_waits_for_it_and_the_new_charon_keeps_its_files(
        tmp_path: Path, netns: str) -> None:
    """A restart for global options stops charon in a thread while the supervisor, seeing it
    down, starts the next one. The start waits for the stop: the old stop must not remove
    the new charon's VICI socket and pid file (a fresh run once lost both)."""
    charon = CharonProcess(tmp_path / "run", netns=netns)
    charon.start()
    old = charon.pid
    assert old is not None
    # the stopping thread is descheduled for a while after charon has exited, before it
    # cleans up: what a loaded machine does now and then, here every time
    proc = charon._proc
    assert proc is not None
    exited = proc.wait

    def slow_wait(timeout: float | None = None) -> int:
        rc = exited(timeout)
        time.sleep(2.0)
        return rc
    proc.wait = slow_wait  # type: ignore[method-assign]
    stopper = threading.Thread(target=charon.stop)
    try:
        stopper.start()
        wait_until(lambda: not charon.alive(), 5, "the stop to begin")
        charon.start()  # what the supervisor does once charon is not alive
        stopper.join(15)
        assert not stopper.is_alive()
        new = charon.pid
        assert new is not None and new != old and gone(old)
        assert charon.health().status == UP, charon.health()
        assert charon.pid_path.read_text().strip() == str(new)
        assert vici_answers(charon.socket_path)
    finally:
        stopper.join(15)
        charon.stop()
    assert not charon.pid_path.exists() and not charon.socket_path.exists()


def test_supervisor_restarts_a_killed_charon_and_stops_it_cleanly(
        tmp_path: Path, netns: str) -> None:
    charon = CharonProcess(tmp_path / "run", netns=netns)
    restarts: list[int | None] = []

    async def scenario() -> None:
        sup = CharonSupervisor(charon, on_restart=lambda: restarts.append(charon.pid),
                               interval=0.1)
        task = asyncio.create_task(sup.run())
        try:
            await wait_async(lambda: charon.health().status == UP, 15, "charon to come up")
            first = charon.pid
            assert first is not None and restarts == [first]
            os.kill(first, signal.SIGKILL)
            await wait_async(lambda: sup.restarts == 1 and charon.health().status == UP, 15,
                             "the supervisor to restart charon")
            assert charon.pid != first and restarts == [first, charon.pid]
            assert gone(first)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await asyncio.to_thread(sup.stop)

    pid = None
    try:
        asyncio.run(scenario())
        pid = charon.pid
    finally:
        charon.stop()
    assert pid is None and not ns_pids(netns)
    assert charon.health().status == DOWN
    # the first charon was SIGKILLed: this is the second one, stopped with SIGTERM
    assert "SIGTERM received, shutting down" in charon.log_path.read_text()
    assert not charon.pid_path.exists() and not charon.socket_path.exists()


async def wait_async(pred: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


# -- ipsec-nf serve -----------------------------------------------------------------------------

def serve(ns: str, state_dir: Path, out: Path) -> subprocess.Popen[bytes]:
    """``ipsec-nf serve`` in ``ns``; stdout and stderr go to files ``out``.stdout/.stderr."""
    cmd = ["ip", "netns", "exec", ns, sys.executable, "-m", "tools.cli", "serve",
           "--state-dir", str(state_dir), "--listen", "127.0.0.1:8830"]
    with open(f"{out}.stdout", "wb") as so, open(f"{out}.stderr", "wb") as se:
        return subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=so, stderr=se)


def wait_served(server: subprocess.Popen[bytes], out: Path, vici: Path) -> None:
    def ready() -> bool:
        if server.poll() is not None:
            pytest.fail(f"ipsec-nf serve exited ({server.returncode}):\n"
                        f"{Path(f'{out}.stderr').read_text()}")
        return ("NETCONF listening" in Path(f"{out}.stdout").read_text()
                and vici_answers(vici))
    wait_until(ready, 60, lambda: f"the server to serve:\n{Path(f'{out}.stderr').read_text()}")


def test_serve_killed_with_sigkill_leaves_no_charon_and_a_restart_cleans_up(
        tmp_path: Path, netns: str) -> None:
    state = tmp_path / "state"
    charon = CharonProcess(state / "charon", netns=netns)  # only to name its files
    servers: list[subprocess.Popen[bytes]] = []
    orphan = None
    try:
        # 1. kill -9 the server: its charon goes with it
        servers.append(serve(netns, state, tmp_path / "s1"))
        wait_served(servers[0], tmp_path / "s1", charon.socket_path)
        pid = int(charon.pid_path.read_text())
        assert not gone(pid) and Path(f"/proc/{pid}/comm").read_text().strip() == "charon"
        os.kill(servers[0].pid, signal.SIGKILL)
        servers[0].wait(10)
        wait_until(lambda: gone(pid), 5, f"charon pid {pid} to die with the killed server")
        wait_until(lambda: not ns_pids(netns), 5, lambda: f"{netns} empty: {ns_pids(netns)}")

        # 2. an orphan charon of this state dir holds the ports; a new server stops it first
        orphan = orphan_charon(charon)
        offset = charon.log_path.stat().st_size
        servers.append(serve(netns, state, tmp_path / "s2"))
        wait_served(servers[1], tmp_path / "s2", charon.socket_path)
        assert orphan.wait(10) is not None
        new_pid = int(charon.pid_path.read_text())
        assert new_pid != orphan.pid and not gone(new_pid)
        err = Path(f"{tmp_path / 's2'}.stderr").read_text()
        assert f"pid {orphan.pid}" in err and "left over" in err, err
        assert "could not bind its IKE sockets" not in err, err
        new_log = log_since(charon.log_path, offset)
        assert not any(e in new_log for e in BIND_ERRORS), new_log
        assert leftover_charons(charon.conf_path) == [new_pid]

        # 3. SIGTERM: a clean stop, charon included
        servers[1].send_signal(signal.SIGTERM)
        assert servers[1].wait(30) == 0, Path(f"{tmp_path / 's2'}.stderr").read_text()
        wait_until(lambda: gone(new_pid), 5, "charon to stop with the server")
        assert not ns_pids(netns), ns_pids(netns)
        assert "SIGTERM received, shutting down" in log_since(charon.log_path, offset)
        assert not charon.pid_path.exists()
    finally:
        for proc in [*servers, *([orphan] if orphan else [])]:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
