"""X.509 building blocks of the CA (``cryptography``): keys, the CA certificate, issued
certificates with their SANs and EKUs, name constraints, the CRL. Pure functions: no files.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from nf.ca import (
    CURVES,
    IKE_INTERMEDIATE,
    KEY_TYPES,
    REASONS,
    RSA_BITS,
    CaError,
    KeySpec,
    NameConstraints,
)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
_CURVES = {"p256": ec.SECP256R1, "p384": ec.SECP384R1, "p521": ec.SECP521R1}
_HASH = {"p256": hashes.SHA256, "p384": hashes.SHA384, "p521": hashes.SHA512}
_REASON = {"unspecified": x509.ReasonFlags.unspecified,
           "key-compromise": x509.ReasonFlags.key_compromise,
           "affiliation-changed": x509.ReasonFlags.affiliation_changed,
           "superseded": x509.ReasonFlags.superseded,
           "cessation-of-operation": x509.ReasonFlags.cessation_of_operation}
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
SKEW = dt.timedelta(minutes=5)  # not-before in the past: clocks of clients differ a little


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_key(spec: KeySpec) -> PrivateKey:
    """A new private key as ``spec`` says (its values checked: CaError)."""
    if spec.key_type not in KEY_TYPES:
        raise CaError(f"key type {spec.key_type!r}: expected one of {', '.join(KEY_TYPES)}",
                      "key-type")
    if spec.key_type == "rsa":
        if spec.bits not in RSA_BITS:
            raise CaError(f"RSA key size {spec.bits}: expected one of "
                          f"{', '.join(map(str, RSA_BITS))}", "rsa-bits")
        return rsa.generate_private_key(65537, spec.bits)
    if spec.curve not in CURVES:
        raise CaError(f"curve {spec.curve!r}: expected one of {', '.join(CURVES)}", "curve")
    return ec.generate_private_key(_CURVES[spec.curve]())


def key_type(key: object) -> str:
    return "rsa" if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey) else "ecdsa"


def signature_hash(ca_key: PrivateKey) -> hashes.HashAlgorithm:
    """SHA-256, or the hash that matches the CA's curve."""
    if isinstance(ca_key, ec.EllipticCurvePrivateKey):
        name = {v.name: k for k, v in _CURVES.items()}[ca_key.curve.name]
        return _HASH[name]()
    return hashes.SHA256()


def check_dns(name: str) -> str:
    """A host name (letters, digits, hyphens; dot-separated labels), lower-cased."""
    labels = name.rstrip(".").split(".")
    if not name or len(name) > 253 or not all(_LABEL.match(x) for x in labels):
        raise CaError(f"{name!r} is not a DNS name", "dns")
    return name.rstrip(".").lower()


def check_email(addr: str) -> str:
    local, at, domain = addr.rpartition("@")
    if not at or not local or any(c.isspace() for c in local):
        raise CaError(f"{addr!r} is not an e-mail address", "email")
    return f"{local}@{check_dns(domain)}"


def check_ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise CaError(f"{text!r} is not an IP address", "ip") from None


def check_name(text: str, what: str = "common name", param: str = "common-name") -> str:
    """A subject common name: 1 to 64 characters (X.520), no control characters."""
    if not 1 <= len(text) <= 64 or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise CaError(f"the {what} must be 1 to 64 characters without control characters",
                      param)
    return text


def _general_names(c: NameConstraints, permitted: bool) -> list[x509.GeneralName]:
    dns = c.permitted_dns if permitted else c.excluded_dns
    ips = c.permitted_ip if permitted else c.excluded_ip
    email = c.permitted_email if permitted else ()
    out: list[x509.GeneralName] = [x509.DNSName(check_dns(d)) for d in dns]
    for p in ips:
        try:
            out.append(x509.IPAddress(ipaddress.ip_network(p, strict=False)))
        except ValueError:
            raise CaError(f"{p!r} is not an IP prefix", "name-constraints") from None
    out += [x509.RFC822Name(check_dns(d.lstrip("@"))) for d in email]
    return out


