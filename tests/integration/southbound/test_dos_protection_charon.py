"""global-options dos-protection cookie-threshold-ip and cookie-threshold in force in a real
charon (5.9.8): the responder, started by our code with the options as charon settings and one
PSK VPN per peer address, gets hand-made IKE_SA_INIT requests (ike_init_probe; never IKE_AUTH,
so every answered one stays half-open there) and is seen to answer with its SA/KE/Nonce until
the threshold of half-open IKE SAs is reached, then with a COOKIE notify (RFC 7296 §2.6);
a retry carrying that cookie is answered normally. With both thresholds 0, no cookie.

charon's rules (src/libcharon/network/receiver.c of 5.9.8, cookie_required/drop_ike_sa_init):
a cookie is asked when the half-open responder IKE SAs, of the source address or of all, are
>= the threshold (0: never), and for COOKIE_CALMDOWN_DELAY (10 s) after that, per bucket of
addresses (a keyed hash, 32 buckets). So a second address is only ever asked before the first
one trips its threshold (two addresses may share a bucket), and each setting gets a fresh
charon (the thresholds are read at start).

Needs root and ``ip netns`` (CI runs as root): fails loudly, never skips, when unusable.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from nf.effective import GlobalOptions
from southbound.charon import CharonProcess
from southbound.charon_conf import MODEL_DEFAULTS
from southbound.convert import conn_for, shared_for
from southbound.vici_client import ViciClient
from tests.integration.southbound.ike_init_probe import PROPOSAL, Answer, exchange
from tests.integration.southbound.test_charon_pair import (  # noqa: F401 - the fixture
    PSK,
    netns_pair,
)
from tests.integration.southbound.test_dataplane_limits import pair
from tests.integration.tools.gateway import in_netns
from tests.support import sh

pytestmark = pytest.mark.e2e

RESPONDER = ("198.51.100.2", 500)
PEER, PEER2 = "198.51.100.1", "198.51.100.3"  # both in namespace A


def dos(cookie: int, cookie_ip: int) -> GlobalOptions:
    """The model's defaults with these two thresholds (block-threshold stays 5)."""
    return replace(MODEL_DEFAULTS, dos_protection=replace(
        MODEL_DEFAULTS.dos_protection, cookie_threshold=cookie, cookie_threshold_ip=cookie_ip))


@pytest.fixture
def peers(netns_pair: tuple[str, str]) -> Iterator[tuple[str, str]]:  # noqa: F811
    """The pair of namespaces, A with a second address (PEER2) on its veth."""
    ns_a, _ = netns_pair
    dev = f"sva{os.getpid() % 100000}"  # the fixture's veth in A
    sh("ip", "-n", ns_a, "addr", "add", f"{PEER2}/24", "dev", dev)
    yield netns_pair


class Initiator:
    """UDP sockets in namespace A, one per source address, sending IKE_SA_INITs to B."""

    def __init__(self, ns: str) -> None:
        self.socks: dict[str, socket.socket] = {}
        with in_netns(ns):
            for addr in (PEER, PEER2):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind((addr, 0))
                self.socks[addr] = s

    def close(self) -> None:
        for s in self.socks.values():
            s.close()

    def init(self, src: str, spi: bytes | None = None, cookie: bytes | None = None) -> Answer:
        """One IKE_SA_INIT from ``src`` (a fresh SPI unless given); fails when unanswered."""
        ans = exchange(self.socks[src], RESPONDER, spi or os.urandom(8), cookie)
        assert ans is not None, f"no answer from charon to an IKE_SA_INIT from {src}"
        time.sleep(0.02)  # let charon check the IKE SA in before the next request
        return ans


