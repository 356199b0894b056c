"""Run a strongSwan charon daemon of our own and keep it alive.

Each :class:`CharonProcess` owns a run directory holding its ``strongswan.conf``, its VICI
socket (``charon.vici``) and its log (``charon.log``). charon is started in a private mount
namespace with a tmpfs on ``/run`` (it writes its pid file there), so several instances can
run side by side, one per network namespace (see ``/work/shared/dataplane-recipe.md``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from nf.effective import GlobalOptions

log = logging.getLogger(__name__)

CHARON_BIN = "/usr/lib/ipsec/charon"
PLUGIN_DIR = Path("/usr/lib/ipsec/plugins")

# Plugins in load order. The kernel interface plugins are inserted by backend.
_BASE_PLUGINS = (
    "kdf random nonce aes sha1 sha2 hmac md5 pem pkcs1 x509 revocation constraints pubkey "
    "openssl gmp curve25519 gcm ccm ctr chapoly cmac xcbc aesni"
).split()
_TAIL_PLUGINS = ("socket-default", "vici", "updown", "counters")

# Map of global-options fields to strongswan.conf charon settings.
_GLOBAL_OPTIONS = {
    "retransmit_tries": "retransmit_tries",
    "retransmit_timeout": "retransmit_timeout",
    "retransmit_base": "retransmit_base",
}
# charon's long-running jobs (kernel-netlink/libipsec receivers, sockets, vici, scheduler, ...)
# hold ~9 threads for good: with threads = 8 it never answers on VICI (measured). The model's
# `threads` counts workers for IKE processing, so we add these on top.
RESERVED_THREADS = 10
_DOS_OPTIONS = {
    "cookie_threshold": "cookie_threshold",
    "block_threshold": "block_threshold",
    "init_limit_half_open": "init_limit_half_open",
}


class CharonError(RuntimeError):
    """charon could not be started or did not come up."""


def plugin_list(backend: str, plugin_dir: Path = PLUGIN_DIR) -> list[str]:
    """Return the ``load =`` plugin list for a kernel backend.

    ``kernel-libipsec`` is only included for backend ``"kernel-libipsec"``; ``kernel-netlink``
    always. Plugins whose shared object is missing are left out when ``plugin_dir`` exists.
    """
    if backend not in ("kernel-libipsec", "kernel-netlink"):
        raise ValueError(f"unknown backend {backend!r}")
    kernel = ["kernel-libipsec", "kernel-netlink"] if backend == "kernel-libipsec" else [
        "kernel-netlink"]
    names = [*_BASE_PLUGINS, *kernel, *_TAIL_PLUGINS]
    if plugin_dir.is_dir():
        names = [n for n in names if (plugin_dir / f"libstrongswan-{n}.so").exists()]
    return names


def render_conf(run_dir: Path, backend: str = "kernel-libipsec",
                options: GlobalOptions | None = None) -> str:
    """Render a strongswan.conf for an instance living in ``run_dir``.

    ``options`` is the effective ``global-options`` (unset options keep charon's defaults).
    """
    opts = options if options is not None else GlobalOptions()
    lines = ["charon {", "  load_modular = no", f"  load = {' '.join(plugin_list(backend))}",
             "  install_routes = yes"]
    for attr, key in _GLOBAL_OPTIONS.items():
        value = getattr(opts, attr)
        if value is not None:
            lines.append(f"  {key} = {value}")
    if opts.threads is not None:
        lines.append(f"  threads = {int(opts.threads) + RESERVED_THREADS}")
    for attr, key in _DOS_OPTIONS.items():
        value = getattr(opts.dos_protection, attr)
        if value is not None:
            lines.append(f"  {key} = {value}")
    lines += [
        "  filelog {", "    log {", f"      path = {run_dir / 'charon.log'}",
        "      time_format = %b %e %T", "      default = 1", "      ike = 1", "      cfg = 1",
        "      flush_line = yes", "    }", "  }",
        "  plugins {",
        "    vici {", f"      socket = unix://{run_dir / 'charon.vici'}", "    }",
    ]
    if opts.acquire_timeout is not None:
        lines += ["    kernel-netlink {",
                  f"      xfrm_acq_expires = {opts.acquire_timeout}", "    }"]
    lines += ["  }", "}", ""]
    return "\n".join(lines)


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
    def pid(self) -> int | None:
        """Process id of the running charon, or None."""
        return self._proc.pid if self._proc is not None else None

    def command(self) -> list[str]:
        """The argv used to start charon."""
        inner = f"mount -t tmpfs tmpfs /run && exec {self.charon_bin}"
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", inner]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        return argv

    def write_conf(self) -> None:
        """Write strongswan.conf into the run directory."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text(render_conf(self.run_dir, self.backend, self.options))

    def start(self, timeout: float = 10.0) -> None:
        """Write the config, start charon and wait until its VICI socket accepts connections.

        Raises :class:`CharonError` with the tail of charon.log when it does not come up.
        """
        if self.alive():
            return
        self.write_conf()
        self._remove_socket()
        env = dict(os.environ, STRONGSWAN_CONF=str(self.conf_path))
        with open(self.run_dir / "charon.stderr", "ab") as err:
            self._proc = subprocess.Popen(  # noqa: S603
                self.command(), env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                rc = self._proc.returncode
                self._proc = None
                raise CharonError(f"charon exited with status {rc}\n{self.log_tail()}")
            if self._socket_ready():
                log.info("charon started, pid %s, socket %s", self.pid, self.socket_path)
                return
            time.sleep(0.05)
        self.stop()
        raise CharonError(f"charon VICI socket {self.socket_path} not ready after {timeout}s\n"
                          f"{self.log_tail()}")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop charon: SIGTERM, then SIGKILL after ``timeout`` seconds; remove the socket."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("charon pid %s ignored SIGTERM, killing", proc.pid)
                proc.kill()
                proc.wait(timeout)
        self._remove_socket()

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


STABLE = 30.0  # seconds charon must stay up before restarts are quick again


class CharonSupervisor:
    """Restart charon when it dies and tell the reconciler to put the world back.

    ``on_restart`` is called (in the event loop) after each restart, e.g.
    ``reconciler.resync``.
    """

    def __init__(self, charon: CharonProcess, on_restart: Callable[[], None] | None = None,
                 interval: float = 0.5, max_backoff: float = 10.0) -> None:
        self.charon = charon
        self.on_restart = on_restart
        self.interval = interval
        self.max_backoff = max_backoff
        self.restarts = 0
        self._stopping = False

    async def run(self) -> None:
        """Watch charon forever (cancel the task to stop); start it if it is not running.

        Restarts back off exponentially until charon has stayed up for ``STABLE`` seconds, so
        a charon that dies right after each start is not restarted in a tight loop.
        """
        backoff = self.interval
        started_at = time.monotonic()
        while not self._stopping:
            if not self.charon.alive():
                first = self.charon.pid is None and self.restarts == 0
                if not first and time.monotonic() - started_at < STABLE:
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                elif not first:
                    backoff = self.interval
                if self._stopping:
                    break
                try:
                    await asyncio.to_thread(self.charon.start)
                except (CharonError, OSError) as exc:
                    log.error("cannot start charon: %s", exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
                started_at = time.monotonic()
                if not first:
                    self.restarts += 1
                    log.warning("charon restarted (restart #%d)", self.restarts)
                if self.on_restart is not None:
                    self.on_restart()
            await asyncio.sleep(self.interval)

    def stop(self) -> None:
        """Stop watching and stop charon (blocking: call it from a thread in async code)."""
        self._stopping = True
        self.charon.stop()
