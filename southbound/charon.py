"""Run a strongSwan charon daemon of our own (kept alive by :mod:`southbound.charon_supervisor`).

Each :class:`CharonProcess` owns a run directory holding its ``strongswan.conf``, its VICI
socket (``charon.vici``) and its log (``charon.log``). charon is started in a private mount
namespace with a tmpfs on ``/run`` (it writes its pid file there), so several instances can
run side by side, one per network namespace (see ``/work/shared/dataplane-recipe.md``).

Lifecycle: charon dies with the process that started it (``PR_SET_PDEATHSIG``, set on a
dedicated long-lived spawner thread: southbound.charon_spawn), so even a ``kill -9`` of the
server leaves no charon holding UDP 500/4500. A charon left over from an earlier server of the
same run directory (its ``STRONGSWAN_CONF`` is ours) is stopped before a new one starts, and a
charon that runs but could not bind its IKE sockets is reported by :meth:`CharonProcess.health`.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from nf.effective import GlobalOptions
from southbound.charon_conf import render_conf, settings
from southbound.charon_health import DOWN, SOCKETS_UNBOUND, UP, CharonHealth, socket_errors
from southbound.charon_spawn import CHARON_BIN, SPAWNER, stop_leftover_charons
from southbound.vici_client import ViciClient

log = logging.getLogger(__name__)


class CharonError(RuntimeError):
    """charon could not be started or did not come up."""


def syslog_socket(dev_log: str = "/dev/log") -> Path | None:
    """The host's syslog socket when it lives under /run (systemd: /dev/log is a link to
    /run/systemd/journal/dev-log), which charon's private /run would hide; else None."""
    real = Path(os.path.realpath(dev_log))
    if real.parts[:2] == ("/", "run") and real.exists():
        return real
    return None


