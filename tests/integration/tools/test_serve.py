"""`ipsec-nf serve` as an operator and systemd see it, against the real server and charon in a
network namespace: a configuration file with several addresses, one log line per NETCONF
session, the journald format, readiness notification, the warning without users, running vs
startup across restarts and reboots, and the permissions of the secrets at rest."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nf.persist import UnsafeStateError, atomic_write, secure_state_dir
from tests.integration.tools.gateway import ROOT, Server, add_user, connect, netns

NS = "urn:ipsec-nf:yang:ipsec-nf"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"


@pytest.fixture
def ns() -> Iterator[str]:
    with netns() as name:
        yield name


def psk(name: str) -> str:
    return (f'<config xmlns="{NC}"><ike xmlns="{NS}"><pre-shared-key><name>{name}</name>'
            f"<id>{name}.example.net</id><secret>a-test-secret</secret></pre-shared-key>"
            "</ike></config>")


def commit(ns: str, config: str) -> None:
    with connect(ns) as m:
        m.edit_config(target="candidate", config=config)
        m.commit()


def running_config(ns: str) -> str:
    with connect(ns) as m:
        return m.get_config("running").data_xml


def test_config_file_two_addresses_one_log_line_per_session(tmp_path: Path, ns: str) -> None:
    state = tmp_path / "state"
    add_user(state)
    conf = tmp_path / "serve.toml"
    conf.write_text(f'state-dir = "{state}"\nlisten = ["127.0.0.1:8830", "[::1]:8831"]\n'
                    'log-level = "info"\nsync-interval = 10\n')
    with Server(ns, tmp_path / "s", ["--config", str(conf)]) as server:
        server.wait_listening(2)
        out = server.output()
        assert "NETCONF listening on 127.0.0.1:8830" in out
        assert "NETCONF listening on [::1]:8831" in out
        before = len(server.log().splitlines())
        for host, port in (("127.0.0.1", 8830), ("::1", 8831)):
            with connect(ns, host, port) as m:
                assert "urn:ietf:params:netconf:base:1.1" in m.server_capabilities
                m.get_config("running")
        server.wait_log("session 2 (admin) closed")
        during = server.log().splitlines()[before:]
        assert server.stop() == 0
    log = server.log()
    assert "no NETCONF user" not in log
    # exactly one line when a session starts and one when it ends, nothing from asyncssh
    assert len(during) == 4, "\n".join(during)
    assert re.search(r"INFO northbound\.ssh: session 1 opened for 'admin' from 127\.0\.0\.1 "
                     r"port \d+$", during[0]), during[0]
    assert during[1].endswith("session 1 (admin) closed")
    assert " from ::1 port " in during[2] and during[3].endswith("session 2 (admin) closed")
    assert "asyncssh" not in log
    # timestamped lines with levels on a terminal or in a file
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING|ERROR) ", ln)
               for ln in log.splitlines() if ln and not ln.startswith(" ")), log


def test_under_systemd_journal_format_readiness_and_no_user_warning(tmp_path: Path,
                                                                    ns: str) -> None:
    state = tmp_path / "state"
    err = Path(f"{tmp_path / 's'}.stderr")
    err.touch()
    st = err.stat()  # the server's stderr is this file: as if it were journald's stream
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(60)
    env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}",
           "NOTIFY_SOCKET": str(tmp_path / "notify.sock")}
    with Server(ns, tmp_path / "s", ["--state-dir", str(state), "--listen", "127.0.0.1:8830"],
                env=env) as server:
        ready = notify.recv(4096).decode()
        assert ready.startswith("READY=1\n"), ready
        assert "STATUS=NETCONF listening on 127.0.0.1:8830" in ready
        # nobody can log in yet: said once, clearly, with the command that fixes it
        server.wait_log("no NETCONF user")
        add_user(state)  # users are read at each login: no restart needed
        with connect(ns) as m:
            m.get_config("running")
        server.wait_log("session 1 (admin) closed")
        assert server.stop() == 0
    assert notify.recv(4096) == b"STOPPING=1"
    notify.close()
    log = server.log()
    assert server.output() == ""  # the log says where it listens; nothing twice
    lines = [ln for ln in log.splitlines() if ln and not ln.startswith(" ")]
    for ln in lines:  # journald adds the time: priority prefix, logger, message
        assert re.match(r"<[2-7]>[\w.-]+: ", ln), ln
    warning = next(ln for ln in lines if "no NETCONF user" in ln)
    assert warning.startswith("<4>ipsec-nf: ")
    assert f"ipsec-nf passwd --state-dir {state} admin" in warning
    assert sum("session 1 " in ln for ln in lines) == 2, log
    assert any(ln.startswith("<6>nf.datastore: running loaded") for ln in lines), log


def test_running_survives_a_restart_and_startup_is_loaded_after_a_reboot(
        tmp_path: Path, ns: str) -> None:
    state = tmp_path / "state"
    add_user(state)
    args = ["--state-dir", str(state), "--listen", "127.0.0.1:8830"]
    with Server(ns, tmp_path / "s1", args) as server:
        server.wait_listening()
        commit(ns, psk("saved"))
        with connect(ns) as m:
            m.copy_config(source="running", target="startup")
        commit(ns, psk("unsaved"))
    boot_file = state / "running.boot-id"
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert boot_file.read_text() == boot

    # a restart of the server within the same boot of the host: running as it was
    with Server(ns, tmp_path / "s2", args) as server:
        server.wait_listening()
        cfg = running_config(ns)
        assert "saved" in cfg and "unsaved" in cfg
        with connect(ns) as m:  # left pending when the host "reboots"
            m.edit_config(target="candidate", config=psk("unconfirmed"))
            m.commit(confirmed=True, timeout="600", persist="p1")
    assert "running kept from before the restart (same host boot)" in server.log()
    assert "loaded from startup" not in server.log()
    assert (state / "confirmed-backup.xml").exists()

    # the host rebooted (another boot id was stored): running comes from startup
    boot_file.write_text("00000000-0000-0000-0000-000000000000\n")
    with Server(ns, tmp_path / "s3", args) as server:
        server.wait_listening()
        cfg = running_config(ns)
        # startup, not the running of before the reboot (nor its confirmed-commit backup)
        assert "saved" in cfg and "unsaved" not in cfg and "unconfirmed" not in cfg
        with connect(ns) as m:
            assert "unsaved" not in m.get_config("candidate").data_xml
    assert "running loaded from startup: first start since the host booted" in server.log()
    assert "confirmed commit pending before the host rebooted is dropped" in server.log()
    assert boot_file.read_text() == boot  # and the next restart keeps running again

    # no stored boot id (state from an older version): taken as a reboot too
    boot_file.unlink()
    with Server(ns, tmp_path / "s4", args) as server:
        server.wait_listening()
    assert "running loaded from startup" in server.log()


SECRETS = ("running.xml", "running.*.log", "candidate.xml", "candidate.*.log", "startup.xml",
           "users.json", "ssh_host_ed25519_key", "history/*")


def secret_files(state: Path) -> list[Path]:
    return sorted({f for p in SECRETS for f in state.glob(p)})


def test_secrets_are_private_from_the_start_and_checked_at_each_start(
        tmp_path: Path, ns: str) -> None:
    state = tmp_path / "state"
    args = ["--state-dir", str(state), "--listen", "127.0.0.1:8830"]
    # umask 0: any file created without an explicit mode would be 0666
    with Server(ns, tmp_path / "s1", args, umask=0) as server:
        server.wait_listening()
        r = subprocess.run([sys.executable, "-m", "tools.cli", "passwd", "--state-dir",
                            str(state), "admin"], input="gateway-test-pw\n", text=True,
                           capture_output=True, cwd=ROOT, preexec_fn=lambda: os.umask(0))
        assert r.returncode == 0, r.stderr
        commit(ns, psk("one"))
        with connect(ns) as m:
            m.copy_config(source="running", target="startup")
            m.copy_config(source="startup", target="running")  # writes running.xml whole
            m.edit_config(target="candidate", config=psk("pending"))  # candidate log
    files = secret_files(state)
    names = {f.name for f in files}
    assert {"running.xml", "startup.xml", "users.json", "ssh_host_ed25519_key"} <= names, names
    assert any(f.parent.name == "history" for f in files), names  # the commits' files
    assert any(n.startswith("candidate.") for n in names), names
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f"{f}: {oct(f.stat().st_mode)}"
    for d in (state, state / "history"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d

    # someone loosened them: fixed at the next start, each named in a warning
    os.chmod(state, 0o755)
    os.chmod(state / "history", 0o755)
    loosened = [state / "users.json", state / "startup.xml", state / "ssh_host_ed25519_key",
                next(state.glob("candidate.*"))]
    for f in loosened:
        os.chmod(f, 0o644)
    with Server(ns, tmp_path / "s2", args) as server:
        server.wait_listening()
        running_config(ns)
    log = server.log()
    for f in [state, state / "history", *loosened]:
        assert re.search(rf"WARNING nf\.persist: {re.escape(str(f))} was open to other users "
                         r"\(mode 0[67][45][45]\): changed to 0[67]00", log), (f, log)
        assert stat.S_IMODE(f.stat().st_mode) in (0o600, 0o700)

    # a file that is not the server's own: refuse to start, naming it
    os.chown(state / "startup.xml", 65534, 65534)
    server = Server(ns, tmp_path / "s3", args)
    assert server.exit_code() == 1
    assert (f"{state / 'startup.xml'} belongs to uid 65534, not to this server"
            in server.log()), server.log()
    assert "charon started" not in server.log()


def test_secure_state_dir_refuses_links_and_other_kinds(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (tmp_path / "elsewhere.json").write_text("{}")
    (state / "users.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(UnsafeStateError, match="users.json is not a regular file"):
        secure_state_dir(state)
    (state / "users.json").unlink()
    os.mkfifo(state / "running.xml")
    with pytest.raises(UnsafeStateError, match="running.xml is not a regular file"):
        secure_state_dir(state)
    (state / "running.xml").unlink()
    (state / "history").mkdir(mode=0o700)
    (state / "history" / "1.xml").write_bytes(b"<commit/>")
    assert secure_state_dir(state) == [state / "history" / "1.xml"]  # 0644 by the umask
    assert secure_state_dir(state) == []
    # the state directory itself may be reached through a symbolic link
    (tmp_path / "link").symlink_to(state)
    assert secure_state_dir(tmp_path / "link") == []


def test_atomic_write_never_writes_through_a_looser_leftover(tmp_path: Path) -> None:
    target = tmp_path / "d" / "running.xml"
    target.parent.mkdir()
    leftover = target.with_name(".running.xml.tmp")
    leftover.write_bytes(b"old")
    os.chmod(leftover, 0o666)
    old = os.umask(0)
    try:
        atomic_write(target, b"<config/>")
        atomic_write(tmp_path / "new" / "x.xml", b"<x/>")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and not leftover.exists()
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new" / "x.xml").stat().st_mode) == 0o600


def test_front_door_limits_from_the_configuration_file(tmp_path: Path, ns: str) -> None:
    state = tmp_path / "state"
    add_user(state)
    conf = tmp_path / "serve.toml"
    conf.write_text(f'state-dir = "{state}"\nlisten = "127.0.0.1:8830"\n'
                    "[limits]\nmax-sessions-per-user = 1\n")
    with Server(ns, tmp_path / "s", ["--config", str(conf)]) as server:
        server.wait_listening()
        with connect(ns) as m:
            m.get_config("running")
            with pytest.raises(Exception):  # noqa: B017 - ncclient's error types vary
                connect(ns).close_session()
        server.wait_log("too many NETCONF sessions for user 'admin' (limit 1)")
