"""The vRouter manual's global options, carried to a real charon (5.9.8) in a throw-away network
namespace: what charon holds is read back from the kernel it configured (the XFRM SPD hash
thresholds, the policy routing rule), from VICI ``stats`` and from charon.log, and a settings
reload is shown not to change what charon reads only at start (so those options restart it).

Needs root and ``ip netns`` (CI runs as root): fails loudly, never skips, when unusable.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from nf.effective import GlobalOptions, SpHash
from southbound.charon import CharonProcess
from southbound.charon_conf import MODEL_DEFAULTS, RESERVED_THREADS, apply_method
from southbound.convert import conn_for, shared_for
from southbound.vici_client import ViciClient
from tests.integration.southbound.test_charon_pair import (  # noqa: F401 - the fixture
    PSK,
    netns_pair,
)
from tests.integration.southbound.test_dataplane_limits import pair, start_and_load
from tests.support import netns as support_netns
from tests.support import sh, wait_for

pytestmark = pytest.mark.e2e

# the manual's examples (vrouter-ike-templates.txt l.1617-1618, 1650-1651, 1689-1691, 1731,
# 1563) and the rest of the new options away from their defaults
MANUAL = replace(
    MODEL_DEFAULTS, sa_table_size=128, sa_table_segments=16,
    sp_hash_ipv4=SpHash(local=16, remote=24), sp_hash_ipv6=SpHash(local=56, remote=64),
    install_routes=True, routing_table=230, routing_table_prio=231, delete_rekeyed=True,
    delete_rekeyed_delay=7, make_before_break=True, mobike_prefer_best_path=True,
    retransmit_timeout=3.125, threads=20,
    dos_protection=replace(MODEL_DEFAULTS.dos_protection, cookie_threshold="always"))


@pytest.fixture
def netns() -> Iterator[str]:
    """A fresh network namespace with lo up."""
    with support_netns("gop", ()) as ns:
        yield ns


def spd_thresholds(ns: str) -> dict[str, tuple[int, int]]:
    """The kernel's SPD hash thresholds of the namespace: {"IPv4": (local, remote), ...}."""
    out = sh("ip", "-n", ns, "-s", "-s", "xfrm", "policy", "count").stdout
    return {fam: (int(lo), int(re_)) for fam, lo, re_ in
            re.findall(r"SPD (IPv[46]) thresholds: local (\d+) remote (\d+)", out)}


def rules(ns: str) -> list[str]:
    """The namespace's IPv4 policy routing rules, as ``ip rule`` prints them."""
    return [" ".join(line.split()) for line in sh("ip", "-n", ns, "rule").stdout.splitlines()]


def conf_settings(charon: CharonProcess) -> dict[str, str]:
    """``key = value`` lines directly under ``charon {`` in the strongswan.conf it runs with."""
    return dict(re.findall(r"^  (\w+) = (.*)$", charon.conf_path.read_text(), re.M))


def started(tmp_path: Path, ns: str, options: GlobalOptions) -> CharonProcess:
    charon = CharonProcess(tmp_path / "run", backend="kernel-netlink", options=options, netns=ns)
    charon.start()
    return charon


