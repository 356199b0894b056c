"""The commit history is written after the reply: an entry is listed and shown from memory
until its file is written, the oldest file goes after the newest is in place, and a crash
before the write loses at most history entries, never a change of running (a real process
killed, its real files read back)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from lxml import etree

from nf import history, persist
from nf.datastore import Datastores
from nf.history import History
from nf.schema import Schema

ROOT = Path(__file__).resolve().parents[3]
SITE_A = ROOT / "tests" / "data" / "site_a.xml"
NS = "urn:ipsec-nf:yang:ipsec-nf"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"


def change(name: str, local_id: str) -> etree._Element:
    return etree.fromstring(
        f'<config xmlns="{NC}"><ike xmlns="{NS}"><vpn><name>{name}</name>'
        "<ike-policy><template>iketemp1</template></ike-policy><ipsec-policy><template>"
        f"ipsectemp1</template></ipsec-policy><local-id>{local_id}</local-id></vpn></ike>"
        "</config>")


def local_id(ds: Datastores, name: str) -> str | None:
    return ds.tree("running").findtext(f"{{{NS}}}ike/{{{NS}}}vpn[{{{NS}}}name='{name}']"
                                       f"/{{{NS}}}local-id")


def test_an_entry_is_served_from_memory_until_written(
        schema: Schema, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = Datastores(schema, tmp_path)
    ds.edit("running", etree.parse(str(SITE_A)).getroot(), sid=1)  # the templates
    hist = History(tmp_path, keep=2)
    ds.on_change.append(lambda sid, e, b, a: hist.record(b, a, "alice", sid, "why"))
    ds.edit("running", change("v1", "one.example.net"), sid=1)
    ds.edit("running", change("v1", "two.example.net"), sid=1)
    hist.flush()
    assert sorted(p.name for p in hist.dir.glob("*.xml")) == ["1.xml", "2.xml"]
    release = threading.Event()

    def slow_write(path: Path, data: bytes) -> None:  # a disk that has not answered yet
        release.wait(10)
        persist.atomic_write(path, data)
    monkeypatch.setattr(history, "persist", SimpleNamespace(atomic_write=slow_write,
                                                            read=persist.read))
    ds.edit("candidate", change("v1", "three.example.net"), sid=1)
    ds.commit(sid=1)
    # answered: listed, shown and undone at once, its file not there yet, the oldest kept
    assert [c.id for c in hist.entries] == [2, 3] and hist.entries[-1].comment == "why"
    assert not (hist.dir / "3.xml").exists() and (hist.dir / "1.xml").exists()
    before, after = hist.images(hist.by_back(0))
    assert [b.findtext(f"{{{NS}}}local-id") for b in before.values()] == ["two.example.net"]
    assert [a.findtext(f"{{{NS}}}local-id") for a in after.values()] == ["three.example.net"]
    undone = hist.undo(ds.tree("running"), schema.top, 1)
    assert "two.example.net" in etree.tostring(undone).decode()
    release.set()
    hist.flush()
    assert sorted(p.name for p in hist.dir.glob("*.xml")) == ["2.xml", "3.xml"]
    again = History(tmp_path, keep=2)
    assert again.entries == hist.entries
    assert again.images(again.by_back(0))[1].keys() == after.keys()


CHILD = """
import os, sys, threading
from pathlib import Path
from types import SimpleNamespace
from lxml import etree
from nf import history, persist
from nf.datastore import Datastores
from nf.history import History
from nf.schema import Schema
NC, NS = sys.argv[2], sys.argv[3]
def change(name, local_id):
    return etree.fromstring(
        f'<config xmlns="{NC}"><ike xmlns="{NS}"><vpn><name>{name}</name>'
        "<ike-policy><template>iketemp1</template></ike-policy><ipsec-policy><template>"
        f"ipsectemp1</template></ipsec-policy><local-id>{local_id}</local-id></vpn></ike>"
        "</config>")
d = Path(sys.argv[1])
ds = Datastores(Schema(), d)
ds.edit("running", etree.parse(sys.argv[4]).getroot(), sid=1)  # the templates
hist = History(d)
ds.on_change.append(lambda sid, e, b, a: hist.record(b, a, "alice", sid, ""))
ds.edit("candidate", change("v1", "one.example.net"), sid=1)
ds.commit(sid=1)
hist.flush()
reached = threading.Event()
def never(path, data):  # the history's write has begun and the process dies in it
    reached.set()
    threading.Event().wait()
