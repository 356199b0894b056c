"""The `ipsec-nf` command: run the gateway (serve), manage its NETCONF users (passwd, add-key),
check a configuration file offline (check) and run its certificate authority (ca).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import importlib.metadata
import logging
import os
import socket
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_LISTEN = "127.0.0.1:830"
BACKENDS = ("kernel-libipsec", "kernel-netlink")  # tools.backends, without its imports
DEFAULT_BACKEND = BACKENDS[0]
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_CONFIG_HINT = "/etc/ipsec-nf/ipsec-nf.toml"

log = logging.getLogger("ipsec-nf")


def version() -> str:
    """The installed version of the ipsec-nf distribution."""
    try:
        return importlib.metadata.version("ipsec-nf")
    except importlib.metadata.PackageNotFoundError:  # a checkout that was never installed
        return "0+unknown"


def format_listen(host: str, port: int) -> str:
    """(host, port) -> HOST:PORT, or [V6]:PORT."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_listen(text: str) -> tuple[str, int]:
    """HOST:PORT or [V6]:PORT -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


# ---- the serve configuration file --------------------------------------------------------

class ConfigError(ValueError):
    """The configuration file cannot be used; the message names the file and the key."""


@dataclass
class ServeConfig:
    """What `serve` runs with: built-in defaults, then the file, then the command line."""

    state_dir: Path | None = None
    listen: list[tuple[str, int]] = field(
        default_factory=lambda: [parse_listen(DEFAULT_LISTEN)])
    backend: str = DEFAULT_BACKEND
    log_level: str = "info"
    sync_interval: float = 30.0
    state_interval: float = 5.0
    limits: dict[str, Any] = field(default_factory=dict)  # northbound.frontdoor.Limits overrides
    gnmi: dict[str, Any] = field(default_factory=dict)  # the [gnmi] table (gnmi_listen)


def _listen_list(value: Any) -> list[tuple[str, int]]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) for v in items):
        raise ValueError('expected "HOST:PORT" or a non-empty list of them')
    try:
        return [parse_listen(v) for v in items]
    except argparse.ArgumentTypeError as e:
        raise ValueError(str(e)) from None


def _choice(choices: tuple[str, ...]) -> Any:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return value
    return check


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"expected a positive number of seconds, got {value!r}")
    return float(value)


def _limits(value: Any) -> dict[str, Any]:
    """The ``[limits]`` table: front-door limits (docs/security.md), by the field names of
    ``northbound.frontdoor.Limits`` with dashes; each a positive number of its field's type."""
    import dataclasses

    from northbound.frontdoor import Limits

    if not isinstance(value, dict):
        raise ValueError("expected a table of limits")
    fields = {f.name.replace("_", "-"): f for f in dataclasses.fields(Limits)}
    out = {}
    for key, v in value.items():
        f = fields.get(key)
        if f is None:
            raise ValueError(f"unknown limit {key!r}; known: {', '.join(fields)}")
        want = int if isinstance(f.default, int) else float
        if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0 \
                or (want is int and not isinstance(v, int)):
            raise ValueError(f"{key}: expected a positive {want.__name__}, got {v!r}")
        out[f.name] = want(v)
    return out


GNMI_KEYS = ("listen", "tls-cert", "tls-key", "insecure")


def _gnmi(value: Any) -> dict[str, Any]:
    """The ``[gnmi]`` table: ``listen = "HOST:PORT"``, ``tls-cert``/``tls-key`` (files) or
    ``insecure = true`` (plaintext: loopback and tests only)."""
    if not isinstance(value, dict):
        raise ValueError("expected a table: listen, tls-cert, tls-key, insecure")
    out: dict[str, Any] = {}
    for key, v in value.items():
        if key not in GNMI_KEYS:
            raise ValueError(f"unknown key {key!r}; known: {', '.join(GNMI_KEYS)}")
        if key == "insecure":
            if not isinstance(v, bool):
                raise ValueError(f"insecure: expected true or false, got {v!r}")
            out[key] = v
        else:
            try:
                out[key] = parse_listen(_text(v)) if key == "listen" else _text(v)
            except ValueError as e:
                raise ValueError(f"{key}: {e}") from None
    return out


