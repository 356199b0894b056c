"""Configuration entries that reference the gateway's own CA, filled in from its store.

A ``/ike/certificate`` entry with ``ca-issued`` names a gateway certificate of the CA
(nf/ca_store.py) by serial number or common name, as ``ipsec-nf ca list`` shows it; a
``/ike/certificate-authority`` entry with ``own-ca`` is the CA itself. Neither carries PEM
in the configuration: the certificate and its private key go from the store into the
*effective* configuration only (:meth:`CaReferences.resolve`), and from there through the
reconciler into charon. The key never crosses NETCONF, and never appears in running, in
the state tree, in a log line or in a notification (``Certificate`` keeps it out of its
repr; the southbound's payload marks it secret).

At validate, edit and commit (:func:`own_ca_checks`) a reference that does not exist, names
a client certificate, or whose certificate is revoked or expired is refused with the reason
and the path of the ``ca-issued`` (or ``own-ca``) leaf; once filled in, the entries get
nf.pki's checks (identities against the subjectAltNames, validity, the CA's CRL) like PEM
entries.

Between commits the CA changes on its own (ca-revoke, ca-issue): the composition root calls
:meth:`CaReferences.resolve` again when the CA signs a new CRL and hands the entries that
changed to the reconciler (a certificate issued under a referenced common name is taken at
once). A revoked referenced certificate then has a ``problem``: its payload cannot be built,
so the certificate entry is ``failed`` in the apply status with the reason, and the next
commit is refused until the reference is changed or the certificate re-issued. charon keeps
what it was given (5.9.8 has no unload-cert; taking the key away would only stop every
client of the VPNs that use it): the failure says so, it does not pretend otherwise.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from nf.ca import CaError, Issued
from nf.ca_store import CaStore
from nf.checks import Check
from nf.effective import Certificate, CertificateAuthority, EffectiveConfig, Vpn
from nf.pki import PkiRefusal, entry_path, pki_refusals
from tools.ca_wiring import CrlFeed

log = logging.getLogger(__name__)
CERTIFICATE_KIND = "certificate"  # southbound.ra_session.CERTIFICATE
AUTHORITY_KIND = "certificate-authority"
VPN_KIND = "vpn"
NO_CA = ("there is no certificate authority on this gateway: create one first (ipsec-nf ca "
         "init, or the ca-create RPC)")


@dataclass(frozen=True)
class Resolved:
    """An effective config with the references filled in, the refusals of those that could
    not be, and the names that differ from the config given, per apply-status kind."""

    effective: EffectiveConfig
    refusals: list[PkiRefusal] = field(default_factory=list)
    changed: dict[str, set[str]] = field(default_factory=dict)


def _problem(c: Issued) -> str | None:
    """Why issued certificate ``c`` cannot be the gateway's, or None."""
    what = f"certificate {c.serial} ({c.common_name!r}) of the gateway's CA"
    if c.kind != "gateway":
        return (f"{what} is a client certificate: issue a gateway certificate (ipsec-nf ca "
                "issue gateway, or the ca-issue RPC)")
    if c.status == "revoked":
        return f"{what} was revoked on {c.revoked_at} ({c.reason}): issue a new one"
    if c.status == "expired":
        return f"{what} expired on {c.not_after}: issue a new one"
    return None


