"""global-options ike-port / ike-nat-port carried to real charons (5.9.8): two gateways in two
network namespaces, each on its own non-default ports, negotiate IKE and carry a ping in ESP;
the health check follows the configured ports.

The peer's VPN is loaded over VICI with ``remote_port`` (the other gateway's ike-port), as a VPN's
remote port gives it. What charon does with non-default ports, seen here: it binds exactly the
configured ports (IPv4 and IPv6), IKE_SA_INIT goes port to port, then the initiator floats to
its own NAT-T port while the responder stays on its ike-port (charon floats the remote side
only from 500), both sides see the peer "behind NAT" and encapsulate ESP in UDP.

Needs root and ``ip netns`` (CI runs as root): fails loudly, never skips, when unusable.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path

import pytest

from nf.effective import GlobalOptions
from southbound.charon import CharonProcess
from southbound.charon_conf import MODEL_DEFAULTS, apply_method
from southbound.charon_health import SOCKETS_UNBOUND, UP
from southbound.convert import conn_for, shared_for
from southbound.vici_client import ViciClient
from tests.integration.southbound.test_charon_pair import (  # noqa: F401 - the fixture
    PSK,
    netns_pair,
    ping,
)
from tests.integration.southbound.test_charon_process import hold_ike_ports
from tests.integration.southbound.test_dataplane_limits import pair
from tests.support import sh

pytestmark = pytest.mark.e2e

A_PORTS, B_PORTS = (1500, 14500), (2500, 24500)


def options(ports: tuple[int, int]) -> GlobalOptions:
    return replace(MODEL_DEFAULTS, ike_port=ports[0], ike_nat_port=ports[1])


def bound_udp(ns: str) -> set[tuple[str, int]]:
    """UDP (address, port) pairs charon listens on in ``ns``."""
    out = sh("ip", "netns", "exec", ns, "ss", "-Hulnp").stdout
    return {(addr, int(port)) for addr, port in
            re.findall(r"^\S+\s+\d+\s+\d+\s+(\S+):(\d+)\s.*charon", out, re.M)}


def test_two_gateways_on_their_own_ports(netns_pair: tuple[str, str],  # noqa: F811
                                         tmp_path: Path) -> None:
    a, b = pair()
    charons = [CharonProcess(tmp_path / side, options=options(ports), netns=ns)
               for side, ports, ns in zip("ab", (A_PORTS, B_PORTS), netns_pair, strict=True)]
    try:
        for charon, v, peer in zip(charons, (a, b), (B_PORTS, A_PORTS), strict=True):
            charon.start()
            assert charon.health().status == UP, charon.log_tail()
            conn = conn_for(v, trap_as_start=False)
            conn["remote_port"] = str(peer[0])  # the peer's ike-port
            with ViciClient(charon.socket_path) as vc:
                vc.load_shared("ab", shared_for(PSK))
                vc.load_conn(v.name, conn)
        for ns, (ike, nat) in zip(netns_pair, (A_PORTS, B_PORTS), strict=True):
            ports = {p for _, p in bound_udp(ns)}
            assert ports == {ike, nat}, bound_udp(ns)
        with ViciClient(charons[0].socket_path, timeout=15) as vc:
            vc.initiate(child="trunk", ike=a.name)
            sas = vc.list_sas()
        sa = sas[0][a.name]
        assert sa["state"] == b"ESTABLISHED"
        assert (sa["remote-port"], sa["local-port"]) == (b"2500", b"14500")  # floated locally
        child = next(iter(sa["child-sas"].values()))
        assert child["encap"] == b"yes"
        res = ping(netns_pair[0])
        assert res.returncode == 0, res.stdout + res.stderr
        log_a = charons[0].log_path.read_text()
        assert "sending packet: from 198.51.100.1[1500] to 198.51.100.2[2500]" in log_a
        assert "sending packet: from 198.51.100.1[14500] to 198.51.100.2[2500]" in log_a
    except BaseException:
        for c in charons:
            print(c.log_tail(60))
        raise
    finally:
        for c in charons:
            c.stop()


def test_health_follows_the_configured_ports(netns_pair: tuple[str, str],  # noqa: F811
                                             tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    """Another process holding 500/4500 does not matter on ports 1500/14500; holding the
    configured ike-port makes charon "sockets-unbound", and the error names the ports."""
    ns = netns_pair[0]
    charon = CharonProcess(tmp_path / "a", options=options(A_PORTS), netns=ns)
    holder = hold_ike_ports(ns, ports=(500, 4500))
    try:
        charon.start()
        assert charon.health().status == UP, charon.health()
        charon.stop()
    finally:
        holder.kill()
        holder.wait()
        charon.stop()
    holder = hold_ike_ports(ns, ports=(A_PORTS[0],), v6=False)
    try:
        with caplog.at_level(logging.ERROR, logger="southbound.charon"):
            charon.start()
        health = charon.health()
        assert health.status == SOCKETS_UNBOUND, health
        assert "could not open IPv4 socket" in (health.message or ""), health
        assert any("(UDP 1500/14500)" in r.getMessage() for r in caplog.records), caplog.text
    finally:
        holder.kill()
        holder.wait()
        charon.stop()


def test_a_port_change_restarts_charon() -> None:
    """The sockets are bound at start: a changed port is a restart, never a reload."""
    assert apply_method(MODEL_DEFAULTS, options((500, 4501))) == "restart"
    assert apply_method(MODEL_DEFAULTS, options((501, 4500))) == "restart"
    assert apply_method(MODEL_DEFAULTS, options((500, 4500))) is None
