"""The apply-status state tree is valid data of ipsec-nf.yang (checked by libyang)."""

from __future__ import annotations

from datetime import UTC, datetime

from lxml import etree

from nf.effective import EffectiveConfig
from nf.schema import NS, Schema
from nf.state import merge_state
from southbound.apply_state import apply_status_tree
from southbound.charon_backend import DATAPLANES, PSK, VPN, CharonBackend
from southbound.reconciler import Reconciler


def test_apply_status_tree_is_valid_yang_data() -> None:
    rec = Reconciler(CharonBackend("/nonexistent", DATAPLANES["kernel-netlink"]))
    rec.set_desired(EffectiveConfig.empty())
    rec.status.pending(VPN, "a")
    rec.status.applied(VPN, "a")
    rec.status.pending(VPN, "b", removing=True)
    rec.status.failed_with(PSK, "k", "shared key data missing")
    rec.last_full_sync = datetime(2026, 11, 29, 12, 0, 0, 123000, tzinfo=UTC)
    tree = apply_status_tree(rec, datetime.now(UTC), True)
    assert tree["health"] == "down" and tree["failed"] == 1 and tree["pending"] == 1
    assert tree["last-full-sync"] == "2026-11-29T12:00:00.123Z"
    roots = merge_state([], {"apply-status": tree})
    xml = etree.tostring(roots[0]).decode()
    dnode = Schema().ctx.parse_data_mem(xml, "xml", parse_only=True, strict=True)
    assert dnode is not None
    try:
        out = dnode.print_mem("xml")
    finally:
        dnode.free()
    doc = etree.fromstring(out.encode())
    st = doc.find(f"{{{NS}}}apply-status")
    entries = st.findall(f"{{{NS}}}entry")
    assert [(e.findtext(f"{{{NS}}}kind"), e.findtext(f"{{{NS}}}name"),
             e.findtext(f"{{{NS}}}status")) for e in entries] == [
        ("pre-shared-key", "k", "failed"), ("vpn", "a", "applied"), ("vpn", "b", "pending")]
    assert st.findtext(f"{{{NS}}}state-stale") == "true"


def test_unchanged_entries_are_rendered_once() -> None:
    """Each reading composes the tree again: an unchanged table gives the same entry list,
    a changed entry a new list in which only that entry is rendered again."""
    rec = Reconciler(CharonBackend("/nonexistent", DATAPLANES["kernel-netlink"]))
    rec.set_desired(EffectiveConfig.empty())
    for name in ("a", "b", "c"):
        rec.status.pending(VPN, name)
        rec.status.applied(VPN, name)
    now = datetime.now(UTC)
    first = apply_status_tree(rec, now, False)["entry"]
    again = apply_status_tree(rec, now, False)["entry"]
    assert again is first
    rec.status.failed_with(VPN, "b", "no route to peer")
    changed = apply_status_tree(rec, now, False)["entry"]
    assert changed is not first
    assert [e["status"] for e in changed] == ["applied", "failed", "applied"]
    assert changed[0] is first[0] and changed[2] is first[2] and changed[1] is not first[1]
    assert changed[1]["message"] == "no route to peer" and changed[1]["attempts"] == 1
    rec.status.removed(VPN, "a")
    rec.status.pending(VPN, "d")
    last = apply_status_tree(rec, now, False)["entry"]
    assert [(e["name"], e["status"]) for e in last] == [
        ("b", "failed"), ("c", "applied"), ("d", "pending")]
    assert last[1] is first[2]
