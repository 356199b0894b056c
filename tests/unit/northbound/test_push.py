"""YANG-Push building blocks: selection, secrets, differences as YANG Patch edits, the
notification bodies (validated by libyang), and the subscription engine's bounded outboxes
(a receiver that does not read is suspended, others are not held back)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from lxml import etree

from nf.schema import Schema
from northbound import push
from northbound.notifications import Notifications
from northbound.subscriptions import Spec, Subscriptions

NS = "urn:ipsec-nf:yang:ipsec-nf"
YP, SN = push.YP, push.SN


@pytest.fixture(scope="module")
def schema() -> Schema:
    return Schema()


def roots(xml: str) -> list[etree._Element]:
    return list(etree.fromstring(f'<r xmlns="{NS}">{xml}</r>'))


def ops(edits: list[push.Edit]) -> list[tuple[str, str]]:
    return [(e.operation, e.target) for e in edits]


def test_diff_names_the_deepest_change(schema: Schema) -> None:
    old = roots("<ike><vpn><name>a</name><local-address>192.0.2.1</local-address>"
                "<description>x</description></vpn><vpn><name>b</name></vpn>"
                "<ike-sa><unique-id>1</unique-id><state>ESTABLISHED</state></ike-sa></ike>")
    new = roots("<ike><vpn><name>a</name><local-address>192.0.2.9</local-address></vpn>"
                "<vpn><name>b/c d</name></vpn>"
                "<ike-sa><unique-id>2</unique-id><state>ESTABLISHED</state></ike-sa></ike>")
    edits = push.diff(old, new, schema.state_top)
    assert ops(edits) == [
        ("delete", "/ipsec-nf:ike/vpn=b"),
        ("delete", "/ipsec-nf:ike/ike-sa=1"),
        ("delete", "/ipsec-nf:ike/vpn=a/description"),
        ("replace", "/ipsec-nf:ike/vpn=a/local-address"),
        ("create", "/ipsec-nf:ike/vpn=b%2Fc%20d"),  # RFC 8040 3.5.3 key encoding
        ("create", "/ipsec-nf:ike/ike-sa=2"),
    ]
    assert edits[3].value is not None and edits[3].value.text == "192.0.2.9"
    assert edits[5].value is not None and edits[5].value.findtext(f"{{{NS}}}state")


def test_diff_of_identical_trees_is_empty_and_containers_are_not_created(
        schema: Schema) -> None:
    tree = roots("<ike><vpn><name>a</name></vpn></ike>")
    assert push.diff(tree, roots("<ike><vpn><name>a</name></vpn></ike>"),
                     schema.state_top) == []
    # the non-presence container appears with its first child: the child is created
    assert ops(push.diff([], tree, schema.state_top)) == [("create", "/ipsec-nf:ike/vpn=a")]
    assert ops(push.diff(tree, [], schema.state_top)) == [("delete", "/ipsec-nf:ike/vpn=a")]


def test_strip_secrets_whoever_reads(schema: Schema) -> None:
    tree = roots("<ike><pre-shared-key><name>k</name><id>a</id><secret>s3cr3t</secret>"
                 "</pre-shared-key></ike>")
    out = push.strip_secrets(tree, schema.top)
    text = etree.tostring(out[0], encoding="unicode")
    assert "s3cr3t" not in text and "<name>k</name>" in text


def test_selection_subtree_and_xpath(schema: Schema) -> None:
    tree = roots("<ike><vpn><name>a</name></vpn><pre-shared-key><name>k</name>"
                 "</pre-shared-key></ike>")
    f = etree.fromstring(f'<f xmlns="{YP}"><ike xmlns="{NS}"><vpn/></ike></f>')
    got = push.Selection(subtree=f).apply(tree, schema.state_top)
    assert [c.tag for c in got[0]] == [f"{{{NS}}}vpn"]
    xp = etree.fromstring(f'<x xmlns="{YP}">/ipsec-nf:ike/ipsec-nf:pre-shared-key</x>')
    sel = push.Selection(xpath=xp.text, nsmap=push.xpath_namespaces(xp))
    got = sel.apply(tree, schema.state_top)
    assert [c.tag for c in got[0]] == [f"{{{NS}}}pre-shared-key"]  # module names as prefixes


def test_notification_bodies_are_valid(schema: Schema) -> None:
    old, new = roots("<ike/>"), roots("<ike><vpn><name>a</name></vpn></ike>")
    body = push.push_change_update(7, "0", push.diff(old, new, schema.state_top))
    schema.check_notification(etree.tostring(body, encoding="unicode"))
    schema.check_notification(etree.tostring(push.push_update(7, new), encoding="unicode"))
    for name, reason in (("subscription-terminated", "no-such-subscription"),
                         ("subscription-suspended", "insufficient-resources"),
                         ("subscription-resumed", None), ("replay-completed", None)):
        schema.check_notification(etree.tostring(
            push.state_notification(name, 7, reason), encoding="unicode"))


class Receiver:
    """A session whose reading can be stopped: send_notification waits while ``stopped``."""

    def __init__(self, sid: int) -> None:
        self.session_id, self.data = sid, {}
        self.got: list[str] = []
        self.reading = asyncio.Event()
        self.reading.set()

    async def send_notification(self, msg: bytes) -> bool:
        await self.reading.wait()
        root = etree.fromstring(msg)
        self.got.append(etree.QName(root[1]).localname)
        return True


def test_a_receiver_that_does_not_read_is_suspended_alone() -> None:
    async def run() -> tuple[list[str], list[str], bool]:
        notifications = Notifications()
        subs = Subscriptions(notifications, {}, queue_size=4, suspension_timeout=0.5)
        slow, fast = Receiver(1), Receiver(2)
        slow.reading.clear()
        spec = Spec(stream="NETCONF")
        a = subs.establish(slow, spec, None, lambda b: b)
        subs.establish(fast, spec, None, lambda b: b)
        await asyncio.sleep(0.01)
        for i in range(20):
            notifications.publish(etree.Element(f"{{{NS}}}ev{i}"))
            await asyncio.sleep(0)
        await asyncio.sleep(0.05)
        suspended_then = a.suspended
        slow.reading.set()  # it reads again: resumed, the next events pass
        await asyncio.sleep(0.05)
        notifications.publish(etree.Element(f"{{{NS}}}late"))
        await asyncio.sleep(0.05)
        return slow.got, fast.got, suspended_then

    slow, fast, suspended = asyncio.run(run())
    assert suspended
    assert fast == [f"ev{i}" for i in range(20)] + ["late"]
    # what was queued (the first event was taken by the blocked send), then the state changes
    assert slow[:5] == ["ev0", "ev1", "ev2", "ev3", "ev4"]
    assert slow[5:] == ["subscription-suspended", "subscription-resumed", "late"]


def test_a_subscription_suspended_too_long_is_terminated() -> None:
    async def run() -> tuple[list[str], dict[int, Any]]:
        notifications = Notifications()
        subs = Subscriptions(notifications, {}, queue_size=2, suspension_timeout=0.1)
        slow = Receiver(1)
        slow.reading.clear()
        subs.establish(slow, Spec(stream="NETCONF"), None, lambda b: b)
        await asyncio.sleep(0.01)
        for i in range(6):
            notifications.publish(etree.Element(f"{{{NS}}}ev{i}"))
        await asyncio.sleep(0.3)
        slow.reading.set()
        await asyncio.sleep(0.05)
        return slow.got, dict(subs.subs)

    got, left = asyncio.run(run())
    assert left == {}
    assert got == ["ev0", "subscription-terminated"]


def test_on_change_dampening_coalesces_changes() -> None:
    async def run() -> list[etree._Element]:
        notifications = Notifications()
        subs = Subscriptions(notifications, Schema().state_top)
        data = {"v": "a"}

        async def read() -> list[etree._Element]:
            return roots(f"<ike><vpn><name>{data['v']}</name></vpn></ike>")

        sent: list[etree._Element] = []
        r = Receiver(1)

        async def send(msg: bytes) -> bool:
            sent.append(etree.fromstring(msg)[1])
            return True

        r.send_notification = send  # type: ignore[method-assign]
        subs.establish(r, Spec(datastore="running", on_change=True, dampening=30), read,
                       lambda b: b)
        await asyncio.sleep(0.05)
        for v in ("b", "c", "d"):
            data["v"] = v
            subs.config_changed()
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)
        return sent

    sent = asyncio.run(run())
    assert [etree.QName(b).localname for b in sent] == ["push-update", "push-change-update"]
    edits = [(e.findtext(f"{{{YP}}}operation"), e.findtext(f"{{{YP}}}target"))
             for e in sent[1].iter(f"{{{YP}}}edit")]
    assert edits == [("delete", "/ipsec-nf:ike/vpn=a"), ("create", "/ipsec-nf:ike/vpn=d")]


def test_a_kill_sends_subscription_terminated() -> None:
    async def run() -> list[str]:
        notifications = Notifications()
        subs = Subscriptions(notifications, {})
        r = Receiver(1)
        sub = subs.establish(r, Spec(stream="NETCONF"), None, lambda b: b)
        await asyncio.sleep(0.01)
        subs.remove(sub, "no-such-subscription")
        await asyncio.sleep(0.01)
        notifications.publish(etree.Element(f"{{{NS}}}after"))
        await asyncio.sleep(0.01)
        return r.got

    assert asyncio.run(run()) == ["subscription-terminated"]


def test_streams_and_subscriptions_state_is_valid(schema: Schema) -> None:
    from northbound import push_state

    async def run() -> list[etree._Element]:
        notifications = Notifications()
        subs = Subscriptions(notifications, schema.state_top)

        async def read() -> list[etree._Element]:
            return []

        xp = etree.fromstring(f'<x xmlns="{YP}">/ipsec-nf:ike/ipsec-nf:vpn</x>')
        subs.establish(Receiver(3), Spec(stream="NETCONF", replay_start=datetime.now(UTC)),
                       None, lambda b: b)
        subs.establish(Receiver(4), Spec(datastore="operational", period=100, selection=push
                                         .Selection(xpath=xp.text,
                                                    nsmap=push.xpath_namespaces(xp))),
                       read, lambda b: b)
        sub = subs.establish(Receiver(4), Spec(datastore="running", on_change=True,
                                               dampening=5), read, lambda b: b)
        sub.suspended = True
        out = push_state.state_roots(notifications, subs)
        await subs.close()
        return out

    roots = asyncio.run(run())
    schema.check_data("".join(etree.tostring(r, encoding="unicode") for r in roots))
    text = etree.tostring(roots[1], encoding="unicode")
    assert text.count("<receiver>") == 3 and "<state>suspended</state>" in text
    assert "ds:operational" in text and 'xmlns:ipsec-nf="urn:ipsec-nf:yang:ipsec-nf"' in text


def test_periodic_updates_keep_to_the_anchor_time() -> None:
    async def run() -> list[float]:
        subs = Subscriptions(Notifications(), {})
        times: list[float] = []
        r = Receiver(1)

        async def send(msg: bytes) -> bool:
            times.append(time.time())
            return True

        async def read() -> list[etree._Element]:
            return []

        r.send_notification = send  # type: ignore[method-assign]
        # 0.25 s past a tick of a 0.5 s period: updates timed from the start of the
        # subscription would come 0.25 s off the anchor's ticks
        anchor = datetime.fromtimestamp(time.time() - 100.25, UTC)
        sub = subs.establish(r, Spec(datastore="running", period=50, anchor=anchor), read,
                             lambda b: b)
        await asyncio.sleep(2.05)
        subs.remove(sub)
        return [t - anchor.timestamp() for t in times]

    offsets = asyncio.run(run())
    assert 3 <= len(offsets) <= 5, offsets  # every 0.5 s over 2 s
    # each update at anchor + k * period, late by scheduling noise only (a loaded machine
    # delays a timer, never fires it early), not at start + k * period (0.25 s off)
    # (the wall clock and the event loop's monotonic clock may differ by a few ms)
    assert all((o + 0.05) % 0.5 < 0.25 for o in offsets), offsets


def test_events_nacm_hides_are_counted_when_the_filter_selects_them() -> None:
    async def run() -> tuple[list[str], int]:
        notifications = Notifications()
        subs = Subscriptions(notifications, {})
        r = Receiver(1)
        xp = etree.fromstring(f'<x xmlns:i="{NS}">/i:secret-ev | /i:open-ev</x>')
        spec = Spec(stream="NETCONF", stream_xpath=xp.text, nsmap=push.xpath_namespaces(xp))
        subs.establish(r, spec, None,
                       lambda b: None if etree.QName(b).localname.startswith("secret") else b)
        await asyncio.sleep(0.01)
        for name in ("secret-ev", "open-ev", "secret-other", "other"):
            notifications.publish(etree.Element(f"{{{NS}}}{name}"))
        await asyncio.sleep(0.02)
        return r.got, notifications.denied

    got, denied = asyncio.run(run())
    assert got == ["open-ev"]
    assert denied == 1  # secret-ev; secret-other was not selected anyway
