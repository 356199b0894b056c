"""A datastore edit or commit runs with the cyclic collector off, and leaves it as it was."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from lxml import etree

from nf.datastore import Datastores
from nf.errors import RpcError
from nf.gc_pause import paused
from nf.schema import Schema
from tests.support import DATA


def test_off_during_the_operation_restored_after(schema: Schema, tmp_path: Path) -> None:
    ds = Datastores(schema, tmp_path)
    seen: list[bool] = []
    ds.on_commit.append(lambda *_: seen.append(gc.isenabled()))
    assert gc.isenabled()
    ds.edit("candidate", etree.parse(str(DATA / "site_a.xml")).getroot(), sid=1)
    ds.commit(sid=1)
    assert seen == [False] and gc.isenabled()
    with pytest.raises(RpcError):  # refused: still turned on again
        ds.edit("candidate", etree.fromstring("<config xmlns='urn:ietf:params:xml:ns:netconf:"
                                              "base:1.0'><bogus xmlns='urn:x'/></config>"), sid=1)
    assert gc.isenabled()


def test_a_nested_pause_leaves_it_to_the_outer_one() -> None:
    inner = paused(gc.isenabled)
    outer = paused(lambda: (inner(), gc.isenabled()))
    assert outer() == (False, False) and gc.isenabled()
    gc.disable()
    try:
        assert inner() is False and not gc.isenabled()  # was off: stays off
    finally:
        gc.enable()
