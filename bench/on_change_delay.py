"""The ON_CHANGE delay of ``bench/state_reads.py``: from an SA event in charon (its own VICI
``ike-updown`` listener) to the gNMI STREAM ON_CHANGE update that shows it (pygnmi), over
terminate + initiate cycles of one IKE SA at a time.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from typing import Any

from gateways import PASSWORD, USER

DEADLINE = 60.0  # seconds an ON_CHANGE update may take before it counts as missed


def pct(samples: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    s = sorted(samples)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def events(b: Any, count: int, port: int) -> dict[str, Any]:
    """Delay from charon's ike-updown to the gNMI ON_CHANGE update of the server's gNMI on
    127.0.0.1:``port``, over ``count`` terminate + initiate cycles of the IKE SAs of gateway
    ``b`` (``a_sock``: its charon's VICI socket, ``vpns``: how many; each cycle gives a down
    and an up event)."""
    import vici

    from southbound.events import parse
    from southbound.vici_client import ViciClient

    seen: queue.Queue[tuple[float, str, int]] = queue.Queue()  # (when, up|down, unique-id)
    stop = threading.Event()

    def listen() -> None:
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(str(b.a_sock))
        for name, msg in vici.Session(sock).listen(["ike-updown"], timeout=0.2):
            now = time.monotonic()
            if stop.is_set():
                break
            if name is None:
                continue
            for ev in parse(name.decode(), msg):
                seen.put((now, ev["event"], ev["unique-id"]))
        sock.close()

    hook = threading.excepthook

    def quiet(args: Any) -> None:  # pygnmi's reader thread raises when its stream is closed
        if "CANCELLED" not in str(args.exc_value):
            hook(args)
    threading.excepthook = quiet
    from pygnmi.client import gNMIclient

    # a client of its own, closed at the end: pygnmi's subscription close() leaves the RPC
    # open (the server would go on computing updates for it until the channel closes)
    gc = gNMIclient(target=("127.0.0.1", port), username=USER, password=PASSWORD,
                    insecure=True, gnmi_timeout=120)
    gc.connect()
    sub = gc.subscribe_stream(subscribe={
        "subscription": [{"path": "/ike/ike-sa", "mode": "on_change"}],
        "mode": "stream", "encoding": "json_ietf"})
    arrived: queue.Queue[tuple[float, dict]] = queue.Queue()

    def consume() -> None:
        while not stop.is_set():
            try:
                u = sub.get_update(timeout=0.2)
            except Exception:  # noqa: BLE001 - pygnmi's timeout
                continue
            arrived.put((time.monotonic(), u))

    threads = [threading.Thread(target=f, daemon=True) for f in (listen, consume)]
    for t in threads:
        t.start()
    first = arrived.get(timeout=120)[1]  # the initial dump
    while not first.get("sync_response"):
        first = arrived.get(timeout=120)[1]
    time.sleep(1)  # the listener registered
    delays: dict[str, list[float]] = {"down": [], "up": []}
    try:
        with ViciClient(b.a_sock, timeout=60) as c:
            for k in range(count):
                name = f"a{k % b.vpns}"
                (entry,) = c.list_sas(ike=name)
                uid = int(entry[name]["uniqueid"])
                c.terminate(ike_id=uid, timeout_ms=10000)
                delays["down"].append(_delay(seen, arrived, "down", uid))
                c.initiate(child="sp", ike=name, timeout_ms=10000)
                (entry,) = c.list_sas(ike=name)
                delays["up"].append(_delay(seen, arrived, "up",
                                           int(entry[name]["uniqueid"])))
                print(f"  event {k + 1}: down {delays['down'][-1]}, up {delays['up'][-1]} ms",
                      flush=True)
    finally:
        stop.set()
        sub.close()
        gc.close()
    missed = sum(d is None for v in delays.values() for d in v)
    delays = {k: [d for d in v if d is not None] for k, v in delays.items()}
    both = delays["down"] + delays["up"]
    if not both:
        raise SystemExit(f"no ON_CHANGE update within {DEADLINE} s of any of the events")
    return {"events": len(both), "missed": missed, **{
        f"{k}_{p}_ms": round(pct(v, q), 1) for k, v in (("all", both), *delays.items())
        for p, q in (("p50", 50), ("p99", 99))}, "max_ms": round(max(both), 1)}


def _delay(seen: queue.Queue, arrived: queue.Queue, kind: str, uid: int) -> float | None:
    """ms from charon's event (kind, uid) to the gNMI notification that shows it (None: not
    within DEADLINE seconds)."""
    deadline = time.monotonic() + DEADLINE
    t_event = None
    try:
        while t_event is None:
            when, ev, u = seen.get(timeout=max(0.1, deadline - time.monotonic()))
            if ev == kind and u == uid:
                t_event = when
    except queue.Empty:
        raise SystemExit(f"charon sent no ike-updown {kind} for IKE SA {uid}") from None
    key = f"unique-id={uid}]"
    while True:
        try:
            when, upd = arrived.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            return None
        n = upd.get("update") or {}
        paths = [d["path"] for d in n.get("delete") or []] if kind == "down" else [
            x["path"] for x in n.get("update") or []]
        if any(key in p for p in paths):
            return (when - t_event) * 1000
