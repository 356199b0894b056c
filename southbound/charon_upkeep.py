"""The charon backend's upkeep: tunnels that should be up and are not are initiated again.

charon gives up on a tunnel after its keying tries (a peer not ready yet, a lost network)
and never retries by itself; :func:`reinitiate` does, for the connections whose start action
is ``start``, once their CHILD SA has been missing for a while.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from southbound.backend import BackendUnavailable, ReadBackFailed
from southbound.convert import vici_str
from southbound.vici_client import ViciClient, ViciConnectionError, ViciError

_CHILD_UP = {"INSTALLING", "INSTALLED", "UPDATING", "REKEYING", "REKEYED"}
_IKE_BUSY = {"CREATED", "CONNECTING", "DELETING", "DESTROYING"}


def reinitiate(client: ViciClient, conns: Mapping[str, Mapping[str, Any]],
               missing: dict[tuple[str, str], float], after: float) -> list[str]:
    """Initiate the CHILD SAs of ``conns`` (name -> load-conn payload) that should be up
    (start action ``start``) and have been missing for ``after`` seconds while no IKE SA of
    their connection is being set up; ``missing`` ((conn, child) -> missing since, kept by
    the caller between calls) is updated. Returns what was done, for the log. Raises
    :class:`ReadBackFailed` or :class:`BackendUnavailable`."""
    wanted = {(conn, child) for conn, payload in conns.items()
              for child, c in payload.get("children", {}).items()
              if c.get("start_action") == "start"
              and c.get("mode") in ("tunnel", "transport")}
    if not wanted:
        missing.clear()
        return []
    up: set[tuple[str, str]] = set()
    busy: set[str] = set()
    try:
        for entry in client.list_sas():
            for ike, sa in entry.items():
                name = vici_str(ike)
                if vici_str(sa.get("state", b"")) in _IKE_BUSY:
                    busy.add(name)
                for child in (sa.get("child-sas") or {}).values():
                    if vici_str(child.get("state", b"")) in _CHILD_UP:
                        up.add((name, vici_str(child.get("name", b""))))
    except ViciError as exc:
        raise ReadBackFailed(f"list-sas: {exc.errmsg}") from None
    except ViciConnectionError as exc:
        raise BackendUnavailable(str(exc)) from exc
    now = time.monotonic()
    done = []
    for key in sorted(wanted - up):
        since = missing.setdefault(key, now)
        if now - since < after or key[0] in busy:
            continue
        try:
            client.initiate(child=key[1], ike=key[0], timeout_ms=-1)
            done.append(f"initiated {key[0]}/{key[1]} (no CHILD SA for {now - since:.0f}s)")
        except ViciError as exc:
            done.append(f"initiate {key[0]}/{key[1]} failed: {exc.errmsg}")
        except ViciConnectionError as exc:
            raise BackendUnavailable(str(exc)) from exc
        missing[key] = now
    for key in list(missing):
        if key not in wanted or key in up:
            del missing[key]
    return done
