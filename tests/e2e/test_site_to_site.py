"""End to end: two gateways in network namespaces, configured over NETCONF, real charon and ESP.

Needs root and `ip netns` (CI runs as root); it fails, never skips, when they are missing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree
from ncclient.operations.rpc import RPCError

from tests.support import wait_for
from tools.lab import NETCONF_PORT, PASSWORD, USER, Lab, running, site_config

NS = {"i": "urn:ipsec-nf:yang:ipsec-nf"}
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running(tmp_path_factory.mktemp("lab")) as lab:
        yield lab


def state(m) -> etree._Element:
    return etree.fromstring(m.get().data_xml.encode())


def child_sas(m) -> list[etree._Element]:
    return state(m).xpath("//i:ike-sa/i:child-sa", namespaces=NS)


def packets_out(m) -> int:
    return sum(int(c.findtext("i:packets-out", namespaces=NS) or 0) for c in child_sas(m))


def ping_ok(lab: Lab) -> bool:
    return wait_for(lambda: lab.ping(lab.a, 2).returncode == 0, timeout=40, every=0.2)


def configure(lab: Lab, enc: str = "aes128-cbc") -> None:
    """Site B through netconf-console2, site A through ncclient: two independent clients."""
    cfg = lab.workdir / "siteB.xml"
    cfg.write_text(site_config(lab.b, enc).split(">", 1)[1].rsplit("</config>", 1)[0])
    r = subprocess.run(
        [str(Path(sys.executable).parent / "netconf-console2"), "--host", lab.b.mgmt,
         "--port", str(NETCONF_PORT), "-u", USER, "-p", PASSWORD, "--db", "candidate",
         "--edit-config", str(cfg), "--commit"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "rpc-error" not in r.stdout, r.stdout + r.stderr
    with lab.connect(lab.a) as m:
        m.edit_config(target="candidate", config=site_config(lab.a, enc))
        m.commit()


def test_tunnel_carries_esp_and_shows_state(lab: Lab) -> None:
    configure(lab)
    cap = subprocess.Popen(
        ["ip", "netns", "exec", lab.a.ns, "tcpdump", "-l", "-n", "-c", "4", "-i", lab.wan_if,
         "udp port 4500 and udp[8:4] != 0"],  # ESP in UDP, not IKE (non-ESP marker 0)
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        time.sleep(1.5)  # let tcpdump attach
        assert ping_ok(lab), "ping between the protected subnets never passed"
        assert lab.ping(lab.a, 3).returncode == 0
        out, _ = cap.communicate(timeout=20)
    finally:
        cap.kill()
    assert "ESP(spi=" in out, f"no ESP on the wire:\n{out}"
    with lab.connect(lab.a) as m:
        st = state(m)
        ike = st.xpath("//i:ike-sa[i:name='siteA-siteB']", namespaces=NS)
        assert ike and ike[0].findtext("i:state", namespaces=NS) == "established"
        assert ike[0].findtext("i:enc-alg", namespaces=NS) == "aes128-cbc"
        assert ike[0].findtext("i:dh-group", namespaces=NS) == "modp2048"
        child = ike[0].find("i:child-sa", NS)
        assert child.findtext("i:state", namespaces=NS) == "installed"
        assert child.findtext("i:enc-alg", namespaces=NS) == "aes128-cbc"
        # both sides initiate, so there may be more than one CHILD SA: count them all
        before = packets_out(m)
        assert lab.ping(lab.a, 3).returncode == 0
        # a <get> may answer with counters up to 5 s old while the state is read again
        # (stale-while-revalidate, docs/state.md): the pings show within seconds
        assert wait_for(lambda: packets_out(m) >= before + 3, timeout=15, every=0.3)


def test_template_change_rekeys_with_new_algorithm(lab: Lab) -> None:
    new_proposal = (
        '<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" '
        'xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0">'
        '<ike xmlns="urn:ipsec-nf:yang:ipsec-nf"><ipsec-policy-template><name>ipsectemp1</name>'
        '<esp-proposal nc:operation="replace"><id>1</id><enc-alg>aes256-cbc</enc-alg>'
        "<auth-alg>hmac-sha256</auth-alg></esp-proposal></ipsec-policy-template></ike></config>")
    for s in (lab.b, lab.a):
        with lab.connect(s) as m:
            m.edit_config(target="candidate", config=new_proposal)
            m.commit()

    def new_alg() -> bool:
        lab.ping(lab.a, 1)
        with lab.connect(lab.a) as m:
            return any(c.findtext("i:enc-alg", namespaces=NS) == "aes256-cbc"
                       and c.findtext("i:state", namespaces=NS) == "installed"
                       for c in child_sas(m))
    assert wait_for(new_alg, timeout=40), "CHILD SA was not re-keyed with aes256-cbc"
    assert ping_ok(lab)


def charon_pid(lab: Lab, s) -> int | None:
    """The pid of the site's charon (found by the strongswan.conf in its environment)."""
    conf = f"STRONGSWAN_CONF={s.state_dir / 'charon' / 'strongswan.conf'}".encode()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if conf in (proc / "environ").read_bytes().split(b"\0") and \
                        (proc / "comm").read_text().strip() == "charon":
                    return int(proc.name)
            except OSError:
                continue
    return None


