"""Through NETCONF, against a real `ipsec-nf serve`: what the running backend cannot carry out
is refused at validate and commit with an rpc-error naming the backend and the leaf (kernel-
libipsec; kernel-netlink's acceptance is tested on the datastores and in the kernel VM);
authentication methods without their credentials are refused.

Needs root and `ip netns` (CI runs as root); it fails, never skips, when they are missing.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import asyncssh
import pytest
from lxml import etree
from ncclient.operations.rpc import RPCError

from northbound.session import MAX_MESSAGE_SIZE
from tests.support import wait_for
from tools.lab import NETCONF_PORT, PASSWORD, USER, Lab, configure, running, site_config

pytestmark = pytest.mark.e2e
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
IPNF = "urn:ipsec-nf:yang:ipsec-nf"
TEMPLATE = "/ipsec-nf:ike/ipsec-nf:ipsec-policy-template[ipsec-nf:name='ipsectemp1']"
TRUNK = ("/ipsec-nf:ike/ipsec-nf:vpn[ipsec-nf:name='siteA-siteB']"
         "/ipsec-nf:security-policy[ipsec-nf:name='trunk']")


def edit(body: str) -> str:
    return f'<config xmlns="{NC}"><ike xmlns="{IPNF}">{body}</ike></config>'


SP = "<vpn><name>siteA-siteB</name><security-policy><name>trunk</name>{}</security-policy></vpn>"
CASES = {
    "esn": ("<ipsec-policy-template><name>ipsectemp1</name><esp-proposal><id>1</id>"
            "<esn>true</esn></esp-proposal></ipsec-policy-template>",
            f"{TEMPLATE}/ipsec-nf:esp-proposal[ipsec-nf:id='1']/ipsec-nf:esn"),
    "transport": (SP.format("<mode>transport</mode>"), f"{TRUNK}/ipsec-nf:mode"),
    "ah": (SP.format("<action>ah</action>"), f"{TRUNK}/ipsec-nf:action"),
}


# kernel-libipsec only: `serve --backend kernel-netlink` refuses to start on a host without
# kernel ESP (this one). That kernel-netlink accepts what kernel-libipsec refuses is tested on
# the datastores (tests/unit/nf/test_backend_checks.py::test_netlink_accepts) and, served for
# real, in the kernel VM (tests/kernel/guest/).
@pytest.fixture(scope="module", params=["kernel-libipsec"])
def lab(request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, str]]:
    """Site A alone, serving with one backend, holding the site-to-site configuration."""
    with running(tmp_path_factory.mktemp("lab"), sites="A",
                 serve_args=("--backend", request.param)) as lab:
        with lab.connect(lab.a) as m:
            m.edit_config(target="candidate", config=site_config(lab.a))
            m.commit()
        yield lab, request.param


def error_of(e: RPCError) -> tuple[str | None, str | None, str | None]:
    """(error-tag, error-path, error-message) of an ncclient RPCError."""
    x = etree.fromstring(e.xml.encode()) if isinstance(e.xml, str) else e.xml
    def text(tag: str) -> str | None:
        found = x.find(f"{{{NC}}}{tag}")
        return found.text.strip() if found is not None and found.text else None
    return text("error-tag"), text("error-path"), text("error-message")


@pytest.mark.parametrize("case", sorted(CASES))
def test_dataplane_limits_at_validate_and_commit(lab: tuple[Lab, str], case: str) -> None:
    the_lab, _ = lab
    body, path = CASES[case]
    with the_lab.connect(the_lab.a) as m:
        m.edit_config(target="candidate", config=edit(body), test_option="set")
        try:
            for op in (lambda: m.validate(source="candidate"), m.commit):
                with pytest.raises(RPCError) as e:
                    op()
                tag, epath, message = error_of(e.value)
                assert (tag, epath) == ("invalid-value", path), e.value.xml
                assert "kernel-libipsec" in (message or ""), message
        finally:
            m.discard_changes()
        running_cfg = m.get_config(source="running").data_xml
        assert "<esn>true</esn>" not in running_cfg and "transport" not in running_cfg


@pytest.mark.parametrize(("method", "leaf", "words"), [
    ("certificate", "remote-ca-certificate", "needs a certificate-authority"),
    ("eap-radius", "ike-policy/ipsec-nf:remote-auth-method", "needs a RADIUS server"),
])
def test_auth_methods_without_their_credentials_are_refused(lab: tuple[Lab, str], method: str,
                                                            leaf: str, words: str) -> None:
    the_lab, _ = lab
    with the_lab.connect(the_lab.a) as m:
        with pytest.raises(RPCError) as e:
            m.edit_config(target="running", config=edit(
                f"<vpn><name>siteA-siteB</name><ike-policy><remote-auth-method>{method}"
                "</remote-auth-method></ike-policy></vpn>"))
        tag, epath, message = error_of(e.value)
        assert tag == "invalid-value"
        assert epath == ("/ipsec-nf:ike/ipsec-nf:vpn[ipsec-nf:name='siteA-siteB']"
                         f"/ipsec-nf:{leaf}")
        assert words in (message or ""), message


async def oversized(lab: Lab, base11: bool) -> tuple[bytes, bool]:
    """Send a message over the server's limit (base:1.0: 64 MiB + 1 of one <rpc>; base:1.1: a
    chunk header announcing it); return what the server answered and whether it closed."""
    async with asyncssh.connect(lab.a.mgmt, NETCONF_PORT, username=USER, password=PASSWORD,
                                known_hosts=None) as conn:
        writer, reader, _ = await conn.open_session(subsystem="netconf", encoding=None)
        cap = "base:1.1" if base11 else "base:1.0"
        writer.write(f'<hello xmlns="{NC}"><capabilities><capability>urn:ietf:params:netconf:'
                     f"{cap}</capability></capabilities></hello>]]>]]>".encode())
        buf = b""
        while b"]]>]]>" not in buf:
            buf += await asyncio.wait_for(reader.read(65536), 30)
        if base11:
            writer.write(f"\n#{MAX_MESSAGE_SIZE + 1}\n".encode())
        else:
            writer.write(f'<rpc xmlns="{NC}" message-id="1"><get-config><source><running/>'
                         "</source></get-config>".encode())
            block = b" " * (1 << 20)
            for _ in range(MAX_MESSAGE_SIZE // len(block) + 1):
                writer.write(block)
                await writer.drain()
        answer = b""
        closed = False
        try:
            while True:
                data = await asyncio.wait_for(reader.read(65536), 30)
                if not data:
                    closed = True
                    break
                answer += data
        except (asyncssh.Error, ConnectionError):
            closed = True
        return answer, closed


@pytest.mark.parametrize("base11", [False, True], ids=["base1.0", "base1.1"])
def test_a_message_over_the_limit_is_refused_and_the_session_closed(
        lab: tuple[Lab, str], base11: bool) -> None:
    answer, closed = asyncio.run(oversized(lab[0], base11))
    assert closed
    if base11:  # one chunk: "\n#<size>\n<reply>\n##\n"
        m = re.fullmatch(rb"\n#(\d+)\n(.*)\n##\n", answer, re.S)
        assert m is not None and int(m.group(1)) == len(m.group(2)), answer
        body = m.group(2)
    else:
        body = answer.split(b"]]>]]>")[0]
    reply = etree.fromstring(body)
    assert reply.tag == f"{{{NC}}}rpc-reply" and reply.get("message-id") is None
    assert reply.findtext(f"{{{NC}}}rpc-error/{{{NC}}}error-tag") == "too-big"
    assert str(MAX_MESSAGE_SIZE) in reply.findtext(f"{{{NC}}}rpc-error/{{{NC}}}error-message")
    with lab[0].connect(lab[0].a) as m:  # the server goes on
        assert "siteA-siteB" in m.get_config(source="running").data_xml


# ---- global options: nothing, reload or restart --------------------------------------------

def options_edit(body: str) -> str:
    return edit(f"<global-options>{body}</global-options>")


def sa_ids(m) -> set[str]:  # noqa: ANN001 - an ncclient Manager
    """unique-ids of the established IKE SAs of the site-to-site VPN."""
    doc = etree.fromstring(m.get(filter=("subtree", f'<ike xmlns="{IPNF}"><ike-sa/></ike>'))
                           .data_xml.encode())
    return {sa.findtext(f"{{{IPNF}}}unique-id") for sa in doc.iter(f"{{{IPNF}}}ike-sa")
            if sa.findtext(f"{{{IPNF}}}state") == "established"}


def applied(m, timeout: float = 3):  # noqa: ANN001, ANN201 - ncclient
    """The method of the next global-options-applied notification, or None."""
    n = m.take_notification(timeout=timeout)
    while n is not None:
        body = etree.fromstring(n.notification_xml.encode())
        found = body.find(f".//{{{IPNF}}}global-options-applied")
        if found is not None:
            return found.findtext(f"{{{IPNF}}}method")
        n = m.take_notification(timeout=timeout)
    return None


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Both sites, configured, with the tunnel up."""
    with running(tmp_path_factory.mktemp("pair"), serve_args=("--sync-interval", "2")) as lab:
        configure(lab, lab.b, lab.a)
        wait_for(lambda: lab.ping(lab.a).returncode == 0, 60)
        yield lab


