"""The certificate authority's RPCs: <ca-create>, <ca-issue>, <ca-list>, <ca-revoke>,
<ca-delete>, <ca-export> (all ``nacm:default-deny-all``: the dispatcher lets only users with
an explicit exec rule, or the admin group, through).

Each handler reads its input (checked against the YANG input by the dispatcher), calls the
context's :class:`nf.ca.CertificateAuthority` in a thread (key generation takes a while) and
answers. No reply ever holds the CA's private key (the interface has no way to get it); a
client's key leaves only inside a PKCS#12, in ca-issue when ``return-pkcs12`` is true and in
ca-export. CA errors become rpc-errors: a value the CA cannot use or a certificate it does
not know is ``invalid-value`` (error-path to the input leaf); no CA yet is
``operation-failed`` with app-tag ``no-certificate-authority``, a conflict with the store
(a CA exists, the name is taken, the certificate is still valid or revoked) app-tag
``ca-conflict``. Passwords are never repeated in errors or logs.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

from lxml import etree

from nf.ca import (
    CaError,
    CaInfo,
    CertificateAuthority,
    Conflict,
    Issued,
    KeySpec,
    NameConstraints,
    NoCa,
    ProfileOptions,
)
from nf.errors import InvalidValue, OperationFailed, OperationNotSupported
from nf.schema import NS
from northbound.context import ServerContext

# the store's parameter names -> the input leaves of the RPCs
_ALIASES = {"dns": "san-dns", "ip": "san-ip", "email": "san-email"}
MAX_PASSWORD = 1024


def _el(tag: str, text: Any = None) -> etree._Element:
    el = etree.Element(f"{{{NS}}}{tag}", nsmap={None: NS})
    if text is not None:
        el.text = str(text)
    return el


def _sub(parent: etree._Element, tag: str, text: Any) -> None:
    if text is not None and text != "":
        etree.SubElement(parent, f"{{{NS}}}{tag}").text = str(text)


def _text(op: etree._Element, name: str) -> str | None:
    found = op.find(f"{{{NS}}}{name}")
    return None if found is None else (found.text or "")


def _texts(op: etree._Element, name: str, within: str | None = None) -> tuple[str, ...]:
    parent = op if within is None else op.find(f"{{{NS}}}{within}")
    if parent is None:
        return ()
    return tuple((e.text or "").strip() for e in parent.findall(f"{{{NS}}}{name}"))


def _bool(op: etree._Element, name: str) -> bool:
    return (_text(op, name) or "").strip() == "true"


def _password(op: etree._Element, rpc: str, name: str) -> str | None:
    value = _text(op, name)
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_PASSWORD:  # the value itself is never repeated
        raise InvalidValue(f"the password must be 1 to {MAX_PASSWORD} characters",
                           f"/ipsec-nf:{rpc}/ipsec-nf:{name}", **{"bad-element": name})
    return value


def _key(op: etree._Element, default_type: str | None) -> KeySpec | None:
    kind = (_text(op, "key-type") or "").strip() or default_type
    if kind is None:
        return None
    return KeySpec(kind, int(_text(op, "rsa-bits") or 3072),
                   (_text(op, "curve") or "p256").strip())


def _ca(ctx: ServerContext, rpc: str) -> CertificateAuthority:
    if ctx.ca is None:
        raise OperationNotSupported(f"{rpc} is not available: this server has no "
                                    "certificate authority store")
    return ctx.ca


def _error(rpc: str, e: CaError) -> Exception:
    name = _ALIASES.get(e.param or "", e.param)
    if rpc == "ca-create" and name in ("san-dns", "san-ip", "san-email"):
        name = "name-constraints"
    path = f"/ipsec-nf:{rpc}/ipsec-nf:{name}" if name else None
    info: dict[str, str] = {"bad-element": name} if name else {}
    if isinstance(e, NoCa):
        return OperationFailed(e.message, app_tag="no-certificate-authority")
    if isinstance(e, Conflict):
        return OperationFailed(e.message, path, app_tag="ca-conflict", **info)
    return InvalidValue(e.message, path, **info)  # NotFound, or a value it cannot use


async def _call(rpc: str, op: etree._Element, fn: Callable[..., Any], *args: Any,
                **kwargs: Any) -> Any:
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except CaError as e:
        raise _error(rpc, e) from None


def _info(parent: etree._Element, info: CaInfo) -> etree._Element:
    for tag, value in (("name", info.name), ("key-type", info.key_type),
                       ("not-before", info.not_before), ("not-after", info.not_after),
                       ("fingerprint", info.fingerprint), ("certificate", info.certificate),
                       ("crl-number", info.crl_number)):
        _sub(parent, tag, value)
    return parent


def _issued(parent: etree._Element, c: Issued) -> etree._Element:
    for tag, value in (("serial", c.serial), ("kind", c.kind),
                       ("common-name", c.common_name)):
        _sub(parent, tag, value)
    for tag, values in (("san-dns", c.dns), ("san-ip", c.ip), ("san-email", c.email)):
        for v in values:
            _sub(parent, tag, v)
    for tag, value in (("not-before", c.not_before), ("not-after", c.not_after),
                       ("status", c.status), ("revoked-at", c.revoked_at),
                       ("reason", c.reason)):
        _sub(parent, tag, value)
    return parent


def _flat(parent: etree._Element) -> list[etree._Element]:
    return list(parent)


async def ca_create(ctx: ServerContext, session: Any, op: etree._Element
                    ) -> list[etree._Element]:
    """Create the CA; answer its certificate (never its key)."""
    ca = _ca(ctx, "ca-create")
    nc = NameConstraints(*(_texts(op, n, "name-constraints") for n in (
        "permitted-dns", "permitted-ip", "permitted-email", "excluded-dns", "excluded-ip")))
    info = await _call("ca-create", op, ca.create, (_text(op, "name") or "").strip(),
                       _key(op, "ecdsa"), int(_text(op, "days") or 3650), nc or None)
    return _flat(_info(_el("x"), info))


async def ca_issue(ctx: ServerContext, session: Any, op: etree._Element
                   ) -> list[etree._Element]:
    """Issue a certificate; answer it (PEM), and the client's PKCS#12 only when asked."""
    ca = _ca(ctx, "ca-issue")
    kind = (_text(op, "kind") or "").strip()
    want_p12 = _bool(op, "return-pkcs12")
    password = _password(op, "ca-issue", "pkcs12-password")
    if want_p12 and kind != "client":
        raise InvalidValue("a PKCS#12 is returned for client certificates only (the "
                           "gateway's key stays on the gateway)",
                           "/ipsec-nf:ca-issue/ipsec-nf:return-pkcs12",
                           **{"bad-element": "return-pkcs12"})
    issued = await _call("ca-issue", op, ca.issue, kind, _text(op, "common-name") or "",
                         _texts(op, "san-dns"), _texts(op, "san-ip"), _texts(op, "san-email"),
                         int(_text(op, "days") or 730), _key(op, None))
    out = [_el("serial", issued.serial), _el("certificate", issued.certificate),
           _el("not-after", issued.not_after)]
    if want_p12:
        data = await _call("ca-issue", op, ca.export, str(issued.serial), "p12", password)
        out.append(_el("pkcs12", base64.b64encode(data).decode()))
    return out


