"""End to end, the gateway tells the truth: apply status in <get>, wait-applied, notifications on
failure and recovery, drift repair, re-initiation, charon killed or stopped. Two real
`ipsec-nf serve` with real charons in network namespaces, read back every 2 seconds.

Needs root and `ip netns` (CI runs as root); it fails, never skips, when they are missing.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator

import pytest
import vici
from lxml import etree
from ncclient.xml_ import to_ele

from tests.support import wait_for
from tools.lab import Lab, Site, running, site_config

NS = {"i": "urn:ipsec-nf:yang:ipsec-nf"}
IPNF = NS["i"]
pytestmark = pytest.mark.e2e
SYNC = 2.0


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running(tmp_path_factory.mktemp("lab"),
                 serve_args=("--sync-interval", str(SYNC))) as lab:
        yield lab


def get(m) -> etree._Element:
    return etree.fromstring(m.get().data_xml.encode())


def apply_status(m) -> etree._Element:
    st = get(m).find("i:ike/i:apply-status", NS)
    assert st is not None, "no apply-status in <get>"
    return st


def entry(st: etree._Element, kind: str, name: str) -> etree._Element | None:
    found = st.xpath(f"i:entry[i:kind='{kind}'][i:name='{name}']", namespaces=NS)
    return found[0] if found else None


def installed(m, vpn: str = "siteA-siteB") -> bool:
    return bool(get(m).xpath(f"//i:ike-sa[i:name='{vpn}']/i:child-sa[i:state='installed']",
                             namespaces=NS))


def wait_applied(m, timeout: int = 20) -> etree._Element:
    reply = m.dispatch(to_ele(f'<wait-applied xmlns="{IPNF}"><timeout>{timeout}</timeout>'
                              "</wait-applied>"))
    return etree.fromstring(reply.xml.encode())


def commit(lab: Lab, s: Site, config: str) -> None:
    with lab.connect(s) as m:
        m.edit_config(target="candidate", config=config)
        m.commit()


def vici_session(s: Site) -> vici.Session:
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(str(s.state_dir / "charon" / "charon.vici"))
    return vici.Session(sock)


def charon_pid(s: Site) -> int | None:
    """The pid of the site's charon, None while it is being restarted."""
    try:
        return int((s.state_dir / "charon" / "charon.pid").read_text())
    except (FileNotFoundError, ValueError):
        return None