def test_global_options_reload_or_restart(pair: Lab) -> None:
    lab, a = pair, pair.a
    charon_log = a.state_dir / "charon" / "charon.log"
    pid = (a.state_dir / "charon" / "charon.pid").read_text()
    with lab.connect(a) as m:
        m.create_subscription()
        ids = wait_for(lambda: sa_ids(m), 30)
        # an empty edit, and one that sets the values in force: nothing happens
        for body in ("", "<retransmit-tries>5</retransmit-tries><threads>16</threads>"):
            m.edit_config(target="running", config=options_edit(body))
            assert applied(m) is None
            assert sa_ids(m) == ids
        # a reloadable change: settings reloaded, SAs kept, and in force for new IKE SAs
        m.edit_config(target="running", config=options_edit(
            "<retransmit-tries>1</retransmit-tries><retransmit-timeout>0.5</retransmit-timeout>"
            "<retransmit-base>1.0</retransmit-base>"))
        assert applied(m, 10) == "reload"
        assert sa_ids(m) == ids
        assert (a.state_dir / "charon" / "charon.pid").read_text() == pid
        m.edit_config(target="running", config=edit(
            "<vpn><name>ghost</name><ike-policy><template>iketemp1</template></ike-policy>"
            "<ipsec-policy><template>ipsectemp1</template><start-action>start</start-action>"
            "</ipsec-policy><remote-address>198.51.100.9</remote-address>"
            "<security-policy><name>g</name><local-ts><subnet>10.1.0.0/24</subnet></local-ts>"
            "<remote-ts><subnet>10.2.0.0/24</subnet></remote-ts></security-policy></vpn>"))
        # defaults (5 tries from 4 s) would take minutes; the new ones give up after 1 at once
        wait_for(lambda: "giving up after 1 retransmits" in charon_log.read_text(), 15)
        # a setting read only at start: charon restarted, the tunnel negotiated again
        m.edit_config(target="running", config=options_edit("<threads>20</threads>"))
        assert applied(m, 10) == "restart"
    wait_for(lambda: (a.state_dir / "charon" / "charon.pid").exists()
             and (a.state_dir / "charon" / "charon.pid").read_text() != pid, 30)
    assert "threads = 30" in (a.state_dir / "charon" / "strongswan.conf").read_text()
    with lab.connect(a) as m:
        assert wait_for(lambda: sa_ids(m), 60)  # negotiated again by the new charon
    serve_log = lab.log(a)
    assert "charon's settings reloaded, SAs kept" in serve_log
    assert "restarting charon (a setting it reads only at start changed)" in serve_log


