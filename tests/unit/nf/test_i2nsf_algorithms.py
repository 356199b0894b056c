"""The RFC 9061 transform-ID table (nf/i2nsf_algorithms.py): each IANA ID maps to one of our
model's algorithm names, to the strongSwan keyword the southbound makes of that name, and (ESP
algorithms) to the kernel's XFRM name."""

from __future__ import annotations

import pytest

from nf import i2nsf_algorithms as alg
from southbound.algorithms import (
    AEAD_ALGS,
    AUTH_ALGS,
    DH_GROUPS,
    ENC_ALGS,
    PRF_ALGS,
    dh_to_vici,
    enc_to_vici,
    integ_to_vici,
    prf_to_vici,
)

# IANA "IKEv2 Parameters": (transform ID, key length) -> (IANA name, strongSwan, XFRM)
ENCRYPTION = {
    (3, None): ("ENCR_3DES", "3des", "cbc(des3_ede)"),
    (12, 128): ("ENCR_AES_CBC", "aes128", "cbc(aes)"),
    (12, 192): ("ENCR_AES_CBC", "aes192", "cbc(aes)"),
    (12, 256): ("ENCR_AES_CBC", "aes256", "cbc(aes)"),
    (13, 128): ("ENCR_AES_CTR", "aes128ctr", "rfc3686(ctr(aes))"),
    (13, 192): ("ENCR_AES_CTR", "aes192ctr", "rfc3686(ctr(aes))"),
    (13, 256): ("ENCR_AES_CTR", "aes256ctr", "rfc3686(ctr(aes))"),
    (14, 128): ("ENCR_AES_CCM_8", "aes128ccm64", "rfc4309(ccm(aes))"),
    (14, 256): ("ENCR_AES_CCM_8", "aes256ccm64", "rfc4309(ccm(aes))"),
    (15, 128): ("ENCR_AES_CCM_12", "aes128ccm96", "rfc4309(ccm(aes))"),
    (15, 256): ("ENCR_AES_CCM_12", "aes256ccm96", "rfc4309(ccm(aes))"),
    (16, 128): ("ENCR_AES_CCM_16", "aes128ccm128", "rfc4309(ccm(aes))"),
    (16, 256): ("ENCR_AES_CCM_16", "aes256ccm128", "rfc4309(ccm(aes))"),
    (18, 128): ("ENCR_AES_GCM_8", "aes128gcm64", "rfc4106(gcm(aes))"),
    (18, 192): ("ENCR_AES_GCM_8", "aes192gcm64", "rfc4106(gcm(aes))"),
    (18, 256): ("ENCR_AES_GCM_8", "aes256gcm64", "rfc4106(gcm(aes))"),
    (19, 128): ("ENCR_AES_GCM_12", "aes128gcm96", "rfc4106(gcm(aes))"),
    (19, 192): ("ENCR_AES_GCM_12", "aes192gcm96", "rfc4106(gcm(aes))"),
    (19, 256): ("ENCR_AES_GCM_12", "aes256gcm96", "rfc4106(gcm(aes))"),
    (20, 128): ("ENCR_AES_GCM_16", "aes128gcm128", "rfc4106(gcm(aes))"),
    (20, 192): ("ENCR_AES_GCM_16", "aes192gcm128", "rfc4106(gcm(aes))"),
    (20, 256): ("ENCR_AES_GCM_16", "aes256gcm128", "rfc4106(gcm(aes))"),
    (23, 128): ("ENCR_CAMELLIA_CBC", "camellia128", "cbc(camellia)"),
    (23, 192): ("ENCR_CAMELLIA_CBC", "camellia192", "cbc(camellia)"),
    (23, 256): ("ENCR_CAMELLIA_CBC", "camellia256", "cbc(camellia)"),
    (28, None): ("ENCR_CHACHA20_POLY1305", "chacha20poly1305",
                 "rfc7539esp(chacha20,poly1305)"),
}
INTEGRITY = {
    1: ("AUTH_HMAC_MD5_96", "md5", "hmac(md5)", "prfmd5"),
    2: ("AUTH_HMAC_SHA1_96", "sha1", "hmac(sha1)", "prfsha1"),
    5: ("AUTH_AES_XCBC_96", "aesxcbc", "xcbc(aes)", "prfaesxcbc"),
    8: ("AUTH_AES_CMAC_96", "aescmac", "cmac(aes)", "prfaescmac"),
    12: ("AUTH_HMAC_SHA2_256_128", "sha256", "hmac(sha256)", "prfsha256"),
    13: ("AUTH_HMAC_SHA2_384_192", "sha384", "hmac(sha384)", "prfsha384"),
    14: ("AUTH_HMAC_SHA2_512_256", "sha512", "hmac(sha512)", "prfsha512"),
}
PRF_IDS = {1: 1, 2: 2, 5: 4, 8: 8, 12: 5, 13: 6, 14: 7}  # integrity ID -> its PRF's ID
DH = {2: "modp1024", 5: "modp1536", 14: "modp2048", 15: "modp3072", 16: "modp4096",
      17: "modp6144", 18: "modp8192", 19: "ecp256", 20: "ecp384", 21: "ecp521", 26: "ecp224",
      31: "curve25519", 32: "curve448"}


