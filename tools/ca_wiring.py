"""The gateway's own CA and the IKE daemon: a new CRL is in force in charon at once.

charon trusts a CA, and takes its CRL, through an entry of ``/ike/certificate-authority``
(loaded by the southbound as ``load-authority`` + ``load-cert`` type ``x509crl``). The CA
store (nf/ca_store.py) tells its observers every CRL it signs. :class:`CrlFeed` puts the
store's CRL into the *effective* configuration of every certificate-authority entry whose
certificate is this CA's (unless the one configured there is as new or newer, by CRL
number), so that:

* at every commit (and at start) the effective config carries the store's latest CRL;
* a commit that uses a certificate of this gateway the CA revoked is refused
  (:func:`own_ca_revocations`);
* on a revocation (ca-revoke, or the store's observers in the server process) the composition
  root re-applies the overlay and tells the reconciler that exactly those entries changed:
  charon is given the new CRL at once, without a commit and without touching running.

A revocation made with ``ipsec-nf ca revoke`` by another process reaches charon at the next
commit or restart of the server (the store keeps no state in memory; it has no way to tell
the server); on a running gateway revoke over NETCONF.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from nf.ca_store import CaStore
from nf.checks import Check
from nf.effective import EffectiveConfig
from nf.pki import PkiRefusal, pki_refusals

log = logging.getLogger(__name__)
AUTHORITY_KIND = "certificate-authority"  # southbound.ra_session.AUTHORITY
REFRESH_EVERY = 6 * 3600.0  # seconds between checks of the CRL's nextUpdate


def _der(pem: str) -> bytes | None:
    try:
        return x509.load_pem_x509_certificate(pem.encode()).public_bytes(
            serialization.Encoding.DER)
    except ValueError:
        return None


def _crl_number(pem: str) -> int:
    try:
        crl = x509.load_pem_x509_crl(pem.encode())
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except (ValueError, x509.ExtensionNotFound):
        return -1


class CrlFeed:
    """The store's CRL in the effective config's authorities that are this CA."""

    def __init__(self, store: CaStore) -> None:
        self.store = store

    def overlay(self, eff: EffectiveConfig) -> tuple[EffectiveConfig, set[str]]:
        """``eff`` with the store's CRL in each authority entry of this CA that has an older
        one (or none); and the names of those entries."""
        authorities = getattr(eff, "authorities", None)  # the remote-access model's list
        if not authorities or not self.store.exists():
            return eff, set()
        info = self.store.info()
        ours = _der(info.certificate)
        crl = x509.load_der_x509_crl(self.store.crl()).public_bytes(
            serialization.Encoding.PEM).decode()
        changed = {}
        for name, authority in authorities.items():
            if _der(authority.certificate) != ours:
                continue
            if authority.crl and _crl_number(authority.crl) >= info.crl_number:
                continue
            changed[name] = dataclasses.replace(authority, crl=crl)
        if not changed:
            return eff, set()
        return dataclasses.replace(eff, authorities={**authorities, **changed}), set(changed)


def own_ca_revocations(feed: CrlFeed) -> Check:
    """A check for the datastores (validate, edit, commit): certificates of this gateway that
    its own CA revoked. The store's CRL goes into effective configs only, never into running,
    so nf.pki's check of the configured CRLs does not see it: this one runs that check again
    with the store's CRL and keeps what it adds ("certificate gw is revoked ... by the CRL of
    its issuer")."""
    def check(eff: EffectiveConfig) -> list[PkiRefusal]:
        overlaid, changed = feed.overlay(eff)
        if not changed:
            return []
        before = set(pki_refusals(eff))
        return [r for r in pki_refusals(overlaid) if r not in before]
    return check


async def keep_crl_fresh(store: CaStore, every: float = REFRESH_EVERY) -> None:
    """Re-sign the CRL (same entries, a new number) before its nextUpdate, for as long as the
    server runs; the store's observers take the new one to charon like a revocation."""
    while True:
        try:
            await asyncio.to_thread(store.refresh_crl_if_due)
        except Exception:  # a damaged store must not stop the server
            log.exception("cannot refresh the CRL of the gateway's CA")
        await asyncio.sleep(every)