def gnmi_listen(cfg: dict[str, Any], args: argparse.Namespace) -> Any:
    """Where gNMI listens (northbound.gnmi.server.GnmiListen) from the ``[gnmi]`` table and
    --gnmi*, or None (off, the default). ConfigError without a certificate and key or
    --gnmi-insecure."""
    cert_file, key_file = args.gnmi_cert or cfg.get("tls-cert"), args.gnmi_key or cfg.get("tls-key")
    cert = Path(cert_file) if cert_file else None
    key = Path(key_file) if key_file else None
    insecure = args.gnmi_insecure or cfg.get("insecure", False)
    where = args.gnmi or cfg.get("listen")
    if where is None:
        if args.gnmi_cert or args.gnmi_key or args.gnmi_insecure:
            raise ConfigError("--gnmi-cert, --gnmi-key and --gnmi-insecure need --gnmi "
                              "HOST:PORT")
        return None
    if not insecure and (cert is None or key is None):
        raise ConfigError("gNMI needs a TLS certificate and key (--gnmi-cert FILE --gnmi-key "
                          "FILE, or tls-cert/tls-key in [gnmi]), or --gnmi-insecure for "
                          "plaintext")
    from northbound.gnmi.server import GnmiListen

    return GnmiListen(where[0], where[1], None if insecure else cert,
                      None if insecure else key, insecure)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


# key of the file -> (ServeConfig field, checker)
CONFIG_KEYS: dict[str, tuple[str, Any]] = {
    "state-dir": ("state_dir", _text),
    "listen": ("listen", _listen_list),
    "backend": ("backend", _choice(BACKENDS)),
    "log-level": ("log_level", _choice(LOG_LEVELS)),
    "sync-interval": ("sync_interval", _seconds),
    "state-interval": ("state_interval", _seconds),
    "limits": ("limits", _limits),
    "gnmi": ("gnmi", _gnmi),
}


def load_config(path: Path) -> dict[str, Any]:
    """Read a TOML configuration file of `serve`: {ServeConfig field: checked value}.

    Unknown keys are an error that names them; a relative ``state-dir`` is taken relative to
    the file's folder.
    """
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in CONFIG_KEYS:
            raise ConfigError(f"{path}: unknown key {key!r}; known keys: "
                              f"{', '.join(CONFIG_KEYS)}")
        name, check = CONFIG_KEYS[key]
        try:
            out[name] = check(value)
        except ValueError as e:
            raise ConfigError(f"{path}: {key}: {e}") from None
    if "state_dir" in out:
        out["state_dir"] = path.parent / out["state_dir"]
    for k in ("tls-cert", "tls-key"):  # [gnmi]'s files, relative to the file's folder too
        if k in out.get("gnmi", {}):
            out["gnmi"][k] = str(path.parent / out["gnmi"][k])
    return out


def serve_config(args: argparse.Namespace) -> ServeConfig:
    """The settings of `serve`: the configuration file's, overridden by the command line's."""
    cfg = ServeConfig()
    if args.config is not None:
        for name, value in load_config(Path(args.config)).items():
            setattr(cfg, name, value)
    if args.state_dir is not None:
        cfg.state_dir = Path(args.state_dir)
    if args.listen:
        cfg.listen = args.listen
    if args.backend is not None:
        cfg.backend = args.backend
    if args.log_level is not None:
        cfg.log_level = args.log_level
    if args.debug:
        cfg.log_level = "debug"
    if args.sync_interval is not None:
        cfg.sync_interval = args.sync_interval
    if args.state_interval is not None:
        cfg.state_interval = args.state_interval
    if cfg.state_dir is None:
        raise ConfigError("no state directory: give --state-dir, or state-dir in the "
                          "configuration file (--config)")
    return cfg


