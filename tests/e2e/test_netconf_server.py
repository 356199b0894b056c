"""The NETCONF server as orchestrators see it, driven over SSH against a real gateway
(ipsec-nf serve in a network namespace, with its charon): capabilities, discovery,
with-defaults, startup, kill-session, notifications, NACM users, and a second client."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest
from lxml import etree
from ncclient import manager
from ncclient.operations.rpc import RPCError
from ncclient.transport.errors import AuthenticationError

from tools.lab import NETCONF_PORT, PASSWORD, Lab, configure, running, site_config

pytestmark = pytest.mark.e2e  # root, network namespaces, charon

NS = "urn:ipsec-nf:yang:ipsec-nf"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
P = {"i": NS, "nc": NC}
ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.cli", *args], input=stdin, text=True,
                          capture_output=True, cwd=ROOT)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running(tmp_path_factory.mktemp("nclab"), sites="A") as lab:
        sd = str(lab.a.state_dir)
        assert cli("passwd", "--state-dir", sd, "--group", "operators", "reader",
                   stdin="reader-pw\n").returncode == 0
        assert cli("passwd", "--state-dir", sd, "nobody", stdin="nobody-pw\n").returncode == 0
        configure(lab, lab.a)
        yield lab


def connect(lab: Lab, user: str, password: str, **kw):
    return manager.connect(host=lab.a.mgmt, port=NETCONF_PORT, username=user, password=password,
                           hostkey_verify=False, allow_agent=False, look_for_keys=False,
                           timeout=30, **kw)


def wait_until(pred, timeout: float = 10) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


def test_capabilities(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        caps = set(m.server_capabilities)
    for c in ("urn:ietf:params:netconf:base:1.1",
              "urn:ietf:params:netconf:capability:candidate:1.0",
              "urn:ietf:params:netconf:capability:confirmed-commit:1.1",
              "urn:ietf:params:netconf:capability:rollback-on-error:1.0",
              "urn:ietf:params:netconf:capability:validate:1.1",
              "urn:ietf:params:netconf:capability:startup:1.0",
              "urn:ietf:params:netconf:capability:xpath:1.0",
              "urn:ietf:params:netconf:capability:interleave:1.0",
              "urn:ietf:params:netconf:capability:notification:1.0"):
        assert c in caps, c
    assert any(c.startswith("urn:ietf:params:netconf:capability:with-defaults:1.0") for c in caps)
    assert any(c.startswith("urn:ietf:params:netconf:capability:yang-library:1.1") for c in caps)


def test_get_schema_and_monitoring(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        text = m.get_schema("ipsec-nf").data
        assert "module ipsec-nf" in text
        assert "module ietf-netconf-acm" in m.get_schema("ietf-netconf-acm").data
        st = etree.fromstring(m.get(filter=("subtree", '<netconf-state xmlns="urn:ietf:params:'
                                            'xml:ns:yang:ietf-netconf-monitoring"/>')).data_xml
                              .encode())
        ncm = {"m": "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"}
        assert "ipsec-nf" in st.xpath("//m:schema/m:identifier/text()", namespaces=ncm)
        assert st.xpath("//m:session/m:username/text()", namespaces=ncm) == ["admin"]
        assert int(st.xpath("//m:statistics/m:in-sessions/text()", namespaces=ncm)[0]) >= 2
        yl = etree.fromstring(m.get(filter=("subtree", '<yang-library xmlns="urn:ietf:params:'
                                            'xml:ns:yang:ietf-yang-library"/>')).data_xml
                              .encode())
        names = yl.xpath("//y:module/y:name/text()",
                         namespaces={"y": "urn:ietf:params:xml:ns:yang:ietf-yang-library"})
        assert {"ipsec-nf", "ietf-netconf-acm", "ietf-yang-library"} <= set(names)
        assert int(st.xpath("//m:statistics/m:in-rpcs/text()", namespaces=ncm)[0]) >= 3


def test_with_defaults(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        full = m.get_config("running", with_defaults="report-all").data_xml
        plain = m.get_config("running").data_xml
    assert "<rekey-time>4h</rekey-time>" in full and "<rekey-time>" not in plain


def test_startup_survives_restart(lab: Lab) -> None:
    with lab.connect(lab.a) as m:
        m.copy_config(source="running", target="startup")
        startup = m.get_config("startup").data_xml
    assert "siteA-siteB" in startup
    lab.stop(lab.a)
    lab.start(lab.a)
    with lab.connect(lab.a) as m:
        assert "siteA-siteB" in m.get_config("running").data_xml


def test_kill_session_releases_lock(lab: Lab) -> None:
    holder = lab.connect(lab.a)
    with lab.connect(lab.a) as admin:
        holder.lock("candidate")
        with pytest.raises(RPCError):
            admin.lock("candidate")
        admin.kill_session(holder.session_id)
        admin.lock("candidate")
        admin.unlock("candidate")
    assert wait_until(lambda: not holder.connected)


def test_notifications_config_change_and_replay(lab: Lab) -> None:
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    with lab.connect(lab.a) as listener, lab.connect(lab.a) as editor:
        listener.create_subscription()
        editor.edit_config(target="running", config=(
            f'<config xmlns="{NC}"><ike xmlns="{NS}"><vpn><name>siteA-siteB</name>'
            "<local-id>changed.example.net</local-id></vpn></ike></config>"))
        seen = []
        for _ in range(10):
            n = listener.take_notification(block=True, timeout=5)
            if n is None:
                break
            seen.append(n.notification_xml)
            if "netconf-config-change" in n.notification_xml:
                break
        change = next(x for x in seen if "netconf-config-change" in x)
        assert "vpn" in change and "0seaJ31" not in change
        assert "<username>admin</username>" in change
        # replay from the bounded log, then replayComplete
        with lab.connect(lab.a) as late:
            late.create_subscription(start_time=start)
            replayed = []
            while True:
                n = late.take_notification(block=True, timeout=5)
                assert n is not None, replayed
                replayed.append(n.notification_xml)
                if "replayComplete" in n.notification_xml:
                    break
            assert any("netconf-config-change" in x for x in replayed)
            assert any("netconf-session-start" in x for x in replayed)
        editor.edit_config(target="running", config=site_config(lab.a))


CHANGE = (f'<config xmlns="{NC}"><ike xmlns="{NS}"><vpn><name>siteA-siteB</name>'
          "<local-id>intruder.example.net</local-id></vpn></ike></config>")


def test_nacm_users(lab: Lab) -> None:
    with connect(lab, "reader", "reader-pw") as m:
        cfg = m.get_config("running").data_xml
        assert "pre-shared-key" in cfg and "0seaJ31" not in cfg
        assert "0seaJ31" not in m.get().data_xml
        with pytest.raises(RPCError) as ei:
            m.edit_config(target="candidate", config=CHANGE)
        assert ei.value.tag == "access-denied"
    with connect(lab, "nobody", "nobody-pw") as m:
        with pytest.raises(RPCError) as ei:
            m.edit_config(target="running", config=CHANGE)
        assert ei.value.tag == "access-denied"
        with pytest.raises(RPCError) as ei:
            m.kill_session("1")
        assert ei.value.tag == "access-denied"
    with lab.connect(lab.a) as m:
        cfg = m.get_config("running").data_xml
        assert "0seaJ31" in cfg and "intruder" not in cfg
        assert "intruder" not in m.get_config("candidate").data_xml
    with pytest.raises(AuthenticationError):
        connect(lab, "reader", "wrong")
    with pytest.raises(AuthenticationError):
        connect(lab, "mallory", PASSWORD)


def test_public_key_auth(lab: Lab, tmp_path: Path) -> None:
    key, other = tmp_path / "id_ed25519", tmp_path / "other"
    for path in (key, other):
        k = asyncssh.generate_private_key("ssh-ed25519")
        k.write_private_key(str(path))
        k.write_public_key(str(path) + ".pub")
    r = cli("add-key", "--state-dir", str(lab.a.state_dir), "keyuser",
            stdin=(tmp_path / "id_ed25519.pub").read_text())
    assert r.returncode == 0, r.stderr
    kw = dict(host=lab.a.mgmt, port=NETCONF_PORT, username="keyuser", hostkey_verify=False,
              allow_agent=False, look_for_keys=False, timeout=30)
    with manager.connect(key_filename=str(key), **kw) as m:
        assert "siteA-siteB" in m.get_config("running").data_xml
    with pytest.raises(AuthenticationError):
        manager.connect(key_filename=str(other), **kw)


def test_second_client_netconf_console2(lab: Lab, tmp_path: Path) -> None:
    base = [str(Path(sys.executable).parent / "netconf-console2"), "--host", lab.a.mgmt,
            "--port", str(NETCONF_PORT), "-u", "admin", "-p", PASSWORD]
    r = subprocess.run([*base, "--get-config"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "siteA-siteB" in r.stdout
    edit = tmp_path / "edit.xml"
    edit.write_text(f'<ike xmlns="{NS}"><vpn><name>siteA-siteB</name>'
                    "<remote-id>console.example.net</remote-id></vpn></ike>")
    r = subprocess.run([*base, "--db", "candidate", "--edit-config", str(edit), "--commit"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([*base, "--get-config"], capture_output=True, text=True, timeout=60)
    assert "console.example.net" in r.stdout, r.stdout + r.stderr
    bad = tmp_path / "bad.xml"
    bad.write_text(f'<ike xmlns="{NS}"><vpn><name>siteA-siteB</name>'
                   "<local-address>198.51.100.300</local-address></vpn></ike>")
    r = subprocess.run([*base, "--db", "candidate", "--edit-config", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert "invalid-value" in r.stdout + r.stderr
    with lab.connect(lab.a) as m:
        m.discard_changes()
        m.edit_config(target="running", config=site_config(lab.a))


def test_logs_hold_no_secret(lab: Lab) -> None:
    text = (lab.a.state_dir / "serve.log").read_text(errors="replace")
    assert "session" in text  # the log is there and has content
    for secret in ("0seaJ31RfzHNRvUSH0oUYg7znTW0I=", "reader-pw", "nobody-pw", PASSWORD):
        assert secret not in text
