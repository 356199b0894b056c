"""Algorithm names: the YANG model's <-> strongSwan proposal keywords and charon's SA names."""

from __future__ import annotations

import re
from collections.abc import Mapping

_INTEG = {
    "hmac-md5": "md5",
    "hmac-sha1": "sha1",
    "hmac-sha256": "sha256",
    "hmac-sha384": "sha384",
    "hmac-sha512": "sha512",
    "aes-xcbc": "aesxcbc",
    "aes-cmac": "aescmac",
}
_ENC_RE = re.compile(r"^(aes|camellia)(128|192|256)-(cbc|ctr)$")
_AEAD_RE = re.compile(r"^aes(128|192|256)-(gcm|ccm)-(64|96|128)$")


def enc_to_vici(name: str) -> str:
    """strongSwan keyword of an enc-alg or aead-alg (aes128-cbc -> aes128, ...).

    Unknown names are passed through for charon to judge.
    """
    if name == "3des-cbc":
        return "3des"
    if name == "chacha20-poly1305":
        return "chacha20poly1305"
    m = _ENC_RE.match(name)
    if m:
        return f"{m[1]}{m[2]}{'ctr' if m[3] == 'ctr' else ''}"
    m = _AEAD_RE.match(name)
    if m:
        return f"aes{m[1]}{m[2]}{m[3]}"
    return name


def integ_to_vici(name: str) -> str:
    """strongSwan keyword of an auth-alg (hmac-sha256 -> sha256, ...)."""
    return _INTEG.get(name, name)


def prf_to_vici(name: str) -> str:
    """strongSwan keyword of a prf-alg (hmac-sha512 -> prfsha512, aes-xcbc -> prfaesxcbc)."""
    return "prf" + _INTEG[name] if name in _INTEG else name


def dh_to_vici(name: str) -> str:
    """strongSwan keyword of a dh-group (the model uses strongSwan's names already)."""
    return name


# -- charon's names (list-sas) back to ours ----------------------------------------------------

_ENC_BACK = {"AES_CBC": "aes{}-cbc", "AES_CTR": "aes{}-ctr", "CAMELLIA_CBC": "camellia{}-cbc"}
_AEAD_BACK = {"AES_GCM_16": "aes{}-gcm-128", "AES_GCM_12": "aes{}-gcm-96",
              "AES_GCM_8": "aes{}-gcm-64", "AES_CCM_16": "aes{}-ccm-128",
              "AES_CCM_12": "aes{}-ccm-96", "AES_CCM_8": "aes{}-ccm-64"}
_ENC_FIXED = {"3DES": "3des-cbc", "3DES_CBC": "3des-cbc", "CHACHA20_POLY1305": "chacha20-poly1305"}
_INTEG_BACK = {
    "HMAC_MD5_96": "hmac-md5",
    "HMAC_SHA1_96": "hmac-sha1",
    "HMAC_SHA2_256_128": "hmac-sha256",
    "HMAC_SHA2_384_192": "hmac-sha384",
    "HMAC_SHA2_512_256": "hmac-sha512",
    "AES_XCBC_96": "aes-xcbc",
    "AES_CMAC_96": "aes-cmac",
}
_PRF_BACK = {
    "PRF_HMAC_MD5": "hmac-md5",
    "PRF_HMAC_SHA1": "hmac-sha1",
    "PRF_HMAC_SHA2_256": "hmac-sha256",
    "PRF_HMAC_SHA2_384": "hmac-sha384",
    "PRF_HMAC_SHA2_512": "hmac-sha512",
    "PRF_AES128_XCBC": "aes-xcbc",
    "PRF_AES128_CMAC": "aes-cmac",
}
_DH_RE = re.compile(r"^(MODP|ECP|CURVE)_(\d+)$")


# the model's enumerations (typedefs enc-alg, aead-alg, auth-alg, prf-alg, dh-group of
# yang/ipsec-nf.yang; tests/unit/southbound/test_sa_state.py checks they match): a name of
# charon's that maps to none of them is left out of the state, never invented
ENC_ALGS = frozenset({"3des-cbc", *(f"{c}{k}-{m}" for c, m in (("aes", "cbc"), ("aes", "ctr"),
                                                              ("camellia", "cbc"))
                                    for k in (128, 192, 256))})
AEAD_ALGS = frozenset({"chacha20-poly1305",
                       *(f"aes{k}-gcm-{i}" for k in (128, 192, 256) for i in (64, 96, 128)),
                       *(f"aes{k}-ccm-{i}" for k in (128, 256) for i in (64, 96, 128))})
AUTH_ALGS = frozenset(_INTEG)
PRF_ALGS = frozenset(_INTEG)
DH_GROUPS = frozenset({*(f"modp{b}" for b in (1024, 1536, 2048, 3072, 4096, 6144, 8192)),
                       *(f"ecp{b}" for b in (224, 256, 384, 521)), "curve25519", "curve448"})


def enc_from_charon(name: str, keysize: str | int | None) -> str:
    """Our name of charon's encryption algorithm (AES_CBC + 128 -> aes128-cbc)."""
    if name in _ENC_FIXED:
        return _ENC_FIXED[name]
    pattern = _ENC_BACK.get(name) or _AEAD_BACK.get(name)
    if pattern and keysize:
        return pattern.format(keysize)
    return name.lower()


def integ_from_charon(name: str) -> str:
    """Our name of charon's integrity algorithm (HMAC_SHA2_256_128 -> hmac-sha256)."""
    return _INTEG_BACK.get(name, name.lower())


def prf_from_charon(name: str) -> str:
    """Our name of charon's PRF (PRF_HMAC_SHA2_512 -> hmac-sha512)."""
    return _PRF_BACK.get(name, name.lower())


def dh_from_charon(name: str) -> str:
    """Our name of charon's DH group (MODP_2048 -> modp2048, CURVE_25519 -> curve25519)."""
    m = _DH_RE.match(name)
    if m:
        return f"{m[1].lower()}{m[2]}"
    return name.lower()


def sa_algorithms(sa: Mapping[str, str], prf: bool) -> dict[str, str]:
    """enc-alg (or aead-alg), auth-alg, (prf-alg), dh-group of a list-sas IKE or CHILD entry
    (str values), in the model's enumerations; a name none of them has is left out."""
    out = {}
    if sa.get("encr-alg"):
        enc = enc_from_charon(sa["encr-alg"], sa.get("encr-keysize"))
        if enc in ENC_ALGS:
            out["enc-alg"] = enc
        elif enc in AEAD_ALGS:
            out["aead-alg"] = enc
    if sa.get("integ-alg") and integ_from_charon(sa["integ-alg"]) in AUTH_ALGS:
        out["auth-alg"] = integ_from_charon(sa["integ-alg"])
    if prf and sa.get("prf-alg") and prf_from_charon(sa["prf-alg"]) in PRF_ALGS:
        out["prf-alg"] = prf_from_charon(sa["prf-alg"])
    if sa.get("dh-group") and dh_from_charon(sa["dh-group"]) in DH_GROUPS:
        out["dh-group"] = dh_from_charon(sa["dh-group"])
    return out
