"""End to end over gNMI: the two-site lab with `ipsec-nf serve --gnmi` (TLS, a self-signed
certificate) on each site, real charons and ESP; pygnmi as the client.

A gNMI Set brings site A's VPN up; a Set that fails validation changes nothing; Get shows the
real SAs; a STREAM ON_CHANGE subscription sees the IKE SA go down and come up, in that order,
when the test terminates and initiates it (NETCONF actions); a SAMPLE subscription's CHILD SA
byte counters rise with ping traffic; a read-only user can read but not write, and sees no
secret. Needs root and `ip netns` (CI runs as root); it fails, never skips, without them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from lxml import etree
from ncclient.xml_ import to_ele
from pygnmi.client import gNMIclient
from pygnmi.create_gnmi_path import gnmi_path_generator
from pygnmi.spec.v080 import gnmi_pb2 as pb
from pygnmi.spec.v080 import gnmi_pb2_grpc

from nf.schema import Schema
from tests.integration.northbound.gnmi.harness import self_signed
from tests.support import port_open, wait_for
from tools.lab import PASSWORD, USER, Lab, Site, running, site_config

IPNF = "urn:ipsec-nf:yang:ipsec-nf"
NS = {"i": IPNF}
PORT = 9339
VPN = "siteA-siteB"
READER, READER_PW = "reader", "reader-lab-pw"
SECRET = "0seaJ31RfzHNRvUSH0oUYg7znTW0I="
pytestmark = [
    pytest.mark.e2e,
    # pygnmi's reader thread raises when a subscription it closed is cancelled
    pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning"),
]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, certs: tuple[Path, Path]) -> Iterator[Lab]:
    cert, key = certs
    args = ("--gnmi", f"0.0.0.0:{PORT}", "--gnmi-cert", str(cert), "--gnmi-key", str(key))
    with running(tmp_path_factory.mktemp("lab"), serve_args=args) as lab:
        for s in lab.sites:
            assert wait_for(lambda s=s: port_open(s.mgmt, PORT), timeout=20, every=0.2), lab.log(s)
        r = subprocess.run([sys.executable, "-m", "tools.cli", "passwd", "--state-dir",
                            str(lab.a.state_dir), "--group", "operators", READER],
                           input=READER_PW + "\n", text=True, capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
        yield lab


def gnmi(s: Site, cert: Path, user: str = USER, password: str = PASSWORD) -> gNMIclient:
    return gNMIclient(target=(s.mgmt, PORT), username=user, password=password,
                      path_cert=str(cert), override="gateway.test", gnmi_timeout=10)


def site_xml(s: Site, start: str) -> str:
    """The lab's VPN for one site: started by ``start`` (start|none), never restarted when
    closed (so that only the test brings a terminated tunnel back)."""
    return site_config(s, start_action=start).replace(
        f"<start-action>{start}</start-action>",
        f"<start-action>{start}</start-action><close-action>none</close-action>")


def site_json(s: Site) -> dict[str, Any]:
    """Site A's configuration as JSON_IETF (libyang converts the lab's XML)."""
    xml = site_xml(s, "start").split(">", 1)[1].rsplit("</config>", 1)[0]
    tree = Schema().ctx.parse_data_mem(xml, "xml", parse_only=True, strict=True)
    try:
        return json.loads(tree.print_mem("json", with_siblings=True))
    finally:
        tree.free()


def netconf_running(lab: Lab, s: Site) -> str:
    with lab.connect(s) as m:
        return m.get_config("running").data_xml


def action(lab: Lab, s: Site, name: str, **leaves: object) -> etree._Element:
    inner = "".join(f"<{k.replace('_', '-')}>{v}</{k.replace('_', '-')}>"
                    for k, v in leaves.items())
    with lab.connect(s) as m:
        reply = m.dispatch(to_ele(f'<{name} xmlns="{IPNF}">{inner}</{name}>'))
    return etree.fromstring(reply.xml.encode())


def updates(resp: dict) -> dict[str, Any]:
    return {u.get("path") or "/": u["val"] for n in resp["notification"]
            for u in n.get("update") or []}


def test_a_gnmi_set_adds_a_vpn_that_comes_up(lab: Lab, certs: tuple[Path, Path]) -> None:
    assert "gNMI listening on 0.0.0.0:9339 (TLS)" in lab.log(lab.a)
    with lab.connect(lab.b) as m:  # site B over NETCONF (it answers), site A over gNMI
        m.edit_config(target="candidate", config=site_xml(lab.b, "none"))
        m.commit()
    with gnmi(lab.a, certs[0]) as gc:
        r = gc.set(update=[("/", site_json(lab.a))], encoding="json_ietf")
        assert [x["op"] for x in r["response"]] == ["UPDATE"]
    # the same transaction as NETCONF's: running has it, and charon brings it up
    assert f"<name>{VPN}</name>" in netconf_running(lab, lab.a)
    assert wait_for(lambda: lab.ping(lab.a, 2).returncode == 0, timeout=40, every=0.2), \
        lab.log(lab.a)
    with gnmi(lab.a, certs[0]) as gc:
        def table() -> dict:
            return updates(gc.get(path=["/ike/ike-sa"], encoding="json_ietf",
                                  datatype="state"))
        # a Get may answer with counters up to 5 s old while the state is read again
        # (stale-while-revalidate, docs/state.md): the ping's bytes show within seconds
        def counted() -> dict:
            t = table()
            return t if t and all(int(c.get("bytes-out", 0)) > 0 for sa in t.values()
                                  for c in sa.get("child-sa", [])) else {}
        sas = wait_for(counted, timeout=15, every=0.3) or table()
        (sa,) = sas.values()
        assert sa["name"] == VPN and sa["state"] == "established"
        assert sa["local-address"] == lab.a.wan and sa["remote-address"] == lab.a.peer_wan
        assert sa["child-sa"][0]["state"] == "installed"
        assert int(sa["child-sa"][0]["bytes-out"]) > 0  # RFC 7951: uint64 as a string
        # who changed running: the gNMI user, in NETCONF's commit history
    with lab.connect(lab.a) as m:
        out = etree.fromstring(m.dispatch(to_ele(f'<list-commits xmlns="{IPNF}"/>')).xml
                               .encode())
    assert USER in out.xpath("//i:user/text()", namespaces=NS)


def test_a_set_is_announced_like_a_netconf_commit(lab: Lab, certs: tuple[Path, Path]) -> None:
    with lab.connect(lab.a) as m:
        netconf_sid = m.session_id
        m.create_subscription()
        with gnmi(lab.a, certs[0]) as gc:
            gc.set(update=[(f"/ike/vpn[name={VPN}]/description", "set over gNMI")],
                   encoding="json_ietf")
        n = m.take_notification(timeout=10)
        assert n is not None
        body = etree.fromstring(n.notification_xml.encode())
    ncn = {"n": "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"}
    (change,) = body.xpath("//n:netconf-config-change", namespaces=ncn)
    assert change.xpath("n:changed-by/n:username/text()", namespaces=ncn) == [USER]
    assert change.xpath("n:changed-by/n:source-host/text()", namespaces=ncn) == [lab.a.mgmt_host]
    targets = change.xpath("n:edit/n:target/text()", namespaces=ncn)
    assert any(VPN in t and t.endswith("description") for t in targets), targets
    # site A was only ever changed over gNMI: two Sets, two commits in the history, the
    # last one with the session-id the notification names (not the NETCONF session's)
    sid = change.xpath("n:changed-by/n:session-id/text()", namespaces=ncn)
    with lab.connect(lab.a) as m:
        out = etree.fromstring(m.dispatch(to_ele(f'<list-commits xmlns="{IPNF}"/>')).xml
                               .encode())
    commits = out.xpath("//i:commit", namespaces=NS)
    assert [c.findtext("i:user", namespaces=NS) for c in commits] == [USER, USER]
    assert sid and sid[0] != str(netconf_sid)
    assert sid[0] in [c.findtext("i:session-id", namespaces=NS) for c in commits]


def test_a_set_that_fails_validation_changes_nothing(lab: Lab, certs: tuple[Path, Path]) -> None:
    before = netconf_running(lab, lab.a)
    channel = grpc.secure_channel(
        f"{lab.a.mgmt}:{PORT}", grpc.ssl_channel_credentials(certs[0].read_bytes()),
        options=[("grpc.ssl_target_name_override", "gateway.test")])
    stub = gnmi_pb2_grpc.gNMIStub(channel)
    req = pb.SetRequest(update=[
        pb.Update(path=gnmi_path_generator(f"/ike/vpn[name={VPN}]/local-id"),
                  val=pb.TypedValue(json_ietf_val=b'"other.example.net"')),
        pb.Update(path=gnmi_path_generator(f"/ike/vpn[name={VPN}]/ike-policy/template"),
                  val=pb.TypedValue(json_ietf_val=b'"no-such-template"'))])
    with pytest.raises(grpc.RpcError) as e:
        stub.Set(req, metadata=[("username", USER), ("password", PASSWORD)], timeout=20)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    assert netconf_running(lab, lab.a) == before
    assert lab.ping(lab.a, 1).returncode == 0


def _until(sub: Any, pred: Any, timeout: float, seen: list) -> Any:
    """Read updates until ``pred(update)`` is true (every one read goes into ``seen``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            u = sub.get_update(timeout=max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            break
        seen.append(u)
        if pred(u):
            return u
    raise AssertionError(f"not seen in {timeout}s; got {json.dumps(seen, indent=1)[:3000]}")


def _established(u: dict) -> int | None:
    for x in u.get("update", {}).get("update") or []:
        if x["path"].endswith("/state") and "/child-sa" not in x["path"] \
                and x["val"] == "established":
            return int(x["path"].split("unique-id=")[1].split("]")[0])
    return None


def events(u: dict) -> list[tuple[str, int]]:
    """The IKE SA events of one notification, in the order gNMI applies them (its deletes,
    then its updates): ("down", id) for an IKE SA entry deleted, ("up", id) established."""
    n = u.get("update", {})
    out = [("down", int(d["path"].split("unique-id=")[1].rstrip("]")))
           for d in n.get("delete") or [] if d["path"].count("[") == 1]
    return out + [("up", uid) for x in n.get("update") or []
                  if (uid := _established({"update": {"update": [x]}})) is not None]


def test_on_change_sees_the_ike_sa_go_down_and_up_in_order(lab: Lab,
                                                            certs: tuple[Path, Path]) -> None:
    assert wait_for(lambda: lab.ping(lab.a, 1).returncode == 0, timeout=40, every=0.2)
    with gnmi(lab.a, certs[0]) as gc:
        sub = gc.subscribe_stream(subscribe={
            "subscription": [{"path": "/ike/ike-sa", "mode": "on_change"}],
            "mode": "stream", "encoding": "json_ietf"})
        first = sub.get_update(timeout=10)
        assert first["sync_response"] is True
        ((_, uid),) = events(first)
        seen: list[tuple[str, int]] = []
        action(lab, lab.a, "terminate", ike_sa=uid, timeout=10)
        t0 = time.monotonic()  # the SA is gone when terminate answers
        _until(sub, lambda u: bool(seen.extend(events(u))) or ("down", uid) in seen, 15, [])
        down_after = time.monotonic() - t0
        assert lab.ping(lab.a, 1).returncode != 0  # really down (nothing restarts it)
        action(lab, lab.a, "initiate", vpn=VPN, timeout=20)
        t1 = time.monotonic()  # established when initiate answers
        _until(sub, lambda u: bool(seen.extend(events(u))) or any(
            e == "up" and i != uid for e, i in seen), 20, [])
        up_after = time.monotonic() - t1
        sub.close()
    # in order: the old SA's delete, then the new SA established, and nothing else
    new = next(i for e, i in seen if e == "up")
    assert seen == [("down", uid), ("up", new)] and new != uid
    print(f"ON_CHANGE: IKE SA {uid} delete received {down_after:.3f} s after terminate "
          f"answered, IKE SA {new} established {up_after:.3f} s after initiate answered")


def _bytes_out(u: dict) -> int | None:
    for x in u.get("update", {}).get("update") or []:
        if x["path"].endswith("/bytes-out"):
            return int(x["val"])
    return None


def test_sample_counters_rise_with_traffic(lab: Lab, certs: tuple[Path, Path]) -> None:
    assert wait_for(lambda: lab.ping(lab.a, 1).returncode == 0, timeout=40, every=0.2)
    with gnmi(lab.a, certs[0]) as gc:
        sub = gc.subscribe_stream(subscribe={
            "subscription": [{"path": "/ike/ike-sa/child-sa/bytes-out", "mode": "sample",
                              "sample_interval": 1_000_000_000}],
            "mode": "stream", "encoding": "json_ietf"})
        first = sub.get_update(timeout=10)
        start = sum(int(u["val"]) for u in first["update"]["update"])
        assert lab.ping(lab.a, 5).returncode == 0
        seen: list[dict] = []
        # five ICMP echo requests of 84 bytes (IP) went out through the CHILD SA
        _until(sub, lambda u: (_bytes_out(u) or 0) >= start + 5 * 84, 10, seen)
        sub.close()
    samples = [_bytes_out(u) for u in seen if _bytes_out(u) is not None]
    assert samples == sorted(samples) and samples[-1] > start
    print(f"SAMPLE: bytes-out {start} then {samples} (one sample a second)")


def test_a_read_only_user_reads_but_cannot_write(lab: Lab, certs: tuple[Path, Path]) -> None:
    before = netconf_running(lab, lab.a)
    with gnmi(lab.a, certs[0], READER, READER_PW) as gc:
        got = gc.get(path=["/ike"], encoding="json_ietf")
        text = json.dumps(got)
        assert VPN in text and "site-psk" in text and SECRET not in text
        assert "ike-sa" in text  # the state too
        once = list(gc.subscribe2(subscribe={"subscription": [{"path": "/ike"}],
                                             "mode": "once", "encoding": "json_ietf"}))
        assert once[-1] == {"sync_response": True}
        assert SECRET not in json.dumps(once) and "site-psk" in json.dumps(once)
    channel = grpc.secure_channel(
        f"{lab.a.mgmt}:{PORT}", grpc.ssl_channel_credentials(certs[0].read_bytes()),
        options=[("grpc.ssl_target_name_override", "gateway.test")])
    stub = gnmi_pb2_grpc.gNMIStub(channel)
    req = pb.SetRequest(delete=[gnmi_path_generator(f"/ike/vpn[name={VPN}]")])
    with pytest.raises(grpc.RpcError) as e:
        stub.Set(req, metadata=[("username", READER), ("password", READER_PW)], timeout=20)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as e:
        stub.Get(pb.GetRequest(path=[gnmi_path_generator("/ike")]),
                 metadata=[("username", READER), ("password", "wrong")], timeout=20)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert netconf_running(lab, lab.a) == before