def _exit_reason(returncode: int) -> str:
    """``"exited with status N"`` or ``"killed by SIGNAME"``."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with status {returncode}"


class CharonProcess:
    """One charon daemon with its own run directory.

    ``netns`` optionally names a network namespace to start charon in (``ip netns exec``);
    leave it None when the calling process already runs inside the right namespace.
    """

    def __init__(self, run_dir: Path, backend: str = "kernel-libipsec",
                 options: GlobalOptions | None = None, netns: str | None = None,
                 charon_bin: str = CHARON_BIN) -> None:
        self.run_dir = Path(run_dir).resolve()
        if self.run_dir.parts[:2] in (("/", "run"),) or str(self.run_dir).startswith("/var/run"):
            raise ValueError("run_dir must not be under /run: charon gets a private tmpfs there")
        self.backend = backend
        self.options = options if options is not None else GlobalOptions()
        self.netns = netns
        self.charon_bin = charon_bin
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready = False  # its VICI socket answered since the last start
        self._sockets_error: str | None = None  # charon's bind failures at the last start
        self._down_reason = "not started"
        # start and stop one at a time: a restart for global options stops charon in a thread
        # while the supervisor, seeing it down, starts the next one; the old stop then removed
        # the new charon's VICI socket and pid file (a fresh run: charon.pid missing, the
        # reconciler's "charon unreachable (Broken pipe)"). Reentrant: a start that times out
        # stops what it started.
        self._lifecycle = threading.RLock()

    def __repr__(self) -> str:
        return f"CharonProcess(run_dir={str(self.run_dir)!r}, pid={self.pid})"

    @property
    def socket_path(self) -> Path:
        """Path of the VICI unix socket."""
        return self.run_dir / "charon.vici"

    @property
    def conf_path(self) -> Path:
        """Path of the generated strongswan.conf."""
        return self.run_dir / "strongswan.conf"

    @property
    def log_path(self) -> Path:
        """Path of charon's log file."""
        return self.run_dir / "charon.log"

    @property
    def pid_path(self) -> Path:
        """Path of the pid file we write (charon's own is in its private /run)."""
        return self.run_dir / "charon.pid"

    @property
    def pid(self) -> int | None:
        """Process id of the running charon, or None."""
        return self._proc.pid if self._proc is not None else None

    def command(self) -> list[str]:
        """The argv used to start charon: in a private mount namespace with a tmpfs on /run.

        charon's syslog loggers (/ike/logging) write to ``/dev/log``, on a systemd host a link
        to ``/run/systemd/journal/dev-log``, which the tmpfs would hide: that socket is
        bind-mounted through (:func:`syslog_socket`), best effort (charon starts without it)."""
        steps = ["mount -t tmpfs tmpfs /run || exit 1", f"exec {shlex.quote(self.charon_bin)}"]
        sock = syslog_socket()
        if sock is not None:
            keep, q = shlex.quote(str(self.run_dir / "dev-log")), shlex.quote(str(sock))
            steps.insert(0, f"{{ : > {keep} && mount --bind {q} {keep}; }} 2>/dev/null")
            steps.insert(2, f"{{ mkdir -p {shlex.quote(str(sock.parent))} && : > {q} && "
                            f"mount --bind {keep} {q}; }} 2>/dev/null")
        inner = "; ".join(steps)
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", inner]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        return argv

    def write_conf(self) -> None:
        """Write strongswan.conf into the run directory."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # 0600: it may hold secrets (the RADIUS servers' of /ike/eap-radius)
        fd = os.open(self.conf_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(render_conf(self.run_dir, self.backend, self.options))

    def reload(self, options: GlobalOptions) -> None:
        """Take new options without a restart: rewrite strongswan.conf and ask charon to read
        it again (VICI reload-settings). Only ``charon_conf.RELOADABLE`` settings take effect
        (on IKE SAs created afterwards); ``charon_conf.apply_method`` says when that is
        enough."""
        self.options = options
        self.write_conf()
        with ViciClient(self.socket_path) as c:
            c.reload_settings()

    # a live charon is waited for this long: under load (or emulation) loading its plugins has
    # taken over 10 s; one that exits is reported at once
    START_TIMEOUT = 30.0

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Write the config, start charon and wait until its VICI socket accepts connections.

        Blocking (call it through ``asyncio.to_thread`` from async code), from any thread:
        first a charon left over by an earlier server of this run directory is stopped, with a
        warning (:func:`stop_leftover_charons`); then charon is forked by the spawner thread
        with a parent-death signal, so it dies with this process even on ``kill -9``
        (southbound.charon_spawn), and its pid is written to ``charon.pid``. Once VICI answers,
        charon's log of this start is checked for IKE sockets it could not bind: that is
        logged as an error (once per start) and :meth:`health` reports ``"sockets-unbound"``;
        charon is left running.

        Raises :class:`CharonError` with the tail of charon.log when it does not come up.
        """
        with self._lifecycle:
            if self.alive():
                return
            self._ready, self._sockets_error = False, None
            self.write_conf()
            stop_leftover_charons(self.conf_path, self.charon_bin)
            self._remove_socket()
            log_start = self._log_size()
            env = dict(os.environ, STRONGSWAN_CONF=str(self.conf_path))
            try:
                with open(self.run_dir / "charon.stderr", "ab") as err:
                    self._proc = SPAWNER.popen(
                        self.command(), env=env, stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
            except subprocess.SubprocessError as exc:  # the preexec_fn failed in the child
                self._down_reason = f"cannot start charon: {exc}"
                raise CharonError(self._down_reason) from exc
            self._write_pid()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    self._down_reason = _exit_reason(self._proc.returncode)
                    self._proc = None
                    self._remove_pid()
                    raise CharonError(f"charon {self._down_reason}\n{self.log_tail()}")
                if self._socket_ready():
                    self._sockets_error = socket_errors(self._read_log(log_start))
                    self._ready = True
                    log.info("charon started, pid %s, socket %s", self.pid, self.socket_path)
                    if self._sockets_error is not None:
                        ports = settings(self.options)
                        log.error("charon pid %s could not bind its IKE sockets (UDP %s/%s), it "
                                  "cannot negotiate: %s", self.pid, ports["port"],
                                  ports["port_nat_t"], self._sockets_error)
                    return
                time.sleep(0.05)
            self.stop()
            self._down_reason = f"VICI socket not ready after {timeout}s"
            raise CharonError(f"charon VICI socket {self.socket_path} not ready after {timeout}s\n"
                              f"{self.log_tail()}")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop charon: SIGTERM, then SIGKILL after ``timeout`` seconds; remove the socket and
        the pid file."""
        with self._lifecycle:
            proc, self._proc = self._proc, None
            self._ready = False
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    log.warning("charon pid %s ignored SIGTERM, killing", proc.pid)
                    proc.kill()
                    proc.wait(timeout)
            if proc is not None:
                self._down_reason = "stopped"
            self._remove_socket()
            self._remove_pid()

    def health(self) -> CharonHealth:
        """How charon is doing now: a :class:`CharonHealth` whose ``status`` is ``"up"``,
        ``"down"`` or ``"sockets-unbound"`` and whose ``message`` says why when not up.

        Cheap and non-blocking (no I/O): safe to call from the event loop on every read.
        """
        proc = self._proc
        if proc is None:
            return CharonHealth(DOWN, self._down_reason)
        rc = proc.poll()
        if rc is not None:
            return CharonHealth(DOWN, _exit_reason(rc))
        if not self._ready:
            return CharonHealth(DOWN, "starting")
        if self._sockets_error is not None:
            return CharonHealth(SOCKETS_UNBOUND, self._sockets_error)
        return CharonHealth(UP)

    def alive(self) -> bool:
        """True if the charon process is running."""
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of charon.log and of charon's stderr, for error messages."""
        out = []
        for path in (self.log_path, self.run_dir / "charon.stderr"):
            try:
                text = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            out.append(f"--- {path.name} ---")
            out.extend(text)
        return "\n".join(out)

    def _socket_ready(self) -> bool:
        if not self.socket_path.exists():
            return False
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(1.0)
            try:
                sock.connect(str(self.socket_path))
            except OSError:
                return False
        return True

    def _remove_socket(self) -> None:
        try:
            self.socket_path.unlink()
        except FileNotFoundError:
            pass

    def _write_pid(self) -> None:
        try:
            self.pid_path.write_text(f"{self.pid}\n")
        except OSError as exc:  # informative only
            log.warning("cannot write %s: %s", self.pid_path, exc)

    def _remove_pid(self) -> None:
        try:
            self.pid_path.unlink()
        except FileNotFoundError:
            pass

    def _log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def _read_log(self, start: int) -> str:
        """What charon wrote to its log from byte ``start`` on."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(start)
                return f.read().decode(errors="replace")
        except OSError:
            return ""
