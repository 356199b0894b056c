"""validate_slice serializes the slice's nodes where they are (nf.validate): whatever prefixes
the stored config uses, the slice of a VPN validates to the same dict as that VPN validated
with the rest of the config, and its errors are those of a full validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from nf.datastore import Datastores
from nf.errors import RpcError
from nf.schema import Schema
from nf.validate import validate, validate_slice
from tests.support import NC, NS

TEMPLATES = ("<x:ike-policy-template><x:name>t</x:name><x:ike-proposal><x:id>1</x:id>"
             "<x:enc-alg>aes128-cbc</x:enc-alg><x:auth-alg>hmac-sha256</x:auth-alg>"
             "<x:dh-group>modp2048</x:dh-group></x:ike-proposal></x:ike-policy-template>"
             "<x:ipsec-policy-template><x:name>p</x:name><x:esp-proposal><x:id>1</x:id>"
             "<x:enc-alg>aes128-cbc</x:enc-alg><x:auth-alg>hmac-sha256</x:auth-alg>"
             "</x:esp-proposal></x:ipsec-policy-template>")


def vpn(name: str, template: str = "t") -> str:
    return (f'<vpn xmlns="{NS}"><name>{name}</name><ike-policy><template>{template}</template>'
            "</ike-policy><ipsec-policy><template>p</template></ipsec-policy>"
            "<remote-address>203.0.113.9</remote-address></vpn>")


def prefixed(body: str) -> etree._Element:
    return etree.fromstring(f'<config xmlns="{NC}"><x:ike xmlns:x="{NS}">{body}</x:ike>'
                            "</config>")


def key_of(ds: Datastores, name: str) -> tuple:
    (top, lst), entries = next((k, v) for k, v in ds.running.index.items()
                               if k[1] == f"{{{NS}}}vpn")
    return top, lst, next(k for k in entries if k[0] == name)


def test_the_slice_validates_as_the_whole(schema: Schema, tmp_path: Path) -> None:
    ds = Datastores(schema, tmp_path)
    ds.edit("running", prefixed(TEMPLATES + vpn("a") + vpn("b")), sid=1)
    sliced = validate_slice(schema, ds.running, {key_of(ds, "b")})
    alone = validate(schema, [prefixed(TEMPLATES + vpn("b"))[0]])
    assert sliced == alone and [v["name"] for v in sliced["ike"]["vpn"]] == ["b"]


def test_a_bad_reference_in_the_slice_is_refused_as_in_the_whole(schema: Schema,
                                                                 tmp_path: Path) -> None:
    ds = Datastores(schema, tmp_path)
    ds.edit("running", prefixed(TEMPLATES + vpn("a")), sid=1)
    with pytest.raises(RpcError) as whole:
        validate(schema, [prefixed(TEMPLATES + vpn("b", "nope"))[0]])
    with pytest.raises(RpcError) as edit:
        ds.edit("running", prefixed(vpn("b", "nope")), sid=1)
    assert [(e.tag, e.app_tag, e.path, e.message) for e in edit.value.errors] == [
        (e.tag, e.app_tag, e.path, e.message) for e in whole.value.errors]
