"""Client exports of the CA, as Libreswan's IKEv2 helper (``ikev2.sh --exportclient``) makes
them: a PKCS#12 (key, certificate, CA), an Apple ``.mobileconfig`` (IKEv2 VPN payload, the
PKCS#12 and the CA as a trusted root) and a strongSwan ``.sswan`` profile (the Android and
macOS apps' JSON format: docs.strongswan.org, "Android VPN Client Profiles").

A PKCS#12 written as a file (``.p12``) is encrypted with AES-256-CBC and a SHA-256 MAC
(PBES2) unless ``legacy`` is asked; the one inside a ``.mobileconfig`` or ``.sswan`` always
uses the legacy algorithms (3DES, SHA-1 MAC), the ones older Apple and Android key stores
import. Without a password the PKCS#12 is not encrypted at all: keep such files private.
"""

from __future__ import annotations

import base64
import json
import plistlib
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12

from nf.ca import ProfileOptions
from nf.ca_x509 import PrivateKey

KDF_ROUNDS = 100_000


def p12(name: str, key: PrivateKey, cert: x509.Certificate, ca: x509.Certificate,
        password: str | None, legacy: bool = False) -> bytes:
    """The client's key and certificate with the CA certificate, as PKCS#12 (DER)."""
    if not password:
        enc: serialization.KeySerializationEncryption = serialization.NoEncryption()
    else:
        b = serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(KDF_ROUNDS)
        if legacy:
            b = b.key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC) \
                .hmac_hash(hashes.SHA1())
        else:
            b = b.key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC) \
                .hmac_hash(hashes.SHA256())
        enc = b.build(password.encode())
    return pkcs12.serialize_key_and_certificates(name.encode(), key, cert, [ca], enc)


def _certificate_type(key: PrivateKey) -> str:
    """Apple's CertificateType of the client key."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {"secp256r1": "ECDSA256", "secp384r1": "ECDSA384",
                "secp521r1": "ECDSA521"}[key.curve.name]
    return "RSA"


def _ident(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "-" for c in text).strip("-.") or "vpn"


def mobileconfig(common_name: str, key: PrivateKey, cert: x509.Certificate,
                 ca: x509.Certificate, password: str | None, opts: ProfileOptions) -> bytes:
    """An Apple configuration profile (XML plist): IKEv2 VPN with certificate
    authentication, the client's PKCS#12 and the CA as a trusted root."""
    remote_id = opts.remote_id or opts.remote_address
    name = opts.name or f"IKEv2 VPN {opts.remote_address}"
    ca_name = ca.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    base = f"net.ipsec-nf.{_ident(opts.remote_address)}.{_ident(common_name)}"
    p12_uuid, ca_uuid, vpn_uuid, top_uuid = (str(uuid.uuid4()).upper() for _ in range(4))
    sa = {"EncryptionAlgorithm": "AES-256", "IntegrityAlgorithm": "SHA2-256",
          "DiffieHellmanGroup": 14, "LifeTimeInMinutes": 1410}
    vpn = {
        "IKEv2": {
            "AuthenticationMethod": "Certificate",
            "CertificateType": _certificate_type(key),
            "PayloadCertificateUUID": p12_uuid,
            "RemoteAddress": opts.remote_address,
            "RemoteIdentifier": remote_id,
            "LocalIdentifier": common_name,
            # the gateway's certificate must come from this CA; its name is checked against
            # RemoteIdentifier (no ServerCertificateCommonName: the gateway's CN may differ)
            "ServerCertificateIssuerCommonName": ca_name,
            "ExtendedAuthEnabled": 0,
            "DeadPeerDetectionRate": "Medium",
            "DisableMOBIKE": 0,
            "DisableRedirect": 0,
            "EnableCertificateRevocationCheck": 0,
            "EnablePFS": 0,
            "IKESecurityAssociationParameters": sa,
            "ChildSecurityAssociationParameters": {**sa, "LifeTimeInMinutes": 1410},
        },
        "IPv4": {"OverridePrimary": 1},
        "PayloadDescription": f"Configures VPN settings for {common_name}",
        "PayloadDisplayName": "VPN",
        "PayloadIdentifier": f"{base}.vpn",
        "PayloadType": "com.apple.vpn.managed",
        "PayloadUUID": vpn_uuid,
        "PayloadVersion": 1,
        "Proxies": {"HTTPEnable": 0, "HTTPSEnable": 0},
        "UserDefinedName": name,
        "VPNType": "IKEv2",
    }
    bundle = {
        "PayloadCertificateFileName": f"{_ident(common_name)}.p12",
        "PayloadContent": p12(common_name, key, cert, ca, password, legacy=True),
        "PayloadDescription": "Adds a PKCS#12-formatted certificate",
        "PayloadDisplayName": common_name,
        "PayloadIdentifier": f"{base}.pkcs12",
        "PayloadType": "com.apple.security.pkcs12",
        "PayloadUUID": p12_uuid,
        "PayloadVersion": 1,
    }
    if password:
        bundle["Password"] = password
    root = {
        "PayloadCertificateFileName": "ca.cer",
        "PayloadContent": ca.public_bytes(serialization.Encoding.DER),
        "PayloadDescription": "Adds a CA root certificate",
        "PayloadDisplayName": ca_name,
        "PayloadIdentifier": f"{base}.ca",
        "PayloadType": "com.apple.security.root",
        "PayloadUUID": ca_uuid,
        "PayloadVersion": 1,
    }
    profile = {
        "PayloadContent": [vpn, bundle, root],
        "PayloadDisplayName": name,
        "PayloadIdentifier": base,
        "PayloadRemovalDisallowed": False,
        "PayloadType": "Configuration",
        "PayloadUUID": top_uuid,
        "PayloadVersion": 1,
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML, sort_keys=False)


def sswan(common_name: str, key: PrivateKey, cert: x509.Certificate, ca: x509.Certificate,
          password: str | None, opts: ProfileOptions) -> bytes:
    """A strongSwan VPN client profile (JSON): type ikev2-cert, the gateway's address and
    identity, the CA certificate (base64 DER) and the client's PKCS#12 (base64; the app asks
    for its password at import)."""
    remote = {"addr": opts.remote_address,
              "cert": base64.b64encode(ca.public_bytes(serialization.Encoding.DER)).decode()}
    if opts.remote_id:
        remote["id"] = opts.remote_id
    profile = {
        "uuid": str(uuid.uuid4()),
        "name": opts.name or f"IKEv2 VPN ({opts.remote_address})",
        "type": "ikev2-cert",
        "remote": remote,
        "local": {"p12": base64.b64encode(
            p12(common_name, key, cert, ca, password, legacy=True)).decode()},
    }
    return (json.dumps(profile, indent=2) + "\n").encode()
