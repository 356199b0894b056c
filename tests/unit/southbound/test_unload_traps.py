"""Deleting a VPN removes every trap policy charon installed for it, also those a close or
DPD action `trap` installed (unload-conn leaves them when the start action is not trap: the
kernel kept them in its SPD, found by tests/kernel on kernel-netlink)."""

from __future__ import annotations

from southbound.charon_backend import DATAPLANES, CharonBackend
from tests.fakes.vici_server import FakeCharon


def test_unload_vpn_uninstalls_its_traps_only() -> None:
    with FakeCharon() as fake:
        fake.traps = [("v1", "trunk"), ("v1", "voice"), ("v2", "trunk")]
        session = CharonBackend(fake.path, DATAPLANES["kernel-netlink"], vici_timeout=2.0).open()
        try:
            session.unload("vpn", "v1")
        finally:
            session.close()
        assert fake.traps == [("v2", "trunk")]


def test_unload_without_traps_changes_nothing() -> None:
    with FakeCharon() as fake:
        session = CharonBackend(fake.path, DATAPLANES["kernel-netlink"], vici_timeout=2.0).open()
        try:
            session.unload("vpn", "v1")
        finally:
            session.close()
        assert getattr(fake, "traps", []) == []


def _sa(uid: str) -> dict:
    return {"uniqueid": uid, "state": "ESTABLISHED", "child-sas": {}}


def test_bulk_unload_looks_once_and_cleans_up_only_what_it_unloaded() -> None:
    """unload_bulk: every unload-conn, then one list-sas and one list-policies for the lot;
    the SAs and traps of the unloaded connections go, those of others stay; a refused unload
    is that entry's failure alone."""
    with FakeCharon() as fake:
        fake.conns.update({f"v{i}": {"version": "2"} for i in range(4)})
        fake.conns["other"] = {"version": "2"}
        fake.sas = [{"v1": _sa("1")}, {"other": _sa("2")}, {"v0": _sa("3")}]
        fake.traps = [("v0", "t"), ("v1", "t"), ("v2", "t"), ("other", "t")]
        fake.refuse("unload-conn", lambda m: m.get("name") == "v0", errmsg="busy")
        session = CharonBackend(fake.path, DATAPLANES["kernel-netlink"], vici_timeout=2.0).open()
        try:
            out = session.unload_bulk("vpn", ["v0", "v1", "v2", "v3", "gone"])
        finally:
            session.close()
        assert out == {"v0": "busy", "v1": None, "v2": None, "v3": None, "gone": None}
        assert set(fake.conns) == {"v0", "other"}
        assert [next(iter(e)) for e in fake.sas] == ["other", "v0"]
        assert fake.traps == [("v0", "t"), ("other", "t")]
        assert len(fake.calls_to("list-sas")) == 1 and len(fake.calls_to("list-policies")) == 1
