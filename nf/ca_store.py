"""The gateway's certificate authority on disk (:class:`nf.ca.CertificateAuthority`).

``<state-dir>/ca/`` (0700) holds ``ca.key`` (the CA's private key, PKCS#8 PEM, 0600; read
only here, never returned), ``ca.pem``, ``index.json`` (every certificate issued, the next
serial number and CRL number), ``crl.pem`` and ``issued/<serial>.pem`` / ``.key`` (0600, in
a 0700 folder). Every file is written atomically (nf.persist) and created 0600. The store
keeps nothing in memory: the CLI and a running server may use it at once; changes take an
exclusive lock (``ca/.lock``).

Revoking regenerates the CRL and calls the observers given to :meth:`CaStore.on_crl` with
it (DER): the composition root hands it to the IKE daemon there. A deleted certificate keeps
its index entry (marked deleted) so that its serial is never reused and, when revoked, it
stays on the CRL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from nf import ca_export, ca_x509
from nf.ca import (
    EXPORT_FORMATS,
    KINDS,
    CaError,
    CaInfo,
    Conflict,
    Issued,
    KeySpec,
    NameConstraints,
    NoCa,
    NotFound,
    ProfileOptions,
)
from nf.persist import DIR_MODE, atomic_write, fsync_dir

log = logging.getLogger(__name__)
CRL_DAYS = 30
MAX_DAYS = 36500


def _days(days: int) -> int:
    if not 1 <= days <= MAX_DAYS:
        raise CaError(f"validity of {days} days: expected 1 to {MAX_DAYS}", "days")
    return days


def _private_dir(path: Path) -> None:
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)


def _key_pem(key: ca_x509.PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class CaStore:
    """The CA of one state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "ca"
        self._observers: list[Callable[[bytes], None]] = []
        self._issue_observers: list[Callable[[], None]] = []

    # ---- files -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)  # a new state dir
        _private_dir(self.dir)
        fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write(self, name: str, data: bytes) -> None:
        atomic_write(self.dir / name, data)

    def _index(self) -> dict[str, Any]:
        try:
            return json.loads((self.dir / "index.json").read_text())
        except FileNotFoundError:
            raise NoCa("no certificate authority yet: create one first (ipsec-nf ca init, "
                       "or the ca-create RPC)") from None

    def _save_index(self, index: dict[str, Any]) -> None:
        self._write("index.json", (json.dumps(index, indent=1) + "\n").encode())

    def _ca(self) -> tuple[x509.Certificate, ca_x509.PrivateKey]:
        try:
            cert = x509.load_pem_x509_certificate((self.dir / "ca.pem").read_bytes())
            key = serialization.load_pem_private_key((self.dir / "ca.key").read_bytes(), None)
        except FileNotFoundError:
            raise NoCa("no certificate authority yet: create one first (ipsec-nf ca init, "
                       "or the ca-create RPC)") from None
        return cert, key  # type: ignore[return-value]

    def exists(self) -> bool:
        return (self.dir / "ca.pem").exists()

    # ---- the CA ----------------------------------------------------------------------------
    def create(self, name: str, key: KeySpec, days: int,
               constraints: NameConstraints | None = None) -> CaInfo:
        _days(days)
        with self._locked():
            if self.exists():
                raise Conflict(f"a certificate authority exists already in {self.dir}", "name")
            private = ca_x509.new_key(key)
            cert = ca_x509.ca_certificate(name, private, days, constraints)
            _private_dir(self.dir / "issued")
            self._write("ca.key", _key_pem(private))
            self._save_index({"next-serial": 1, "crl-number": 0, "certificates": []})
            self._write("ca.pem", _cert_pem(cert))  # last: the CA exists from here on
            self._regenerate_crl(notify=False)
        log.info("certificate authority %r created (%s)", name, key.key_type)
        return self.info()

    def info(self) -> CaInfo:
        cert = x509.load_pem_x509_certificate(self._read("ca.pem"))
        name = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
        return CaInfo(name=str(name), key_type=ca_x509.key_type(cert.public_key()),
                      not_before=ca_x509.iso(cert.not_valid_before_utc),
                      not_after=ca_x509.iso(cert.not_valid_after_utc),
                      fingerprint=ca_x509.fingerprint(cert), certificate=_cert_pem(cert).decode(),
                      crl_number=self._index()["crl-number"],
                      constraints=ca_x509.constraints_of(cert))

    def _read(self, name: str) -> bytes:
        try:
            return (self.dir / name).read_bytes()
        except FileNotFoundError:
            raise NoCa("no certificate authority yet: create one first (ipsec-nf ca init, "
                       "or the ca-create RPC)") from None

    # ---- issuing ---------------------------------------------------------------------------
    def issue(self, kind: str, common_name: str, dns: tuple[str, ...] = (),
              ip: tuple[str, ...] = (), email: tuple[str, ...] = (), days: int = 730,
              key: KeySpec | None = None) -> Issued:
        if kind not in KINDS:
            raise CaError(f"kind {kind!r}: expected one of {', '.join(KINDS)}", "kind")
        cn = ca_x509.check_name(common_name)
        _days(days)
        dns = tuple(dict.fromkeys(ca_x509.check_dns(d) for d in dns))
        ip = tuple(dict.fromkeys(ca_x509.check_ip(i) for i in ip))
        email = tuple(dict.fromkeys(ca_x509.check_email(e) for e in email))
        dns, ip, email = _with_cn(cn, dns, ip, email)
        with self._locked():
            ca_cert, ca_key = self._ca()
            ca_x509.check_constraints(ca_x509.constraints_of(ca_cert), dns, ip, email)
            index = self._index()
            clash = [e for e in index["certificates"]
                     if e["cn"] == cn and _status(e) == "valid" and not e.get("deleted")]
            if clash:
                raise Conflict(f"certificate {clash[0]['serial']} for {cn!r} is still valid: "
                               "revoke it first", "common-name")
            spec = key or KeySpec(ca_x509.key_type(ca_key), 3072, _curve_of(ca_key))
            private = ca_x509.new_key(spec)
            serial = index["next-serial"]
            not_after = min(ca_x509.now() + dt.timedelta(days=days),
                            ca_cert.not_valid_after_utc)
            cert = ca_x509.end_entity(kind, cn, private, dns, ip, email, serial, not_after,
                                      ca_cert, ca_key)
            self._write(f"issued/{serial}.key", _key_pem(private))
            self._write(f"issued/{serial}.pem", _cert_pem(cert))
            entry = {"serial": serial, "kind": kind, "cn": cn, "dns": list(dns),
                     "ip": list(ip), "email": list(email),
                     "not-before": ca_x509.iso(cert.not_valid_before_utc),
                     "not-after": ca_x509.iso(cert.not_valid_after_utc)}
            index["certificates"].append(entry)
            index["next-serial"] = serial + 1
            self._save_index(index)
        log.info("certificate authority: %s certificate %d issued for %r", kind, serial, cn)
        for observer in self._issue_observers:
            try:
                observer()
            except Exception:  # the certificate is issued: an observer must not hide it
                log.exception("an issue observer failed")
        return self._issued(entry)

    def _issued(self, e: dict[str, Any]) -> Issued:
        path = self.dir / "issued" / f"{e['serial']}.pem"
        pem = "" if e.get("deleted") else path.read_text()
        return Issued(serial=e["serial"], kind=e["kind"], common_name=e["cn"],
                      dns=tuple(e["dns"]), ip=tuple(e["ip"]), email=tuple(e["email"]),
                      not_before=e["not-before"], not_after=e["not-after"],
                      status=_status(e), revoked_at=e.get("revoked-at"),
                      reason=e.get("reason"), certificate=pem)

    def list(self, include_deleted: bool = False) -> list[Issued]:
        self._ca()  # NoCa first
        return [self._issued(e) for e in self._index()["certificates"]
                if include_deleted or not e.get("deleted")]

    def get(self, which: str) -> Issued:
        if not self.exists():  # NoCa first (without reading the CA's key: run at commits)
            self._read("ca.pem")
        return self._issued(self._find(self._index(), which))

    def _find(self, index: dict[str, Any], which: str) -> dict[str, Any]:
        entries = [e for e in index["certificates"] if not e.get("deleted")]
        text = which.strip()
        serial = None
        with contextlib.suppress(ValueError):
            serial = int(text, 16) if text.lower().startswith("0x") else int(text)
        if serial is not None:
            for e in entries:
                if e["serial"] == serial:
                    return e
        named = [e for e in entries if e["cn"] == text]
        valid = [e for e in named if _status(e) == "valid"]
        if len(named) == 1 or len(valid) == 1:
            return (valid or named)[0]
        if named:
            raise NotFound(f"several certificates are named {text!r} (serials "
                           f"{', '.join(str(e['serial']) for e in named)}): give the serial",
                           "certificate")
        raise NotFound(f"no certificate {text!r} (by serial number or common name)",
                       "certificate")

    def gateway_key(self, serial: int) -> str:
        """The private key (PEM) of gateway certificate ``serial``, for the composition root
        to load into the IKE daemon (tools/ca_refs.py) and nothing else: no RPC or CLI
        command reaches it, and a client certificate's key is refused (NotFound)."""
        entries = [e for e in self._index()["certificates"]
                   if e["serial"] == serial and not e.get("deleted")]
        if not entries or entries[0]["kind"] != "gateway":
            raise NotFound(f"no gateway certificate {serial}", "certificate")
        return (self.dir / "issued" / f"{serial}.key").read_text()

    # ---- revoking, deleting ----------------------------------------------------------------
    def revoke(self, which: str, reason: str = "unspecified") -> Issued:
        ca_x509.check_reason(reason)
        with self._locked():
            index = self._index()
            e = self._find(index, which)
            if e.get("revoked-at"):
                raise Conflict(f"certificate {e['serial']} is revoked already", "certificate")
            e["revoked-at"] = ca_x509.iso(ca_x509.now())
            e["reason"] = reason
            self._save_index(index)
            der = self._regenerate_crl(notify=False)
        log.info("certificate authority: certificate %d (%r) revoked (%s); CRL regenerated",
                 e["serial"], e["cn"], reason)
        self._notify(der)
        return self._issued(e)

    def delete(self, which: str, force: bool = False) -> Issued:
        with self._locked():
            index = self._index()
            e = self._find(index, which)
            if _status(e) == "valid" and not force:
                raise Conflict(f"certificate {e['serial']} is still valid: revoke it first "
                               "(deleting it does not stop a client that holds it), or force "
                               "the deletion", "certificate")
            before = self._issued(e)
            e["deleted"] = True
            self._save_index(index)
            for suffix in (".key", ".pem"):
                with contextlib.suppress(FileNotFoundError):
                    (self.dir / "issued" / f"{e['serial']}{suffix}").unlink()
            fsync_dir(self.dir / "issued")
        log.info("certificate authority: certificate %d (%r) deleted", e["serial"], e["cn"])
        return before

    # ---- the CRL ---------------------------------------------------------------------------
    def _regenerate_crl(self, notify: bool = True) -> bytes:
        """A new CRL (number + 1) of every revoked serial; called under the lock."""
        ca_cert, ca_key = self._ca()
        index = self._index()
        index["crl-number"] += 1
        revoked = [(e["serial"], dt.datetime.strptime(e["revoked-at"], "%Y-%m-%dT%H:%M:%SZ")
                    .replace(tzinfo=dt.UTC), e.get("reason") or "unspecified")
                   for e in index["certificates"] if e.get("revoked-at")]
        crl = ca_x509.crl(ca_cert, ca_key, index["crl-number"], CRL_DAYS, revoked)
        self._write("crl.pem", crl.public_bytes(serialization.Encoding.PEM))
        self._save_index(index)
        der = crl.public_bytes(serialization.Encoding.DER)
        if notify:
            self._notify(der)
        return der

    def refresh_crl(self) -> bytes:
        """Sign a new CRL with the same entries (before the current one's nextUpdate)."""
        with self._locked():
            return self._regenerate_crl()

    def refresh_crl_if_due(self, margin: dt.timedelta = dt.timedelta(days=CRL_DAYS / 2)
                           ) -> bool:
        """Sign a new CRL when the current one's nextUpdate is less than ``margin`` away (a
        CRL past it is stale to the IKE daemon and its clients); whether it did."""
        if not self.exists():
            return False
        current = x509.load_pem_x509_crl(self._read("crl.pem"))
        due = current.next_update_utc
        if due is not None and due - ca_x509.now() > margin:
            return False
        self.refresh_crl()
        log.info("certificate authority: CRL re-signed before its nextUpdate")
        return True

    def crl(self) -> bytes:
        crl = x509.load_pem_x509_crl(self._read("crl.pem"))
        return crl.public_bytes(serialization.Encoding.DER)

    def on_crl(self, observer: Callable[[bytes], None]) -> None:
        self._observers.append(observer)

    def on_issue(self, observer: Callable[[], None]) -> None:
        """Call ``observer()`` after every certificate issued (a re-issued certificate that
        the configuration names by common name is loaded at once)."""
        self._issue_observers.append(observer)

    def _notify(self, der: bytes) -> None:
        for observer in self._observers:
            try:
                observer(der)
            except Exception:  # one failing observer must not hide the revocation
                log.exception("a CRL observer failed")

    # ---- exports ---------------------------------------------------------------------------
    def export(self, which: str, fmt: str, password: str | None = None,
               profile: ProfileOptions | None = None, legacy: bool = False) -> bytes:
        if fmt not in EXPORT_FORMATS:
            raise CaError(f"format {fmt!r}: expected one of {', '.join(EXPORT_FORMATS)}",
                          "format")
        ca_cert, _ = self._ca()
        e = self._find(self._index(), which)
        if e["kind"] != "client":
            raise CaError(f"certificate {e['serial']} is a gateway certificate: only client "
                          "certificates are exported (the gateway's key stays here)",
                          "certificate")
        if _status(e) != "valid":
            raise Conflict(f"certificate {e['serial']} is {_status(e)}: not exported",
                           "certificate")
        if fmt != "p12" and (profile is None or not profile.remote_address):
            raise CaError(f"a {fmt} profile needs the gateway's address", "remote-address")
        base = self.dir / "issued" / str(e["serial"])
        cert = x509.load_pem_x509_certificate(base.with_suffix(".pem").read_bytes())
        key = serialization.load_pem_private_key(base.with_suffix(".key").read_bytes(), None)
        if fmt == "p12":
            return ca_export.p12(e["cn"], key, cert, ca_cert, password, legacy)  # type: ignore[arg-type]
        build = ca_export.mobileconfig if fmt == "mobileconfig" else ca_export.sswan
        assert profile is not None
        return build(e["cn"], key, cert, ca_cert, password, profile)  # type: ignore[arg-type]


def _status(e: dict[str, Any]) -> str:
    if e.get("revoked-at"):
        return "revoked"
    if e["not-after"] < ca_x509.iso(ca_x509.now()):
        return "expired"
    return "valid"


def _curve_of(key: Any) -> str:
    names = {"secp256r1": "p256", "secp384r1": "p384", "secp521r1": "p521"}
    return names.get(getattr(getattr(key, "curve", None), "name", ""), "p256")


def _with_cn(cn: str, dns: tuple[str, ...], ip: tuple[str, ...],
             email: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The common name as a subjectAltName too (an IP, an e-mail address or a DNS name, as
    it reads), so that an IKE identity equal to it matches the certificate."""
    try:
        addr = ca_x509.check_ip(cn)
    except CaError:
        addr = None
    if addr is not None:
        return dns, ip if addr in ip else (addr, *ip), email
    if "@" in cn:
        with contextlib.suppress(CaError):
            e = ca_x509.check_email(cn)
            return dns, ip, email if e in email else (e, *email)
        return dns, ip, email
    with contextlib.suppress(CaError):
        d = ca_x509.check_dns(cn)
        return (dns if d in dns else (d, *dns)), ip, email
    return dns, ip, email