# ---- logging -----------------------------------------------------------------------------

# syslog priorities of the logging levels, for journald's "<N>" line prefix
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
             logging.CRITICAL: 2}


class JournalFormatter(logging.Formatter):
    """One journald line per record: ``<priority>logger: message``; journald adds the time,
    the unit and the pid, and turns the prefix into the entry's priority."""

    def format(self, record: logging.LogRecord) -> str:  # noqa: D102
        prio = _PRIORITY.get(record.levelno, 6 if record.levelno < logging.WARNING else 3)
        text = super().format(record).replace("\n", "\n    ")
        return f"<{prio}>{record.name}: {text}"


def stream_is_journal(stream: Any) -> bool:
    """Is ``stream`` connected to journald? (systemd sets JOURNAL_STREAM=device:inode.)"""
    want = os.environ.get("JOURNAL_STREAM", "")
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return want == f"{st.st_dev}:{st.st_ino}"


def setup_logging(level: str) -> bool:
    """Log to stderr at ``level``: with a timestamp on a terminal or in a file, with a
    journald priority prefix and no timestamp under systemd. Return whether it is journald.

    asyncssh logs a dozen lines per connection at INFO: it is kept at WARNING unless
    ``level`` is debug.
    """
    journal = stream_is_journal(sys.stderr)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JournalFormatter() if journal else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("asyncssh").setLevel(logging.DEBUG if level == "debug"
                                           else logging.WARNING)
    return journal


def sd_notify(address: str | None, state: str) -> bool:
    """Tell systemd (Type=notify) about the service's state, e.g. ``READY=1``, on the socket
    it gave in NOTIFY_SOCKET; a no-op without one. Return whether a message was sent."""
    if not address:
        return False
    target = "\0" + address[1:] if address.startswith("@") else address  # @: abstract
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.sendto(state.encode(), target)
    except OSError as e:
        log.warning("cannot notify systemd (%s): %s", address, e)
        return False
    return True


# ---- commands ----------------------------------------------------------------------------

def _warn_if_no_user(state_dir: Path) -> None:
    """Nobody can log in to a state directory without users: say how to create one."""
    from northbound.users import UsersFileError, list_users

    try:
        if list_users(state_dir):
            return
    except (OSError, UsersFileError) as e:
        log.warning("cannot read the NETCONF users: %s", e)
        return
    log.warning("no NETCONF user in %s yet: nobody can log in. Create the administrator "
                "(asked on the terminal, or one line of stdin) with: "
                "ipsec-nf passwd --state-dir %s admin", state_dir, state_dir)


