"""Remote access for charon: the VICI payloads of pools, certificates, authorities and EAP
secrets, and the remote-access parts of a VPN's ``load-conn`` (pure functions over
:mod:`nf.effective`).

* a ``pool`` is one charon pool per address (``NAME``, ``NAME#2``, ...: ``load-pool`` takes one
  prefix or range), each with the pool's DNS/NBNS/DHCP attributes (the attr plugin's names);
* a ``certificate`` is ``load-cert`` (X.509) plus ``load-key`` (its private key, a
  :class:`~southbound.convert.SecretBytes`); charon names a key by the SHA-1 of its public key
  (:func:`key_id`), which is how it is unloaded and read back;
* a ``certificate-authority`` is ``load-authority`` (trusted CA certificate, CRL and OCSP
  URIs) plus its CRL as ``load-cert`` (type x509crl);
* an ``eap-key`` is ``load-shared`` of type EAP under the id ``eap-key/NAME`` (the shared
  secret table is the one pre-shared keys use: the prefix keeps the two kinds apart).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from nf.effective import Certificate, CertificateAuthority, EapKey, Pool, Vpn
from southbound.convert import _SECRET_DIGEST_KEY, SecretBytes, decode_secret

EAP_PREFIX = "eap-key/"
POOL_SEP = "#"
_EAP_METHODS = {"eap-mschapv2", "eap-md5"}


def charon_pools(name: str, addresses: tuple[str, ...] | list[str]) -> list[str]:
    """charon's pool names of pool ``name`` with ``addresses``: one per address."""
    return [name if i == 0 else f"{name}{POOL_SEP}{i + 1}" for i in range(len(addresses))]


def pool_of(charon_name: str) -> str:
    """The model's pool name of one of charon's pools."""
    return charon_name.split(POOL_SEP, 1)[0]


def _addrs(address: str) -> str:
    # charon takes a prefix or a range FIRST-LAST; one address is a range of one
    if "/" in address or "-" in address:
        return address
    return f"{address}-{address}"


def pool_payload(pool: Pool) -> dict[str, Any]:
    """``{charon pool name: load-pool payload}`` of one pool."""
    attrs = {k: list(v) for k, v in (("dns", pool.dns), ("nbns", pool.nbns),
                                       ("dhcp", pool.dhcp)) if v}
    return {cname: {"addrs": _addrs(addr), **attrs}
            for cname, addr in zip(charon_pools(pool.name, pool.addresses), pool.addresses,
                                   strict=True)}


def key_id(certificate_pem: str) -> str:
    """charon's id of the certificate's key (KEYID_PUBKEY_SHA1: SHA-1 of the subjectPublicKey
    bits), as get-keys and load-key give it (hex)."""
    cert = x509.load_pem_x509_certificate(certificate_pem.encode())
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha1(_subject_public_key(spki)).hexdigest()  # noqa: S324 (charon's id)


def _subject_public_key(spki: bytes) -> bytes:
    """The BIT STRING content of a DER SubjectPublicKeyInfo (without its unused-bits byte)."""
    def header(buf: bytes, pos: int) -> tuple[int, int]:  # -> (content start, length)
        n = buf[pos + 1]
        if n < 0x80:
            return pos + 2, n
        k = n & 0x7F
        return pos + 2 + k, int.from_bytes(buf[pos + 2:pos + 2 + k], "big")
    start, _ = header(spki, 0)  # SEQUENCE
    alg_start, alg_len = header(spki, start)  # AlgorithmIdentifier
    bits_start, bits_len = header(spki, alg_start + alg_len)  # BIT STRING
    return spki[bits_start + 1:bits_start + bits_len]


def certificate_payload(cert: Certificate) -> dict[str, Any]:
    """What loads one certificate: its PEM (load-cert), its key (load-key; secret), its id.
    ValueError (the entry fails) for a reference to the gateway's CA that cannot be used."""
    if cert.problem is not None:
        raise ValueError(cert.problem)
    # the key at the top level: a daemon message quoting it is withheld whole (batch.py)
    return {"cert": {"type": "x509", "flag": "none", "data": cert.certificate},
            "key": SecretBytes(cert.private_key.encode()), "key-id": key_id(cert.certificate)}


def certificate_digest(cert: Certificate) -> str:
    """A keyed digest (per process) of one certificate entry, its private key included."""
    mac = hmac.new(_SECRET_DIGEST_KEY, cert.private_key.encode(), hashlib.sha256)
    mac.update(cert.certificate.encode())
    return mac.hexdigest()


def authority_payload(ca: CertificateAuthority) -> dict[str, Any]:
    """load-authority (and the CRL's load-cert) of one certificate authority."""
    authority: dict[str, Any] = {"cacert": ca.certificate}
    if ca.crl_uris:
        authority["crl_uris"] = list(ca.crl_uris)
    if ca.ocsp_uris:
        authority["ocsp_uris"] = list(ca.ocsp_uris)
    out: dict[str, Any] = {"authority": authority}
    if ca.crl:
        out["crl"] = {"type": "x509crl", "flag": "none", "data": ca.crl}
    return out


def eap_shared(key: EapKey) -> dict[str, Any]:
    """The load-shared payload (without ``id``) of one EAP key."""
    return {"type": "EAP", "data": decode_secret(key.secret),
            "owners": [str(i) for i in key.ids]}


def eap_digest(key: EapKey) -> str:
    """Keyed digest (per process) of one EAP key's load-shared payload."""
    payload = eap_shared(key)
    mac = hmac.new(_SECRET_DIGEST_KEY, bytes(payload["data"]), hashlib.sha256)
    mac.update(json.dumps(payload["owners"]).encode())
    return mac.hexdigest()


def conn_extras(conn: dict[str, Any], vpn: Vpn) -> None:
    """Add a VPN's remote-access settings to its load-conn payload ``conn`` (in place):
    pools, EAP identities, local certificates and the remote side's authorities."""
    pools = [c for name, addrs in zip(vpn.vip_pools, vpn.vip_pool_addresses, strict=False)
             for c in charon_pools(name, addrs)]
    if pools:
        conn["pools"] = pools
    local, remote = conn["local"], conn["remote"]
    if vpn.ike.local_auth_method in _EAP_METHODS and vpn.local_eap_id:
        local["eap_id"] = vpn.local_eap_id
    if vpn.ike.remote_auth_method in (*_EAP_METHODS, "eap-radius") and vpn.remote_eap_id:
        remote["eap_id"] = vpn.remote_eap_id
    if vpn.ike.local_auth_method == "certificate" and vpn.certificate_pem:
        # (an empty one: a reference to the gateway's CA not filled in, failed on its own)
        if certs := [pem for pem in vpn.certificate_pem if pem]:
            local["certs"] = certs
    if vpn.ike.remote_auth_method == "certificate" and vpn.remote_ca_pem:
        remote["cacerts"] = list(vpn.remote_ca_pem)
