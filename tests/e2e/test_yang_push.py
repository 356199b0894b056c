"""End to end, YANG-Push on the SA table: on the two-site lab (two real `ipsec-nf serve` with
real charons in network namespaces), a NETCONF client with an on-change subscription to
operational /ike/ike-sa sees the IKE SA come up, go down when it is terminated and come back
when it is initiated again, as push-change-update YANG Patch edits; a periodic subscription
on the same table delivers at its period meanwhile.

Needs root and `ip netns` (CI runs as root); it fails, never skips, when they are missing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from lxml import etree
from ncclient.xml_ import to_ele

from tools.lab import Lab, Site, running, site_config

IPNF = "urn:ipsec-nf:yang:ipsec-nf"
SN = "urn:ietf:params:xml:ns:yang:ietf-subscribed-notifications"
YP = "urn:ietf:params:xml:ns:yang:ietf-yang-push"
DS = "urn:ietf:params:xml:ns:yang:ietf-datastores"
VPN = "siteA-siteB"
SA_TABLE = f'<ike xmlns="{IPNF}"><ike-sa/></ike>'
pytestmark = pytest.mark.e2e


def config(s: Site) -> str:
    """The lab's VPN, brought up only by the initiate action (no start, no restart)."""
    return site_config(s, start_action="none").replace(
        "<start-action>none</start-action>",
        "<start-action>none</start-action><close-action>none</close-action>")


def call(m: Any, body: str) -> etree._Element:
    return etree.fromstring(m.dispatch(to_ele(body)).xml.encode())


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running(tmp_path_factory.mktemp("lab")) as lab:
        for s in lab.sites:
            with lab.connect(s) as m:
                m.edit_config(target="candidate", config=config(s))
                m.commit()
                out = call(m, f'<wait-applied xmlns="{IPNF}"><timeout>20</timeout>'
                              "</wait-applied>")
                assert out.findtext(f"{{{IPNF}}}result") == "applied", etree.tostring(out)
        yield lab


def subscribe(m: Any, trigger: str) -> int:
    reply = call(m, f'<establish-subscription xmlns="{SN}" xmlns:yp="{YP}" xmlns:ds="{DS}">'
                    "<yp:datastore>ds:operational</yp:datastore>"
                    f"<yp:datastore-subtree-filter>{SA_TABLE}</yp:datastore-subtree-filter>"
                    f"{trigger}</establish-subscription>")
    return int(reply.findtext(f"{{{SN}}}id"))


def sa_edits(m: Any, sub: int, want: str, timeout: float) -> list[tuple[str, str]]:
    """The IKE SA edits (operation, target) of this subscription's push-change-updates until
    one of operation ``want`` arrives (or ``timeout``); its periodic push-updates are
    skipped."""
    got: list[tuple[str, str]] = []
    end = time.monotonic() + timeout
    while (left := end - time.monotonic()) > 0:
        n = m.take_notification(block=True, timeout=left)
        if n is None:
            break
        body = next(c for c in to_ele(n.notification_xml) if not c.tag.endswith("eventTime"))
        if body.tag != f"{{{YP}}}push-change-update" or body.findtext(f"{{{YP}}}id") != str(sub):
            continue
        for e in body.iter(f"{{{YP}}}edit"):
            op, target = e.findtext(f"{{{YP}}}operation"), e.findtext(f"{{{YP}}}target")
            if target.count("/") == 2 and target.startswith("/ipsec-nf:ike/ike-sa="):
                got.append((op, target))
        if any(op == want for op, _ in got):
            break
    return got


def test_on_change_sees_the_sa_go_down_and_up_and_periodic_keeps_its_pace(lab: Lab) -> None:
    with lab.connect(lab.a) as watcher, lab.connect(lab.a) as periodic, \
            lab.connect(lab.a) as operator:
        # replaces (counters, times) are excluded: only SAs created and deleted are sent
        sub = subscribe(watcher, "<yp:on-change><yp:excluded-change>replace"
                                 "</yp:excluded-change></yp:on-change>")
        sync = watcher.take_notification(block=True, timeout=10)
        assert sync is not None and "push-update" in sync.notification_xml
        tick = subscribe(periodic, "<yp:periodic><yp:period>100</yp:period></yp:periodic>")
        started = time.monotonic()

        out = call(operator, f'<initiate xmlns="{IPNF}"><vpn>{VPN}</vpn>'
                             "<timeout>20</timeout></initiate>")
        first = int(out.findtext(f"{{{IPNF}}}ike-sa"))
        assert sa_edits(watcher, sub, "create", 15) == [
            ("create", f"/ipsec-nf:ike/ike-sa={first}")]

        call(operator, f'<terminate xmlns="{IPNF}"><ike-sa>{first}</ike-sa>'
                       "<timeout>10</timeout></terminate>")
        assert sa_edits(watcher, sub, "delete", 15) == [
            ("delete", f"/ipsec-nf:ike/ike-sa={first}")]

        out = call(operator, f'<initiate xmlns="{IPNF}"><vpn>{VPN}</vpn>'
                             "<timeout>20</timeout></initiate>")
        again = int(out.findtext(f"{{{IPNF}}}ike-sa"))
        assert again != first
        assert sa_edits(watcher, sub, "create", 15) == [
            ("create", f"/ipsec-nf:ike/ike-sa={again}")]

        # the periodic subscription delivered about once a second all along, with the table
        elapsed = time.monotonic() - started
        updates = []
        while (n := periodic.take_notification(block=False)) is not None:
            updates.append(to_ele(n.notification_xml))
        assert all(f"<id>{tick}</id>" in etree.tostring(u, encoding="unicode")
                   for u in updates)
        assert elapsed * 0.6 <= len(updates) <= elapsed + 2, (len(updates), elapsed)
        n = periodic.take_notification(block=True, timeout=3)  # one after the new SA
        assert n is not None
        last = to_ele(n.notification_xml).find(f".//{{{YP}}}datastore-contents")
        assert last is not None
        assert [int(x) for x in last.xpath("//i:ike-sa/i:unique-id/text()",
                                           namespaces={"i": IPNF})] == [again]
