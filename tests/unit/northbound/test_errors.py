"""Every error class of nf.errors renders its <rpc-error> (RFC 6241 section 4.3) through
northbound.replies: tag, type, severity, app-tag, path (with its prefixes declared), message,
info."""

from __future__ import annotations

import copy
import pickle

import pytest
from lxml import etree

from nf.errors import BY_TAG, ErrorInfo, LockDenied, RpcError, TaggedError
from nf.schema import NAMESPACES, Schema
from northbound import replies

NC = replies.NC
P = {"nc": NC}
# RFC 6241 appendix A: the error-types each tag may have (partial-operation is deprecated)
ALLOWED_TYPES = {
    "in-use": {"protocol", "application"},
    "invalid-value": {"protocol", "application"},
    "too-big": {"transport", "rpc", "protocol", "application"},
    "missing-attribute": {"rpc", "protocol", "application"},
    "bad-attribute": {"rpc", "protocol", "application"},
    "unknown-attribute": {"rpc", "protocol", "application"},
    "missing-element": {"protocol", "application"},
    "bad-element": {"protocol", "application"},
    "unknown-element": {"protocol", "application"},
    "unknown-namespace": {"protocol", "application"},
    "access-denied": {"protocol", "application"},
    "lock-denied": {"protocol"},
    "resource-denied": {"transport", "rpc", "protocol", "application"},
    "rollback-failed": {"protocol", "application"},
    "data-exists": {"application"},
    "data-missing": {"application"},
    "operation-not-supported": {"protocol", "application"},
    "operation-failed": {"rpc", "protocol", "application"},
    "malformed-message": {"rpc"},
}
PATH = "/ipsec-nf:ike/ipsec-nf:vpn[ipsec-nf:name='a:b']/ietf-netconf-acm:x"


@pytest.fixture(scope="module", autouse=True)
def namespaces() -> None:
    Schema()  # fills NAMESPACES, which error-path prefixes are declared from


def render(err: RpcError) -> list[etree._Element]:
    doc = etree.fromstring(replies.error_reply({"message-id": "9"}, err))
    assert doc.tag == f"{{{NC}}}rpc-reply" and doc.get("message-id") == "9"
    return doc.findall("nc:rpc-error", P)


def test_every_tag_of_rfc_6241_has_a_class() -> None:
    assert set(BY_TAG) == set(ALLOWED_TYPES)
    for tag, klass in BY_TAG.items():
        assert issubclass(klass, TaggedError) and issubclass(klass, RpcError)
        assert klass.tag == tag
        assert klass.default_type in ALLOWED_TYPES[tag], tag


@pytest.mark.parametrize("tag", sorted(BY_TAG))
def test_class_renders_its_rpc_error(tag: str) -> None:
    klass = BY_TAG[tag]
    kind = sorted(ALLOWED_TYPES[tag])[0]
    err = klass(f"the {tag} message", PATH, type=kind, app_tag="some-app-tag",
                **{"bad-element": "vpn", "session-id": "4"})
    assert err.errors == [ErrorInfo(tag, f"the {tag} message", PATH, kind, "some-app-tag",
                                    {"bad-element": "vpn", "session-id": "4"})]
    (el,) = render(err)
    assert [c.tag for c in el] == [f"{{{NC}}}{n}" for n in (
        "error-type", "error-tag", "error-severity", "error-app-tag", "error-path",
        "error-message", "error-info")]
    assert el.findtext("nc:error-type", namespaces=P) == kind
    assert el.findtext("nc:error-tag", namespaces=P) == tag
    assert el.findtext("nc:error-severity", namespaces=P) == "error"
    assert el.findtext("nc:error-app-tag", namespaces=P) == "some-app-tag"
    path = el.find("nc:error-path", P)
    assert path.text == PATH
    # the prefixes of the path are declared on it (a value's 'a:' is not a prefix)
    assert {p: path.nsmap[p] for p in ("ipsec-nf", "ietf-netconf-acm")} == {
        "ipsec-nf": NAMESPACES["ipsec-nf"], "ietf-netconf-acm": NAMESPACES["ietf-netconf-acm"]}
    assert "a" not in path.nsmap
    message = el.find("nc:error-message", P)
    assert message.text == f"the {tag} message"
    assert message.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    assert [(c.tag, c.text) for c in el.find("nc:error-info", P)] == [
        (f"{{{NC}}}bad-element", "vpn"), (f"{{{NC}}}session-id", "4")]


@pytest.mark.parametrize("tag", sorted(BY_TAG))
def test_defaults_and_the_string_form(tag: str) -> None:
    klass = BY_TAG[tag]
    (el,) = render(klass("m"))
    assert el.findtext("nc:error-type", namespaces=P) == klass.default_type
    assert el.find("nc:error-app-tag", P) is None and el.find("nc:error-path", P) is None
    assert el.find("nc:error-info", P) is None
    # RpcError.of (still used by code that names tags as strings) makes the same error, of
    # the tag's class
    old = RpcError.of(tag, "m", PATH, "protocol" if tag != "data-exists" else "application",
                      "x", **{"bad-element": "b"})
    assert isinstance(old, klass)
    assert old.errors == klass("m", PATH, old.errors[0].type, "x",
                               **{"bad-element": "b"}).errors


def test_several_errors_and_unknown_tags() -> None:
    err = RpcError(LockDenied.item("first", **{"session-id": "2"}),
                   BY_TAG["data-missing"].item("second", "/ipsec-nf:ike"))
    first, second = render(err)
    assert first.findtext("nc:error-tag", namespaces=P) == "lock-denied"
    assert first.findtext("nc:error-type", namespaces=P) == "protocol"
    assert second.findtext("nc:error-tag", namespaces=P) == "data-missing"
    assert second.findtext("nc:error-path", namespaces=P) == "/ipsec-nf:ike"
    odd = RpcError.of("partial-operation", "deprecated")
    assert type(odd) is RpcError and odd.errors[0].tag == "partial-operation"


def test_errors_copy_and_pickle_as_themselves() -> None:
    err = BY_TAG["in-use"]("locked", type="protocol", **{"session-id": "3"})
    for again in (copy.copy(err), pickle.loads(pickle.dumps(err))):
        assert type(again) is type(err) and again.errors == err.errors
        assert str(again) == "locked"
