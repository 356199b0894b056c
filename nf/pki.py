"""Checks of the certificates in the configuration, before they reach the IKE daemon.

Run at validate, edit and commit (a check of :mod:`nf.checks`, built into the datastores'
checks by ``tools/backends.py``), with ``cryptography``:

* every ``certificate`` parses (PEM X.509), its ``private-key`` parses (unencrypted PEM) and
  is the key of the certificate;
* every ``certificate-authority`` certificate parses; its CRL parses and is signed by it;
* a VPN that authenticates with certificates names at least one, each valid now (not
  expired, not yet valid) and not revoked by a configured CRL, and its ``local-id`` is the
  certificate's subject or one of its subjectAltNames (as charon matches them);
* a VPN that authenticates peers by certificate has an authority to check them against.

Entries that reference the gateway's own CA (``ca-issued``, ``own-ca``) are checked here
once their PEM is filled in from the CA's store (tools/ca_refs.py); unfilled, they are
skipped (ca_refs refuses them with the reason).

Messages name the entry and the reason, never a private key.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)
from cryptography.x509.oid import NameOID

from nf import paths
from nf.effective import EffectiveConfig, Vpn
from nf.paths import Step

APP_TAG = "invalid-certificate"
_MODULE = "ipsec-nf"
# charon's DN attribute names (its oid table) -> cryptography's OIDs
_DN = {"C": NameOID.COUNTRY_NAME, "ST": NameOID.STATE_OR_PROVINCE_NAME,
       "L": NameOID.LOCALITY_NAME, "O": NameOID.ORGANIZATION_NAME,
       "OU": NameOID.ORGANIZATIONAL_UNIT_NAME, "CN": NameOID.COMMON_NAME,
       "E": NameOID.EMAIL_ADDRESS, "EMAIL": NameOID.EMAIL_ADDRESS,
       "DC": NameOID.DOMAIN_COMPONENT, "SN": NameOID.SERIAL_NUMBER,
       "UID": NameOID.USER_ID}


@dataclass(frozen=True)
class PkiRefusal:
    """A refused certificate setting: ``vpn`` and ``leaf`` as nf.checks wants them, or a
    ready ``path`` for an entry of the certificate lists."""

    vpn: str
    leaf: tuple[str, ...]
    message: str
    path: str | None = None
    app_tag: str = APP_TAG


def entry_path(lst: str, name: str, leaf: str) -> str:
    """The error-path of a leaf of a /ike list entry (certificate, certificate-authority)."""
    return paths.build([Step(_MODULE, "ike"), Step(_MODULE, lst, (("name", name),)),
                        Step(_MODULE, leaf)])


def _cert(pem: str) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        return None


def _spki(key: Any) -> bytes:
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _dn_parts(text: str) -> set[tuple[Any, str]] | None:
    """A DN identity (``C=CH, O=org, CN=name``) as (OID, value) pairs, None if not a DN."""
    parts: set[tuple[Any, str]] = set()
    for rdn in [p for p in text.replace("/", ",").split(",") if p.strip()]:
        key, sep, value = rdn.partition("=")
        oid = _DN.get(key.strip().upper())
        if not sep or oid is None:
            return None
        parts.add((oid, value.strip()))
    return parts or None


def identity_matches(cert: x509.Certificate, ident: str) -> bool:
    """Whether charon would find IKE identity ``ident`` in ``cert``: its subject DN, or a
    subjectAltName (dNSName for an FQDN, rfc822Name for an e-mail, iPAddress for an address)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = x509.SubjectAlternativeName([])
    text = ident[1:] if ident.startswith("@") and not ident.startswith("@#") else ident
    try:
        ip = ipaddress.ip_address(text)
        return ip in san.get_values_for_type(x509.IPAddress)
    except ValueError:
        pass
    if "=" in text:
        parts = _dn_parts(text)
        subject = {(a.oid, a.value) for a in cert.subject}
        return parts is not None and parts == subject
    if "@" in text:
        return text.lower() in {e.lower() for e in san.get_values_for_type(x509.RFC822Name)}
    return text.lower() in {d.lower() for d in san.get_values_for_type(x509.DNSName)}


def _certificate_errors(eff: EffectiveConfig) -> Iterator[PkiRefusal]:
    for name, c in sorted(eff.certificates.items()):
        if c.ca_issued and not c.certificate:
            continue  # a reference the CA's store did not fill in: tools/ca_refs.py says why
        cert = _cert(c.certificate)
        if cert is None:
            yield PkiRefusal("", (), f"certificate {name}: not a PEM X.509 certificate",
                             entry_path("certificate", name, "certificate"))
            continue
        try:
            key = load_pem_private_key(c.private_key.encode(), password=None)
        except (ValueError, TypeError):
            yield PkiRefusal("", (), (f"certificate {name}: the private key is not an "
                                      "unencrypted PEM private key (RSA, ECDSA or Ed25519)"),
                             entry_path("certificate", name, "private-key"))
            continue
        if _spki(key.public_key()) != _spki(cert.public_key()):
            yield PkiRefusal("", (), (f"certificate {name}: the private key does not match "
                                      "the certificate's public key"),
                             entry_path("certificate", name, "private-key"))


