"""tools/ca_wiring.py: the CA store's CRL in the effective config's authority entries that are
this CA (and only those, and only when newer), and the CRL re-signed before it goes stale."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

import nf.effective
from nf.ca import KeySpec
from nf.ca_store import CaStore
from tools.ca_wiring import CrlFeed, keep_crl_fresh

Authority = nf.effective.CertificateAuthority


def store_at(path: Path, name: str) -> CaStore:
    s = CaStore(path)
    s.create(name, KeySpec("ecdsa"), 365)
    return s


def crl_number(pem: str) -> int:
    crl = x509.load_pem_x509_crl(pem.encode())
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def test_the_crl_goes_to_this_cas_entries_only(tmp_path: Path) -> None:
    ours, other = store_at(tmp_path / "a", "Ours"), store_at(tmp_path / "b", "Other")
    eff = nf.effective.EffectiveConfig(authorities={
        "own": Authority(name="own", certificate=ours.info().certificate),
        "own-too": Authority(name="own-too", certificate=ours.info().certificate),
        "theirs": Authority(name="theirs", certificate=other.info().certificate)})
    feed = CrlFeed(ours)
    eff, names = feed.overlay(eff)
    assert names == {"own", "own-too"} and eff.authorities["theirs"].crl is None
    assert crl_number(eff.authorities["own"].crl) == 1
    assert feed.overlay(eff) == (eff, set())  # nothing newer: nothing changes
    ours.issue("client", "alice")
    ours.revoke("alice")
    eff, names = feed.overlay(eff)
    assert names == {"own", "own-too"}
    crl = x509.load_pem_x509_crl(eff.authorities["own"].crl.encode())
    assert crl.get_revoked_certificate_by_serial_number(1) is not None


def test_a_newer_configured_crl_is_kept(tmp_path: Path) -> None:
    ours = store_at(tmp_path, "Ours")
    for _ in range(2):
        ours.refresh_crl()
    newer = x509.load_der_x509_crl(ours.crl()).public_bytes(Encoding.PEM).decode()
    eff = nf.effective.EffectiveConfig(authorities={
        "own": Authority(name="own", certificate=ours.info().certificate, crl=newer)})
    assert CrlFeed(ours).overlay(eff) == (eff, set())
    without_ca = CrlFeed(CaStore(tmp_path / "none"))
    assert without_ca.overlay(eff) == (eff, set())


def test_the_crl_is_re_signed_before_it_is_stale(tmp_path: Path) -> None:
    ours = store_at(tmp_path, "Ours")
    seen: list[bytes] = []
    ours.on_crl(seen.append)
    assert not ours.refresh_crl_if_due()  # 30 days left: nothing to do
    assert ours.refresh_crl_if_due(margin=dt.timedelta(days=31))
    assert len(seen) == 1 and ours.info().crl_number == 2

    async def one_round() -> None:
        task = asyncio.create_task(keep_crl_fresh(ours, every=3600))
        await asyncio.sleep(0.5)
        task.cancel()

    asyncio.run(one_round())
    assert ours.info().crl_number == 2  # checked, not due