@pytest.mark.parametrize("key", sorted(ENCRYPTION, key=lambda k: (k[0], k[1] or 0)))
def test_encryption_id(key: tuple[int, int | None]) -> None:
    iana_name, strongswan, xfrm = ENCRYPTION[key]
    row = alg.encryption(*key)
    assert row is not None and (row.iana_name, row.strongswan, row.xfrm) == (
        iana_name, strongswan, xfrm)
    assert enc_to_vici(row.model) == strongswan, "the southbound makes the same keyword"
    assert row.model in (AEAD_ALGS if row.aead else ENC_ALGS), "one of our model's names"
    assert row.aead == ("GCM" in iana_name or "CCM" in iana_name or "POLY" in iana_name)


def test_the_table_has_exactly_the_listed_encryptions() -> None:
    assert set(alg.ENCRYPTION) == set(ENCRYPTION)


def test_unknown_encryptions_and_key_lengths_are_not_invented() -> None:
    assert alg.encryption(12, 100) is None  # AES has no 100-bit key
    assert alg.encryption(14, 192) is None  # our model has no AES-CCM-192
    assert alg.encryption(11, None) is None  # ENCR_NULL: not in our model
    assert alg.encryption(28, 128).model == "chacha20-poly1305"  # one key size: length ignored


@pytest.mark.parametrize("iana", sorted(INTEGRITY))
def test_integrity_id(iana: int) -> None:
    iana_name, strongswan, xfrm, prf = INTEGRITY[iana]
    row = alg.INTEGRITY[iana]
    assert (row.iana_name, row.strongswan, row.xfrm) == (iana_name, strongswan, xfrm)
    assert integ_to_vici(row.model) == strongswan and row.model in AUTH_ALGS
    p = alg.PRF[iana]
    assert (p.iana, p.strongswan) == (PRF_IDS[iana], prf)
    assert prf_to_vici(p.model) == prf and p.model in PRF_ALGS


def test_the_table_has_exactly_the_listed_integrity_algorithms() -> None:
    assert set(alg.INTEGRITY) == set(INTEGRITY) == set(alg.PRF)


@pytest.mark.parametrize("iana", sorted(DH))
def test_dh_group_id(iana: int) -> None:
    row = alg.DH_GROUPS[iana]
    assert row.model == row.strongswan == DH[iana]
    assert dh_to_vici(row.model) == DH[iana] and row.model in DH_GROUPS


def test_the_table_has_exactly_the_listed_dh_groups() -> None:
    assert set(alg.DH_GROUPS) == set(DH)
