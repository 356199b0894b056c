"""ViciClient against the wire-level fake charon (tests/fakes/vici_server.py)."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import vici
from vici.exception import EventUnknownException, SessionException

from southbound.vici_client import ViciClient, ViciConnectionError, ViciError
from tests.fakes.vici_server import MAX_SOCKET_PATH, Call, FakeCharon, Secret

CONN = {"version": "2", "local_addrs": ["192.0.2.1"], "remote_addrs": ["198.51.100.2"],
        "proposals": ["aes256-sha256-modp2048"],
        "local": {"auth": "psk", "id": "a"}, "remote": {"auth": "psk", "id": "b"},
        "children": {"net": {"local_ts": ["10.1.0.0/16"], "remote_ts": ["10.2.0.0/16"],
                             "mode": "tunnel"}}}


def _sa(name: str, uid: int, children: tuple[str, ...] = ("net",)) -> dict[str, Any]:
    return {name: {"uniqueid": str(uid), "version": "2", "state": "ESTABLISHED",
                   "remote-host": "198.51.100.2",
                   "child-sas": {f"{c}-{uid}": {"name": c, "uniqueid": str(uid * 10),
                                                "state": "INSTALLED"} for c in children}}}


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeCharon]:
    path = tmp_path / "charon.vici"
    with FakeCharon(path if len(os.fsencode(path)) <= MAX_SOCKET_PATH else None) as server:
        yield server
        assert server.errors == []


@pytest.fixture
def client(fake: FakeCharon) -> Iterator[ViciClient]:
    with ViciClient(fake.path, timeout=2) as c:
        yield c


def test_version_and_stats(fake: FakeCharon, client: ViciClient) -> None:
    assert client.version()["daemon"] == "charon"
    fake.sas = [_sa("a", 1), _sa("b", 2)]
    assert client.stats()["ikesas"] == {"total": b"2", "half-open": b"0"}
    fake.stats = {"ikesas": {"total": "7", "half-open": "1"}}
    assert client.stats() == {"ikesas": {"total": b"7", "half-open": b"1"}}


def test_conns_load_get_unload(fake: FakeCharon, client: ViciClient) -> None:
    client.load_conn("vpn1", CONN)
    client.load_conn("vpn2", {**CONN, "version": "1"})
    client.load_conn("vpn1", {**CONN, "mobike": "no"})  # replaces
    assert client.get_conns() == {"vpn1", "vpn2"}
    assert fake.conns["vpn1"] == {**CONN, "mobike": "no"}  # text form
    client.unload_conn("vpn2")
    assert client.get_conns() == {"vpn1"}
    with pytest.raises(ViciError) as err:
        client.unload_conn("vpn2")
    assert err.value.errmsg == "unload: connection 'vpn2' not found"
    assert [c.command for c in fake.calls] == [
        "load-conn", "load-conn", "load-conn", "get-conns", "unload-conn", "get-conns",
        "unload-conn"]
    assert fake.calls[-1] == Call("unload-conn", {"name": "vpn2"})


def test_list_conns_streams_and_filters(fake: FakeCharon) -> None:
    fake.conns.update({"vpn1": CONN, "vpn2": CONN})
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(fake.path)
        session = vici.Session(sock)
        assert [list(e) for e in session.list_conns()] == [["vpn1"], ["vpn2"]]
        only = list(session.list_conns({"ike": "vpn2"}))
        assert only[0]["vpn2"]["children"]["net"]["mode"] == b"tunnel"
        assert len(only) == 1
        assert fake.listeners("list-conn") == 0  # unregistered after the stream


def test_shared_load_get_unload_never_shows_secret(fake: FakeCharon,
                                                   client: ViciClient) -> None:
    client.load_shared("psk-1", {"type": "IKE", "data": b"s3cr3t-value", "owners": ["a", "b"]})
    assert client.get_shared() == {"psk-1"}
    assert fake.shared["psk-1"]["data"] == b"s3cr3t-value"
    assert isinstance(fake.shared["psk-1"]["data"], Secret)
    assert fake.shared["psk-1"]["owners"] == ["a", "b"]
    assert "s3cr3t" not in repr(fake.calls) + repr(fake.shared) + str(fake.calls_to("load-shared"))
    with pytest.raises(ViciError, match="invalid shared key type: BOGUS"):
        client.load_shared("psk-2", {"type": "BOGUS", "data": b"x"})
    with pytest.raises(ViciError, match="shared key data missing"):
        client.load_shared("psk-2", {"type": "IKE"})
    client.unload_shared("psk-1")
    client.unload_shared("never-loaded")  # charon does not complain either
    assert client.get_shared() == set()


def test_list_sas_streams_with_filter(fake: FakeCharon, client: ViciClient) -> None:
    assert client.list_sas() == []
    fake.sas = [_sa("vpn1", 1), _sa("vpn2", 2), _sa("vpn1", 3)]
    all_sas = client.list_sas()
    assert [list(e) for e in all_sas] == [["vpn1"], ["vpn2"], ["vpn1"]]
    assert all_sas[1]["vpn2"]["child-sas"]["net-2"]["state"] == b"INSTALLED"
    assert [e["vpn1"]["uniqueid"] for e in client.list_sas(ike="vpn1")] == [b"1", b"3"]
    assert client.list_sas(ike="nope") == []
    assert fake.listeners("list-sa") == 0


def test_initiate_and_terminate(fake: FakeCharon, client: ViciClient) -> None:
    client.load_conn("vpn1", CONN)
    client.initiate(child="net", ike="vpn1", timeout_ms=-1)
    assert fake.initiated == [{"timeout": "-1", "init-limits": "no", "child": "net",
                               "ike": "vpn1"}]
    with pytest.raises(ViciError, match="CHILD_SA config 'other' not found"):
        client.initiate(child="other", ike="vpn1")
    fake.sas = [_sa("vpn1", 1), _sa("vpn2", 2)]
    client.terminate("vpn1", force=True)
    assert [list(e) for e in fake.sas] == [["vpn2"]]
    assert fake.terminated[-1]["force"] == "yes"
    with pytest.raises(ViciError) as err:
        client.terminate("vpn1")
    assert err.value.errmsg == "no matching SAs to terminate found"


def test_initiate_streams_control_log(fake: FakeCharon) -> None:
    fake.conns["vpn1"] = CONN
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(fake.path)
        logs = list(vici.Session(sock).initiate({"ike": "vpn1", "timeout": "1000"}))
    assert logs and logs[0]["msg"].startswith(b"initiating IKE_SA 'vpn1'")


def test_refusal_raises_vici_error_with_errmsg(fake: FakeCharon, client: ViciClient) -> None:
    rule = fake.refuse("load-conn", lambda m: "bad" in m, errmsg="invalid value for: version",
                       once=True)
    client.load_conn("good", CONN)
    with pytest.raises(ViciError) as err:
        client.load_conn("bad", CONN)
    assert (err.value.command, err.value.errmsg) == ("load-conn", "invalid value for: version")
    assert "bad" not in fake.conns and rule.hits == 1 and not rule.active
    client.load_conn("bad", CONN)  # once: the next one goes through
    assert set(fake.conns) == {"good", "bad"}
    fake.refuse("list-sas", errmsg="busy")  # permanent, streamed command
    for _ in range(2):
        with pytest.raises(ViciError, match="busy"):
            client.list_sas()
    assert client.get_conns() == {"good", "bad"}  # the session lives on


def test_drop_raises_connection_error(fake: FakeCharon, client: ViciClient) -> None:
    fake.drop("get-shared", once=True)
    with pytest.raises(ViciConnectionError):
        client.get_shared()
    assert fake.wait_for(lambda: fake.sessions == 0)
    with ViciClient(fake.path, timeout=2) as again:
        assert again.get_shared() == set()
    fake.drop("list-sas")
    with ViciClient(fake.path, timeout=2) as again, pytest.raises(ViciConnectionError):
        again.list_sas()


def test_hang_hits_client_timeout(fake: FakeCharon) -> None:
    fake.hang("load-conn", lambda m: "stuck" in m)
    with ViciClient(fake.path, timeout=0.2) as c:
        c.load_conn("fine", CONN)
        start = time.monotonic()
        with pytest.raises(ViciConnectionError):
            c.load_conn("stuck", CONN)
        assert time.monotonic() - start < 1
    assert fake.wait_for(lambda: fake.sessions == 0)  # the hung session noticed the close
    assert set(fake.conns) == {"fine"}


def test_hang_until_resume(fake: FakeCharon) -> None:
    fake.hang("*")
    result: list[Any] = []
    with ViciClient(fake.path, timeout=2) as c:
        worker = threading.Thread(target=lambda: result.append(c.get_conns()))
        worker.start()
        assert fake.wait_calls("get-conns")
        time.sleep(0.05)
        assert result == []
        fake.resume()
        worker.join(2)
        assert result == [set()]
        assert c.version()["daemon"] == "charon"  # the hang rule is gone


def test_hung_session_does_not_block_others(fake: FakeCharon) -> None:
    fake.hang("get-conns", once=True)
    results: list[Any] = []
    with ViciClient(fake.path, timeout=0.3) as stuck:
        t = threading.Thread(target=lambda: results.append(
            pytest.raises(ViciConnectionError, stuck.get_conns)))
        t.start()
        assert fake.wait_calls("get-conns")

        def work(i: int) -> None:
            with ViciClient(fake.path, timeout=2) as c:
                c.load_conn(f"vpn{i}", CONN)
                results.append(len(c.list_sas()))
        workers = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(2)
        assert fake.sessions >= 1 and set(fake.conns) == {f"vpn{i}" for i in range(8)}
        t.join(2)
    assert results.count(0) == 8 and len(results) == 9


def test_events_reach_listeners(fake: FakeCharon) -> None:
    received: list[tuple[Any, Any]] = []

    def listen() -> None:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(fake.path)
            try:
                for name, msg in vici.Session(sock).listen(["ike-updown", "child-updown"]):
                    received.append((name, msg))
                    if len(received) == 2:
                        break
            except OSError:
                pass

    t = threading.Thread(target=listen)
    t.start()
    assert fake.wait_registered("child-updown")
    assert fake.emit("ike-updown", {"up": "yes", "vpn1": {"uniqueid": "1"}}) == 1
    assert fake.emit("child-rekey", {"vpn1": {}}) == 0  # nobody listens
    fake.emit("child-updown", {"vpn1": {"child-sas": {"net-1": {"name": "net"}}}})
    t.join(2)
    assert received == [
        (b"ike-updown", {"up": b"yes", "vpn1": {"uniqueid": b"1"}}),
        (b"child-updown", {"vpn1": {"child-sas": {"net-1": {"name": b"net"}}}})]
    with pytest.raises(ValueError):
        fake.emit("no-such-event", {})


def test_registration_refused_or_unknown(fake: FakeCharon) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(fake.path)
        session = vici.Session(sock)
        with pytest.raises(EventUnknownException):
            next(session.listen(["bogus-event"]))
        fake.refuse("register", lambda m: m["event"] == "list-sa", once=True)
        with pytest.raises(EventUnknownException):
            list(session.list_sas())
        assert list(session.list_sas()) == []


def test_restart_drops_sessions_and_state(fake: FakeCharon, client: ViciClient) -> None:
    client.load_conn("vpn1", CONN)
    client.load_shared("k", {"type": "IKE", "data": b"x"})
    fake.sas = [_sa("vpn1", 1)]
    fake.stop()
    with pytest.raises(ViciConnectionError):
        ViciClient(fake.path, timeout=1)
    fake.start()
    with pytest.raises(ViciConnectionError):
        client.get_conns()  # the old session is gone
    with ViciClient(fake.path, timeout=1) as c:
        assert c.get_conns() == {"vpn1"}  # stop/start kept the model
        fake.restart()
        with pytest.raises(ViciConnectionError):
            c.get_conns()
    with ViciClient(fake.path, timeout=1) as c:
        assert (c.get_conns(), c.get_shared(), c.list_sas()) == (set(), set(), [])
    assert fake.connections == 3


def test_wire_edge_cases(fake: FakeCharon) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(fake.path)
        with pytest.raises(SessionException):  # CMD_UNKNOWN
            vici.Session(sock).request("no-such-command")
        sock.sendall(struct.pack("!I", 600 * 1024))  # oversized: charon hangs up
        sock.settimeout(2)
        assert sock.recv(16) == b""


def test_unknown_command_can_be_refused_and_private_dir(tmp_path: Path) -> None:
    with FakeCharon() as own:
        assert len(own.path) <= MAX_SOCKET_PATH and os.path.exists(own.path)
        own.refuse("rekey", errmsg="no matching SAs to rekey found")
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(own.path)
            with pytest.raises(vici.exception.CommandException, match="rekey"):
                vici.Session(sock).request("rekey", {"ike": "x"})
        directory = os.path.dirname(own.path)
    assert not os.path.exists(directory)
    with pytest.raises(ValueError, match="too long"):
        FakeCharon(tmp_path / ("x" * 120), start=False)