def test_charon_runs_with_the_manuals_options(netns: str, tmp_path: Path) -> None:
    before = spd_thresholds(netns)
    assert before == {"IPv4": (32, 32), "IPv6": (128, 128)}  # the kernel's own
    charon = started(tmp_path, netns, MANUAL)
    try:
        # sp-hash-ipv4/-ipv6 -> kernel-netlink spdh_thresh, set by charon in the kernel's SPD
        assert spd_thresholds(netns) == {"IPv4": (16, 24), "IPv6": (56, 64)}
        # routing-table / routing-table-prio -> charon's policy routing rule
        assert "231: from all lookup 230" in rules(netns)
        # threads -> workers charon spawned (VICI stats and its log)
        with ViciClient(charon.socket_path) as c:
            stats = c.stats()
        assert int(stats["workers"]["total"]) == 20 + RESERVED_THREADS
        log = charon.log_path.read_text()
        assert f"spawning {20 + RESERVED_THREADS} worker threads" in log
        # what charon is not able to show back is in the strongswan.conf it runs with, and
        # charon took the file without complaint
        assert {k: v for k, v in conf_settings(charon).items() if k in {
            "ikesa_table_size", "ikesa_table_segments", "install_routes", "delete_rekeyed",
            "delete_rekeyed_delay", "make_before_break", "prefer_best_path",
            "retransmit_timeout", "cookie_threshold"}} == {
            "ikesa_table_size": "128", "ikesa_table_segments": "16", "install_routes": "yes",
            "delete_rekeyed": "yes", "delete_rekeyed_delay": "7", "make_before_break": "yes",
            "prefer_best_path": "yes", "retransmit_timeout": "3.125", "cookie_threshold": "1"}
        assert "spdh_thresh" in charon.conf_path.read_text()
        assert charon.health().ok, charon.log_tail()
        assert not re.search(r"(?i)error|invalid|unable|failed", log), log
    finally:
        charon.stop()
    # the rule goes with charon
    assert not any("lookup 230" in r for r in rules(netns))


def test_the_models_defaults_in_charon(netns: str, tmp_path: Path) -> None:
    """Unset options: the manual's defaults (thresholds 32/128, table 220 at priority 220)."""
    charon = started(tmp_path, netns, GlobalOptions())
    try:
        assert spd_thresholds(netns) == {"IPv4": (32, 32), "IPv6": (128, 128)}
        assert "220: from all lookup 220" in rules(netns)
        assert conf_settings(charon)["install_routes"] == "no"
    finally:
        charon.stop()


def test_reload_does_not_take_start_only_options(netns: str, tmp_path: Path) -> None:
    """routing-table(-prio) and sp-hash are read by kernel-netlink at start: a VICI
    reload-settings leaves the old ones in force, which is why apply_method restarts charon
    for them; a restart puts the new ones in force."""
    charon = started(tmp_path, netns, MANUAL)
    changed = replace(MANUAL, routing_table=240, routing_table_prio=241,
                      sp_hash_ipv4=SpHash(local=8, remote=12))
    assert apply_method(MANUAL, changed) == "restart"
    try:
        pid = charon.pid
        charon.reload(changed)  # what a "reload" would do
        assert "routing_table = 240" in charon.conf_path.read_text()
        assert charon.pid == pid and charon.alive()
        assert spd_thresholds(netns)["IPv4"] == (16, 24)
        assert "231: from all lookup 230" in rules(netns)
        assert not any("lookup 240" in r for r in rules(netns))
        charon.stop()
        charon.start()
        assert spd_thresholds(netns)["IPv4"] == (8, 12)
        assert "241: from all lookup 240" in rules(netns)
    finally:
        charon.stop()


def reauth(charon: CharonProcess, ike: str) -> None:
    """Reauthenticate ``ike`` now (swanctl --rekey --reauth), waiting for it to finish."""
    sh("swanctl", "--rekey", "--ike", ike, "--reauth", "--uri", f"unix://{charon.socket_path}")


def order(charon: CharonProcess, name: str, old: int, new: int, start: int = 0) -> str:
    """``"make-before-break"`` if IKE SA ``name[new]`` was established before ``name[old]``
    was deleted, else ``"break-before-make"`` (charon.log from byte ``start``; waits for both
    lines)."""
    est = re.compile(rf"IKE_SA {re.escape(name)}\[{new}\] established")
    gone = re.compile(rf"deleting IKE_SA {re.escape(name)}\[{old}\]")
    found = wait_for(lambda: (lambda t: (est.search(t), gone.search(t)) if est.search(t)
                              and gone.search(t) else None)(charon.log_path.read_text()[start:]),
                     timeout=15, every=0.1)
    assert found, charon.log_tail(60)
    e, g = found
    return "make-before-break" if e.start() < g.start() else "break-before-make"