def test_logging_is_reloaded_and_equal_ports_refused(pair: Lab) -> None:
    """/ike/logging through NETCONF: the manual's example (authpriv default 1, ike 2) reaches
    charon's strongswan.conf by a settings reload, SAs kept; ike-nat-port equal to ike-port is
    refused with the model's message, naming the leaf."""
    lab, a = pair, pair.a
    conf = a.state_dir / "charon" / "strongswan.conf"
    with lab.connect(a) as m:
        m.create_subscription()
        ids = wait_for(lambda: sa_ids(m), 60)
        pid = (a.state_dir / "charon" / "charon.pid").read_text()
        m.edit_config(target="running", config=edit(
            "<logging><authpriv><default>1</default><ike>2</ike></authpriv></logging>"))
        assert applied(m, 10) == "reload"
        assert sa_ids(m) == ids
        assert (a.state_dir / "charon" / "charon.pid").read_text() == pid
        text = conf.read_text()
        assert "    auth {\n      default = 1\n      ike = 2\n    }" in text, text
        assert "    daemon {\n      default = 0\n    }" in text, text
        with pytest.raises(RPCError) as e:
            m.edit_config(target="running", config=options_edit(
                "<ike-nat-port>500</ike-nat-port>"))
        tag, epath, message = error_of(e.value)
        assert tag == "operation-failed", e.value.xml  # RFC 7950 15.4: must-violation
        assert epath == "/ipsec-nf:ike/ipsec-nf:global-options/ipsec-nf:ike-nat-port", epath
        assert (message or "").startswith("ike-nat-port must differ from ike-port"), message
    assert "port_nat_t = 4500" in conf.read_text()
