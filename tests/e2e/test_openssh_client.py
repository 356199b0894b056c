"""The real OpenSSH client against a real gateway (ipsec-nf serve in a network namespace):
`ssh -tt -s netconf` (a forced PTY, as some automation runs it), OpenSSH's default algorithms,
and an OpenSSH client insisting on each algorithm the server refuses.

Keys are made with ssh-keygen and authorized with `ipsec-nf add-key`, as README says.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from tools.lab import NETCONF_PORT, Lab, configure, running

pytestmark = pytest.mark.e2e  # root, network namespaces, charon
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
ROOT = Path(__file__).resolve().parents[2]
EOM = b"]]>]]>"
HELLO = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
         b'<hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities>\n'
         b"<capability>urn:ietf:params:netconf:base:1.0</capability>\n"
         b"</capabilities></hello>")
GET_CONFIG = (b'<rpc message-id="101" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">\r\n'
              b"<get-config><source><running/></source></get-config></rpc>")
CLOSE = (b'<rpc message-id="102" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
         b"<close-session/></rpc>")


def _ssh() -> str:
    path = shutil.which("ssh")
    if path is None:
        pytest.fail("the OpenSSH client (ssh) is missing: `make test` installs openssh-client")
    return path


def _keygen(path: Path, kind: str) -> None:
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        pytest.fail("ssh-keygen is missing: `make test` installs openssh-client")
    extra = ["-b", "3072"] if kind == "rsa" else []
    subprocess.run([keygen, "-q", "-t", kind, *extra, "-N", "", "-C", f"e2e-{kind}",
                    "-f", str(path)], check=True, capture_output=True)


def _add_key(state_dir: Path, user: str, pub: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "tools.cli", "add-key", "--state-dir",
                        str(state_dir), user], input=pub.read_text(), text=True,
                       capture_output=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr


class Gateway:
    """Site A of the lab, with an ed25519 and an RSA key authorized for user `automation`."""

    def __init__(self, lab: Lab, keys: Path) -> None:
        self.lab = lab
        self.host = lab.a.mgmt
        self.ed25519 = keys / "id_ed25519"
        self.rsa = keys / "id_rsa"

    def ssh(self, *options: str, key: Path | None = None, stdin: bytes = b"",
            tty: bool = False) -> subprocess.CompletedProcess[bytes]:
        """`ssh [-tt] -s -p PORT -o ... automation@HOST netconf`, the way automation runs it."""
        argv = [_ssh(), *(["-tt"] if tty else []), "-s", "-p", str(NETCONF_PORT),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=20",
                "-F", "/dev/null", "-i", str(key or self.ed25519), *options,
                f"automation@{self.host}", "netconf"]
        return subprocess.run(argv, input=stdin, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    _ssh()
    keys = tmp_path_factory.mktemp("keys")
    _keygen(keys / "id_ed25519", "ed25519")
    _keygen(keys / "id_rsa", "rsa")
    with running(tmp_path_factory.mktemp("sshlab"), sites="A") as lab:
        for name in ("id_ed25519", "id_rsa"):
            _add_key(lab.a.state_dir, "automation", keys / f"{name}.pub")
        configure(lab, lab.a)
        yield Gateway(lab, keys)


def _messages(out: bytes) -> list[etree._Element]:
    parts = out.split(EOM)
    assert parts[-1].strip(b"\r\n") == b"", out  # nothing after the last message
    return [etree.fromstring(p) for p in parts[:-1]]


def test_ssh_tt_forced_pty_hello_and_rpc(gateway: Gateway) -> None:
    """`ssh -tt -s netconf`: OpenSSH asks for a PTY (and gives up if refused); the server
    grants it and keeps the channel raw, so the exchange is byte-exact NETCONF."""
    r = gateway.ssh(tty=True, stdin=HELLO + EOM + GET_CONFIG + EOM + CLOSE + EOM)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    out = r.stdout
    assert b"\r" not in out  # no LF -> CR LF translation of the server's output
    hello, reply, closed = _messages(out)  # no echo of what we sent, nothing else
    assert hello.tag == f"{{{NC}}}hello" and hello.findtext(f"{{{NC}}}session-id")
    assert reply.tag == f"{{{NC}}}rpc-reply" and reply.get("message-id") == "101"
    data = reply.find(f"{{{NC}}}data")
    assert data is not None, etree.tostring(reply)
    assert b"siteA-siteB" in etree.tostring(data)
    assert closed.get("message-id") == "102" and closed.find(f"{{{NC}}}ok") is not None


def test_openssh_defaults_negotiate(gateway: Gateway) -> None:
    """OpenSSH with its default algorithms (no -o) connects; ssh -v says what was chosen."""
    r = gateway.ssh("-v", stdin=HELLO + EOM + CLOSE + EOM)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    hello, closed = _messages(r.stdout)
    assert hello.tag == f"{{{NC}}}hello" and closed.find(f"{{{NC}}}ok") is not None
    chosen = [line for line in r.stderr.decode().splitlines()
              if "kex: algorithm:" in line or "kex: host key algorithm:" in line
              or "kex: server->client cipher:" in line]
    print("\n".join(chosen))
    assert any("ssh-ed25519" in line for line in chosen), chosen


def test_openssh_rsa_key_signing_with_sha2_accepted(gateway: Gateway) -> None:
    r = gateway.ssh(key=gateway.rsa, stdin=HELLO + EOM + CLOSE + EOM)
    assert r.returncode == 0, r.stderr.decode(errors="replace")


REFUSED = [
    (["-o", "KexAlgorithms=diffie-hellman-group14-sha1"], "no matching key exchange method"),
    (["-o", "KexAlgorithms=diffie-hellman-group1-sha1"], "no matching key exchange method"),
    (["-o", "KexAlgorithms=diffie-hellman-group-exchange-sha1"],
     "no matching key exchange method"),
    (["-o", "Ciphers=aes128-cbc"], "no matching cipher"),
    (["-o", "Ciphers=aes256-cbc"], "no matching cipher"),
    (["-o", "Ciphers=3des-cbc"], "no matching cipher"),
    (["-o", "Ciphers=aes128-ctr", "-o", "MACs=hmac-sha1"], "no matching MAC"),
    (["-o", "Ciphers=aes128-ctr", "-o", "MACs=hmac-sha1-etm@openssh.com"], "no matching MAC"),
    (["-o", "Ciphers=aes128-ctr", "-o", "MACs=umac-64@openssh.com"], "no matching MAC"),
    (["-o", "Ciphers=aes128-ctr", "-o", "MACs=umac-64-etm@openssh.com"], "no matching MAC"),
    (["-o", "Ciphers=aes128-ctr", "-o", "MACs=hmac-md5"], "no matching MAC"),
    (["-o", "HostKeyAlgorithms=ssh-rsa"], "no matching host key type"),
    (["-o", "PubkeyAcceptedAlgorithms=ssh-rsa"], "Permission denied"),
]


@pytest.mark.parametrize(("options", "error"), REFUSED,
                         ids=[o[-1] for o, _ in REFUSED])
def test_openssh_insisting_on_a_refused_algorithm_cannot_connect(
        gateway: Gateway, options: list[str], error: str) -> None:
    key = gateway.rsa if "PubkeyAcceptedAlgorithms=ssh-rsa" in options else None
    r = gateway.ssh(*options, key=key, stdin=HELLO + EOM + CLOSE + EOM)
    stderr = r.stderr.decode(errors="replace")
    assert r.returncode == 255, stderr
    assert error in stderr, stderr
    assert b"<hello" not in r.stdout
