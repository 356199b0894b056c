"""A commit of exactly what one edit-config checked resolves nothing again and runs again only
the checks that look beyond the config (nf.checks.CheckRuns); anything else runs in full, and
the refusals are those of a full run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from nf import datastore
from nf.checks import pure
from nf.datastore import Datastores
from nf.errors import RpcError
from nf.schema import Schema
from southbound.backend import Unsupported
from tests.support import DATA, NC, NS


def cfg(body: str) -> etree._Element:
    return etree.fromstring(f'<config xmlns="{NC}" xmlns:nc="{NC}"><ike xmlns="{NS}">{body}'
                            "</ike></config>")


def vpn(i: int, local_id: str = "") -> str:
    return (f"<vpn><name>v{i}</name><ike-policy><template>iketemp1</template></ike-policy>"
            "<ipsec-policy><template>ipsectemp1</template></ipsec-policy>"
            f"<local-id>{local_id or f'v{i}.example.net'}</local-id></vpn>")


class Counted:
    """Checks that count their runs; the pure one refuses a local-id 'bad', the other when
    told (what it reads beyond the config changed)."""

    def __init__(self, ds: Datastores) -> None:
        self.pure_runs, self.other_runs, self.refuse = 0, 0, False
        ds.checks += [pure(self.pure_check), self.other_check]

    def pure_check(self, eff: Any) -> list[Unsupported]:
        self.pure_runs += 1
        return [Unsupported(v.name, ("local-id",), "bad local-id")
                for v in eff.vpns.values() if v.local_id == "bad"]

    def other_check(self, eff: Any) -> list[Unsupported]:
        self.other_runs += 1
        return [Unsupported(n, (), "refused now") for n in eff.vpns] if self.refuse else []


@pytest.fixture
def ds(schema: Schema, tmp_path: Path) -> Datastores:
    ds = Datastores(schema, tmp_path)
    ds.edit("running", etree.parse(str(DATA / "site_a.xml")).getroot(), sid=1)
    return ds


def resolutions(monkeypatch: pytest.MonkeyPatch, ds: Datastores) -> list[int]:
    seen: list[int] = []
    real = datastore.resolve
    monkeypatch.setattr(ds._check_runs, "_resolve", lambda d: seen.append(1) or real(d))
    return seen


def test_a_commit_of_one_checked_edit(ds: Datastores, monkeypatch: pytest.MonkeyPatch) -> None:
    c = Counted(ds)
    seen = resolutions(monkeypatch, ds)
    ds.edit("candidate", cfg(vpn(1)), sid=1)
    assert (len(seen), c.pure_runs, c.other_runs) == (1, 1, 1)
    ds.commit(sid=1)
    assert (len(seen), c.pure_runs, c.other_runs) == (1, 1, 2)  # only the other one again
    assert "v1" in ds.config["ike"]["vpn"]


def test_what_changed_beyond_the_config_still_refuses_the_commit(ds: Datastores) -> None:
    c = Counted(ds)
    ds.edit("candidate", cfg(vpn(1)), sid=1)
    c.refuse = True
    with pytest.raises(RpcError) as ei:
        ds.commit(sid=1)
    assert ("refused now", "/ipsec-nf:ike/ipsec-nf:vpn[ipsec-nf:name='v1']") in [
        (e.message, e.path) for e in ei.value.errors]
    assert "v1" not in ds.config["ike"].get("vpn", {})


def test_two_edits_are_checked_together_at_commit(ds: Datastores,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    c = Counted(ds)
    seen = resolutions(monkeypatch, ds)
    ds.edit("candidate", cfg(vpn(1)), sid=1)
    ds.edit("candidate", cfg(vpn(2)), sid=1)
    ds.commit(sid=1)
    assert (len(seen), c.pure_runs, c.other_runs) == (3, 3, 3)


def test_equal_values_in_new_dicts_are_checked_again(ds: Datastores) -> None:
    c = Counted(ds)
    ds.edit("running", cfg(vpn(1)), sid=1)
    ds.edit("running", cfg(vpn(1)), sid=1)  # the same values, validated again: new dicts
    assert c.pure_runs == 2
    with pytest.raises(RpcError) as ei:
        ds.edit("candidate", cfg(vpn(3, "bad")), sid=1)
    assert [(e.message, e.path) for e in ei.value.errors] == [
        ("bad local-id", "/ipsec-nf:ike/ipsec-nf:vpn[ipsec-nf:name='v3']/ipsec-nf:local-id")]