def test_make_before_break_in_force(netns_pair: tuple[str, str],  # noqa: F811
                                    tmp_path: Path) -> None:
    """make-before-break -> charon.make_before_break, seen in the order of a reauthentication:
    charon's default (break-before-make) without it, the new IKE SA up before the old one is
    deleted with it. A VICI reload-settings puts it in force for IKE SAs created afterwards
    (like retransmit-*), which is what apply_method's "reload" promises."""
    a, b = pair()
    charons = [CharonProcess(tmp_path / side, options=opts, netns=ns)
               for side, ns, opts in zip("ab", netns_pair, (MODEL_DEFAULTS, MODEL_DEFAULTS),
                                         strict=True)]
    try:
        start_and_load(charons, (a, b))
        with ViciClient(charons[0].socket_path, timeout=15) as vc:
            vc.initiate(child="trunk", ike=a.name)
        reauth(charons[0], a.name)
        assert order(charons[0], a.name, 1, 2) == "break-before-make"
        charons[0].reload(replace(MODEL_DEFAULTS, make_before_break=True))
        reauth(charons[0], a.name)  # IKE SA [2] was created before the reload
        took = order(charons[0], a.name, 2, 3)
        reauth(charons[0], a.name)  # IKE SA [3] was created after it
        took_new = order(charons[0], a.name, 3, 4)
        # a restart with it set: make-before-break for sure
        charons[0].stop()
        charons[0].options = replace(MODEL_DEFAULTS, make_before_break=True)
        charons[0].start()
        with ViciClient(charons[0].socket_path) as vc:
            vc.load_shared("ab", shared_for(PSK))
            vc.load_conn(a.name, conn_for(a, trap_as_start=False))
        with ViciClient(charons[0].socket_path, timeout=15) as vc:
            vc.initiate(child="trunk", ike=a.name)
        start = charons[0].log_path.read_text().rindex("Starting IKE charon daemon")
        reauth(charons[0], a.name)
        assert order(charons[0], a.name, 1, 2, start) == "make-before-break"
        assert (took, took_new) == ("break-before-make", "make-before-break")
        assert apply_method(MODEL_DEFAULTS, charons[0].options) == "reload"
    finally:
        for c in charons:
            c.stop()


def rekeyed_child_lingers(charon: CharonProcess, child: str, wait: float) -> float:
    """Rekey ``child`` and return how long (s, up to ``wait``) charon keeps the rekeyed
    CHILD SA (listed as DELETED until its inbound SA is removed)."""
    uri = f"unix://{charon.socket_path}"
    sh("swanctl", "--rekey", "--child", child, "--uri", uri)
    t0 = time.monotonic()
    while time.monotonic() - t0 < wait:
        if "DELETED" not in sh("swanctl", "--list-sas", "--uri", uri).stdout:
            break
        time.sleep(0.1)
    return time.monotonic() - t0


def test_delete_rekeyed_delay_in_force(netns_pair: tuple[str, str],  # noqa: F811
                                       tmp_path: Path) -> None:
    """delete-rekeyed-delay -> charon.delete_rekeyed_delay: after a CHILD SA rekeying, the old
    SA's inbound part stays that long (swanctl --list-sas shows it DELETED). Measured for the
    value charon started with and after a VICI reload-settings, which takes it (on the IKE SA
    established before)."""
    a, b = pair()
    charons = [CharonProcess(tmp_path / side, netns=ns,
                             options=replace(MODEL_DEFAULTS, delete_rekeyed_delay=1))
               for side, ns in zip("ab", netns_pair, strict=True)]
    try:
        start_and_load(charons, (a, b))
        with ViciClient(charons[0].socket_path, timeout=15) as vc:
            vc.initiate(child="trunk", ike=a.name)
        assert 0.5 < rekeyed_child_lingers(charons[0], "trunk", 8) < 3
        charons[0].reload(replace(MODEL_DEFAULTS, delete_rekeyed_delay=4))
        took = rekeyed_child_lingers(charons[0], "trunk", 8)
        assert 3.5 < took < 6, took  # so apply_method reloads for it
        assert apply_method(MODEL_DEFAULTS, charons[0].options) == "reload"
    finally:
        for c in charons:
            c.stop()
