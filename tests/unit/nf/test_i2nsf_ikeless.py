"""RFC 9061's IKE-less case (nf/i2nsf_ikeless.py): the RFC's gateway-to-gateway example
becomes the kernel SAs and policies the XFRM backend installs; keys that do not fit their
algorithm, missing keys, unknown algorithm IDs and what the kernel's XFRM has no field for are
refused at edit/validate/commit with the node at fault; and on a gateway without kernel ESP
(this host: the kernel-libipsec backend, or kernel-netlink on a kernel without esp4) every
entry is refused with the reason, never accepted silently."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from nf.datastore import Datastores
from nf.errors import RpcError
from nf.i2nsf_ike import UNSUPPORTED
from nf.i2nsf_ikeless import INVALID_KEY, MISSING_KEY, Key, convert
from nf.schema import Schema
from nf.templates import resolve
from southbound.kernel_esp import kernel_esp_missing
from tests.ikeless_example import SaKeys, gateway, hexstr
from tools.backends import backend_checks, dataplane

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
SAD = "/ietf-i2nsf-ikeless:ipsec-ikeless/ietf-i2nsf-ikeless:sad/ietf-i2nsf-ikeless:sad-entry"
OUT = SaKeys(0x1001, hexstr(bytes(range(16))), hexstr(bytes(range(32, 64))))
IN = SaKeys(0x2002, hexstr(bytes(range(100, 116))), hexstr(bytes(range(132, 164))))
EXAMPLE = gateway("198.51.100.1", "198.51.100.2", "192.168.0.0/24", "192.168.99.0/24",
                  OUT, IN, soft={"time": 20}, hard={"time": 30, "bytes": 1000000})
O_NAME = "out/192.168.0.0/24/192.168.99.0/24"
I_NAME = "in/192.168.99.0/24/192.168.0.0/24"


def config(*parts: str) -> etree._Element:
    return etree.fromstring(f'<config xmlns="{NC}">{"".join(parts)}</config>')


def datastores(tmp_path: Path, backend: str | None = None) -> Datastores:
    """Datastores with the checks of ``backend`` (None: the model's checks only)."""
    ds = Datastores(Schema(), tmp_path / "ds")
    if backend is not None:
        ds.checks.extend(backend_checks(dataplane(backend)))
    return ds


def refused(tmp_path: Path, xml: str, backend: str | None = None) -> list:
    ds = datastores(tmp_path, backend)
    with pytest.raises(RpcError) as e:
        ds.edit("running", config(xml), sid=1)
    assert "ipsec-ikeless" not in ds.config  # nothing of it taken
    return e.value.errors


def test_the_rfc_example_becomes_kernel_sas_and_policies(tmp_path: Path) -> None:
    ds = datastores(tmp_path)
    ds.edit("running", config(EXAMPLE), sid=1)
    eff = resolve(ds.config)
    assert eff.refusals == ()
    ikl = eff.ikeless
    assert list(ikl.sad) == [O_NAME, I_NAME] and list(ikl.spd) == [O_NAME, I_NAME]
    out, inb = ikl.sad[O_NAME], ikl.sad[I_NAME]
    assert (out.spi, out.src, out.dst, out.reqid, out.mode) == (
        0x1001, "198.51.100.1", "198.51.100.2", 1, "tunnel")
    assert (inb.spi, inb.src, inb.dst, inb.reqid) == (0x2002, "198.51.100.2", "198.51.100.1", 2)
    assert out.selector.src == "192.168.0.0/24" and out.selector.dst == "192.168.99.0/24"
    assert out.selector.proto is None and out.selector.family == 4
    assert out.encryption == Key("cbc(aes)", bytes(range(16)), None, 12)
    assert out.integrity == Key("hmac(sha256)", bytes(range(32, 64)), 128, 12)
    assert out.aead is None and out.esn and out.replay_window == 64
    assert (out.soft.time, out.hard.time, out.hard.bytes) == (20, 30, 1000000)
    assert "00010203" not in repr(out)  # keys kept out of reprs (logs)
    pol_out, pol_in = ikl.spd[O_NAME], ikl.spd[I_NAME]
    assert (pol_out.direction, pol_out.action, pol_out.src, pol_out.dst, pol_out.reqid) == (
        "out", "protect", "198.51.100.1", "198.51.100.2", 1)
    assert (pol_in.direction, pol_in.src, pol_in.dst, pol_in.index) == (
        "in", "198.51.100.2", "198.51.100.1", 1)
    assert pol_in.selector.src == "192.168.99.0/24"


def test_aead_key_carries_its_salt() -> None:
    xml = EXAMPLE.replace("<encryption-algorithm>12</encryption-algorithm>",
                          "<encryption-algorithm>20</encryption-algorithm>")
    xml = xml.replace(f"<key>{OUT.enc}</key>", f"<key>{hexstr(bytes(20))}</key>")
    xml = xml.replace(f"<key>{IN.enc}</key>", f"<key>{hexstr(bytes(36))}</key>")
    xml = xml.replace(f"<key>{OUT.integ}</key>", "").replace(f"<key>{IN.integ}</key>", "")
    ds_cfg = {"ipsec-ikeless": _dict(xml)}
    ikl, errors = convert(ds_cfg)
    assert errors == []
    assert ikl.sad[O_NAME].aead == Key("rfc4106(gcm(aes))", bytes(20), 128, 20)
    assert ikl.sad[I_NAME].aead.key == bytes(36)  # AES-256 + 4-byte salt
    assert ikl.sad[O_NAME].encryption is None and ikl.sad[O_NAME].integrity is None


def _dict(xml: str) -> dict:
    """The config dict of an ipsec-ikeless XML (libyang's form, defaults filled)."""
    schema = Schema()
    data = schema.parse_config(xml)
    try:
        return data.print_dict(with_siblings=True)["ipsec-ikeless"]
    finally:
        data.free()


@pytest.mark.parametrize(("old", "new", "tag", "leaf", "words"), [
    (f"<key>{OUT.enc}</key>", f"<key>{hexstr(bytes(15))}</key>", INVALID_KEY, "encryption/key",
     "a key of 15 bytes does not fit encryption algorithm 12 (ENCR_AES_CBC): it takes 16 or 24 "
     "or 32 bytes"),
    (f"<key>{OUT.integ}</key>", f"<key>{hexstr(bytes(20))}</key>", INVALID_KEY,
     "integrity/key", "a key of 20 bytes does not fit integrity algorithm 12 "
     "(AUTH_HMAC_SHA2_256_128): it takes 32 bytes"),
    (f"<key>{OUT.enc}</key>", "", MISSING_KEY, "encryption/key",
     "encryption algorithm 12 needs a key"),
    (f"<key>{OUT.integ}</key>", "", MISSING_KEY, "integrity/key",
     "integrity algorithm 12 needs a key"),
    ("<encryption-algorithm>12</encryption-algorithm>",
     "<encryption-algorithm>11</encryption-algorithm>", UNSUPPORTED,
     "encryption/encryption-algorithm", "encryption transform 11 is not supported"),
    ("<integrity-algorithm>12</integrity-algorithm>",
     "<integrity-algorithm>9</integrity-algorithm>", UNSUPPORTED,
     "integrity/integrity-algorithm", "integrity transform 9 is not supported"),
    ("<integrity-algorithm>12</integrity-algorithm>",
     "<integrity-algorithm>0</integrity-algorithm>", UNSUPPORTED,
     "integrity/integrity-algorithm", "needs an integrity algorithm"),
])
def test_what_does_not_fit_the_algorithm_is_refused(tmp_path: Path, old: str, new: str,
                                                     tag: str, leaf: str, words: str) -> None:
    (e,) = refused(tmp_path, EXAMPLE.replace(old, new, 1))
    assert e.app_tag == tag and words in e.message, e
    path = "/".join(f"ietf-i2nsf-ikeless:{s}" for s in ("ipsec-sa-config/esp-sa/" + leaf)
                    .split("/"))
    assert e.path == f"{SAD}[ietf-i2nsf-ikeless:name='{O_NAME}']/{path}", e.path


@pytest.mark.parametrize(("old", "new", "words"), [
    ("<seq-overflow>false</seq-overflow><anti", "<seq-overflow>true</seq-overflow><anti",
     "never lets the outbound sequence number roll over"),
    ("<tunnel><local>198.51.100.1</local>", "<tunnel><df-bit>set</df-bit><local>198.51.100.1"
     "</local>", "df-bit set"),
    ("<inner-protocol>any</inner-protocol>\n    </traffic-selector>\n    <protocol-parameters>",
     "<inner-protocol>6</inner-protocol><local-ports><start>1</start><end>9</end></local-ports>"
     "</traffic-selector><protocol-parameters>", "port range 1-9"),
    ("<time>20</time>", "<time>20</time><action>terminate-clear</action>", "only replace"),
])
def test_what_the_kernel_has_no_field_for_is_refused(tmp_path: Path, old: str, new: str,
                                                     words: str) -> None:
    assert old in EXAMPLE
    errors = refused(tmp_path, EXAMPLE.replace(old, new, 1))
    assert errors and all(e.app_tag == UNSUPPORTED for e in errors)
    assert any(words in e.message for e in errors), [e.message for e in errors]


def test_two_sas_with_one_spi_and_destination_are_refused(tmp_path: Path) -> None:
    xml = EXAMPLE.replace(f"<spi>{IN.spi}</spi>", f"<spi>{OUT.spi}</spi>").replace(
        "<remote>198.51.100.1</remote></tunnel>\n  </ipsec-sa-config>",
        "<remote>198.51.100.2</remote></tunnel>\n  </ipsec-sa-config>")
    errors = refused(tmp_path, xml)
    assert any("the kernel holds one SA per SPI and destination" in e.message for e in errors)


def test_refused_on_the_libipsec_backend_with_the_reason(tmp_path: Path) -> None:
    errors = refused(tmp_path, EXAMPLE, backend="kernel-libipsec")
    assert len(errors) == 4  # two SAD and two SPD entries, each named
    assert {e.path for e in errors} >= {f"{SAD}[ietf-i2nsf-ikeless:name='{O_NAME}']"}
    for e in errors:
        assert e.app_tag == UNSUPPORTED
        assert "needs kernel ESP" in e.message and "kernel-libipsec backend keeps ESP in " \
            "user space" in e.message and "--backend kernel-netlink" in e.message, e.message
        assert OUT.enc not in e.message  # no secrets in errors


def test_refused_on_kernel_netlink_without_kernel_esp(tmp_path: Path) -> None:
    """This host's kernel has XFRM and no ESP: `check --backend kernel-netlink` (and a server
    started there by force) refuses the SAs with the kernel's reason."""
    why = kernel_esp_missing()
    if why is None:  # a host with ESP: the entries are accepted (the guest test installs them)
        datastores(tmp_path, "kernel-netlink").edit("running", config(EXAMPLE), sid=1)
        return
    errors = refused(tmp_path, EXAMPLE, backend="kernel-netlink")
    assert len(errors) == 4
    assert all("needs kernel ESP: the kernel (" in e.message and "has no ESP" in e.message
               for e in errors), errors[0].message


def test_validate_refuses_what_edit_would(tmp_path: Path) -> None:
    """validate of a candidate holding IKE-less entries on a backend without kernel ESP."""
    ds = datastores(tmp_path)
    ds.edit("candidate", config(EXAMPLE), sid=1)  # no backend checks at this datastores
    ds2 = datastores(tmp_path / "b", "kernel-libipsec")
    with pytest.raises(RpcError) as e:
        ds2.edit("candidate", config(EXAMPLE), sid=1)
    assert "needs kernel ESP" in e.value.errors[0].message
