"""SVTI interfaces as Linux xfrm interfaces, over rtnetlink (pyroute2): the ``svti`` kind.

An ``/ike/svti`` entry (:class:`nf.effective.Svti`) is one xfrm interface (``IFLA_INFO_KIND``
``xfrm``) named as the entry, with ``IFLA_XFRM_IF_ID`` = its svti-id and ``IFLA_XFRM_LINK``
= the index of its link-interface (0 when absent), its MTU (1500, the kernel's default for an
xfrm interface, when the model leaves it unset), its addresses, and up. The IPsec SAs and
policies that carry the same if_id (charon's ``if_id_in``/``if_id_out``,
:func:`southbound.convert._child`) belong to it: packets routed into the interface are
encrypted by them, packets they decrypt are received on it.

The interfaces the gateway created carry the alias :data:`ALIAS` (``IFLA_IFALIAS``): only those
are read back (:func:`observe`) and so only those are ever removed; an xfrm interface made by
someone else is left alone, and one of the same name is refused rather than taken over.

Each call opens its own rtnetlink socket in the caller's network namespace (that of
``ipsec-nf serve``). Errors are :class:`southbound.backend.EntryRefused` with the kernel's
reason (one entry fails, the others go on).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Mapping
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from nf.effective import Svti
from southbound.backend import EntryRefused, ReadBackFailed

KIND = "svti"
ALIAS = "ipsec-nf svti"  # marks the interfaces this gateway made (IFLA_IFALIAS)
DEFAULT_MTU = 1500  # an xfrm interface's MTU when created (the kernel's ETH_DATA_LEN)
_ENODEV, _EOPNOTSUPP = 19, 95


def payload(svti: Svti) -> dict[str, Any]:
    """What the interface must be: if_id, link (an interface name or None), MTU, addresses
    (``ADDRESS/PREFIX-LENGTH``, IPv4 then IPv6, in the model's order)."""
    return {"if-id": svti.svti_id, "link": svti.link_interface,
            "mtu": svti.mtu if svti.mtu is not None else DEFAULT_MTU,
            "addresses": [*svti.ipv4_address, *svti.ipv6_address]}


def digest(body: Mapping[str, Any]) -> str:
    """A stable digest of a payload (equal payloads, equal digests)."""
    blob = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _kernel_reason(exc: NetlinkError, what: str) -> str:
    if exc.code == _EOPNOTSUPP and what.startswith("create"):
        return (f"{what}: the kernel has no xfrm interfaces (module xfrm_interface): "
                f"{exc.args[1] if len(exc.args) > 1 else exc}")
    return f"{what}: {exc.args[1] if len(exc.args) > 1 else exc}"


def _info(link: Any) -> tuple[str | None, Any]:
    """(IFLA_INFO_KIND, IFLA_INFO_DATA) of a link message."""
    linkinfo = link.get_attr("IFLA_LINKINFO")
    if linkinfo is None:
        return None, None
    return linkinfo.get_attr("IFLA_INFO_KIND"), linkinfo.get_attr("IFLA_INFO_DATA")


def _ours(link: Any) -> bool:
    return _info(link)[0] == "xfrm" and link.get_attr("IFLA_IFALIAS") == ALIAS


def _addresses(ipr: IPRoute, index: int) -> set[str]:
    """The interface's addresses as ``ADDRESS/PREFIX-LENGTH``, IPv6 link-local left out (the
    kernel's own)."""
    out = set()
    for msg in ipr.get_addr(index=index):
        addr = msg.get_attr("IFA_ADDRESS")
        if addr is None:
            continue
        iface = ipaddress.ip_interface(f"{addr}/{msg['prefixlen']}")
        if not iface.ip.is_link_local or iface.version == 4:
            out.add(str(iface))
    return out


def _view(ipr: IPRoute, link: Any) -> dict[str, Any]:
    """What the kernel holds of one xfrm interface, comparable across reads."""
    data = _info(link)[1]
    return {"if-id": data.get_attr("IFLA_XFRM_IF_ID") if data is not None else None,
            "link": data.get_attr("IFLA_XFRM_LINK") if data is not None else None,
            "mtu": link.get_attr("IFLA_MTU"),
            "up": bool(link["flags"] & 1),
            "addresses": sorted(_addresses(ipr, link["index"]))}


def _lookup(ipr: IPRoute, name: str) -> Any | None:
    try:
        return ipr.link("get", ifname=name)[0]
    except NetlinkError as exc:
        if exc.code == _ENODEV:
            return None
        raise


def _link_index(ipr: IPRoute, name: str | None, svti: str) -> int:
    if name is None:
        return 0
    found = ipr.link_lookup(ifname=name)
    if not found:
        raise EntryRefused(f"svti {svti}: link-interface {name} does not exist")
    return found[0]


def load(name: str, body: Mapping[str, Any]) -> None:
    """Create the xfrm interface ``name`` or bring it to ``body``: an interface of ours with
    another if_id or link is created again (its routes go with it), MTU and addresses are
    changed in place; then set up. Raises :class:`EntryRefused`."""
    try:
        with IPRoute() as ipr:
            link_index = _link_index(ipr, body.get("link"), name)
            link = _lookup(ipr, name)
            if link is not None and not _ours(link):
                kind = _info(link)[0] or "a device"
                raise EntryRefused(f"svti {name}: an interface of that name exists and was "
                                   f"not made by this gateway ({kind})")
            if link is not None:
                data = _info(link)[1]
                if (data.get_attr("IFLA_XFRM_IF_ID"), data.get_attr("IFLA_XFRM_LINK")) != (
                        body["if-id"], link_index):
                    ipr.link("del", index=link["index"])
                    link = None
            if link is None:
                try:
                    ipr.link("add", ifname=name, kind="xfrm", xfrm_if_id=body["if-id"],
                             xfrm_link=link_index)
                except NetlinkError as exc:
                    raise EntryRefused(_kernel_reason(exc, f"create xfrm interface {name} "
                                                      f"(if_id {body['if-id']})")) from None
                link = ipr.link("get", ifname=name)[0]
            index = link["index"]
            ipr.link("set", index=index, ifalias=ALIAS, mtu=body["mtu"])
            want = {str(ipaddress.ip_interface(a)) for a in body["addresses"]}
            have = _addresses(ipr, index)
            for addr in sorted(have - want):
                iface = ipaddress.ip_interface(addr)
                ipr.addr("del", index=index, address=str(iface.ip),
                         prefixlen=iface.network.prefixlen)
            for addr in body["addresses"]:
                iface = ipaddress.ip_interface(addr)
                if str(iface) not in have:
                    ipr.addr("add", index=index, address=str(iface.ip),
                             prefixlen=iface.network.prefixlen)
            ipr.link("set", index=index, state="up")
    except NetlinkError as exc:
        raise EntryRefused(_kernel_reason(exc, f"svti {name}")) from None


def unload(name: str) -> None:
    """Delete the xfrm interface ``name`` if it is one of ours (already gone is fine)."""
    try:
        with IPRoute() as ipr:
            link = _lookup(ipr, name)
            if link is not None and _ours(link):
                ipr.link("del", index=link["index"])
    except NetlinkError as exc:
        raise EntryRefused(_kernel_reason(exc, f"delete xfrm interface {name}")) from None


def observe(deep: bool) -> dict[str, str | None]:
    """The xfrm interfaces this gateway made: name -> a fingerprint of what the kernel holds
    (if_id, link, MTU, up, addresses), or None without ``deep``."""
    try:
        with IPRoute() as ipr:
            out: dict[str, str | None] = {}
            for link in ipr.get_links():
                if _ours(link):
                    out[link.get_attr("IFLA_IFNAME")] = (
                        digest(_view(ipr, link)) if deep else None)
            return out
    except NetlinkError as exc:
        raise ReadBackFailed(f"cannot read back the xfrm interfaces: {exc}") from None