def _authority_errors(eff: EffectiveConfig) -> Iterator[PkiRefusal]:
    for name, ca in sorted(eff.authorities.items()):
        if ca.own_ca and not ca.certificate:
            continue  # the gateway's CA, not filled in: tools/ca_refs.py says why
        cert = _cert(ca.certificate)
        if cert is None:
            yield PkiRefusal("", (), (f"certificate-authority {name}: not a PEM X.509 "
                                      "certificate"),
                             entry_path("certificate-authority", name, "certificate"))
            continue
        if ca.crl is None:
            continue
        try:
            crl = x509.load_pem_x509_crl(ca.crl.encode())
        except ValueError:
            yield PkiRefusal("", (), f"certificate-authority {name}: the CRL is not a PEM "
                             "X.509 CRL", entry_path("certificate-authority", name, "crl"))
            continue
        if crl.issuer != cert.subject or not crl.is_signature_valid(cert.public_key()):
            yield PkiRefusal("", (), (f"certificate-authority {name}: the CRL is not "
                                      "issued by this authority"),
                             entry_path("certificate-authority", name, "crl"))
        elif _crl_key_id(crl) != _key_id(cert):
            # charon 5.9.8 finds a loaded CRL by its authorityKeyIdentifier only (the
            # revocation plugin): without it the CRL would be loaded and never used
            yield PkiRefusal("", (), (f"certificate-authority {name}: the CRL has no "
                                      "authorityKeyIdentifier naming this authority's key: "
                                      "the IKE daemon would never use it"),
                             entry_path("certificate-authority", name, "crl"))


def _crl_key_id(crl: x509.CertificateRevocationList) -> bytes | None:
    try:
        return crl.extensions.get_extension_for_class(
            x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        return None


def _key_id(cert: x509.Certificate) -> bytes:
    """The CA's key identifier as charon takes it: its subjectKeyIdentifier, or the SHA-1 of
    its public key when it has none."""
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest


def _crls(eff: EffectiveConfig) -> list[x509.CertificateRevocationList]:
    out = []
    for ca in eff.authorities.values():
        if ca.crl:
            try:
                out.append(x509.load_pem_x509_crl(ca.crl.encode()))
            except ValueError:
                continue
    return out


def _when(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def _vpn_errors(vpn: Vpn, eff: EffectiveConfig, now: dt.datetime,
                crls: list[x509.CertificateRevocationList]) -> Iterator[PkiRefusal]:
    if vpn.ike.local_auth_method == "certificate":
        if not vpn.certificates:
            yield PkiRefusal(vpn.name, ("certificate",), (
                "local-auth-method certificate needs a certificate of this gateway: add one "
                "to the VPN's certificate list"))
        matched = False
        for name in vpn.certificates:
            entry = eff.certificates.get(name)
            if entry is not None and entry.ca_issued and not entry.certificate:
                matched = True  # checked once the CA's certificate is filled in
                continue
            cert = _cert(entry.certificate) if entry else None
            if cert is None:
                continue
            where = (f"certificate[.='{name}']",)
            if now > cert.not_valid_after_utc:
                yield PkiRefusal(vpn.name, where, (
                    f"certificate {name} expired on {_when(cert.not_valid_after_utc)}"))
            elif now < cert.not_valid_before_utc:
                yield PkiRefusal(vpn.name, where, (
                    f"certificate {name} is not valid before "
                    f"{_when(cert.not_valid_before_utc)}"))
            for crl in crls:
                if crl.issuer != cert.issuer:
                    continue
                revoked = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
                if revoked is not None:
                    yield PkiRefusal(vpn.name, where, (
                        f"certificate {name} is revoked (since "
                        f"{_when(revoked.revocation_date_utc)}) by the CRL of its issuer"))
            matched = matched or vpn.local_id is None or identity_matches(cert, vpn.local_id)
        if vpn.certificates and not matched:
            yield PkiRefusal(vpn.name, ("local-id",), (
                f"local-id {vpn.local_id} is neither the subject nor a subjectAltName of the "
                f"certificate(s) {', '.join(vpn.certificates)}: charon would not find it"))
    if vpn.ike.remote_auth_method == "certificate" and not vpn.remote_ca_certificates \
            and not eff.authorities:
        yield PkiRefusal(vpn.name, ("remote-ca-certificate",), (
            "remote-auth-method certificate needs a certificate-authority to check the "
            "peers' certificates against"))


def pki_refusals(eff: EffectiveConfig, now: dt.datetime | None = None) -> list[PkiRefusal]:
    """Every certificate problem of ``eff`` (empty when there is none)."""
    now = now or dt.datetime.now(dt.UTC)
    out = [*_certificate_errors(eff), *_authority_errors(eff)]
    crls = _crls(eff)
    for vpn in eff.vpns.values():
        out.extend(_vpn_errors(vpn, eff, now, crls))
    return out

