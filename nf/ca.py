"""The gateway's certificate authority as every front asks for it: one typed interface, its
records and errors.

The CLI (``ipsec-nf ca``, ``tools/ca_cli.py``) and the NETCONF RPCs ``ca-*``
(``northbound/ops_ca.py``) reach the CA only through :class:`CertificateAuthority`;
``nf/ca_store.py`` implements it on files under ``<state-dir>/ca/`` and ``nf/ca_export.py``
builds the client exports. Types only: this module imports nothing of the other packages.

What the interface never offers: the CA's private key. Issued private keys leave the store
only inside a PKCS#12 (or a profile that carries one), built on request.

Errors are :class:`CaError` subclasses whose messages are safe to show a client (no key, no
password); ``param`` names the input at fault, when one is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

KEY_TYPES = ("rsa", "ecdsa")
RSA_BITS = (2048, 3072, 4096)
CURVES = ("p256", "p384", "p521")
KINDS = ("gateway", "client")
REASONS = ("unspecified", "key-compromise", "affiliation-changed", "superseded",
           "cessation-of-operation")
EXPORT_FORMATS = ("p12", "mobileconfig", "sswan")
# iKEIntermediate (draft-ietf-ipsec-pki-req): the EKU Windows and Apple clients look for in
# a gateway certificate, beside serverAuth
IKE_INTERMEDIATE = "1.3.6.1.5.5.8.2.2"


@dataclass(frozen=True, slots=True)
class KeySpec:
    """A key to generate: ``rsa`` with ``bits``, or ``ecdsa`` on ``curve``."""

    key_type: str = "ecdsa"
    bits: int = 3072
    curve: str = "p256"


@dataclass(frozen=True, slots=True)
class NameConstraints:
    """RFC 5280 name constraints of the CA (critical): DNS suffixes, IP prefixes and e-mail
    domains the issued certificates may (permitted) or may not (excluded) name."""

    permitted_dns: tuple[str, ...] = ()
    permitted_ip: tuple[str, ...] = ()
    permitted_email: tuple[str, ...] = ()
    excluded_dns: tuple[str, ...] = ()
    excluded_ip: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return any((self.permitted_dns, self.permitted_ip, self.permitted_email,
                    self.excluded_dns, self.excluded_ip))


@dataclass(frozen=True, slots=True)
class CaInfo:
    """The CA certificate: what may be shown (never the key)."""

    name: str
    key_type: str
    not_before: str  # ISO 8601 UTC
    not_after: str
    fingerprint: str  # SHA-256, hex with colons
    certificate: str  # PEM
    crl_number: int
    constraints: NameConstraints = field(default_factory=NameConstraints)


@dataclass(frozen=True, slots=True)
class Issued:
    """One certificate the CA issued."""

    serial: int
    kind: str
    common_name: str
    dns: tuple[str, ...]
    ip: tuple[str, ...]
    email: tuple[str, ...]
    not_before: str
    not_after: str
    status: str  # valid | revoked | expired
    revoked_at: str | None = None
    reason: str | None = None
    certificate: str = ""  # PEM


@dataclass(frozen=True, slots=True)
class ProfileOptions:
    """What a client profile (.mobileconfig, .sswan) says about the gateway."""

    remote_address: str
    remote_id: str | None = None  # default: remote_address
    name: str | None = None  # the profile's display name


class CaError(Exception):
    """The CA cannot do what was asked. ``param`` names the input at fault, or None."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class NoCa(CaError):
    """No CA has been created in this state directory yet."""


class NotFound(CaError):
    """No certificate with that serial number or common name."""


class Conflict(CaError):
    """The request contradicts the store's state: a CA exists already, a valid certificate
    has that common name, a certificate to delete is still valid..."""


class CertificateAuthority(Protocol):
    """The gateway's CA (nf/ca_store.py). ``which`` names an issued certificate by its
    serial number (decimal, or hex with 0x) or its common name."""

    def create(self, name: str, key: KeySpec, days: int,
               constraints: NameConstraints | None = None) -> CaInfo:
        """Create the CA (refused when one exists)."""
        ...

    def info(self) -> CaInfo:
        """The CA certificate (NoCa when there is none)."""
        ...

    def issue(self, kind: str, common_name: str, dns: tuple[str, ...] = (),
              ip: tuple[str, ...] = (), email: tuple[str, ...] = (), days: int = 730,
              key: KeySpec | None = None) -> Issued:
        """Issue a gateway or client certificate with a new key pair."""
        ...

    def list(self, include_deleted: bool = False) -> list[Issued]:
        """The issued certificates, by serial number."""
        ...

    def get(self, which: str) -> Issued:
        """One issued certificate (NotFound)."""
        ...

    def revoke(self, which: str, reason: str = "unspecified") -> Issued:
        """Revoke a certificate and regenerate the CRL (observers are told)."""
        ...

    def delete(self, which: str, force: bool = False) -> Issued:
        """Delete a certificate and its key; a valid one only with ``force``."""
        ...

    def export(self, which: str, fmt: str, password: str | None = None,
               profile: ProfileOptions | None = None, legacy: bool = False) -> bytes:
        """A client's PKCS#12, .mobileconfig or .sswan (nf/ca_export.py); ``legacy``:
        a .p12 with the old algorithms (3DES, SHA-1 MAC)."""
        ...

    def crl(self) -> bytes:
        """The current CRL, DER."""
        ...

    def on_crl(self, observer: Callable[[bytes], None]) -> None:
        """Call ``observer(crl_der)`` after every regeneration of the CRL."""
        ...
