"""In-place edits: undo, entry index, slice validation, journal persistence, reload."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from lxml import etree

from nf.datastore import Datastores
from nf.edit import edit_tree
from nf.errors import RpcError
from nf.journal import Journal
from nf.schema import Schema
from nf.templates import resolve
from nf.tree import Tree
from tests.support import DATA, NC, NS


def cfg(body: str, nc: bool = False) -> etree._Element:
    x = f' xmlns:nc="{NC}"' if nc else ""
    return etree.fromstring(f'<config xmlns="{NC}"{x}><ike xmlns="{NS}">{body}</ike></config>')


def vpn(i: int, template: str = "iketemp1") -> str:
    return (f"<vpn><name>v{i}</name><ike-policy><template>{template}</template></ike-policy>"
            "<ipsec-policy><template>ipsectemp1</template></ipsec-policy>"
            f"<local-id>v{i}.example.net</local-id></vpn>")


def canon(el: etree._Element) -> bytes:
    return etree.tostring(etree.fromstring(etree.tostring(el),
                                           etree.XMLParser(remove_blank_text=True)))


def loaded(schema: Schema, tmp: Path, n: int = 5) -> Datastores:
    ds = Datastores(schema, tmp)
    ds.edit("running", etree.parse(str(DATA / "site_a.xml")).getroot(), sid=1)
    ds.edit("running", cfg("".join(vpn(i) for i in range(n))), sid=1)
    return ds


def test_undo_restores_tree_and_index(schema: Schema, tmp_path: Path) -> None:
    ds = loaded(schema, tmp_path)
    before = etree.tostring(ds.tree("running"))
    txn = ds.running.begin()
    edit_tree(txn, cfg(f"<vpn nc:operation='delete'><name>v1</name></vpn>{vpn(9)}"
                       "<vpn nc:operation='replace'><name>v2</name><ike-policy><template>iketemp1"
                       "</template></ike-policy><ipsec-policy><template>ipsectemp1</template>"
                       "</ipsec-policy></vpn>", nc=True))
    assert len(txn.touched) == 3
    txn.rollback()
    assert etree.tostring(ds.tree("running")) == before
    rebuilt = Tree(copy.deepcopy(ds.tree("running")), schema.top)
    assert {k: len(v) for k, v in rebuilt.index.items()} == \
        {k: len(v) for k, v in ds.running.index.items()}
    top = ds.tree("running")[0]
    assert ds.running.find_entry(top, f"{{{NS}}}vpn", ("v1",)) is not None
    assert ds.running.find_entry(top, f"{{{NS}}}vpn", ("v9",)) is None


def test_slice_validation_catches_bad_references(schema: Schema, tmp_path: Path) -> None:
    ds = loaded(schema, tmp_path)
    with pytest.raises(RpcError) as ei:
        ds.edit("running", cfg(vpn(7, template="nope")), sid=1)
    assert ei.value.errors[0].tag == "data-missing"
    # deleting a template still in use needs the whole config: refused
    with pytest.raises(RpcError) as ei:
        ds.edit("running", cfg("<ike-policy-template nc:operation='delete'><name>iketemp1"
                               "</name></ike-policy-template>", nc=True), sid=1)
    assert ei.value.errors[0].tag == "data-missing"
    assert "v7" not in etree.tostring(ds.tree("running")).decode()


def test_config_dict_follows_incremental_commits(schema: Schema, tmp_path: Path) -> None:
    ds = loaded(schema, tmp_path)
    touched = []
    ds.on_commit.append(lambda c, t: touched.append(t))
    ds.edit("running", cfg(f"<vpn nc:operation='delete'><name>v3</name></vpn>{vpn(8)}",
                           nc=True), sid=1)
    assert touched[-1] is not None and len(touched[-1]) == 2
    assert resolve(ds.config) == resolve(Datastores(schema, tmp_path).config)
    names = set(resolve(ds.config).vpns)
    assert "v3" not in names and "v8" in names and "siteA-siteB" in names


def test_journal_reload_and_torn_tail(schema: Schema, tmp_path: Path) -> None:
    ds = loaded(schema, tmp_path, n=3)
    ds.edit("candidate", cfg(vpn(5)), sid=2)
    expected = etree.tostring(ds.tree("running"))
    logs = list(tmp_path.glob("running.*.log"))
    assert logs
    with open(logs[0], "ab") as f:
        f.write(b"\x00\x00\x10\x00partial")  # a crash while appending
    again = Datastores(schema, tmp_path)
    assert etree.tostring(again.tree("running")) == expected
    assert "v5" in etree.tostring(again.tree("candidate")).decode()
    again.commit(sid=2)
    assert "v5" in resolve(Datastores(schema, tmp_path).config).vpns


def test_compaction(schema: Schema, tmp_path: Path) -> None:
    j = Journal(tmp_path, "x", min_log=100)
    root = etree.Element("config")
    j.write_base(root)
    for _ in range(5):
        j.append(b"<record/>" * 5)
    assert j.should_compact()
    j.write_base(root)
    assert not list(tmp_path.glob("x.1.log")) and j.generation == 2
    base, records = Journal(tmp_path, "x").load()
    assert base is not None and records == []


def test_continue_on_error_keeps_the_good_parts(schema: Schema, tmp_path: Path) -> None:
    ds = loaded(schema, tmp_path, n=1)
    with pytest.raises(RpcError):
        ds.edit("running", cfg(f"{vpn(4)}<vpn><name>v0</name><bogus/></vpn>"), sid=1,
                error_option="continue-on-error")
    assert "v4" in resolve(ds.config).vpns
    assert "v4" in resolve(Datastores(schema, tmp_path).config).vpns  # persisted, replays


def test_running_edit_with_dirty_candidate(schema: Schema, tmp_path: Path) -> None:
    ds = loaded(schema, tmp_path, n=1)
    ds.edit("candidate", cfg(vpn(2)), sid=1)
    ds.edit("running", cfg(vpn(3)), sid=1)
    cand = etree.tostring(ds.tree("candidate")).decode()
    assert "v2" in cand and "v3" not in cand  # a dirty candidate keeps its own content
    reloaded = Datastores(schema, tmp_path)
    assert canon(reloaded.tree("candidate")) == canon(ds.tree("candidate"))
    ds.commit(sid=1)  # commit copies the candidate to running (RFC 6241 8.3.4.1)
    vpns = set(resolve(ds.config).vpns)
    assert "v2" in vpns and "v3" not in vpns


def test_history_undo_of_entry_and_top_in_one_commit(schema: Schema, tmp_path: Path) -> None:
    from nf.history import History

    ds = loaded(schema, tmp_path, n=2)
    hist = History(tmp_path)
    ds.on_change.append(lambda sid, edits, b, a: hist.record(b, a, "u", sid, ""))
    before = canon(ds.tree("running"))
    ds.edit("candidate", cfg("<vpn><name>v0</name><local-id>first.example.net</local-id></vpn>"),
            sid=1)
    whole = etree.tostring(ds.tree("running")).decode().replace("v1.example.net", "x.example.net")
    replace = etree.fromstring(whole.replace("<config>", f'<config xmlns:nc="{NC}">', 1)
                               .replace(f'<ike xmlns="{NS}"', f'<ike nc:operation="replace" '
                                        f'xmlns="{NS}"', 1))
    ds.edit("candidate", replace, sid=1)
    ds.commit(sid=1)
    assert canon(hist.undo(ds.tree("running"), schema.top, 1)) == before


def test_disk_refusal_undoes_the_edit(schema: Schema, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    ds = loaded(schema, tmp_path, n=1)

    def full(self, payload: bytes) -> None:
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(Journal, "append", full)
    for target in ("running", "candidate"):
        with pytest.raises(RpcError) as ei:
            ds.edit(target, cfg(vpn(5)), sid=1)
        assert ei.value.errors[0].tag == "operation-failed"
        assert "v5" not in etree.tostring(ds.tree(target)).decode()


def test_continue_on_error_with_replace_keeps_siblings(schema: Schema, tmp_path: Path) -> None:
    ds = loaded(schema, tmp_path, n=0)
    ds.edit("running", etree.parse(str(DATA / "site_a.xml")).getroot(), sid=1,
            default_op="replace", error_option="continue-on-error")
    names = [etree.QName(c).localname for c in ds.tree("running")[0]]
    assert {"ike-policy-template", "vpn", "pre-shared-key"} <= set(names)
