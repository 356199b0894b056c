"""The IKE-less notifications the kernel sends no message for (southbound/ikeless_events.py):
``sadb-seq-overflow`` once per SA whose last sequence number was sent (32-bit, or 64-bit with
ESN), ``sadb-bad-spi`` for an ESP packet whose SPI the kernel has no SA for, at most once per
SPI every BAD_SPI_HOLD seconds; and a hard expire of one of our SAs is recorded so the SA is
not installed again with the same content."""

from __future__ import annotations

import ipaddress

from lxml import etree

from southbound.ikeless_backend import IkelessBackend
from southbound.ikeless_events import BAD_SPI_HOLD, IkelessEvents
from southbound.xfrm.types import ExpireEvent, SaId, SaStats, XfrmState

A, B = ipaddress.ip_address("198.51.100.1"), ipaddress.ip_address("198.51.100.2")


def events() -> tuple[IkelessEvents, list[etree._Element]]:
    sent: list[etree._Element] = []
    backend = IkelessBackend(driver_factory=lambda: None)  # no kernel used by these paths
    return IkelessEvents(backend, sent.append, dict), sent


def names(sent: list[etree._Element]) -> list[str]:
    return [etree.QName(n).localname for n in sent]


def sa(oseq: int, esn: bool) -> XfrmState:
    return XfrmState(src=A, dst=B, spi=0x1001, esn=esn, stats=SaStats(oseq=oseq))


def test_seq_overflow_once_per_sa() -> None:
    ev, sent = events()
    ev.watch_sequence_numbers({"out/1": sa(0xFFFFFFFE, False)})
    assert sent == []
    ev.watch_sequence_numbers({"out/1": sa(0xFFFFFFFF, False)})
    ev.watch_sequence_numbers({"out/1": sa(0xFFFFFFFF, False)})
    assert names(sent) == ["sadb-seq-overflow"]
    assert sent[0].findtext("{*}ipsec-sa-name") == "out/1"
    ev.watch_sequence_numbers({"esn/1": sa(0xFFFFFFFF, True)})  # 64-bit: far from the end
    assert len(sent) == 1


def test_bad_spi_only_without_sa_and_held() -> None:
    ev, sent = events()
    ev.bad_spi("198.51.100.1", 0x1001, known=lambda s: True, now=0)
    assert sent == []
    ev.bad_spi("198.51.100.1", 0xDEAD, known=lambda s: False, now=100)
    ev.bad_spi("198.51.100.1", 0xDEAD, known=lambda s: False, now=100 + BAD_SPI_HOLD / 2)
    assert names(sent) == ["sadb-bad-spi"] and sent[0].findtext("{*}spi") == str(0xDEAD)
    ev.bad_spi("198.51.100.1", 0xDEAD, known=lambda s: False, now=100 + BAD_SPI_HOLD)
    assert len(sent) == 2


def test_hard_expire_of_our_sa_is_recorded_and_others_ignored() -> None:
    ev, sent = events()
    ledger = ev.backend.ledger
    ledger.sas["out/1"] = SaId(B, 0x1001)
    ledger.digests["out/1"] = "d1"
    ev.handle(ExpireEvent(XfrmState(src=A, dst=B, spi=0x1001), hard=False))
    assert ledger.expired == {}
    ev.handle(ExpireEvent(XfrmState(src=A, dst=B, spi=0x1001), hard=True))
    assert ledger.expired == {"out/1": "d1"}
    ev.handle(ExpireEvent(XfrmState(src=A, dst=B, spi=0xC0FFEE), hard=True))  # charon's
    assert [n.findtext("{*}soft-lifetime-expire") for n in sent] == ["true", "false"]


def test_a_known_sa_is_not_asked_for_at_every_packet() -> None:
    ev, sent = events()
    asked: list[SaId] = []

    def known(s: SaId) -> bool:
        asked.append(s)
        return True
    for t in (0.0, 0.1, 0.5):
        ev.bad_spi("198.51.100.1", 0x1001, known=known, now=t)
    assert len(asked) == 1 and sent == []
    ev.bad_spi("198.51.100.1", 0x1001, known=known, now=5.0)  # asked again after a while
    assert len(asked) == 2
