"""A new subtree merged whole (nf.edit's _check_subtree) names the exact node it refuses,
however deep, though paths are only built on error."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from nf.datastore import Datastores
from nf.edit_nodes import check_unique
from nf.errors import RpcError
from nf.schema import Schema
from tests.support import DATA, NC, NS

VPN = "/ipsec-nf:ike/ipsec-nf:vpn[ipsec-nf:name='new']"


@pytest.fixture
def ds(schema: Schema, tmp_path: Path) -> Datastores:
    d = Datastores(schema, tmp_path)
    d.edit("running", etree.parse(str(DATA / "site_a.xml")).getroot(), sid=1)
    return d


def new_vpn(inner: str) -> etree._Element:
    return etree.fromstring(
        f'<config xmlns="{NC}" xmlns:nc="{NC}"><ike xmlns="{NS}"><vpn><name>new</name>'
        f"{inner}</vpn></ike></config>")


@pytest.mark.parametrize("inner, path, tag", [
    ("<bogus/>", VPN, "unknown-element"),
    ("<security-policy><name>sp</name><local-ts><bogus/></local-ts></security-policy>",
     f"{VPN}/ipsec-nf:security-policy[ipsec-nf:name='sp']/ipsec-nf:local-ts",
     "unknown-element"),
    ("<security-policy><name>sp</name><local-ts nc:operation='bogus'>"
     "<subnet>192.0.2.0/24</subnet></local-ts></security-policy>",
     f"{VPN}/ipsec-nf:security-policy[ipsec-nf:name='sp']/ipsec-nf:local-ts",
     "bad-attribute"),
])
def test_the_path_names_the_refused_node(ds: Datastores, inner: str, path: str,
                                         tag: str) -> None:
    with pytest.raises(RpcError) as e:
        ds.edit("candidate", new_vpn(inner), sid=1)
    err = e.value.errors[0]
    assert (err.tag, err.path) == (tag, path)


def test_plain_subtrees_are_the_ones_with_nothing_to_check(schema: Schema) -> None:
    """check_unique tells the editor which subtrees it need not walk again: every node known
    config, no attribute; the others are checked as before (above)."""
    config = etree.fromstring(
        f'<config xmlns="{NC}" xmlns:nc="{NC}"><ike xmlns="{NS}">'
        "<vpn><name>a</name><ike-policy><template>t</template></ike-policy></vpn>"
        "<vpn><name>b</name><ike-policy nc:operation='replace'><template>t</template>"
        "</ike-policy></vpn>"
        "<vpn><name>c</name><bogus/></vpn>"
        "<vpn><name>d</name><state><oper-status>up</oper-status></state></vpn>"
        "</ike></config>")
    plain = check_unique(config, schema.top)
    names = {e.findtext(f"{{{NS}}}name") for e in plain if e.tag == f"{{{NS}}}vpn"}
    assert names == {"a"}
    ike = config[0]
    assert ike not in plain and ike[0][1] in plain and ike[1][1] not in plain
