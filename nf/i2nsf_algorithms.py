"""RFC 9061 algorithms: IANA IKEv2 transform IDs, in one table, to this project's algorithm
names (``yang/ipsec-nf.yang``), strongSwan's proposal keywords and the kernel's XFRM names.

RFC 9061 names algorithms by their IANA "IKEv2 Parameters" numbers: encryption (transform
type 1, with a key length where the algorithm has several), integrity (type 3) and
Diffie-Hellman groups (type 4). It has no PRF leaf: the IKE SA's PRF is the HMAC (or AES
MAC) of its integrity algorithms, as strongSwan derives it when none is given (type 2 IDs in
:data:`PRF`). The model name is what the IKE case is converted to (``nf/i2nsf_ike.py``); the
strongSwan keyword is the one ``southbound.algorithms`` makes of that name (a test checks
each row); the XFRM name is the kernel's, for the IKE-less case's SAs (later work).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Algorithm:
    """One row: IANA ID (and key length), IANA name, and its names elsewhere."""

    iana: int
    key_length: int | None
    iana_name: str
    model: str
    strongswan: str
    xfrm: str | None
    aead: bool = False


def _aes(iana: int, name: str, mode: str, keys: tuple[int, ...], xfrm: str,
         aead: bool = False) -> list[Algorithm]:
    rows = []
    for k in keys:
        if aead:
            icv = {"8": 64, "12": 96, "16": 128}[name.rsplit("_", 1)[1]]
            model, ss = f"aes{k}-{mode}-{icv}", f"aes{k}{mode}{icv}"
        else:
            model = f"aes{k}-{mode}"
            ss = f"aes{k}" if mode == "cbc" else f"aes{k}{mode}"
        rows.append(Algorithm(iana, k, name, model, ss, xfrm, aead))
    return rows


ENCRYPTION: dict[tuple[int, int | None], Algorithm] = {
    (a.iana, a.key_length): a for a in [
        Algorithm(3, None, "ENCR_3DES", "3des-cbc", "3des", "cbc(des3_ede)"),
        *_aes(12, "ENCR_AES_CBC", "cbc", (128, 192, 256), "cbc(aes)"),
        *_aes(13, "ENCR_AES_CTR", "ctr", (128, 192, 256), "rfc3686(ctr(aes))"),
        *_aes(14, "ENCR_AES_CCM_8", "ccm", (128, 256), "rfc4309(ccm(aes))", aead=True),
        *_aes(15, "ENCR_AES_CCM_12", "ccm", (128, 256), "rfc4309(ccm(aes))", aead=True),
        *_aes(16, "ENCR_AES_CCM_16", "ccm", (128, 256), "rfc4309(ccm(aes))", aead=True),
        *_aes(18, "ENCR_AES_GCM_8", "gcm", (128, 192, 256), "rfc4106(gcm(aes))", aead=True),
        *_aes(19, "ENCR_AES_GCM_12", "gcm", (128, 192, 256), "rfc4106(gcm(aes))", aead=True),
        *_aes(20, "ENCR_AES_GCM_16", "gcm", (128, 192, 256), "rfc4106(gcm(aes))", aead=True),
        *(Algorithm(23, k, "ENCR_CAMELLIA_CBC", f"camellia{k}-cbc", f"camellia{k}",
                    "cbc(camellia)") for k in (128, 192, 256)),
        Algorithm(28, None, "ENCR_CHACHA20_POLY1305", "chacha20-poly1305", "chacha20poly1305",
                  "rfc7539esp(chacha20,poly1305)", aead=True),
    ]
}
# algorithms with one key size: the key-length leaf (default 128) is not looked at
FIXED_KEY = frozenset(iana for iana, k in ENCRYPTION if k is None)

INTEGRITY: dict[int, Algorithm] = {a.iana: a for a in [
    Algorithm(1, None, "AUTH_HMAC_MD5_96", "hmac-md5", "md5", "hmac(md5)"),
    Algorithm(2, None, "AUTH_HMAC_SHA1_96", "hmac-sha1", "sha1", "hmac(sha1)"),
    Algorithm(5, None, "AUTH_AES_XCBC_96", "aes-xcbc", "aesxcbc", "xcbc(aes)"),
    Algorithm(8, None, "AUTH_AES_CMAC_96", "aes-cmac", "aescmac", "cmac(aes)"),
    Algorithm(12, None, "AUTH_HMAC_SHA2_256_128", "hmac-sha256", "sha256", "hmac(sha256)"),
    Algorithm(13, None, "AUTH_HMAC_SHA2_384_192", "hmac-sha384", "sha384", "hmac(sha384)"),
    Algorithm(14, None, "AUTH_HMAC_SHA2_512_256", "hmac-sha512", "sha512", "hmac(sha512)"),
]}
NO_INTEGRITY = 0  # NONE: the integrity leaf-list's default, for AEAD algorithms

# the PRF of each integrity algorithm (RFC 9061 has no PRF leaf); the model's prf-alg names
# are the integrity names (prf_to_vici adds strongSwan's "prf")
PRF: dict[int, Algorithm] = {integ: a for integ, a in [
    (1, Algorithm(1, None, "PRF_HMAC_MD5", "hmac-md5", "prfmd5", None)),
    (2, Algorithm(2, None, "PRF_HMAC_SHA1", "hmac-sha1", "prfsha1", None)),
    (5, Algorithm(4, None, "PRF_AES128_XCBC", "aes-xcbc", "prfaesxcbc", None)),
    (8, Algorithm(8, None, "PRF_AES128_CMAC", "aes-cmac", "prfaescmac", None)),
    (12, Algorithm(5, None, "PRF_HMAC_SHA2_256", "hmac-sha256", "prfsha256", None)),
    (13, Algorithm(6, None, "PRF_HMAC_SHA2_384", "hmac-sha384", "prfsha384", None)),
    (14, Algorithm(7, None, "PRF_HMAC_SHA2_512", "hmac-sha512", "prfsha512", None)),
]}

DH_GROUPS: dict[int, Algorithm] = {a.iana: a for a in [
    Algorithm(iana, None, iana_name, name, name, None) for iana, iana_name, name in (
        (2, "1024-bit MODP Group", "modp1024"), (5, "1536-bit MODP Group", "modp1536"),
        (14, "2048-bit MODP Group", "modp2048"), (15, "3072-bit MODP Group", "modp3072"),
        (16, "4096-bit MODP Group", "modp4096"), (17, "6144-bit MODP Group", "modp6144"),
        (18, "8192-bit MODP Group", "modp8192"), (19, "256-bit random ECP group", "ecp256"),
        (20, "384-bit random ECP group", "ecp384"), (21, "521-bit random ECP group", "ecp521"),
        (26, "224-bit random ECP group", "ecp224"), (31, "Curve25519", "curve25519"),
        (32, "Curve448", "curve448"))]}
NO_DH = 0  # NONE: no forward secrecy for CHILD SAs (the fs-groups default)


def encryption(iana: int, key_length: int | None) -> Algorithm | None:
    """The row of an encryption transform ID with its key length (ignored where the
    algorithm has one key size), or None when this project cannot run it."""
    if iana in FIXED_KEY:
        return ENCRYPTION[(iana, None)]
    return ENCRYPTION.get((iana, key_length))
