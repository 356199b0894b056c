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
