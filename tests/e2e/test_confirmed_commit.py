"""An unconfirmed confirmed commit rolls back: its tunnel goes, the previous one returns."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from lxml import etree

from tools.lab import Lab, configure, running, site_config

pytestmark = pytest.mark.e2e  # root, network namespaces, charon

NS = {"i": "urn:ipsec-nf:yang:ipsec-nf"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running(tmp_path_factory.mktemp("cclab")) as lab:
        configure(lab, lab.b, lab.a)
        yield lab


def established(m) -> set[str]:
    st = etree.fromstring(m.get().data_xml.encode())
    return {sa.findtext("i:name", namespaces=NS)
            for sa in st.xpath("//i:ike-sa[i:state='established']", namespaces=NS)}


def wait_for(pred, timeout: float = 40) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.5)
    return False


def test_unconfirmed_commit_rolls_back_tunnels(lab: Lab) -> None:
    renamed = site_config(lab.a).replace("siteA-siteB", "tunnel-2")
    delete_old = (
        '<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" '
        'xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0">'
        '<ike xmlns="urn:ipsec-nf:yang:ipsec-nf"><vpn nc:operation="delete">'
        "<name>siteA-siteB</name></vpn></ike></config>")
    with lab.connect(lab.a) as m:
        assert wait_for(lambda: "siteA-siteB" in established(m)), established(m)
        m.edit_config(target="candidate", config=delete_old)
        m.edit_config(target="candidate", config=renamed)
        m.commit(confirmed=True, timeout="10")
        t0 = time.monotonic()
        assert wait_for(lambda: established(m) == {"tunnel-2"}, timeout=9), established(m)
        assert lab.ping(lab.a, 2).returncode == 0
        assert "tunnel-2" in m.get_config("running").data_xml
        # no confirming commit: after the timeout the previous config and tunnel come back
        time.sleep(max(0.0, 10 - (time.monotonic() - t0)))
        assert wait_for(lambda: established(m) == {"siteA-siteB"}), established(m)
        running = m.get_config("running").data_xml
        assert "tunnel-2" not in running and "siteA-siteB" in running
    assert wait_for(lambda: lab.ping(lab.a, 1).returncode == 0, timeout=30)
