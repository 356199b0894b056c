"""Hand-made IKEv2 IKE_SA_INIT requests (RFC 7296) over UDP, and what the responder answered:
its own SA/KE/Nonce (a normal response, the IKE SA is now half-open there), a COOKIE notify
(§2.6, type 16390), another notify, or nothing. Never sends IKE_AUTH.

The one proposal offered is the test VPN's IKE proposal (:data:`PROPOSAL`): aes128-cbc,
prf-hmac-sha512 (charon takes the PRF from the integrity algorithm when none is configured),
hmac-sha512-256, curve25519 (group 31), with a real X25519 public value made by ``cryptography``.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from nf.effective import IkeProposal

IKE_SA_INIT = 34
SA, KE, NONCE, NOTIFY = 33, 34, 40, 41
COOKIE = 16390
FLAG_INITIATOR, FLAG_RESPONSE = 0x08, 0x20
DH_CURVE25519 = 31
# the model's proposal the responder's VPN gets, and the same as IKEv2 transforms
# (type, id, attributes): ENCR_AES_CBC with Key Length 128, PRF_HMAC_SHA2_512,
# AUTH_HMAC_SHA2_512_256, DH group 31
PROPOSAL = IkeProposal(id=1, enc_alg=("aes128-cbc",), auth_alg=("hmac-sha512",),
                       dh_group=("curve25519",))
TRANSFORMS = ((1, 12, struct.pack("!HH", 0x800E, 128)), (2, 7, b""), (3, 14, b""),
              (4, DH_CURVE25519, b""))


def ke_public() -> bytes:
    """A fresh X25519 public value, 32 bytes."""
    return X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _payload(next_type: int, body: bytes) -> bytes:
    return struct.pack("!BBH", next_type, 0, 4 + len(body)) + body


def _sa_body() -> bytes:
    transforms = b""
    for i, (ttype, tid, attrs) in enumerate(TRANSFORMS):
        more = 0 if i == len(TRANSFORMS) - 1 else 3
        transforms += struct.pack("!BBHBBH", more, 0, 8 + len(attrs), ttype, 0, tid) + attrs
    # last proposal, number 1, protocol IKE, no SPI
    return struct.pack("!BBHBBBB", 0, 0, 8 + len(transforms), 1, 1, 0,
                       len(TRANSFORMS)) + transforms


def ike_sa_init(spi_i: bytes, cookie: bytes | None = None) -> bytes:
    """An IKE_SA_INIT request with SA, KE, Nonce; with ``cookie`` the COOKIE notify first
    (RFC 7296 §2.6: the retry of the same request, same SPI, with the responder's cookie)."""
    chain = [(SA, _sa_body()), (KE, struct.pack("!HH", DH_CURVE25519, 0) + ke_public()),
             (NONCE, os.urandom(32))]
    if cookie is not None:
        chain.insert(0, (NOTIFY, struct.pack("!BBH", 0, 0, COOKIE) + cookie))
    body = b""
    for i, (_, data) in enumerate(chain):
        nxt = chain[i + 1][0] if i + 1 < len(chain) else 0
        body += _payload(nxt, data)
    header = struct.pack("!8s8sBBBBII", spi_i, bytes(8), chain[0][0], 0x20, IKE_SA_INIT,
                         FLAG_INITIATOR, 0, 28 + len(body))
    return header + body


@dataclass
class Answer:
    """What the responder sent back to one IKE_SA_INIT request."""

    payloads: list[int] = field(default_factory=list)  # payload types, in order
    notifies: list[int] = field(default_factory=list)
    spi_i: bytes = bytes(8)
    spi_r: bytes = bytes(8)  # zero: the responder made no IKE SA
    cookie: bytes | None = None

    @property
    def kind(self) -> str:
        """``"SA"`` (a normal response: SA/KE/Nonce), ``"COOKIE"``, or ``"notify <types>"``."""
        if COOKIE in self.notifies:
            return "COOKIE"
        if {SA, KE, NONCE} <= set(self.payloads):
            return "SA"
        return f"notify {self.notifies}"


def parse(data: bytes, spi_i: bytes) -> Answer | None:
    """The answer in ``data`` when it is an IKE_SA_INIT response to ``spi_i``, else None."""
    if len(data) < 28:
        return None
    spi, spi_r, nxt, _ver, exch, flags, _mid, length = struct.unpack("!8s8sBBBBII", data[:28])
    if spi != spi_i or exch != IKE_SA_INIT or not flags & FLAG_RESPONSE or length != len(data):
        return None
    ans = Answer(spi_i=spi_i, spi_r=spi_r)
    off = 28
    while nxt and off + 4 <= len(data):
        this = nxt
        nxt, _crit, plen = struct.unpack("!BBH", data[off:off + 4])
        ans.payloads.append(this)
        if this == NOTIFY:
            _proto, spi_size, ntype = struct.unpack("!BBH", data[off + 4:off + 8])
            ans.notifies.append(ntype)
            if ntype == COOKIE:
                ans.cookie = data[off + 8 + spi_size:off + plen]
        off += plen
    return ans


def exchange(sock: socket.socket, dest: tuple[str, int], spi_i: bytes,
             cookie: bytes | None = None, timeout: float = 1.0) -> Answer | None:
    """Send one IKE_SA_INIT from ``sock`` and wait up to ``timeout`` s for its answer."""
    sock.settimeout(timeout)
    sock.sendto(ike_sa_init(spi_i, cookie), dest)
    while True:
        try:
            data, _ = sock.recvfrom(65535)
        except TimeoutError:
            return None
        ans = parse(data, spi_i)
        if ans is not None:
            return ans
