"""The `ipsec-nf` command: serve, passwd."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

DEFAULT_LISTEN = "127.0.0.1:830"


def parse_listen(text: str) -> tuple[str, int]:
    """HOST:PORT or [V6]:PORT -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the gateway: NETCONF server, charon, reconciler."""
    from tools.app import App

    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    from southbound.charon import CharonError

    host, port = args.listen
    try:
        app = App(Path(args.state_dir), args.backend, sync_interval=args.sync_interval)
        asyncio.run(app.run(host, port))
    except CharonError as e:
        print(f"ipsec-nf serve: the IKE daemon did not start: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # e.g. the NETCONF address is in use or not on this host
        print(f"ipsec-nf serve: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_passwd(args: argparse.Namespace) -> int:
    """Set a user's password, read from standard input."""
    from northbound.users import set_password

    password = sys.stdin.readline().rstrip("\n")
    if not password:
        print("ipsec-nf passwd: empty password refused", file=sys.stderr)
        return 2
    groups = set_password(Path(args.state_dir), args.user, password, args.group or None)
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


COMMANDS = {"serve": cmd_serve, "passwd": cmd_passwd, "add-key": cmd_add_key}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    p = argparse.ArgumentParser(prog="ipsec-nf", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the gateway")
    s.add_argument("--state-dir", required=True, help="where config, keys and charon live")
    s.add_argument("--listen", type=parse_listen, default=parse_listen(DEFAULT_LISTEN),
                   help=f"NETCONF over SSH address (default {DEFAULT_LISTEN})")
    s.add_argument("--backend", choices=("kernel-libipsec", "kernel-netlink"),
                   default="kernel-libipsec",
                   help="data plane: ESP in user space over TUN, or kernel SAs")
    s.add_argument("--sync-interval", type=float, default=30.0, metavar="SECONDS",
                   help="how often charon's connections, secrets and tunnels are read back "
                        "and drift repaired (default 30)")
    s.add_argument("--debug", action="store_true")
    w = sub.add_parser("passwd", help="set a user's password (read from stdin)")
    w.add_argument("--state-dir", required=True)
    w.add_argument("--group", action="append", help="NACM group (repeatable)")
    w.add_argument("user")
    k = sub.add_parser("add-key", help="authorize an SSH public key (read from stdin)")
    k.add_argument("--state-dir", required=True)
    k.add_argument("user")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