class Responder:
    """Starts charons in B (our CharonProcess, the strongswan.conf our code renders from the
    global options) with the test VPN towards each of A's addresses, and initiators in A."""

    def __init__(self, ns_a: str, ns_b: str, tmp_path: Path) -> None:
        self.ns_a, self.ns_b, self.tmp_path = ns_a, ns_b, tmp_path
        self.charons: list[CharonProcess] = []
        self.initiators: list[Initiator] = []

    def start(self, options: GlobalOptions) -> Initiator:
        """A charon with ``options`` answering IKE_SA_INIT; an Initiator towards it."""
        charon = CharonProcess(self.tmp_path / f"b{len(self.charons)}", options=options,
                               netns=self.ns_b)
        self.charons.append(charon)
        charon.start()
        assert charon.health().ok, charon.log_tail()
        _, b = pair()
        b = replace(b, ike=replace(b.ike, ike_proposals=(PROPOSAL,)))
        with ViciClient(charon.socket_path) as vc:
            vc.load_shared("ab", shared_for(PSK))
            for name, remote in (("to-a", PEER), ("to-a2", PEER2)):
                vc.load_conn(name, conn_for(replace(b, name=name, remote_address=remote)))
        self.initiators.append(Initiator(self.ns_a))
        return self.initiators[-1]

    def close(self) -> None:
        for i in self.initiators:
            i.close()
        for c in self.charons:
            c.stop()


@pytest.fixture
def responder(peers: tuple[str, str], tmp_path: Path) -> Iterator[Responder]:
    """A Responder; its charons are stopped afterwards (their log is printed: pytest shows it
    when the test failed)."""
    r = Responder(*peers, tmp_path)
    try:
        yield r
    finally:
        for c in r.charons:
            print(c.log_tail(40))
        r.close()


def in_conf(charon: CharonProcess, key: str) -> str:
    """The value of ``key`` directly under ``charon {`` in the strongswan.conf it runs with."""
    for line in charon.conf_path.read_text().splitlines():
        if line.startswith(f"  {key} = "):
            return line.split(" = ", 1)[1]
    raise AssertionError(f"{key} not in {charon.conf_path}")


def test_cookie_threshold_ip_in_force(responder: Responder) -> None:
    """cookie-threshold-ip 2 (global cookies off): PEER's first two IKE_SA_INITs are
    answered, PEER2 is still answered while PEER has two half-open, PEER's next ones get a
    COOKIE; its retry with the cookie is answered with SA/KE/Nonce."""
    ini = responder.start(dos(cookie=0, cookie_ip=2))
    charon = responder.charons[-1]
    assert (in_conf(charon, "cookie_threshold_ip"), in_conf(charon, "cookie_threshold")) == (
        "2", "0")
    seen = [ini.init(PEER), ini.init(PEER), ini.init(PEER2), ini.init(PEER), ini.init(PEER)]
    kinds = [a.kind for a in seen]
    print("cookie-threshold-ip 2:", kinds)
    assert kinds == ["SA", "SA", "SA", "COOKIE", "COOKIE"]
    last = seen[-1]
    assert last.cookie and last.spi_r == bytes(8)  # no IKE SA made for it
    retry = ini.init(PEER, spi=last.spi_i, cookie=last.cookie)
    print("retry with the cookie:", retry.kind)
    assert retry.kind == "SA" and retry.spi_r != bytes(8)


def test_cookie_threshold_global_in_force(responder: Responder) -> None:
    """cookie-threshold 3 (per-address cookies off): three half-open IKE SAs in all (two from
    PEER, one from PEER2) and PEER2, with one half-open of its own, gets a COOKIE."""
    ini = responder.start(dos(cookie=3, cookie_ip=0))
    kinds = [ini.init(PEER).kind, ini.init(PEER).kind, ini.init(PEER2).kind,
             ini.init(PEER2).kind]
    print("cookie-threshold 3:", kinds)
    assert kinds == ["SA", "SA", "SA", "COOKIE"]


def test_thresholds_off_no_cookie(responder: Responder) -> None:
    """Both thresholds 0: five half-open IKE SAs from one address (block-threshold 5 allows
    them) and one from another, all answered with SA/KE/Nonce; the sixth from PEER reaches
    block-threshold (5, the model's default) and is dropped, as charon logs."""
    ini = responder.start(dos(cookie=0, cookie_ip=0))
    kinds = [ini.init(PEER).kind for _ in range(5)] + [ini.init(PEER2).kind]
    print("cookie-threshold 0, cookie-threshold-ip 0:", kinds)
    assert kinds == ["SA"] * 6
    charon = responder.charons[-1]
    assert exchange(ini.socks[PEER], RESPONDER, os.urandom(8), timeout=0.5) is None
    assert f"ignoring IKE_SA setup from {PEER}, per-IP half-open IKE_SA limit of 5 reached" \
        in charon.log_path.read_text(), charon.log_tail()