async def ca_list(ctx: ServerContext, session: Any, op: etree._Element
                  ) -> list[etree._Element]:
    """The CA certificate and the issued certificates."""
    ca = _ca(ctx, "ca-list")
    info = await _call("ca-list", op, ca.info)
    certs = await _call("ca-list", op, ca.list, _bool(op, "include-deleted"))
    return [_info(_el("ca"), info), *(_issued(_el("certificate"), c) for c in certs)]


async def ca_revoke(ctx: ServerContext, session: Any, op: etree._Element
                    ) -> list[etree._Element]:
    """Revoke a certificate; the CRL is regenerated (the store tells its observers)."""
    ca = _ca(ctx, "ca-revoke")
    c = await _call("ca-revoke", op, ca.revoke, _text(op, "certificate") or "",
                    (_text(op, "reason") or "unspecified").strip())
    info = await _call("ca-revoke", op, ca.info)
    return [_el("serial", c.serial), _el("crl-number", info.crl_number)]


async def ca_delete(ctx: ServerContext, session: Any, op: etree._Element
                    ) -> list[etree._Element]:
    """Delete a certificate and its key (a valid one only with force)."""
    ca = _ca(ctx, "ca-delete")
    c = await _call("ca-delete", op, ca.delete, _text(op, "certificate") or "",
                    _bool(op, "force"))
    return [_el("serial", c.serial)]


async def ca_export(ctx: ServerContext, session: Any, op: etree._Element
                    ) -> list[etree._Element]:
    """A client's .p12, .mobileconfig or .sswan, base64."""
    ca = _ca(ctx, "ca-export")
    which, fmt = _text(op, "certificate") or "", (_text(op, "format") or "").strip()
    password = _password(op, "ca-export", "password")
    address = (_text(op, "remote-address") or "").strip()
    profile = None
    if fmt != "p12":
        if not address:
            raise InvalidValue(f"a {fmt} profile needs remote-address",
                               "/ipsec-nf:ca-export/ipsec-nf:remote-address",
                               **{"bad-element": "remote-address"})
        profile = ProfileOptions(address, _text(op, "remote-id"), _text(op, "profile-name"))
    c = await _call("ca-export", op, ca.get, which)
    data = await _call("ca-export", op, ca.export, which, fmt, password, profile,
                       legacy=_bool(op, "legacy"))
    safe = "".join(ch if ch.isalnum() or ch in "-_.@" else "_" for ch in c.common_name)
    return [_el("file-name", f"{safe}.{fmt}"), _el("data", base64.b64encode(data).decode())]


TABLE = {
    (NS, "ca-create"): ca_create,
    (NS, "ca-issue"): ca_issue,
    (NS, "ca-list"): ca_list,
    (NS, "ca-revoke"): ca_revoke,
    (NS, "ca-delete"): ca_delete,
    (NS, "ca-export"): ca_export,
}