def ca_certificate(name: str, key: PrivateKey, days: int,
                   constraints: NameConstraints | None) -> x509.Certificate:
    """A self-signed CA certificate (path length 0: it signs end entities only)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, check_name(name, "CA name",
                                                                            "name"))])
    start = now()
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(start - SKEW).not_valid_after(start + dt.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
         .add_extension(x509.KeyUsage(
             digital_signature=False, content_commitment=False, key_encipherment=False,
             data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
             encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                        critical=False))
    if constraints:
        permitted = _general_names(constraints, True) or None
        excluded = _general_names(constraints, False) or None
        b = b.add_extension(x509.NameConstraints(permitted, excluded), critical=True)
    return b.sign(key, signature_hash(key))


def constraints_of(cert: x509.Certificate) -> NameConstraints:
    """The name constraints of a CA certificate (empty when it has none)."""
    try:
        nc = cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return NameConstraints()

    def pick(names: Iterable[x509.GeneralName] | None, cls: type) -> tuple[str, ...]:
        return tuple(str(n.value) for n in names or () if isinstance(n, cls))

    return NameConstraints(
        permitted_dns=pick(nc.permitted_subtrees, x509.DNSName),
        permitted_ip=pick(nc.permitted_subtrees, x509.IPAddress),
        permitted_email=pick(nc.permitted_subtrees, x509.RFC822Name),
        excluded_dns=pick(nc.excluded_subtrees, x509.DNSName),
        excluded_ip=pick(nc.excluded_subtrees, x509.IPAddress))


def _dns_within(name: str, base: str) -> bool:
    return name == base or name.endswith("." + base.lstrip("."))


def check_constraints(c: NameConstraints, dns: Iterable[str], ips: Iterable[str],
                      emails: Iterable[str]) -> None:
    """Refuse names a client would refuse under the CA's constraints (RFC 5280 4.2.1.10)."""
    nets = [ipaddress.ip_network(p, strict=False) for p in c.permitted_ip]
    bad = [ipaddress.ip_network(p, strict=False) for p in c.excluded_ip]
    for d in dns:
        if any(_dns_within(d, b) for b in c.excluded_dns) or (
                c.permitted_dns and not any(_dns_within(d, b) for b in c.permitted_dns)):
            raise CaError(f"DNS name {d} is outside the CA's name constraints", "dns")
    for i in ips:
        a = ipaddress.ip_address(i)
        same = [n for n in nets if n.version == a.version]
        if any(a in n for n in bad if n.version == a.version) or (
                same and not any(a in n for n in same)):
            raise CaError(f"IP address {i} is outside the CA's name constraints", "ip")
    for e in emails:
        domain = e.rpartition("@")[2]
        if c.permitted_email and not any(_dns_within(domain, b.lstrip("@"))
                                         for b in c.permitted_email):
            raise CaError(f"e-mail address {e} is outside the CA's name constraints", "email")


def end_entity(kind: str, common_name: str, key: PrivateKey, dns: tuple[str, ...],
               ip: tuple[str, ...], email: tuple[str, ...], serial: int,
               not_after: dt.datetime, ca_cert: x509.Certificate,
               ca_key: PrivateKey) -> x509.Certificate:
    """A gateway (serverAuth + iKEIntermediate) or client (clientAuth) certificate."""
    rsa_key = isinstance(key, rsa.RSAPrivateKey)
    ekus = ([ExtendedKeyUsageOID.SERVER_AUTH, ObjectIdentifier(IKE_INTERMEDIATE)]
            if kind == "gateway" else [ExtendedKeyUsageOID.CLIENT_AUTH])
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ip]
    sans += [x509.RFC822Name(e) for e in email]
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
         .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(serial)
         .not_valid_before(now() - SKEW).not_valid_after(not_after)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(
             digital_signature=True, content_commitment=False, key_encipherment=rsa_key,
             data_encipherment=False, key_agreement=False, key_cert_sign=False,
             crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                        critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
             ca_key.public_key()), critical=False))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(ca_key, signature_hash(ca_key))


def crl(ca_cert: x509.Certificate, ca_key: PrivateKey, number: int, days: int,
        revoked: Iterable[tuple[int, dt.datetime, str]]) -> x509.CertificateRevocationList:
    """The CRL: every (serial, when, reason) revoked; the reason code is left out for
    ``unspecified`` (RFC 5280 5.3.1)."""
    start = now()
    b = (x509.CertificateRevocationListBuilder().issuer_name(ca_cert.subject)
         .last_update(start - SKEW).next_update(start + dt.timedelta(days=days))
         .add_extension(x509.CRLNumber(number), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
             ca_key.public_key()), critical=False))
    for serial, when, reason in revoked:
        r = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
        if reason != "unspecified":
            r = r.add_extension(x509.CRLReason(_REASON[reason]), critical=False)
        b = b.add_revoked_certificate(r.build())
    return b.sign(ca_key, signature_hash(ca_key))


def check_reason(reason: str) -> str:
    if reason not in REASONS:
        raise CaError(f"reason {reason!r}: expected one of {', '.join(REASONS)}", "reason")
    return reason


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()