def test_killed_charon_is_restarted_and_tunnel_returns(lab: Lab) -> None:
    pid = charon_pid(lab, lab.a)
    assert pid is not None, "site A's charon not found"
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: (charon_pid(lab, lab.a) or pid) != pid, timeout=30), \
        "charon was not restarted"
    assert ping_ok(lab), "the tunnel did not come back after charon was killed"
    with lab.connect(lab.a) as m:
        assert wait_for(lambda: any(c.findtext("i:state", namespaces=NS) == "installed"
                                    for c in child_sas(m)), timeout=30)


BAD = [
    ("<vpn><name>v2</name><ike-policy><template>missing</template></ike-policy>"
     "<ipsec-policy><template>ipsectemp1</template></ipsec-policy></vpn>",
     "data-missing", "template"),
    ("<ike-policy-template><name>t2</name><ike-proposal><id>1</id>"
     "<aead-alg>aes128-gcm-128</aead-alg><dh-group>modp2048</dh-group></ike-proposal>"
     "</ike-policy-template>", "operation-failed", "ike-proposal"),
    ("<vpn><name>siteA-siteB</name><remote-address>198.51.100.999</remote-address></vpn>",
     "invalid-value", "remote-address"),
    ("<vpn><name>siteA-siteB</name><no-such-leaf>1</no-such-leaf></vpn>",
     "unknown-element", "vpn"),
]


@pytest.mark.parametrize("body,tag,path", BAD)
def test_bad_input_is_refused_and_changes_nothing(lab: Lab, body: str, tag: str,
                                                  path: str) -> None:
    cfg = ('<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
           f'<ike xmlns="urn:ipsec-nf:yang:ipsec-nf">{body}</ike></config>')
    with lab.connect(lab.a) as m:
        before = m.get_config("running").data_xml
        with pytest.raises(RPCError) as ei:
            m.edit_config(target="candidate", config=cfg)
            m.commit()
        assert ei.value.tag == tag, ei.value.xml
        assert path in (ei.value.path or ""), ei.value.xml
        m.discard_changes()
        assert m.get_config("running").data_xml == before
        assert m.get_config("candidate").data_xml == before


def test_edit_on_locked_datastore_is_refused(lab: Lab) -> None:
    with lab.connect(lab.a) as holder, lab.connect(lab.a) as other:
        holder.lock("running")
        holder.lock("candidate")
        try:
            with pytest.raises(RPCError) as ei:
                other.edit_config(target="candidate", config=site_config(lab.a, "aes128-cbc"))
            assert ei.value.tag == "in-use"
            with pytest.raises(RPCError) as ei:
                other.lock("running")
            assert ei.value.tag == "lock-denied"
        finally:
            holder.unlock("candidate")
            holder.unlock("running")


def test_delete_vpn_removes_sas(lab: Lab) -> None:
    cfg = ('<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" '
           'xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0">'
           '<ike xmlns="urn:ipsec-nf:yang:ipsec-nf"><vpn nc:operation="delete">'
           '<name>siteA-siteB</name></vpn></ike></config>')
    with lab.connect(lab.a) as m, lab.connect(lab.a) as listener:
        assert wait_for(lambda: child_sas(m), timeout=30), "no CHILD SA before the delete"
        listener.create_subscription()
        m.edit_config(target="candidate", config=cfg)
        m.commit()
        gone = wait_for(lambda: not state(m).xpath("//i:ike-sa", namespaces=NS), timeout=30)
        assert gone, etree.tostring(state(m)).decode()
        events: list[str] = []

        def seen(kind: str) -> str | None:
            return next((e for e in events
                         if f"{kind}-sa-event" in e and "<event>down</event>" in e), None)
        while seen("ike") is None or seen("child") is None:
            n = listener.take_notification(block=True, timeout=10)
            assert n is not None, f"no IKE and CHILD SA down events; got {events}"
            events.append(n.notification_xml)
        for kind in ("ike", "child"):
            assert "<vpn>siteA-siteB</vpn>" in seen(kind), seen(kind)
            assert "<peer>198.51.100.2</peer>" in seen(kind), seen(kind)
        assert "<security-policy>trunk</security-policy>" in seen("child")
    assert lab.ping(lab.a, 2).returncode != 0


def test_root_and_namespaces_available() -> None:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    assert out.returncode == 0, f"`ip netns` unusable (tests need root): {out.stderr}"
    assert Path("/usr/lib/ipsec/charon").exists(), "strongSwan charon is not installed"


def test_logs_hold_no_secret(lab: Lab) -> None:
    for s in lab.sites:
        for log in (s.state_dir / "serve.log", s.state_dir / "charon" / "charon.log"):
            assert log.exists(), log
            assert "0seaJ31RfzHNRvUSH0oUYg7znTW0I=" not in log.read_text(errors="replace"), log
