"""Actions on charon's SAs (:class:`nf.actions.SaActions`): initiate, terminate, rekey, clear,
reset-counters over VICI.

Each action first checks the VPN it names against what the gateway intends (on the event
loop: the effective config and the apply status are the loop's), then talks to charon in a
thread on a session of its own, every wait bounded by the action's timeout. SAs are acted on
by unique id, found with ``list-sas``, so an action reports exactly the SAs it affected and a
CHILD SA name shared by two VPNs is never mixed up. charon's reason for a failure (its
errmsg and the ``control-log`` lines of the attempt) is passed on, with any configured secret
masked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from nf.actions import ActionFailed, ActionResult, NoSuchTarget, NotReady, Target
from nf.effective import EffectiveConfig, Vpn
from southbound.convert import is_passive, vici_int, vici_str
from southbound.vici_client import ViciClient, ViciConnectionError, ViciError

POLL = 0.2  # seconds between two list-sas while waiting for a rekey to complete
SLACK = 5.0  # seconds a session may wait on top of the action's own timeout
_CHILD_UP = {"INSTALLED"}
_NEGOTIATED = {"esp", "ah"}  # actions whose security policy is a CHILD SA (not bypass/discard)

# list-sas as (ike name, ike uniqueid, ike state, [(child name, child uniqueid, child state)])
Sa = tuple[str, int, str, list[tuple[str, int, str]]]


def _sas(entries: Iterable[dict]) -> list[Sa]:
    out = []
    for entry in entries:
        for name, sa in entry.items():
            children = [(vici_str(c.get("name", b"")), vici_int(c.get("uniqueid")) or 0,
                         vici_str(c.get("state", b"")))
                        for c in (sa.get("child-sas") or {}).values()]
            out.append((vici_str(name), vici_int(sa.get("uniqueid")) or 0,
                        vici_str(sa.get("state", b"")), children))
    return out


class CharonActions:
    """:class:`nf.actions.SaActions` over charon's VICI socket.

    ``effective`` gives the current effective config (the VPNs in force, disabled ones left
    out), ``configured`` tells whether a VPN name is in the configuration at all (to tell a
    disabled VPN from an unknown one) and ``status`` a VPN's apply status (``applied``,
    ``pending``, ``failed``, or None when not reconciled yet).
    """

    def __init__(self, socket_path: str | Path, effective: Callable[[], EffectiveConfig],
                 configured: Callable[[str], bool],
                 status: Callable[[str], str | None]) -> None:
        self.socket_path = str(socket_path)
        self.effective = effective
        self.configured = configured
        self.status = status

    def __repr__(self) -> str:
        return f"CharonActions({self.socket_path!r})"

    # -- the checks, on the event loop -------------------------------------------------------

    def _vpn(self, name: str) -> Vpn:
        """The VPN in force named ``name``, or the reason it cannot be acted on."""
        eff = self.effective()
        vpn = eff.vpns.get(name)
        if vpn is None:
            if self.configured(name):
                raise NotReady(f"VPN {name!r} is disabled: it is not in the IKE daemon", "vpn")
            raise NoSuchTarget(f"no VPN named {name!r}", "vpn")
        if not eff.enabled:
            raise NotReady("IKE is disabled (/ike/enabled is false): no VPN is in the IKE "
                           "daemon", "vpn")
        status = self.status(name)
        if status != "applied":
            raise NotReady(f"VPN {name!r} is not applied to the IKE daemon yet (apply status "
                           f"{status or 'pending'}; see /ike/apply-status)", "vpn")
        return vpn

    def _policy(self, vpn: Vpn, name: str) -> None:
        if not any(sp.name == name for sp in vpn.security_policies):
            raise NoSuchTarget(f"VPN {vpn.name!r} has no security policy {name!r}",
                               "security-policy")

    def _check(self, target: Target) -> None:
        if target.vpn is not None:
            vpn = self._vpn(target.vpn)
            if target.security_policy is not None:
                self._policy(vpn, target.security_policy)

    def _safe(self, text: str) -> str:
        """``text`` with every configured secret masked."""
        for psk in self.effective().psks.values():
            if psk.secret and len(psk.secret) > 3:
                text = text.replace(psk.secret, "<hidden>")
        return text

    async def _run(self, fn: Callable[..., Any], timeout: float, *args: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, timeout, *args)
        except ViciConnectionError as exc:
            raise ActionFailed(f"the IKE daemon did not answer: {exc}") from None
        except ViciError as exc:
            raise ActionFailed(self._safe(_reason(exc))) from None

    # -- the actions -------------------------------------------------------------------------

    async def initiate(self, vpn: str, security_policy: str | None,
                       timeout: float) -> ActionResult:
        """Initiate the CHILD SA of each negotiated security policy of ``vpn`` (or of the
        one named) that is not up yet; the SAs up afterwards."""
        conf = self._vpn(vpn)
        if security_policy is not None:
            self._policy(conf, security_policy)
        if is_passive(conf):
            raise NotReady(f"VPN {vpn!r} is responder only (passive, or its remote-address is "
                           "not one peer: absent, %any, a subnet or a range): it never "
                           "initiates, its peer does", "vpn")
        children = [sp.name for sp in conf.security_policies
                    if sp.action in _NEGOTIATED
                    and security_policy in (None, sp.name)]
        if not children:
            raise NotReady(f"VPN {vpn!r} has no security policy that negotiates SAs (esp or "
                           "ah) to initiate", "security-policy" if security_policy else "vpn")
        return await self._run(self._initiate, timeout, vpn, children)

    def _initiate(self, timeout: float, vpn: str, children: list[str]) -> ActionResult:
        deadline = time.monotonic() + timeout
        with ViciClient(self.socket_path, timeout + SLACK) as client:
            up = {c for _, _, state, kids in _sas(client.list_sas(ike=vpn))
                  if state == "ESTABLISHED" for c, _, cstate in kids if cstate in _CHILD_UP}
            for child in children:
                if child in up:
                    continue
                left = int((deadline - time.monotonic()) * 1000)
                if left <= 0:
                    raise ActionFailed(f"VPN {vpn!r} was not up within {timeout:g}s")
                client.initiate(child=child, ike=vpn, timeout_ms=left)
            sas = _sas(client.list_sas(ike=vpn))
        ikes = [(uid, kids) for _, uid, state, kids in sas if state == "ESTABLISHED"]
        return ActionResult(
            tuple(uid for uid, kids in ikes if any(c in children for c, _, _ in kids)),
            tuple(cid for _, kids in ikes for c, cid, s in kids
                  if c in children and s in _CHILD_UP))

    async def terminate(self, target: Target, force: bool, timeout: float) -> ActionResult:
        """Close the target's SAs (each by unique id)."""
        self._check(target)
        return await self._run(self._terminate, timeout, target, force)

    def _terminate(self, timeout: float, target: Target, force: bool) -> ActionResult:
        deadline = time.monotonic() + timeout
        with ViciClient(self.socket_path, timeout + SLACK) as client:
            entries = client.list_sas(ike=target.vpn)
            sas = _sas(entries)
            if target.peer_id is not None or target.virtual_ip is not None:
                ikes, children = _by_peer(entries, target), []
            else:
                ikes, children = _select(sas, target)
            closed_children = [cid for _, uid, _, kids in sas if uid in ikes
                               for _, cid, _ in kids]
            for uid in ikes:
                client.terminate(ike_id=uid, force=force, timeout_ms=_left(deadline))
            for cid in children:
                client.terminate(child_id=cid, force=force, timeout_ms=_left(deadline))
        return ActionResult(tuple(ikes), tuple(closed_children + children))

    async def rekey(self, target: Target, reauth: bool, timeout: float) -> ActionResult:
        """Rekey the target's SAs; wait until each has a successor; the successors."""
        self._check(target)
        return await self._run(self._rekey, timeout, target, reauth)

    def _rekey(self, timeout: float, target: Target, reauth: bool) -> ActionResult:
        deadline = time.monotonic() + timeout
        with ViciClient(self.socket_path, timeout + SLACK) as client:
            before = _sas(client.list_sas(ike=target.vpn))
            ikes, children = _select(before, target)
            if not ikes and not children:
                raise NoSuchTarget(f"VPN {target.vpn!r} has no SA to rekey",
                                   "security-policy" if target.security_policy else "vpn")
            known_ike = {uid for _, uid, _, _ in before}
            known_child = {cid for *_, kids in before for _, cid, _ in kids}
            # what each successor must look like: an IKE SA of the same name, or a CHILD SA
            # of the same name in the same IKE SA, that was not there before
            want_ike = {uid: name for name, uid, _, _ in before if uid in ikes}
            want_child = {cid: (uid, name) for _, uid, _, kids in before
                          for name, cid, _ in kids if cid in children}
            for uid in ikes:
                if not client.rekey(ike_id=uid, reauth=reauth):
                    raise NoSuchTarget(f"no IKE SA {uid} to rekey", "ike-sa")
            for cid in children:
                if not client.rekey(child_id=cid):
                    raise NoSuchTarget(f"no CHILD SA {cid} to rekey", "child-sa")
            while True:
                now = _sas(client.list_sas(ike=target.vpn))
                new_ike = {name: uid for name, uid, state, _ in now
                           if uid not in known_ike and state == "ESTABLISHED"}
                new_child = {(uid, name): cid for _, uid, _, kids in now
                             for name, cid, state in kids
                             if cid not in known_child and state in _CHILD_UP}
                if (all(n in new_ike for n in want_ike.values())
                        and all(k in new_child for k in want_child.values())):
                    return ActionResult(
                        tuple(sorted({new_ike[n] for n in want_ike.values()})),
                        tuple(sorted({new_child[k] for k in want_child.values()})))
                if time.monotonic() >= deadline:
                    raise ActionFailed(f"the rekeying did not complete within {timeout:g}s")
                time.sleep(POLL)

    async def clear(self, vpn: str | None, timeout: float) -> ActionResult:
        """Close every IKE SA of ``vpn``, or of the gateway (forced after the timeout)."""
        if vpn is not None:
            self._vpn(vpn)
        return await self._run(self._terminate, timeout, Target(vpn=vpn), True)

    async def reset_counters(self, vpn: str | None) -> None:
        """Reset the counters plugin's counters of ``vpn``, or all of them."""
        if vpn is not None:
            self._vpn(vpn)
        await self._run(self._reset_counters, 10.0, vpn)

    def _reset_counters(self, timeout: float, vpn: str | None) -> None:
        with ViciClient(self.socket_path, timeout) as client:
            client.reset_counters(vpn)