def next_apply_change(m, timeout: float = 5) -> etree._Element | None:
    """The next apply-status-change notification (others are skipped), or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = m.take_notification(timeout=max(deadline - time.monotonic(), 0.1))
        if n is None:
            return None
        found = etree.fromstring(n.notification_xml.encode()).find(
            f"{{{IPNF}}}apply-status-change")
        if found is not None:
            return found
    return None


def psk(name: str, secret: str) -> str:
    return (f'<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><ike xmlns="{IPNF}">'
            f"<pre-shared-key><name>{name}</name><id>other.example.net</id>"
            f"<secret>{secret}</secret></pre-shared-key></ike></config>")


def test_initiator_configured_before_its_peer_comes_up_by_itself(lab: Lab) -> None:
    # A initiates at once; B does not exist yet, so A's attempt fails and charon gives up.
    commit(lab, lab.a, site_config(lab.a, start_action="start"))
    with lab.connect(lab.a) as m:
        out = wait_applied(m)
        assert out.findtext("i:result", namespaces=NS) == "applied", etree.tostring(out)
        st = apply_status(m)
        assert st.findtext("i:health", namespaces=NS) == "up"
        assert entry(st, "vpn", "siteA-siteB").findtext("i:status", namespaces=NS) == "applied"
    time.sleep(3)
    # B only answers (start-action none): only A's own retry can bring the tunnel up.
    commit(lab, lab.b, site_config(lab.b, start_action="none"))
    with lab.connect(lab.a) as m:
        assert wait_for(lambda: installed(m), timeout=40), "A never re-initiated"
    assert wait_for(lambda: lab.ping(lab.a, 1).returncode == 0, timeout=20)


def test_refused_entry_shows_failed_with_charons_reason_and_a_fix_applies_it(
        lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        m.create_subscription()
        # The model accepts an empty quoted secret; charon refuses it ("shared key data
        # missing"). Whatever charon refuses must show as failed, never as in force.
        m.edit_config(target="candidate", config=psk("spare", '""'))
        m.commit()
        out = wait_applied(m)
        assert out.findtext("i:result", namespaces=NS) == "failed", etree.tostring(out)
        e = out.xpath("i:entry[i:name='spare']", namespaces=NS)[0]
        assert e.findtext("i:status", namespaces=NS) == "failed"
        assert e.findtext("i:message", namespaces=NS) == "shared key data missing"
        st = apply_status(m)
        row = entry(st, "pre-shared-key", "spare")
        assert row is not None and row.findtext("i:status", namespaces=NS) == "failed"
        assert row.findtext("i:message", namespaces=NS) == "shared key data missing"
        assert int(st.findtext("i:failed", namespaces=NS)) == 1
        # The other entries are not blocked, and the tunnel stays up.
        assert entry(st, "vpn", "siteA-siteB").findtext("i:status", namespaces=NS) == "applied"
        assert lab.ping(lab.a, 1).returncode == 0
        change = next_apply_change(m)
        assert change is not None, "no apply-status-change notification"
        assert change.findtext("i:name", namespaces=NS) == "spare"
        assert change.findtext("i:status", namespaces=NS) == "failed"
        assert change.findtext("i:message", namespaces=NS) == "shared key data missing"
        # A commit that fixes it turns it applied at once.
        m.edit_config(target="candidate", config=psk("spare", "0sc2VjcmV0LWtleQ=="))
        m.commit()
        out = wait_applied(m)
        assert out.findtext("i:result", namespaces=NS) == "applied", etree.tostring(out)
        row = entry(apply_status(m), "pre-shared-key", "spare")
        assert row.findtext("i:status", namespaces=NS) == "applied"
        change = next_apply_change(m)
        assert change is not None and change.findtext("i:status", namespaces=NS) == "applied"
        assert change.findtext("i:name", namespaces=NS) == "spare"


def test_unloaded_connection_and_deleted_secret_come_back_within_a_period(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        before = int(apply_status(m).findtext("i:drift-repairs", namespaces=NS))
    s = vici_session(lab.a)
    s.unload_conn({"name": "siteA-siteB"})  # swanctl 5.9.8 has no unload command
    s.unload_shared({"id": "site-psk"})

    def restored() -> bool:
        return ({b"siteA-siteB"} <= set(s.get_conns()["conns"])
                and b"site-psk" in s.get_shared()["keys"])
    assert wait_for(restored, timeout=3 * SYNC), "charon did not get them back"
    with lab.connect(lab.a) as m:
        st = apply_status(m)
        assert int(st.findtext("i:drift-repairs", namespaces=NS)) >= before + 2
        assert st.findtext("i:last-full-sync", namespaces=NS)
        assert wait_for(lambda: installed(m), timeout=40), "tunnel did not come back"
    assert wait_for(lambda: lab.ping(lab.a, 1).returncode == 0, timeout=20)


def test_killed_charon_brings_everything_back_applied(lab: Lab) -> None:
    old = charon_pid(lab.a)
    assert old is not None
    os.kill(old, signal.SIGKILL)
    assert wait_for(lambda: charon_pid(lab.a) not in (old, None), timeout=20)
    with lab.connect(lab.a) as m:
        def all_applied() -> bool:
            st = apply_status(m)
            return (st.findtext("i:health", namespaces=NS) == "up"
                    and st.findtext("i:pending", namespaces=NS) == "0"
                    and entry(st, "vpn", "siteA-siteB").findtext("i:status", namespaces=NS)
                    == "applied")
        assert wait_for(all_applied, timeout=30)
        assert wait_for(lambda: installed(m), timeout=40), "tunnel did not come back"
    assert wait_for(lambda: lab.ping(lab.a, 1).returncode == 0, timeout=20)


def test_stopped_charon_does_not_hang_get(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        # (after the previous test's restart, the peers may still be settling their SAs)
        assert wait_for(lambda: installed(m), timeout=40), "no tunnel to start from"
        pid = charon_pid(lab.a)
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            # a snapshot read before the stop is served for up to READ_MAX_STALE (5 s; its
            # state-read-time says so) while charon is read again in the background
            # (stale-while-revalidate): within seconds a <get> tells the read failed, and
            # no <get> waits for more than the read's bound meanwhile
            deadline = time.monotonic() + 15
            while True:
                t0 = time.monotonic()
                st = get(m)
                took = time.monotonic() - t0
                assert took < 6, f"<get> took {took:.1f}s on a stopped charon"
                status = st.find("i:ike/i:apply-status", NS)
                if (status.findtext("i:health", namespaces=NS) == "unresponsive"
                        or time.monotonic() > deadline):
                    break
                time.sleep(0.5)
            assert status.findtext("i:health", namespaces=NS) == "unresponsive"
            assert status.findtext("i:state-stale", namespaces=NS) == "true"
            # the last SA table read is still shown, marked stale
            assert st.xpath("//i:ike-sa[i:name='siteA-siteB']", namespaces=NS)
        finally:
            os.kill(pid, signal.SIGCONT)
        assert wait_for(lambda: apply_status(m).findtext("i:health", namespaces=NS) == "up",
                        timeout=10)
        assert apply_status(m).findtext("i:state-stale", namespaces=NS) == "false"