async def _serve(app: Any, cfg: ServeConfig, journal: bool, notify: str | None,
                 gnmi: Any = None) -> None:
    """Run the app; once every address listens, say so (stdout) and tell systemd."""
    ready = asyncio.Event()
    task = asyncio.create_task(app.run(cfg.listen, ready, gnmi=gnmi))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if ready.is_set():
        if not journal:  # under journald the log already says it
            for host, port in app.listening:
                print(f"ipsec-nf: NETCONF listening on {format_listen(host, port)}",
                      flush=True)
            if app.gnmi_listening is not None:
                print(f"ipsec-nf: gNMI listening on {format_listen(*app.gnmi_listening)}",
                      flush=True)
        sd_notify(notify, "READY=1\nSTATUS=NETCONF listening on " + ", ".join(
            format_listen(h, p) for h, p in app.listening))
    try:
        await task
    finally:
        sd_notify(notify, "STOPPING=1")


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the gateway: NETCONF server, charon, reconciler."""
    try:
        cfg = serve_config(args)
        gnmi = gnmi_listen(cfg.gnmi, args)
    except ConfigError as e:
        print(f"ipsec-nf serve: {e}", file=sys.stderr)
        return 2
    journal = setup_logging(cfg.log_level)
    if cfg.backend == "kernel-netlink":  # refused now, not SA by SA later (kernel_esp.py)
        from southbound.kernel_esp import kernel_esp_missing
        if (why := kernel_esp_missing()) is not None:
            log.error("refusing to start: %s", why)
            return 1
    notify = os.environ.pop("NOTIFY_SOCKET", None)  # ours: charon must not inherit it
    from nf.persist import UnsafeStateError
    from southbound.charon import CharonError
    from tools.app import App

    assert cfg.state_dir is not None
    log.info("ipsec-nf %s starting: state directory %s, backend %s", version(), cfg.state_dir,
             cfg.backend)
    try:
        app = App(cfg.state_dir, cfg.backend, sync_interval=cfg.sync_interval,
                  limits=cfg.limits, state_interval=cfg.state_interval)
        _warn_if_no_user(cfg.state_dir)
        asyncio.run(_serve(app, cfg, journal, notify, gnmi))
    except UnsafeStateError as e:  # the log, not a bare print: journald gets the priority
        log.error("refusing to start: %s", e)
        return 1
    except CharonError as e:
        log.error("the IKE daemon did not start: %s", e)
        return 1
    except OSError as e:  # e.g. the NETCONF address is in use or not on this host
        log.error("cannot serve: %s", e)
        return 1
    log.info("ipsec-nf stopped")
    return 0


def read_new_password(user: str) -> str | None:
    """The new password: asked twice without echo on a terminal, else one line of stdin.
    None (with the reason on stderr) when the two answers differ or input ends."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    try:
        first = getpass.getpass(f"New password for {user}: ")
        again = getpass.getpass("Type it again: ")
    except (EOFError, KeyboardInterrupt):
        print("\nipsec-nf passwd: no password given", file=sys.stderr)
        return None
    if first != again:
        print("ipsec-nf passwd: the passwords do not match; nothing changed", file=sys.stderr)
        return None
    return first


def cmd_passwd(args: argparse.Namespace) -> int:
    """Set a user's password: asked twice on a terminal, else one line of standard input."""
    from northbound.users import set_password

    password = read_new_password(args.user)
    if password is None:
        return 2
    if not password:
        print("ipsec-nf passwd: empty password refused", file=sys.stderr)
        return 2
    try:
        groups = set_password(Path(args.state_dir), args.user, password, args.group or None)
    except ValueError as e:
        print(f"ipsec-nf passwd: {e}", file=sys.stderr)
        return 2
    print(f"user {args.user}: groups {', '.join(groups) or '(none)'}")
    return 0


def cmd_add_key(args: argparse.Namespace) -> int:
    """Authorize an OpenSSH public key (read from stdin) for a user."""
    from northbound.users import add_authorized_key

    line = sys.stdin.readline().strip()
    if not line:
        print("ipsec-nf add-key: no public key on standard input", file=sys.stderr)
        return 2
    try:
        add_authorized_key(Path(args.state_dir), args.user, line)
    except ValueError as e:
        print(f"ipsec-nf add-key: {e}", file=sys.stderr)
        return 2
    print(f"user {args.user}: key added")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Check a configuration file offline (tools/check.py)."""
    from tools.check import run

    return run(args.file, args.backend, args.format)


CHECK_EPILOG = """\
exit status:
  0  the file is valid: each VPN's effective parameters and what charon would be
     given are printed (stdout)
  1  errors found: every one with its path (and line), on stderr in text, in the
     JSON report on stdout with --format json
  2  usage error, or a file that cannot be read or parsed (stderr)

