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
import sys
from pathlib import Path
from typing import Any

from tools.serve_config import (
    BACKENDS,
    CONFIG_KEYS,
    DEFAULT_BACKEND,
    DEFAULT_CONFIG_HINT,
    DEFAULT_LISTEN,
    LOG_LEVELS,
    ConfigError,
    ServeConfig,
    format_listen,
    gnmi_listen,
    parse_listen,
    serve_config,
)
from tools.service_log import sd_notify, setup_logging

log = logging.getLogger("ipsec-nf")


def version() -> str:
    """The installed version of the ipsec-nf distribution."""
    try:
        return importlib.metadata.version("ipsec-nf")
    except importlib.metadata.PackageNotFoundError:  # a checkout that was never installed
        return "0+unknown"


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
    _exit_now(0)
    return 0  # (not reached)


def _exit_now(status: int) -> None:
    """End the process without the interpreter's teardown, once serve has stopped: that
    teardown frees every object one at a time (10 s of a SIGTERM with 10,000 VPNs, on this
    machine kind) and nothing needs it: commits are on disk when they are answered, charon
    and every thread we waited for are stopped. The history files of the last commits
    (written after the reply), logs and stdio are flushed first."""
    from nf.history import flush_all

    flush_all()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


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
