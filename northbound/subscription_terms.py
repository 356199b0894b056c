"""The terms of a dynamic subscription (RFC 8639, RFC 8641): what establish-subscription
asked for (:class:`Spec`), and those terms as the subscription-policy and update-policy
groupings name them (in subscription-modified and in /sn:subscriptions)."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml import etree

from northbound import push


@dataclass(frozen=True)
class Spec:
    """What a subscription asks for (the establish-subscription parameters we support)."""

    stream: str | None = None
    stream_subtree: etree._Element | None = None
    stream_xpath: str | None = None
    nsmap: tuple[tuple[str, str], ...] = ()
    replay_start: datetime | None = None
    stop_time: datetime | None = None
    datastore: str | None = None  # running | intended | operational
    selection: push.Selection = field(default_factory=push.Selection)
    period: int | None = None  # centiseconds (periodic)
    anchor: datetime | None = None
    on_change: bool = False
    dampening: int = 0  # centiseconds
    sync_on_start: bool = True
    excluded: frozenset[str] = frozenset()


def describe(el: etree._Element, spec: Spec) -> None:
    """Append a subscription's terms (as the subscription-policy and update-policy
    groupings name them) to ``el``."""
    sn, yp = push.SN, push.YP

    def leaf(ns: str, name: str, text: object, parent: etree._Element = el) -> etree._Element:
        child = etree.SubElement(parent, f"{{{ns}}}{name}")
        child.text = str(text)
        return child

    if spec.stream is not None:
        leaf(sn, "stream", spec.stream)
        if spec.stream_subtree is not None:
            f = etree.SubElement(el, f"{{{sn}}}stream-subtree-filter")
            f.extend(_copies(spec.stream_subtree))
        elif spec.stream_xpath is not None:
            _xpath_leaf(el, sn, "stream-xpath-filter", spec.stream_xpath, spec.nsmap)
        if spec.replay_start is not None:
            leaf(sn, "replay-start-time", _ts(spec.replay_start))
    else:
        d = etree.SubElement(el, f"{{{yp}}}datastore", nsmap={"ds": DS})
        d.text = f"ds:{spec.datastore}"
        if spec.selection.subtree is not None:
            f = etree.SubElement(el, f"{{{yp}}}datastore-subtree-filter")
            f.extend(_copies(spec.selection.subtree))
        elif spec.selection.xpath is not None:
            _xpath_leaf(el, yp, "datastore-xpath-filter", spec.selection.xpath,
                        spec.selection.nsmap)
    if spec.stop_time is not None:
        leaf(sn, "stop-time", _ts(spec.stop_time))
    enc = etree.SubElement(el, f"{{{sn}}}encoding")
    enc.text = "sn:encode-xml"
    if spec.period is not None:
        p = etree.SubElement(el, f"{{{yp}}}periodic")
        leaf(yp, "period", spec.period, p)
        if spec.anchor is not None:
            leaf(yp, "anchor-time", _ts(spec.anchor), p)
    elif spec.on_change:
        oc = etree.SubElement(el, f"{{{yp}}}on-change")
        leaf(yp, "dampening-period", spec.dampening, oc)


DS = "urn:ietf:params:xml:ns:yang:ietf-datastores"


def _xpath_leaf(parent: etree._Element, ns: str, name: str, expr: str,
                nsmap: tuple[tuple[str, str], ...]) -> None:
    """An XPath filter leaf with the prefixes its expression uses declared on it."""
    used = set(re.findall(r"([A-Za-z_][\w.-]*):(?!:)", expr))
    el = etree.SubElement(parent, f"{{{ns}}}{name}",
                          nsmap={p: u for p, u in nsmap if p in used} or None)
    el.text = expr


def _copies(el: etree._Element) -> list[etree._Element]:
    return [copy.deepcopy(c) for c in el if isinstance(c.tag, str)]


def _ts(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")

