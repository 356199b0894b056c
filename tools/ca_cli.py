"""`ipsec-nf ca ...`: the gateway's certificate authority from the command line (nf/ca_store.py
on ``<state-dir>/ca/``), like Libreswan's ``ikev2.sh`` and OpenBSD's ``ikectl ca``.

    ipsec-nf ca init    --state-dir D NAME [--key-type ecdsa|rsa] [--days N] [--permit-dns ...]
    ipsec-nf ca issue   --state-dir D gateway|client CN [--dns ...] [--ip ...] [--email ...]
    ipsec-nf ca list    --state-dir D [--all] [--format text|json]
    ipsec-nf ca revoke  --state-dir D SERIAL|CN [--reason R]
    ipsec-nf ca delete  --state-dir D SERIAL|CN [--force]
    ipsec-nf ca export  --state-dir D SERIAL|CN --format p12|mobileconfig|sswan [--out FILE]

Exit status: 0 done; 1 the CA refused (no CA, unknown certificate, a conflict, a value it
cannot use), with the reason on stderr; 2 usage error. Exports are written with mode 0600;
a password is read from standard input (``--password-stdin``) or generated
(``--random-password``, printed once), never taken from the command line. The CA's private
key is never printed or exported.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

PROG = "ipsec-nf ca"
EXIT_REFUSED, EXIT_USAGE = 1, 2
EXTENSIONS = {"p12": "p12", "mobileconfig": "mobileconfig", "sswan": "sswan"}


def _key_args(p: argparse.ArgumentParser, default_type: str | None) -> None:
    p.add_argument("--key-type", choices=("ecdsa", "rsa"), default=default_type,
                   help="key algorithm" + (f" (default {default_type})" if default_type
                                           else " (default: the CA's)"))
    p.add_argument("--bits", type=int, default=3072, help="RSA key size (default 3072)")
    p.add_argument("--curve", choices=("p256", "p384", "p521"), default="p256",
                   help="ECDSA curve (default p256)")


def add_parser(sub: Any) -> None:
    """Add ``ca`` and its sub-commands to the ``ipsec-nf`` parser (``sub``: its
    subparsers)."""
    ca = sub.add_parser("ca", help="the gateway's certificate authority (create, issue, "
                                   "list, revoke, delete, export)",
                        description=__doc__.split("\n\n")[0])
    cmds = ca.add_subparsers(dest="ca_command", required=True, metavar="CA-COMMAND")

    def cmd(name: str, help_text: str) -> argparse.ArgumentParser:
        p = cmds.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--state-dir", required=True, help="the gateway's state directory")
        return p

    p = cmd("init", "create the CA (its key stays in STATE_DIR/ca/, mode 0600)")
    p.add_argument("name", help="the CA's common name, e.g. 'Example VPN CA'")
    _key_args(p, "ecdsa")
    p.add_argument("--days", type=int, default=3650, help="validity (default 3650)")
    for flag, what in (("--permit-dns", "DNS suffix"), ("--permit-ip", "IP prefix"),
                       ("--permit-email", "e-mail domain"), ("--exclude-dns", "DNS suffix"),
                       ("--exclude-ip", "IP prefix")):
        p.add_argument(flag, action="append", default=[], metavar=what.split()[-1].upper(),
                       help=f"name constraint: {'permitted' if 'permit' in flag else 'excluded'}"
                            f" {what} (repeatable)")

    p = cmd("issue", "issue a gateway or client certificate with a new key")
    p.add_argument("kind", choices=("gateway", "client"))
    p.add_argument("common_name", metavar="CN",
                   help="the subject's common name (also a subjectAltName when it reads as a "
                        "DNS name, an IP address or an e-mail address)")
    p.add_argument("--dns", action="append", default=[], help="DNS subjectAltName")
    p.add_argument("--ip", action="append", default=[], help="IP address subjectAltName")
    p.add_argument("--email", action="append", default=[], help="e-mail subjectAltName")
    p.add_argument("--days", type=int, default=730, help="validity (default 730, at most "
                                                         "the CA's)")
    _key_args(p, None)

    p = cmd("list", "list the issued certificates")
    p.add_argument("--all", action="store_true", help="also the deleted ones")
    p.add_argument("--format", choices=("text", "json"), default="text")

    p = cmd("revoke", "revoke a certificate; the CRL is regenerated")
    p.add_argument("which", metavar="SERIAL|CN")
    p.add_argument("--reason", default="unspecified",
                   choices=("unspecified", "key-compromise", "affiliation-changed",
                            "superseded", "cessation-of-operation"))

    p = cmd("delete", "delete a certificate and its key (revoke it first)")
    p.add_argument("which", metavar="SERIAL|CN")
    p.add_argument("--force", action="store_true",
                   help="delete a certificate that is still valid (a client holding it can "
                        "still connect: revoke instead)")

    p = cmd("export", "export a client's .p12, .mobileconfig or .sswan (mode 0600)")
    p.add_argument("which", metavar="SERIAL|CN")
    p.add_argument("--format", required=True, choices=tuple(EXTENSIONS))
    p.add_argument("--out", metavar="FILE", help="where to write it (default CN.FORMAT here)")
    pw = p.add_mutually_exclusive_group()
    pw.add_argument("--password-stdin", action="store_true",
                    help="protect the PKCS#12 with a password read from standard input")
    pw.add_argument("--random-password", action="store_true",
                    help="protect it with a generated password, printed once")
    p.add_argument("--legacy", action="store_true",
                   help="p12: 3DES and SHA-1 MAC, for old key stores (profiles always do)")
    p.add_argument("--remote-address", help="the gateway's address (mobileconfig, sswan)")
    p.add_argument("--remote-id", help="the gateway's IKE identity (default: its address)")
    p.add_argument("--name", help="the profile's display name")


def _fail(message: str, status: int = EXIT_REFUSED) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return status


def _key_spec(args: argparse.Namespace) -> Any:
    from nf.ca import KeySpec

    if args.key_type is None:
        return None
    return KeySpec(args.key_type, args.bits, args.curve)


def _row(c: Any) -> str:
    sans = ",".join([*c.dns, *c.ip, *c.email]) or "-"
    extra = f" {c.revoked_at} {c.reason}" if c.status == "revoked" else ""
    return f"{c.serial:>6}  {c.kind:<7}  {c.status:<7}  {c.not_after}  {c.common_name}  " \
           f"{sans}{extra}"


def _init(store: Any, args: argparse.Namespace) -> int:
    from nf.ca import NameConstraints

    nc = NameConstraints(tuple(args.permit_dns), tuple(args.permit_ip),
                         tuple(args.permit_email), tuple(args.exclude_dns),
                         tuple(args.exclude_ip))
    info = store.create(args.name, _key_spec(args), args.days, nc or None)
    print(f"CA {info.name!r} created ({info.key_type}), valid until {info.not_after}")
    print(f"SHA-256 fingerprint {info.fingerprint}")
    print(f"certificate: {store.dir / 'ca.pem'}")
    return 0


def _issue(store: Any, args: argparse.Namespace) -> int:
    c = store.issue(args.kind, args.common_name, tuple(args.dns), tuple(args.ip),
                    tuple(args.email), args.days, _key_spec(args))
    print(f"{c.kind} certificate {c.serial} issued for {c.common_name!r}, valid until "
          f"{c.not_after}")
    print(f"certificate: {store.dir / 'issued' / f'{c.serial}.pem'}")
    return 0


def _list(store: Any, args: argparse.Namespace) -> int:
    info, certs = store.info(), store.list(args.all)
    if args.format == "json":
        ca = {k: v for k, v in asdict(info).items() if k != "certificate"}
        out = {"ca": ca, "certificates": [
            {k: v for k, v in asdict(c).items() if k != "certificate"} for c in certs]}
        print(json.dumps(out, indent=2))
        return 0
    print(f"CA {info.name!r} ({info.key_type}), valid until {info.not_after}, "
          f"CRL number {info.crl_number}")
    print(f"{'serial':>6}  {'kind':<7}  {'status':<7}  {'not after':<20}  common name  SANs")
    for c in certs:
        print(_row(c))
    return 0


def _export(store: Any, args: argparse.Namespace) -> int:
    from nf.ca import ProfileOptions
    from nf.persist import atomic_write

    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            return _fail("no password on standard input", EXIT_USAGE)
    elif args.random_password:
        password = secrets.token_urlsafe(12)
    profile = None
    if args.format != "p12":
        if not args.remote_address:
            return _fail(f"--format {args.format} needs --remote-address", EXIT_USAGE)
        profile = ProfileOptions(args.remote_address, args.remote_id, args.name)
    data = store.export(args.which, args.format, password, profile, legacy=args.legacy)
    if args.out:
        out = Path(args.out)
    else:
        name = store.get(args.which).common_name
        safe = "".join(ch if ch.isalnum() or ch in "-_.@" else "_" for ch in name)
        out = Path(f"{safe}.{EXTENSIONS[args.format]}")
    atomic_write(out.absolute(), data)
    print(f"{args.format} written to {out} (mode 0600)")
    if args.random_password:
        print(f"password: {password}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run one ``ipsec-nf ca`` sub-command."""
    from nf.ca import CaError
    from nf.ca_store import CaStore

    store = CaStore(Path(args.state_dir))
    try:
        if args.ca_command == "init":
            return _init(store, args)
        if args.ca_command == "issue":
            return _issue(store, args)
        if args.ca_command == "list":
            return _list(store, args)
        if args.ca_command == "revoke":
            c = store.revoke(args.which, args.reason)
            print(f"certificate {c.serial} ({c.common_name!r}) revoked; CRL number "
                  f"{store.info().crl_number} in {store.dir / 'crl.pem'}")
            return 0
        if args.ca_command == "delete":
            c = store.delete(args.which, args.force)
            print(f"certificate {c.serial} ({c.common_name!r}) deleted")
            return 0
        return _export(store, args)
    except CaError as e:
        return _fail(e.message)
    except OSError as e:
        return _fail(f"{e.filename or store.dir}: {e.strerror}")
