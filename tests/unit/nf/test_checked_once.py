"""A bulk commit validates the candidate's entries once: what the checks at edit-config found
is reused at commit (nf.datastore), each VPN is resolved once per change (nf.templates), its
payload found by identity (southbound.conn_cache); the results are those of a full check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from nf import templates
from nf.datastore import Datastores
from nf.errors import RpcError
from nf.schema import Schema
from nf.templates import resolve
from southbound import conn_cache
from southbound.backend import Unsupported
from tests.support import DATA, NC, NS


def cfg(body: str) -> etree._Element:
    return etree.fromstring(f'<config xmlns="{NC}" xmlns:nc="{NC}"><ike xmlns="{NS}">{body}'
                            "</ike></config>")


def vpn(i: int, template: str = "iketemp1", tries: int | None = None) -> str:
    own = f"<keying-tries>{tries}</keying-tries>" if tries else ""
    return (f"<vpn><name>v{i}</name><ike-policy><template>{template}</template>{own}"
            "</ike-policy><ipsec-policy><template>ipsectemp1</template></ipsec-policy>"
            f"<local-id>v{i}.example.net</local-id></vpn>")


def loaded(schema: Schema, tmp: Path) -> Datastores:
    ds = Datastores(schema, tmp)
    ds.edit("running", etree.parse(str(DATA / "site_a.xml")).getroot(), sid=1)
    return ds


def count_validations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    import nf.datastore
    seen: list[int] = []
    real = nf.datastore.validate_slice

    def counting(*args: Any) -> Any:
        seen.append(1)
        return real(*args)
    monkeypatch.setattr(nf.datastore, "validate_slice", counting)
    return seen


def test_the_commit_reuses_the_edits_checks_and_gives_the_same_config(
        schema: Schema, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = loaded(schema, tmp_path)
    ds.edit("running", cfg(vpn(1) + vpn(2)), sid=1)
    seen = count_validations(monkeypatch)
    ds.edit("candidate", cfg(vpn(3) + vpn(4)), sid=1)
    ds.edit("candidate", cfg("<vpn nc:operation='delete'><name>v1</name></vpn>"
                             + vpn(3, tries=7)), sid=1)
    assert len(seen) == 2
    ds.commit(sid=1)
    assert len(seen) == 2  # not validated again at commit
    fresh = Datastores(schema, tmp_path)  # running validated whole from its files
    assert resolve(ds.config) == resolve(fresh.config)
    assert set(resolve(ds.config).vpns) == {"siteA-siteB", "v2", "v3", "v4"}
    assert resolve(ds.config).vpns["v3"].ike.keying_tries == 7


def test_an_unchecked_edit_is_validated_at_commit(schema: Schema, tmp_path: Path) -> None:
    ds = loaded(schema, tmp_path)
    ds.edit("candidate", cfg(vpn(1)), sid=1)
    ds.edit("candidate", cfg(vpn(2, template="nope")), sid=1, test_option="set")
    with pytest.raises(RpcError) as ei:
        ds.commit(sid=1)
    assert ei.value.errors[0].tag == "data-missing"
    assert "v1" not in {v for v in ds.config["ike"].get("vpn", {})}


def test_the_checks_run_again_at_commit(schema: Schema, tmp_path: Path) -> None:
    """What the injected checks look at beyond the config (the gateway's CA) may change
    between edit-config and commit: they run again on the reused data."""
    ds = loaded(schema, tmp_path)
    refuse = []
    ds.checks.append(lambda eff: [Unsupported("v1", (), "refused now")] if refuse else [])
    ds.edit("candidate", cfg(vpn(1)), sid=1)
    refuse.append(1)
    with pytest.raises(RpcError):
        ds.commit(sid=1)
    assert "v1" not in ds.config["ike"].get("vpn", {})


def test_a_vpn_is_resolved_once_per_change_from_the_same_dicts() -> None:
    templates.forget()
    config = {"ike": {"ike-policy-template": [{"name": "t", "keying-tries": 3}],
                      "ipsec-policy-template": [{"name": "p"}],
                      "vpn": [{"name": "a", "ike-policy": {"template": "t"},
                               "ipsec-policy": {"template": "p"}}]}}
    first = resolve(config).vpns["a"]
    assert resolve(config).vpns["a"] is first
    # a new template dict (a changed template): resolved again
    config["ike"]["ike-policy-template"] = [{"name": "t", "keying-tries": 5}]
    again = resolve(config).vpns["a"]
    assert again is not first and again.ike.keying_tries == 5
    templates.forget()
    assert resolve(config).vpns["a"] is not again and resolve(config).vpns["a"] == again


def test_the_payload_is_found_and_taken_by_identity() -> None:
    conn_cache.clear()
    config = {"ike": {"ike-policy-template": [{"name": "t"}],
                      "ipsec-policy-template": [{"name": "p"}],
                      "vpn": [{"name": "a", "ike-policy": {"template": "t"},
                               "ipsec-policy": {"template": "p"}}]}}
    v = resolve(config).vpns["a"]
    built = conn_cache.payload(v)
    assert conn_cache.payload(v) is built and conn_cache.kept() == 1
    assert conn_cache.take(v) is built and conn_cache.kept() == 0
    assert conn_cache.take(v) is not built  # taken: built anew
    templates.forget()
