"""The gNMI server against pygnmi's client: a real grpc.aio server over real datastores, users
and NACM (no charon: the state is a StateSource the test sets)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from pygnmi.client import gNMIclient
from pygnmi.spec.v080 import gnmi_pb2 as pb

from tests.integration.northbound.gnmi.harness import (
    ADMIN,
    ADMIN_PW,
    READER,
    READER_PW,
    Harness,
    self_signed,
)

# pygnmi's reader thread raises when a subscription it closed is cancelled
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
SECRET = "0seaJ31RfzHNRvUSH0oUYg7znTW0I="
SITE = {"ipsec-nf:ike": {
    "ike-policy-template": [{"name": "ike1", "ike-proposal": [
        {"id": 1, "enc-alg": ["aes128-cbc"], "auth-alg": ["hmac-sha512"],
         "prf-alg": ["hmac-sha512"], "dh-group": ["modp2048"]}]}],
    "ipsec-policy-template": [{"name": "esp1", "esp-proposal": [
        {"id": 1, "enc-alg": ["aes128-cbc"], "auth-alg": ["hmac-sha256"]}]}],
    "vpn": [{"name": "a", "ike-policy": {"template": "ike1"},
             "ipsec-policy": {"template": "esp1"}, "local-address": "198.51.100.1",
             "remote-address": "198.51.100.2", "local-id": "a.example.net",
             "remote-id": "b.example.net",
             "security-policy": [{"name": "trunk", "local-ts": {"subnet": ["192.168.0.0/24"]},
                                  "remote-ts": {"subnet": ["192.168.99.0/24"]}}]}],
    "pre-shared-key": [{"name": "k", "id": ["a.example.net", "b.example.net"],
                        "secret": SECRET}],
}}


def sa(uid: int, vpn: str, state: str = "established", bytes_in: int = 0) -> dict[str, Any]:
    return {"unique-id": uid, "name": vpn, "state": state, "version": 2,
            "child-sa": [{"unique-id": uid * 10, "name": "trunk", "state": "installed",
                          "bytes-in": bytes_in, "bytes-out": bytes_in}]}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The users admin and reader, hashed once for the module."""
    from northbound import users
    d = tmp_path_factory.mktemp("users")
    users.set_password(d, ADMIN, ADMIN_PW)
    users.set_password(d, READER, READER_PW, ["operators"])
    return users.users_path(d)


@pytest.fixture
def h(tmp_path: Path, store: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path, store_copy=store)
    yield harness
    harness.close()


def client(h: Harness, user: str = ADMIN, password: str = ADMIN_PW, **kw: Any) -> gNMIclient:
    return gNMIclient(target=("127.0.0.1", h.port), username=user, password=password,
                      insecure=True, **kw)


def stub(h: Harness) -> tuple[Any, list[tuple[str, str]]]:
    """The raw generated stub (status codes and messages without pygnmi's wrapping)."""
    from pygnmi.spec.v080 import gnmi_pb2_grpc
    channel = grpc.insecure_channel(f"127.0.0.1:{h.port}")
    return gnmi_pb2_grpc.gNMIStub(channel), [("username", ADMIN), ("password", ADMIN_PW)]