history.persist = SimpleNamespace(atomic_write=never, read=persist.read)
ds.edit("candidate", change("v1", "two.example.net"), sid=1)
ds.commit(sid=1)  # <ok/> would be sent now
ds.edit("running", change("v2", "three.example.net"), sid=1)
assert reached.wait(10) and len(hist.entries) == 3
os._exit(0)
"""


def test_a_crash_before_the_history_write_keeps_running(schema: Schema, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # a history written before the reply would block the commit itself: the run times out
    done = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path), NC, NS, str(SITE_A)],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    ds = Datastores(schema, tmp_path)
    assert local_id(ds, "v1") == "two.example.net"  # the commit answered is there
    assert local_id(ds, "v2") == "three.example.net"  # and the edit on running
    hist = History(tmp_path)
    assert [c.id for c in hist.entries] == [1]  # only the history entries were lost
    before, after = hist.images(hist.entries[0])
    assert [a.findtext(f"{{{NS}}}local-id") for a in after.values()] == ["one.example.net"]


EXITING = """
import sys
from pathlib import Path
from lxml import etree
from nf.history import History
hist = History(Path(sys.argv[1]))
key = ("{urn:x}ike", "{urn:x}vpn", ("v1",))
for i in range(3):
    hist.record({key: None}, {key: etree.fromstring(f"<vpn xmlns='urn:x'>{i}</vpn>")}, "bob",
                7, f"change {i}")
"""


def test_the_files_queued_at_exit_are_written(tmp_path: Path) -> None:
    """A server that stops normally right after a commit leaves its history complete."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", EXITING, str(tmp_path)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    hist = History(tmp_path)
    assert [(c.id, c.comment) for c in hist.entries] == [
        (1, "change 0"), (2, "change 1"), (3, "change 2")]
    assert etree.tostring(next(iter(hist.images(hist.entries[-1])[1].values()))) == (
        b'<vpn xmlns="urn:x">2</vpn>')


def test_a_commit_waits_for_one_sync_only(schema: Schema, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Before a commit returns (its <ok/>): running's record synced, nothing else waited for
    on the disk (no history file, folder sync, truncation or unlink); those follow in the
    history's writer."""
    ds = Datastores(schema, tmp_path)
    ds.edit("running", etree.parse(str(SITE_A)).getroot(), sid=1)
    hist = History(tmp_path, keep=1)
    ds.on_change.append(lambda sid, e, b, a: hist.record(b, a, "alice", sid, ""))
    ds.edit("candidate", change("v1", "one.example.net"), sid=1)
    ds.commit(sid=1)  # the logs and the history's folder exist from now on
    hist.flush()
    calls: list[tuple[str, bool]] = []
    main = threading.get_ident()
    for name in ("fsync", "fdatasync", "truncate", "ftruncate", "unlink", "rename", "replace"):
        real = getattr(os, name)

        def spy(*args: object, _real=real, _name=name) -> object:  # noqa: ANN001
            calls.append((_name, threading.get_ident() == main))
            return _real(*args)
        monkeypatch.setattr(os, name, spy)
    ds.edit("candidate", change("v1", "two.example.net"), sid=1)
    ds.commit(sid=1)
    on_path = [name for name, in_main in calls if in_main]
    hist.flush()
    assert on_path == ["fdatasync"], calls
    assert {name for name, in_main in calls if not in_main} >= {"fsync", "replace", "unlink"}
    assert [c.id for c in History(tmp_path, keep=1).entries] == [2]


def test_the_candidate_cleared_by_a_mark_reloads_clean(schema: Schema, tmp_path: Path) -> None:
    """After a commit the candidate's log is cleared by a mark, not truncated: a restart finds
    the candidate equal to running, then only the edits made after the commit."""
    ds = Datastores(schema, tmp_path)
    ds.edit("running", etree.parse(str(SITE_A)).getroot(), sid=1)
    ds.edit("candidate", change("v1", "one.example.net"), sid=1)
    ds.commit(sid=1)
    log = tmp_path / "candidate.0.log"
    assert log.stat().st_size > 0  # the edit's record and the mark
    again = Datastores(schema, tmp_path)
    assert not again.candidate_dirty and local_id(again, "v1") == "one.example.net"
    again.edit("candidate", change("v2", "two.example.net"), sid=1)
    third = Datastores(schema, tmp_path)
    assert third.candidate_dirty
    cand = etree.tostring(third.tree("candidate")).decode()
    assert "two.example.net" in cand and "one.example.net" in cand
    assert local_id(third, "v2") is None