def _select(sas: list[Sa], target: Target) -> tuple[list[int], list[int]]:
    """(IKE SA ids, CHILD SA ids) the target names among ``sas``; an unknown id is an
    error. A VPN (or security policy) without SAs selects nothing."""
    if target.ike_sa is not None:
        if not any(uid == target.ike_sa for _, uid, _, _ in sas):
            raise NoSuchTarget(f"no IKE SA with unique-id {target.ike_sa}", "ike-sa")
        return [target.ike_sa], []
    if target.child_sa is not None:
        if not any(cid == target.child_sa for *_, kids in sas for _, cid, _ in kids):
            raise NoSuchTarget(f"no CHILD SA with unique-id {target.child_sa}", "child-sa")
        return [], [target.child_sa]
    if target.security_policy is not None:
        return [], [cid for name, _, _, kids in sas if name == target.vpn
                    for child, cid, _ in kids if child == target.security_policy]
    return [uid for name, uid, _, _ in sas if target.vpn in (None, name)], []


def _by_peer(entries: Iterable[dict], target: Target) -> list[int]:
    """The IKE SAs of the peer ``target`` names by IKE/EAP/XAuth identity or virtual IP; none
    is an error (a road warrior that is not connected)."""
    found = []
    for entry in entries:
        for sa in entry.values():
            if target.peer_id is not None:
                ids = {vici_str(sa.get(k, b"")) for k in ("remote-id", "remote-eap-id",
                                                         "remote-xauth-id")}
                hit = target.peer_id in ids
            else:
                vips = {_address(vici_str(v)) for v in sa.get("remote-vips") or ()}
                hit = _address(target.virtual_ip or "") in vips
            if hit:
                found.append(vici_int(sa.get("uniqueid")) or 0)
    if not found:
        what = (("peer-id", f"no IKE SA of a peer with identity {target.peer_id!r}")
                if target.peer_id is not None else
                ("virtual-ip", f"no IKE SA of a peer with virtual IP {target.virtual_ip}"))
        raise NoSuchTarget(what[1], what[0])
    return found


def _address(text: str) -> str:
    """An address in one canonical form (IPv6 written many ways compares equal)."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def _left(deadline: float) -> int:
    """Milliseconds left before ``deadline`` (at least 1: charon's 0 would mean forever)."""
    return max(int((deadline - time.monotonic()) * 1000), 1)


def _reason(exc: ViciError) -> str:
    """charon's errmsg and the last distinct lines it logged about the attempt."""
    lines: list[str] = []
    for line in reversed(exc.logs):
        if line and line not in lines and line != exc.errmsg:
            lines.append(line)
        if len(lines) == 3:
            break
    detail = "; ".join(reversed(lines))
    return f"{exc.errmsg} ({detail})" if detail else exc.errmsg
