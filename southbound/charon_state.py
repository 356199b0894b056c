"""Reading charon's operational state over VICI, whole or for a few IKE SAs.

:func:`read_all` is the state engine's full read: ``stats``, ``list-sas`` of every IKE SA and
``get-counters`` (global, and ``all=yes`` per connection), whatever the number of SAs.
:func:`read_some` is its targeted read after SA events: ``stats``, ``list-sas ike-id=N`` for
each IKE SA named, the global counters and ``get-counters name=VPN`` of the VPNs named: a few
small requests instead of the whole table (at 1,000 IKE SAs a full list-sas is most of a
read). The engine merges a targeted read into its cached reading
(:func:`southbound.state_merge.merge`). The full read takes list-sas and get-counters all=yes
as charon's raw messages: only the IKE SAs whose message changed in more than its clock
values, and a counters answer not the same to the byte, are decoded and converted
(:mod:`southbound.sa_packets`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from nf.observed import unwalked
from southbound import ra_session, sa_packets, sa_state, vici_ra
from southbound.backend import BackendUnavailable
from southbound.vici_client import ViciClient, ViciConnectionError, ViciError

T = TypeVar("T")


@unwalked
def read_all(socket_path: str | Path, timeout: float, converter: sa_state.IkeSaConverter,
             pools: bool) -> dict[str, Any]:
    """The daemon's whole state in the YANG shapes (``ike-sas``, ``task-processing``,
    ``counters``, ``vpn-counters``, ``ike-sa`` sorted by unique-id, ``pool`` when ``pools``
    are loaded) from a separate session, within ``timeout``. Without the counters plugin
    (get-counters refused) the counters are left out. Raises :class:`BackendUnavailable`."""
    conversion = sa_packets.Conversion(converter)

    def read(client: ViciClient) -> tuple[Any, Any]:
        # the SAs' messages undecoded: only what changed is decoded (southbound/sa_packets.py),
        # each SA converted as it comes
        stats = client.stats()
        client.list_sas_packets(conversion.add)
        return stats, _leases(client, pools)

    # the counters on a second session meanwhile: charon answers both at once (its
    # get-counters of 1,000 connections took 15 ms after the list)
    side = _SIDE.submit(_in_session, socket_path, timeout, _counters_answer)
    try:
        stats, leases = _in_session(socket_path, timeout, read)
    except BaseException:
        side.cancel()  # (or left to end within its timeout; its answer is dropped)
        raise
    total, per_conn = side.result()
    vpns: list[dict[str, Any]] = []
    if total is not None:
        try:
            vpns = sa_packets.vpn_counters(converter, per_conn)
        except ViciError:
            total = None
    return _state(stats, total, vpns, leases, conversion.finish())


#: the thread reading the counters beside a full read's list-sas
_SIDE = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vici-counters")


def _counters_answer(client: ViciClient) -> tuple[dict | None, bytes]:
    """The global counters and get-counters all=yes's answer, undecoded; (None, b"")
    without the counters plugin."""
    try:
        return client.counters(), client.counters_answer()
    except ViciError:
        return None, b""


def read_some(socket_path: str | Path, timeout: float, converter: sa_state.IkeSaConverter,
              pools: bool, unique_ids: Iterable[int], vpns: Iterable[str]) -> dict[str, Any]:
    """The IKE SAs with ``unique_ids`` as charon lists them now (``ike-sa``: those it still
    has, sorted by unique-id), ``vpn-counters`` of ``vpns`` only (a VPN absent has no
    counters, as in get-counters all=yes), and the small tables whole (``ike-sas``,
    ``task-processing``, ``counters``, ``pool``), within ``timeout``: what
    :func:`southbound.state_merge.merge` takes. Raises :class:`BackendUnavailable`."""
    ids = sorted(set(unique_ids))

    def read(client: ViciClient) -> tuple[Any, list, dict | None, dict, Any]:
        stats = client.stats()
        sas = [entry for uid in ids for entry in client.list_sas(ike_id=uid)]
        total, per_conn = _counters(client, vpns)
        return stats, sas, total, per_conn, _leases(client, pools)

    stats, sas, total, per_conn, leases = _in_session(socket_path, timeout, read)
    return _state(stats, total, converter.vpn_counters(per_conn, whole=False), leases,
                  converter.update(sas, ids))


def _in_session(socket_path: str | Path, timeout: float, read: Callable[[ViciClient], T]) -> T:
    """``read`` on a VICI session of its own, bounded by ``timeout``; BackendUnavailable
    when charon does not answer or refuses."""
    try:
        with ViciClient(socket_path, timeout) as client:
            return read(client)
    except (ViciConnectionError, ViciError) as exc:
        raise BackendUnavailable(str(exc)) from exc


def _leases(client: ViciClient, pools: bool) -> Any:
    """Pool usage with leases (remote access), when pools are loaded."""
    return vici_ra.get_pools(client, leases=True) if pools else {}


def _counters(client: ViciClient, vpns: Iterable[str]
              ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(global counters, {vpn: counters} of ``vpns`` that have any); (None, {}) without the
    counters plugin."""
    try:
        total = client.counters()
    except ViciError:
        return None, {}
    per_conn = {}
    for vpn in sorted(set(vpns)):
        try:
            per_conn[vpn] = client.counters(vpn)
        except ViciError:  # "no counters found for this connection": none counted yet
            continue
    return total, per_conn


def _state(stats: Any, total: dict[str, Any] | None, vpn_counters: list[dict[str, Any]],
           leases: Any, ike_sa: list[dict[str, Any]]) -> dict[str, Any]:
    """A read's answers in the YANG shapes (counters left out without the counters plugin)."""
    out: dict[str, Any] = {"ike-sas": sa_state.ike_sas(stats),
                           "task-processing": sa_state.task_processing(stats)}
    if total is not None:
        out["counters"] = sa_state.counters(total)
    if leases:
        out["pool"] = ra_session.pool_usage(leases)
    if total is not None:
        out["vpn-counters"] = vpn_counters
    out["ike-sa"] = _by_id(ike_sa)
    return out


def _by_id(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """IKE SAs in the order of their unique-ids: a full read and a merged one list them
    alike (charon lists them in its hash table's order), so the order never passes for a
    change of content."""
    return sorted(entries, key=lambda e: e.get("unique-id", 0))