def code_of(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as e:
        call()
    return e.value.code()


def path(text: str) -> pb.Path:
    from pygnmi.create_gnmi_path import gnmi_path_generator
    return gnmi_path_generator(text)


def load(h: Harness) -> None:
    with client(h) as gc:
        gc.set(update=[("/", SITE)], encoding="json_ietf")


def updates(resp: dict) -> dict[str, Any]:
    return {u.get("path") or "/": u["val"] for n in resp["notification"]
            for u in n.get("update") or []}


def test_capabilities_name_our_modules_and_json_ietf(h: Harness) -> None:
    with client(h) as gc:
        caps = gc.capabilities()
    models = {m["name"]: m["version"] for m in caps["supported_models"]}
    assert models["ipsec-nf"] == "2026-11-29" and "ietf-netconf-acm" in models
    assert caps["supported_encodings"] == ["json_ietf"]
    assert caps["gnmi_version"] == "0.8.0"


def test_get_config_keys_wildcards_and_state(h: Harness) -> None:
    load(h)
    h.state.set({"ike-sa": [sa(7, "a", bytes_in=1234)], "ike-sas": {"total": 1},
                 "vpn": [{"name": "a", "effective": {"local-address": "198.51.100.1"}}]})
    with client(h) as gc:
        got = updates(gc.get(path=["/ike/vpn[name=a]/local-address"], encoding="json_ietf"))
        assert got == {"ipsec-nf:ike/vpn[name=a]/local-address": "198.51.100.1"}
        # a list without keys and '*' as a name: every entry / every child
        names = updates(gc.get(path=["/ike/*/name"], encoding="json_ietf", datatype="config"))
        assert sorted(names.values()) == ["a", "esp1", "ike1", "k"]
        anywhere = updates(gc.get(path=["/ike/.../subnet"], encoding="json_ietf"))
        assert sorted(map(tuple, anywhere.values())) == [("192.168.0.0/24",),
                                                         ("192.168.99.0/24",)]
        vpn = updates(gc.get(path=["/ike/vpn[name=*]"], encoding="json_ietf", datatype="config"))
        assert vpn["ipsec-nf:ike/vpn[name=a]"]["remote-id"] == "b.example.net"
        # state: RFC 7951 (uint64 counters as strings), config not included
        state = gc.get(path=["/ike"], encoding="json_ietf", datatype="state")
        ike = updates(state)["ipsec-nf:ike"]
        # only config false nodes, and the keys that lead to them (a VPN's effective state)
        assert ike["vpn"] == [{"name": "a", "effective": {"local-address": "198.51.100.1"}}]
        assert "pre-shared-key" not in ike and "ike-policy-template" not in ike
        assert ike["ike-sa"][0]["child-sa"][0]["bytes-in"] == "1234"
        assert ike["ike-sa"][0]["unique-id"] == 7
        eff = updates(gc.get(path=["/ike/vpn[name=a]/effective/local-address"],
                             encoding="json_ietf", datatype="operational"))
        assert eff == {"ipsec-nf:ike/vpn[name=a]/effective/local-address": "198.51.100.1"}
        everything = updates(gc.get(path=["/ike"], encoding="json_ietf",
                                    datatype="all"))["ipsec-nf:ike"]
        assert everything["vpn"][0]["name"] == "a" and everything["ike-sa"][0]["name"] == "a"
        root = updates(gc.get(path=["/"], encoding="json_ietf", datatype="config"))
        assert root["/"]["ipsec-nf:ike"]["pre-shared-key"][0]["secret"] == SECRET


def test_get_errors_use_the_spec_codes(h: Harness) -> None:
    load(h)
    s, md = stub(h)
    get = pb.GetRequest(path=[path("/ike/vpn[name=nope]")], encoding=pb.Encoding.JSON_IETF)
    assert code_of(lambda: s.Get(get, metadata=md)) == grpc.StatusCode.NOT_FOUND
    bad = pb.GetRequest(path=[path("/ike/no-such-node")], encoding=pb.Encoding.JSON_IETF)
    assert code_of(lambda: s.Get(bad, metadata=md)) == grpc.StatusCode.INVALID_ARGUMENT
    badkey = pb.GetRequest(path=[path("/ike/vpn[color=red]")], encoding=pb.Encoding.JSON_IETF)
    assert code_of(lambda: s.Get(badkey, metadata=md)) == grpc.StatusCode.INVALID_ARGUMENT
    proto = pb.GetRequest(path=[path("/ike")], encoding=pb.Encoding.PROTO)
    assert code_of(lambda: s.Get(proto, metadata=md)) == grpc.StatusCode.UNIMPLEMENTED
    # a wildcard that matches nothing is an empty answer, not an error
    empty = s.Get(pb.GetRequest(path=[path("/ike/ike-sa")], encoding=pb.Encoding.JSON_IETF),
                  metadata=md)
    assert list(empty.notification[0].update) == []


def running_xml(h: Harness) -> str:
    from lxml import etree
    return h.run(lambda: etree.tostring(h.ctx.ds.tree("running"), encoding="unicode"))


def test_set_update_replace_delete_in_one_transaction(h: Harness) -> None:
    load(h)
    assert h.changes == [("admin", h.changes[0][1], [("/ipsec-nf:ike", "create")])]
    with client(h) as gc:
        r = gc.set(
            delete=["/ike/vpn[name=a]/remote-id"],
            replace=[("/ike/vpn[name=a]/security-policy[name=trunk]",
                      {"local-ts": {"subnet": ["10.1.0.0/16"]},
                       "remote-ts": {"subnet": ["10.2.0.0/16"]}})],
            update=[("/ike/vpn[name=b]", {
                "ike-policy": {"template": "ike1"}, "ipsec-policy": {"template": "esp1"},
                "local-address": "198.51.100.1", "remote-address": "198.51.100.3",
                "security-policy": [{"name": "p", "local-ts": {"subnet": ["10.3.0.0/16"]},
                                     "remote-ts": {"subnet": ["10.4.0.0/16"]}}]}),
                    ("/ike/vpn[name=a]/local-id", "a2.example.net")],
            encoding="json_ietf")
        assert [x["op"] for x in r["response"]] == ["DELETE", "REPLACE", "UPDATE", "UPDATE"]
        got = updates(gc.get(path=["/ike/vpn"], encoding="json_ietf", datatype="config"))
    a, b = got["ipsec-nf:ike/vpn[name=a]"], got["ipsec-nf:ike/vpn[name=b]"]
    assert "remote-id" not in a and a["local-id"] == "a2.example.net"
    assert a["security-policy"] == [{"name": "trunk", "local-ts": {"subnet": ["10.1.0.0/16"]},
                                     "remote-ts": {"subnet": ["10.2.0.0/16"]}}]
    assert b["remote-address"] == "198.51.100.3"
    # one change of running for the whole SetRequest, named after the gNMI user, and one
    # commit in the history
    assert len(h.changes) == 2 and h.changes[1][0] == "admin"
    assert h.changes[1][1] >= 1
    assert [c.user for c in h.history.entries] == ["admin", "admin"]
    with client(h) as gc:
        gc.set(delete=["/ike/vpn[name=b]", "/ike/vpn[name=gone]"], encoding="json_ietf")
    assert "<name>b</name>" not in running_xml(h)


def test_a_set_that_fails_validation_changes_nothing(h: Harness) -> None:
    load(h)
    before, history = running_xml(h), len(h.history.entries)
    s, md = stub(h)
    bad = pb.SetRequest(update=[
        pb.Update(path=path("/ike/vpn[name=a]/local-id"),
                  val=pb.TypedValue(json_ietf_val=b'"changed.example.net"')),
        # a leafref to a template that does not exist: refused by libyang at validation
        pb.Update(path=path("/ike/vpn[name=c]"), val=pb.TypedValue(json_ietf_val=json.dumps(
            {"ike-policy": {"template": "missing"}, "ipsec-policy": {"template": "esp1"},
             "local-address": "198.51.100.1", "remote-address": "198.51.100.4"}).encode()))])
    with pytest.raises(grpc.RpcError) as e:
        s.Set(bad, metadata=md)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "missing" in e.value.details()
    badvalue = pb.SetRequest(update=[pb.Update(path=path("/ike/vpn[name=a]/local-address"),
                                               val=pb.TypedValue(json_ietf_val=b'"300.1.1.1"'))])
    assert code_of(lambda: s.Set(badvalue, metadata=md)) == grpc.StatusCode.INVALID_ARGUMENT
    wild = pb.SetRequest(update=[pb.Update(path=path("/ike/vpn/local-id"),
                                           val=pb.TypedValue(json_ietf_val=b'"x"'))])
    assert code_of(lambda: s.Set(wild, metadata=md)) == grpc.StatusCode.INVALID_ARGUMENT
    assert running_xml(h) == before and len(h.history.entries) == history


def test_set_is_aborted_while_netconf_holds_the_lock(h: Harness) -> None:
    load(h)
    h.run(lambda: h.ctx.ds.lock("running", 999))
    s, md = stub(h)
    req = pb.SetRequest(update=[pb.Update(path=path("/ike/vpn[name=a]/local-id"),
                                          val=pb.TypedValue(json_ietf_val=b'"x.example"'))])
    assert code_of(lambda: s.Set(req, metadata=md)) == grpc.StatusCode.ABORTED
    h.run(lambda: h.ctx.ds.unlock("running", 999))
    s.Set(req, metadata=md)
    assert "x.example" in running_xml(h)


def test_credentials_and_read_only_user(h: Harness) -> None:
    load(h)
    s, _ = stub(h)
    req = pb.GetRequest(path=[path("/ike")], encoding=pb.Encoding.JSON_IETF)
    assert code_of(lambda: s.Get(req)) == grpc.StatusCode.UNAUTHENTICATED
    wrong = [("username", ADMIN), ("password", "not-it")]
    assert code_of(lambda: s.Get(req, metadata=wrong)) == grpc.StatusCode.UNAUTHENTICATED
    nouser = [("username", "nobody"), ("password", ADMIN_PW)]
    assert code_of(lambda: s.Get(req, metadata=nouser)) == grpc.StatusCode.UNAUTHENTICATED
    reader = [("username", READER), ("password", READER_PW)]
    got = s.Get(req, metadata=reader)
    ike = json.loads(got.notification[0].update[0].val.json_ietf_val)
    assert ike["vpn"][0]["name"] == "a"
    psk = ike["pre-shared-key"][0]
    assert psk["name"] == "k" and "secret" not in psk
    assert SECRET not in got.SerializeToString().decode(errors="replace")
    # asked for by name, the secret is as absent as one that does not exist
    secret = pb.GetRequest(path=[path("/ike/pre-shared-key[name=k]/secret")],
                           encoding=pb.Encoding.JSON_IETF)
    assert code_of(lambda: s.Get(secret, metadata=reader)) == grpc.StatusCode.NOT_FOUND
    before = running_xml(h)
    setreq = pb.SetRequest(update=[pb.Update(path=path("/ike/vpn[name=a]/local-id"),
                                             val=pb.TypedValue(json_ietf_val=b'"r.example"'))])
    assert code_of(lambda: s.Set(setreq, metadata=reader)) == grpc.StatusCode.PERMISSION_DENIED
    assert running_xml(h) == before
    # the reader subscribes too, and sees no secret there either
    with client(h, READER, READER_PW) as gc:
        once = gc.subscribe2(subscribe={"subscription": [{"path": "/ike/pre-shared-key"}],
                                        "mode": "once", "encoding": "json_ietf"})
        seen = [json.dumps(m) for m in once]
    assert any('"name": "k"' in x or "[name=k]" in x for x in seen)
    assert not any(SECRET in x for x in seen)


def test_tls_with_a_self_signed_certificate(tmp_path: Path, store: Path) -> None:
    cert, key = self_signed(tmp_path)
    h = Harness(tmp_path / "state", cert, key, store_copy=store)
    try:
        with gNMIclient(target=("127.0.0.1", h.port), username=ADMIN, password=ADMIN_PW,
                        path_cert=str(cert)) as gc:
            assert gc.capabilities()["supported_encodings"] == ["json_ietf"]
        # plaintext is not served on a TLS port
        channel = grpc.insecure_channel(f"127.0.0.1:{h.port}")
        from pygnmi.spec.v080 import gnmi_pb2_grpc
        plain = gnmi_pb2_grpc.gNMIStub(channel)
        with pytest.raises(grpc.RpcError) as e:
            plain.Capabilities(pb.CapabilityRequest(), timeout=5,
                               metadata=[("username", ADMIN), ("password", ADMIN_PW)])
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        h.close()


def test_subscribe_once_and_poll(h: Harness) -> None:
    load(h)
    h.state.set({"ike-sa": [sa(1, "a")]})
    with client(h) as gc:
        once = list(gc.subscribe2(subscribe={
            "subscription": [{"path": "/ike/vpn[name=a]/local-address"},
                             {"path": "/ike/ike-sa"}],
            "mode": "once", "encoding": "json_ietf"}))
        assert once[-1] == {"sync_response": True}
        paths = [u["path"] for m in once[:-1] for u in m["update"]["update"]]
        assert "ipsec-nf:ike/vpn[name=a]/local-address" in paths
        assert "ipsec-nf:ike/ike-sa[unique-id=1]/state" in paths
        poll = gc.subscribe_poll(subscribe={"subscription": [{"path": "/ike/ike-sa"}],
                                            "mode": "poll", "encoding": "json_ietf"})
        first = poll.get_update(timeout=5)  # the dump (and a Poll sent)
        assert first["sync_response"]
        assert any("unique-id=1" in u["path"] for u in first["update"]["update"])
        h.state.set({"ike-sa": [sa(2, "a")]})
        time.sleep(0.2)
        seen = [poll.get_update(timeout=5) for _ in range(2)]  # the answers to two Polls
        poll.close()
    assert all(s["sync_response"] for s in seen)
    assert any("unique-id=2" in u["path"] for u in seen[-1]["update"]["update"])


def test_stream_on_change_sees_sa_down_up_and_config_changes(h: Harness) -> None:
    load(h)
    h.state.set({"ike-sa": [sa(1, "a")]})
    with client(h) as gc:
        sub = gc.subscribe_stream(subscribe={
            "subscription": [{"path": "/ike/ike-sa", "mode": "on_change"},
                             {"path": "/ike/vpn[name=a]/local-id", "mode": "on_change"}],
            "mode": "stream", "encoding": "json_ietf"})
        first = sub.get_update(timeout=5)  # pygnmi merges the dump up to sync_response
        assert first["sync_response"] is True
        dump = {u["path"]: u["val"] for u in first["update"]["update"]}
        assert dump["ipsec-nf:ike/ike-sa[unique-id=1]/state"] == "established"
        assert dump["ipsec-nf:ike/vpn[name=a]/local-id"] == "a.example.net"
        assert h.state.listeners() == 1
        h.state.set({"ike-sa": []})                       # down
        down = sub.get_update(timeout=5)["update"]
        assert down["delete"] == [{"path": "ipsec-nf:ike/ike-sa[unique-id=1]"}]
        h.state.set({"ike-sa": [sa(2, "a")]})             # up again (a new SA)
        up = sub.get_update(timeout=5)["update"]
        assert not up.get("delete")
        ups = {u["path"]: u["val"] for u in up["update"]}
        assert ups["ipsec-nf:ike/ike-sa[unique-id=2]/state"] == "established"
        h.state.set({"ike-sa": [sa(2, "a", state="rekeying")]})  # only what changed
        changed = sub.get_update(timeout=5)["update"]
        assert [u["path"] for u in changed["update"]] == ["ipsec-nf:ike/ike-sa[unique-id=2]/state"]
        with client(h) as other:
            other.set(update=[("/ike/vpn[name=a]/local-id", "new.example.net")],
                      encoding="json_ietf")
        cfg = sub.get_update(timeout=5)["update"]
        assert {u["path"]: u["val"] for u in cfg["update"]} == {
            "ipsec-nf:ike/vpn[name=a]/local-id": "new.example.net"}
        sub.close()
    deadline = time.monotonic() + 5
    while h.state.listeners() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert h.state.listeners() == 0  # the stream's tasks ended with it


def test_stream_sample_suppress_redundant_and_heartbeat(h: Harness) -> None:
    load(h)
    h.state.set({"ike-sa": [sa(1, "a", bytes_in=100)]})
    with client(h) as gc:
        plain = gc.subscribe_stream(subscribe={
            "subscription": [{"path": "/ike/ike-sa[unique-id=1]/child-sa[unique-id=10]/bytes-in",
                              "mode": "sample", "sample_interval": 200_000_000}],
            "mode": "stream", "encoding": "json_ietf"})
        first = plain.get_update(timeout=5)
        assert first["sync_response"] and first["update"]["update"][0]["val"] == "100"
        t0 = time.monotonic()
        a = plain.get_update(timeout=5)["update"]["update"]
        b = plain.get_update(timeout=5)["update"]["update"]
        leaf = "ipsec-nf:ike/ike-sa[unique-id=1]/child-sa[unique-id=10]/bytes-in"
        assert a == b == [{"path": leaf, "val": "100"}]  # every sample, changed or not
        assert time.monotonic() - t0 >= 0.2
        plain.close()
        quiet = gc.subscribe_stream(subscribe={
            "subscription": [{"path": "/ike/ike-sa", "mode": "sample",
                              "sample_interval": 100_000_000, "suppress_redundant": True,
                              "heartbeat_interval": 2_000_000_000}],
            "mode": "stream", "encoding": "json_ietf"})
        assert quiet.get_update(timeout=5)["sync_response"]
        h.state.set({"ike-sa": [sa(1, "a", bytes_in=500)]})
        first = quiet.get_update(timeout=5)["update"]["update"]
        assert sorted(u["path"] for u in first) == [
            "ipsec-nf:ike/ike-sa[unique-id=1]/child-sa[unique-id=10]/bytes-in",
            "ipsec-nf:ike/ike-sa[unique-id=1]/child-sa[unique-id=10]/bytes-out"]
        # nothing changes: nothing until the heartbeat resends every leaf
        t0 = time.monotonic()
        beat = quiet.get_update(timeout=5)["update"]["update"]
        assert time.monotonic() - t0 > 1.0
        assert len(beat) > 2
        quiet.close()


def test_target_defined_is_on_change_with_heartbeat_and_updates_only(h: Harness) -> None:
    load(h)
    h.state.set({"ike-sa": [sa(1, "a")]})
    state = "ipsec-nf:ike/ike-sa[unique-id=1]/state"
    with client(h) as gc:
        sub = gc.subscribe_stream(subscribe={
            "subscription": [{"path": "/ike/ike-sa[unique-id=1]/state",
                              "mode": "target_defined",
                              "heartbeat_interval": 1_500_000_000}],
            "mode": "stream", "encoding": "json_ietf", "updates_only": True})
        first = sub.get_update(timeout=5)
        assert first["sync_response"] and not first["update"].get("update")  # updates_only
        t0 = time.monotonic()
        h.state.set({"ike-sa": [sa(1, "a", state="rekeying")]})
        change = sub.get_update(timeout=5)["update"]["update"]
        assert change == [{"path": state, "val": "rekeying"}]
        assert time.monotonic() - t0 < 1.0  # on the change, not at a sample
        beat = sub.get_update(timeout=5)["update"]["update"]  # nothing changed: heartbeat
        assert beat == [{"path": state, "val": "rekeying"}]
        assert time.monotonic() - t0 > 1.2
        sub.close()


def test_unusable_tls_files_and_addresses_are_refused_at_start(tmp_path: Path,
                                                               store: Path) -> None:
    import asyncio

    from northbound.gnmi.context import GnmiContext
    from northbound.gnmi.server import GnmiServer
    from tests.unit.northbound.conftest import make_context

    cert, key = self_signed(tmp_path)
    (tmp_path / "other").mkdir()
    other_cert, _ = self_signed(tmp_path / "other")  # a certificate of another key
    bad = tmp_path / "bad.pem"
    bad.write_text("not PEM")
    g = GnmiContext(ctx=make_context(tmp_path), state=None, auth=None)  # type: ignore[arg-type]

    def start(*args: object, insecure: bool = False) -> str:
        server = GnmiServer(g, *args, insecure=insecure)  # type: ignore[arg-type]
        with pytest.raises(OSError) as e:
            asyncio.run(server.start())
        return str(e.value)

    assert "not a PEM certificate" in start("127.0.0.1", 0, bad, key)
    assert "not an unencrypted PEM private key" in start("127.0.0.1", 0, cert, bad)
    assert "does not match" in start("127.0.0.1", 0, other_cert, key)
    assert "No such file" in start("127.0.0.1", 0, tmp_path / "missing.pem", key)
    assert "cannot listen on 192.0.2.1:9339" in start("192.0.2.1", 9339, insecure=True)
    with pytest.raises(ValueError, match="certificate and key"):
        GnmiServer(g, "127.0.0.1", 0)  # neither TLS files nor insecure


def test_a_remembered_password_is_forgotten_when_the_user_store_changes(h: Harness) -> None:
    from northbound import users

    load(h)
    s, md = stub(h)
    req = pb.GetRequest(path=[path("/ike")], encoding=pb.Encoding.JSON_IETF)
    s.Get(req, metadata=md)  # checked (scrypt) by load already, then remembered
    t0 = time.monotonic()
    s.Get(req, metadata=md)
    assert time.monotonic() - t0 < 0.5  # no hash this time
    users.set_password(h.tmp, ADMIN, "a-new-password")
    assert code_of(lambda: s.Get(req, metadata=md)) == grpc.StatusCode.UNAUTHENTICATED
    s.Get(req, metadata=[("username", ADMIN), ("password", "a-new-password")])
