"""Confirmed commit: timeout rollback, confirmation, cancel, persist, session end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from nf.confirmed import ConfirmedCommits
from nf.datastore import Datastores
from nf.errors import RpcError
from nf.schema import Schema
from nf.templates import resolve

DATA = Path(__file__).resolve().parents[2] / "data"
NS = "urn:ipsec-nf:yang:ipsec-nf"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"


class Clock:
    """A clock the test moves by hand: scheduled calls run when their time has come."""

    def __init__(self) -> None:
        self.now = 0.0
        self.calls: list[list] = []  # [due, fn, cancelled]

    def schedule(self, delay: float, fn: Callable[[], None]) -> Clock.Handle:
        entry = [self.now + delay, fn, False]
        self.calls.append(entry)
        return Clock.Handle(entry)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for entry in [e for e in self.calls if e[0] <= self.now and not e[2]]:
            entry[2] = True
            entry[1]()

    class Handle:
        def __init__(self, entry: list) -> None:
            self.entry = entry

        def cancel(self) -> None:
            self.entry[2] = True


def setup(schema: Schema, tmp: Path,
          clock: Clock | None = None) -> tuple[Datastores, ConfirmedCommits, list]:
    ds = Datastores(schema, tmp)
    installed: list = []
    ds.on_commit.append(lambda cfg, touched: installed.append(resolve(cfg)))
    ds.edit("running", etree.parse(str(DATA / "site_a.xml")).getroot(), sid=1)
    cc = ConfirmedCommits(ds) if clock is None else ConfirmedCommits(ds, clock.schedule)
    return ds, cc, installed


def change_local_id(ds: Datastores, value: str, sid: int = 1) -> None:
    ds.edit("candidate", etree.fromstring(
        f'<config xmlns="{NC}"><ike xmlns="{NS}"><vpn><name>siteA-siteB</name>'
        f"<local-id>{value}</local-id></vpn></ike></config>"), sid=sid)


def local_id(ds: Datastores) -> str:
    return resolve(ds.config).vpns["siteA-siteB"].local_id


def test_unconfirmed_commit_rolls_back_on_timeout(schema: Schema, tmp_path: Path) -> None:
    clock = Clock()
    ds, cc, installed = setup(schema, tmp_path, clock)
    change_local_id(ds, "new.example.net")
    cc.commit(1, confirmed=True, timeout=600)
    assert local_id(ds) == "new.example.net"
    clock.advance(599)
    assert local_id(ds) == "new.example.net"
    clock.advance(1)
    assert local_id(ds) == "secgwa.example.net"
    assert installed[-1].vpns["siteA-siteB"].local_id == "secgwa.example.net"
    assert cc.pending is None


def test_confirming_commit_keeps_the_change(schema: Schema, tmp_path: Path) -> None:
    clock = Clock()
    ds, cc, _ = setup(schema, tmp_path, clock)
    change_local_id(ds, "new.example.net")
    cc.commit(1, confirmed=True, timeout=600)
    cc.commit(1, confirmed=False)
    clock.advance(3600)
    assert local_id(ds) == "new.example.net"


def test_the_default_clock_is_the_event_loop(schema: Schema, tmp_path: Path) -> None:
    async def run() -> None:
        ds, cc, _ = setup(schema, tmp_path)
        change_local_id(ds, "new.example.net")
        cc.commit(1, confirmed=True, timeout=0)  # due at the next turn of the loop
        await asyncio.sleep(0.05)
        assert local_id(ds) == "secgwa.example.net"
    asyncio.run(run())


def test_persist_and_cancel(schema: Schema, tmp_path: Path) -> None:
    async def run() -> None:
        ds, cc, _ = setup(schema, tmp_path)
        change_local_id(ds, "new.example.net")
        cc.commit(1, confirmed=True, timeout=60, persist="tok")
        cc.session_ended(1)  # a persistent confirmed commit outlives its session
        assert local_id(ds) == "new.example.net"
        with pytest.raises(RpcError):
            cc.cancel(2, "wrong")
        cc.cancel(2, "tok")
        assert local_id(ds) == "secgwa.example.net"
    asyncio.run(run())


def test_session_end_rolls_back(schema: Schema, tmp_path: Path) -> None:
    async def run() -> None:
        ds, cc, _ = setup(schema, tmp_path)
        change_local_id(ds, "new.example.net")
        cc.commit(1, confirmed=True, timeout=60)
        with pytest.raises(RpcError):
            cc.commit(2, confirmed=False)  # another session cannot confirm it
        cc.session_ended(1)
        assert local_id(ds) == "secgwa.example.net"
    asyncio.run(run())


def test_restart_during_a_confirmed_commit_rolls_it_back(schema: Schema, tmp_path: Path) -> None:
    async def run() -> None:
        ds, cc, _ = setup(schema, tmp_path)
        change_local_id(ds, "new.example.net")
        cc.commit(1, confirmed=True, timeout=60)
        assert local_id(Datastores(schema, tmp_path)) == "new.example.net"
        # the process dies here; a new one starts from the files
        again = Datastores(schema, tmp_path)
        ConfirmedCommits(again)
        assert local_id(again) == "secgwa.example.net"
        assert not (tmp_path / "confirmed-backup.xml").exists()
    asyncio.run(run())