Pre-shared key secrets are never printed (<hidden>)."""


def cmd_ca(args: argparse.Namespace) -> int:
    """The certificate authority (tools/ca_cli.py)."""
    from tools.ca_cli import run

    return run(args)


COMMANDS = {"serve": cmd_serve, "passwd": cmd_passwd, "add-key": cmd_add_key,
            "check": cmd_check, "ca": cmd_ca}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    p = argparse.ArgumentParser(
        prog="ipsec-nf", description=__doc__.strip(),
        epilog="Run 'ipsec-nf COMMAND --help' for the options of a command.")
    p.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = p.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")
    s = sub.add_parser(
        "serve", help="run the gateway (NETCONF server, charon, reconciler)",
        description="Run the gateway. Settings come from --config FILE (TOML; keys: "
                    f"{', '.join(CONFIG_KEYS)}), overridden by the options given here.")
    s.add_argument("--config", metavar="FILE",
                   help=f"TOML configuration file (e.g. {DEFAULT_CONFIG_HINT})")
    s.add_argument("--state-dir", help="where config, users, keys and charon live "
                                       "(required here or in the configuration file)")
    s.add_argument("--listen", type=parse_listen, action="append", metavar="HOST:PORT",
                   help=f"NETCONF over SSH address, repeatable (default {DEFAULT_LISTEN}; "
                        "[::1]:830 for IPv6)")
    s.add_argument("--backend", choices=BACKENDS,
                   help="data plane: ESP in user space over TUN (kernel-libipsec, default), "
                        "or kernel SAs (kernel-netlink)")
    s.add_argument("--sync-interval", type=float, metavar="SECONDS",
                   help="how often charon's connections, secrets and tunnels are read back "
                        "and drift repaired (default 30)")
    s.add_argument("--state-interval", type=float, metavar="SECONDS",
                   help="how often the operational state (SAs, counters) is sampled from "
                        "charon between SA events (default 5)")
    s.add_argument("--gnmi", type=parse_listen, metavar="HOST:PORT",
                   help="also serve gNMI (gRPC) there, with TLS (off by default)")
    s.add_argument("--gnmi-cert", metavar="FILE", help="gNMI TLS certificate (PEM)")
    s.add_argument("--gnmi-key", metavar="FILE", help="gNMI TLS private key (PEM)")
    s.add_argument("--gnmi-insecure", action="store_true",
                   help="gNMI in plaintext (loopback and tests only)")
    s.add_argument("--log-level", choices=LOG_LEVELS, help="default info")
    s.add_argument("--debug", action="store_true", help="same as --log-level debug")
    w = sub.add_parser(
        "passwd", help="set a user's password (asked twice on a terminal, else read from stdin)",
        description="Set a NETCONF user's password, creating the user. On a terminal the "
                    "password is asked twice without echo; otherwise one line of standard "
                    "input is read. The first user of a state directory is an administrator.")
    w.add_argument("--state-dir", required=True)
    w.add_argument("--group", action="append", help="NACM group (repeatable)")
    w.add_argument("user")
    k = sub.add_parser("add-key", help="authorize an SSH public key (read from stdin)")
    k.add_argument("--state-dir", required=True)
    k.add_argument("user")
    c = sub.add_parser(
        "check", help="check a configuration file offline (like a swanctl dry run)",
        description="Validate a configuration file against the YANG model, resolve the "
                    "templates and run the backend's checks, as the server does at "
                    "<validate> and <commit>; print each VPN's effective parameters and the "
                    "connections it would load, or every error found. FILE is XML (a "
                    "<config> element as edit-config carries it, or <ike xmlns=...>) or "
                    'JSON_IETF ({"ipsec-nf:ike": ...}), told apart by its content; - reads '
                    "standard input.",
        epilog=CHECK_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND,
                   help=f"the backend whose limits apply (default {DEFAULT_BACKEND}, as serve)")
    c.add_argument("--format", choices=("text", "json"), default="text",
                   help="report format (default text)")
    c.add_argument("file", metavar="FILE")
    from tools.ca_cli import add_parser as add_ca_parser

    add_ca_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