class CaReferences:
    """Fills in the entries of an effective config that reference the CA of ``store``."""

    def __init__(self, store: CaStore) -> None:
        self.store = store

    def _certificate(self, cert: Certificate) -> Certificate:
        ref = cert.ca_issued or ""
        if not self.store.exists():
            return Certificate(name=cert.name, ca_issued=ref, problem=NO_CA)
        try:
            issued = self.store.get(ref)
            problem = _problem(issued)
            if problem is None:
                key = self.store.gateway_key(issued.serial)
                return Certificate(name=cert.name, ca_issued=ref,
                                   certificate=issued.certificate, private_key=key)
        except CaError as e:
            problem = e.message
        except OSError as e:  # a damaged store: say which file, never its content
            problem = f"the CA's store cannot be read: {e.strerror} ({e.filename})"
        return Certificate(name=cert.name, ca_issued=ref, problem=problem)

    def resolve(self, eff: EffectiveConfig, vpns: Iterable[str] | None = None) -> Resolved:
        """``eff`` with every ``ca-issued`` certificate and ``own-ca`` authority filled in
        from the store (again, when it was filled in before), and their PEM in the VPNs that
        name them (only those of ``vpns`` when given, and those naming a changed entry)."""
        certs = {n: c for n, c in eff.certificates.items() if c.ca_issued}
        cas = {n: a for n, a in eff.authorities.items() if a.own_ca}
        if not certs and not cas:
            return Resolved(eff)
        refusals: list[PkiRefusal] = []
        new_certs = {n: self._certificate(c) for n, c in certs.items()}
        for name, c in sorted(new_certs.items()):
            if c.problem is not None:
                refusals.append(PkiRefusal("", (), f"certificate {name}: {c.problem}",
                                           entry_path("certificate", name, "ca-issued")))
        ca_pem = self.store.info().certificate if cas and self.store.exists() else ""
        new_cas = {n: dataclasses.replace(a, certificate=ca_pem) for n, a in cas.items()}
        if cas and not ca_pem:
            refusals += [PkiRefusal("", (), f"certificate-authority {n}: {NO_CA}",
                                    entry_path("certificate-authority", n, "own-ca"))
                         for n in sorted(cas)]
        changed: dict[str, set[str]] = {}
        diff_certs = {n for n, c in new_certs.items() if c != certs[n]}
        diff_cas = {n for n, a in new_cas.items() if a != cas[n]}
        all_certs = {**eff.certificates, **new_certs}
        all_cas = {**eff.authorities, **new_cas}
        # every VPN naming a reference gets its PEM (also one just resolved from running,
        # which has none); a certificate that now fails is not taken away from a VPN
        # (charon keeps what it had, the certificate entry is failed with the reason)
        if vpns is None or diff_certs or diff_cas:
            scan: Iterable[Vpn] = eff.vpns.values()
        else:  # a bulk commit: only its VPNs can lack their PEM
            scan = [eff.vpns[n] for n in vpns if n in eff.vpns]
        filled = {}
        for v in scan:
            if certs.keys() & set(v.certificates) or cas.keys() & set(v.remote_ca_certificates):
                new = _with_pem(v, all_certs, all_cas)
                if new != v:
                    filled[v.name] = new
        if not diff_certs and not diff_cas and not filled:
            return Resolved(eff, refusals)
        for kind, names in ((CERTIFICATE_KIND, diff_certs), (AUTHORITY_KIND, diff_cas),
                            (VPN_KIND, set(filled))):
            if names:
                changed[kind] = names
        out = dataclasses.replace(
            eff, certificates=MappingProxyType(all_certs), authorities=MappingProxyType(all_cas),
            vpns=MappingProxyType({**eff.vpns, **filled}) if filled else eff.vpns)
        return Resolved(out, refusals, changed)


def _with_pem(vpn: Vpn, certs: Mapping[str, Certificate],
              cas: Mapping[str, CertificateAuthority]) -> Vpn:
    """``vpn`` with the PEM of the certificates and authorities it names (the PEM it had
    for a certificate that cannot be filled in)."""
    had = dict(zip(vpn.certificates, vpn.certificate_pem, strict=False))
    return dataclasses.replace(
        vpn,
        certificate_pem=tuple(certs[n].certificate if n in certs and not certs[n].problem
                              else had.get(n, "") for n in vpn.certificates),
        remote_ca_pem=tuple(cas[n].certificate if n in cas else ""
                            for n in vpn.remote_ca_certificates))


def own_ca_checks(refs: CaReferences, feed: CrlFeed) -> Check:
    """A check for the datastores (validate, edit, commit): the references to the gateway's
    CA (:meth:`CaReferences.resolve`'s refusals), then nf.pki's checks again on the config
    with the references filled in and the CA's latest CRL (``CrlFeed``), keeping what they
    add to the plain run (a referenced certificate whose identities do not match a VPN's
    local-id; a certificate of the gateway the CA revoked)."""
    def check(eff: EffectiveConfig) -> list[PkiRefusal]:
        resolved = refs.resolve(eff)
        overlaid, crl_changed = feed.overlay(resolved.effective)
        if not resolved.changed and not crl_changed:
            return resolved.refusals
        before = set(pki_refusals(eff))
        return resolved.refusals + [r for r in pki_refusals(overlaid) if r not in before]
    return check


def after_ca_change(refs: CaReferences, feed: CrlFeed, eff: EffectiveConfig,
                    der: bytes | None = None) -> tuple[EffectiveConfig, dict[str, set[str]]]:
    """The CA signed a new CRL (``der``: a revocation) or issued a certificate: ``eff`` with
    the references to the CA filled in again (a revoked referenced certificate fails, a
    re-issued one is loaded) and the CA's CRL put in, and the names that changed per
    apply-status kind (for the reconciler). Says in the log what changed."""
    resolved = refs.resolve(eff)
    effective, names = feed.overlay(resolved.effective)
    changed = {k: set(v) for k, v in resolved.changed.items()}
    for kind, entries in sorted(changed.items()):
        log.info("the gateway's CA changed: %s %s filled in again", kind,
                 ", ".join(sorted(entries)))
    if names:
        changed.setdefault(AUTHORITY_KIND, set()).update(names)
        log.info("new CRL of the gateway's CA: loading it into charon (%s)",
                 ", ".join(sorted(names)))
    elif der is not None:
        log.warning("new CRL of the gateway's CA: no /ike/certificate-authority entry holds "
                    "this CA's certificate, so charon does not use it")
    return effective, changed
