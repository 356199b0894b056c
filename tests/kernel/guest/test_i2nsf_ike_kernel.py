"""The RFC 9061 IKE case (ietf-i2nsf-ike) on the kernel's ESP, inside the guest of
tests/kernel/vm.py: the RFC's gateway-to-gateway and host-to-host examples
(tests/data/rfc9061/, whose addresses are the lab's), pushed over NETCONF to both gateways of
the shared lab (kernel_lab.py, `serve --backend kernel-netlink`), validated and committed,
bring CHILD SAs up; ping passes between the protected addresses; the kernel holds the ESP SAs
(protocol esp, tunnel mode, no UDP encapsulation) that our <get> reports; the RFC's state
of the connection (conn-entry/state: its IKE SA's SPIs, plain ESP, no NAT, established) and
number-ike-sas are those of our native state of the same <get>; deleting the configuration
leaves nothing in the kernel. The host's run of the same examples on user-space
ESP is tests/e2e/test_i2nsf_ike.py.

Each example is removed before the next one and at the end: the lab is shared with the other
guest modules, which run after this one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from tests.kernel.guest.kernel_lab import SLOW, Gateways
from tests.kernel.guest.test_site_to_site_kernel import (
    NS,
    child_sas,
    diagnose,
    ip,
    kernel_sas,
    spd,
    state,
)
from tests.support import wait_for

pytestmark = pytest.mark.kernel
DATA = Path(__file__).resolve().parents[2] / "data" / "rfc9061"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
IKE_NS = "urn:ietf:params:xml:ns:yang:ietf-i2nsf-ike"
# example -> (conn-entry name, the policy site A's kernel must hold)
EXAMPLES = {
    "ike_g2g": ("Security_GW_A-Security_GW_B", "src 192.168.0.0/24 dst 192.168.99.0/24"),
    "ike_h2h": ("Host_A-Host_B", "src 192.168.0.1/32 dst 192.168.99.1/32"),
}


@pytest.fixture(scope="module")
def gw(kernel_lab: Gateways) -> Iterator[Gateways]:
    """The shared lab with a route towards the other site in each namespace (policy-based ESP
    needs one); the routes this module added are removed at the end."""
    lab = kernel_lab.lab
    added = []
    for s in lab.sites:
        if s.peer_subnet not in ip(lab, s, "route", "show", s.peer_subnet):
            ip(lab, s, "route", "add", s.peer_subnet, "via", s.peer_wan)
            added.append(s)
    yield kernel_lab
    for s in added:
        lab.ns(s, "ip", "route", "del", s.peer_subnet, "via", s.peer_wan)


def push(gw: Gateways, example: str) -> None:
    """The example, as seen by each gateway, into its candidate; validate; commit."""
    for s in (gw.lab.b, gw.lab.a):
        xml = (DATA / f"{example}_{s.name.lower()}.xml").read_text()
        m = gw.m(s)
        m.edit_config(target="candidate", config=f'<config xmlns="{NC}">{xml}</config>')
        m.validate(source="candidate")
        m.commit()


def delete(gw: Gateways) -> None:
    cfg = (f'<config xmlns="{NC}" xmlns:nc="{NC}">'
           f'<ipsec-ike xmlns="{IKE_NS}" nc:operation="remove"/></config>')
    for s in (gw.lab.b, gw.lab.a):
        gw.m(s).discard_changes()
        gw.m(s).edit_config(target="candidate", config=cfg)
        gw.m(s).commit()


def kernel_empty(gw: Gateways) -> bool:
    """No SA and no policy (but charon's per-socket IKE bypass) in either namespace."""
    return all(not ip(gw.lab, s, "xfrm", "state").strip() and not spd(gw.lab, s)
               for s in gw.lab.sites)


def rfc_state_problem(gw: Gateways, conn: str) -> str | None:
    """Why site A's RFC state of ``conn`` is not its native IKE SA's, read by one <get>
    (None: it is). Plain ESP in the kernel, no NAT in the lab: espencap none, no NAT flag."""
    flt = (f'<filter xmlns="{NC}" type="subtree"><ipsec-ike xmlns="{IKE_NS}"/>'
           f'<ike xmlns="{NS["i"]}"><ike-sa/><ike-sas/></ike></filter>')
    data = gw.m(gw.lab.a).get(filter=flt).data_ele
    ns = {**NS, "r": IKE_NS}
    st = data.find(f"r:ipsec-ike/r:conn-entry[r:name='{conn}']/r:state", ns)
    sas = data.xpath(f"i:ike/i:ike-sa[i:name='{conn}'][i:state='established']", namespaces=ns)
    if st is None or len(sas) != 1:
        return f"no RFC state or not one established IKE SA: {etree.tostring(data).decode()}"
    got = {etree.QName(e).localname: e.text for e in st.iter() if len(e) == 0}
    sa = {etree.QName(e).localname: e.text for e in sas[0] if len(e) == 0}
    want = {"initiator-ikesa-spi": str(int(sa["initiator-spi"], 16)),
            "responder-ikesa-spi": str(int(sa["responder-spi"], 16)),
            "initiator": sa.get("initiator", "false"), "nat-local": "false",
            "nat-remote": "false", "espencap": "none",
            "established": sa["established-time"]}
    if {k: got.get(k) for k in want} != want:
        return f"RFC state {got} is not the native IKE SA's {sa}"
    total = data.findtext("i:ike/i:ike-sas/i:total", namespaces=ns)
    if data.findtext("r:ipsec-ike/r:number-ike-sas/r:total", namespaces=ns) != total:
        return f"number-ike-sas is not the native total {total}"
    return None


def ours(gw: Gateways, conn: str) -> list[etree._Element]:
    """Installed CHILD SAs of site A's <get> under the IKE SA of ``conn``."""
    return [c for c in child_sas(gw.m(gw.lab.a))
            if c.getparent().findtext("i:name", namespaces=NS) == conn]


@pytest.mark.parametrize("example", list(EXAMPLES))
def test_rfc_example_on_kernel_esp(gw: Gateways, example: str) -> None:
    lab = gw.lab
    conn, policy = EXAMPLES[example]
    assert kernel_empty(gw), "the lab holds SAs or policies before the example:\n" + \
        "\n".join(ip(lab, s, "xfrm", w) for s in lab.sites for w in ("state", "policy"))
    try:
        push(gw, example)
        names = gw.m(lab.a).get_config(
            "running", filter=("subtree", f'<ipsec-ike xmlns="{IKE_NS}"/>')).data_ele.xpath(
            "//i:conn-entry/i:name/text()", namespaces={"i": IKE_NS})
        assert names == [conn]
        # both sites initiate (autostartup start): wait for a working pair and our state
        children = wait_for(lambda: lab.ping(lab.a, 1).returncode == 0 and ours(gw, conn),
                            timeout=2 * SLOW, every=1)
        assert children, f"no CHILD SA of {conn} or no ping through it\n{diagnose(gw)}"
        assert lab.ping(lab.a, 3).returncode == 0

        def matching() -> tuple[list[etree._Element], dict] | None:
            """Our CHILD SAs and the kernel's, read together, when each SPI of ours is the
            kernel's: both sites initiate, so a duplicate CHILD SA may still be going (or a
            rekey come) between two reads."""
            now, kernel = ours(gw, conn), kernel_sas(lab, lab.a)
            spis = [c.findtext(f"i:spi-{w}", namespaces=NS) for c in now for w in ("in", "out")]
            return (now, kernel) if now and all(s and int(s, 16) in kernel for s in spis) \
                else None

        both = wait_for(matching, timeout=SLOW, every=1)
        assert both, (f"our CHILD SAs' SPIs never all in `ip xfrm state`:\n"
                      f"{[etree.tostring(c).decode() for c in ours(gw, conn)]}\n"
                      f"{kernel_sas(lab, lab.a)}")
        children, ksas = both
        for c in children:
            # the example's algorithms: AES-CBC-128 (12) and HMAC-SHA2-256-128 (12)
            assert c.findtext("i:enc-alg", namespaces=NS) == "aes128-cbc", \
                etree.tostring(c).decode()
            for way in ("in", "out"):
                sa = ksas.get(int(c.findtext(f"i:spi-{way}", namespaces=NS), 16))
                assert sa is not None, f"CHILD SA spi-{way} not in `ip xfrm state`: {ksas}"
                assert sa.proto == "esp" and sa.mode == "tunnel", sa.text
                assert "encap" not in sa.text, f"the kernel SA is UDP-encapsulated:\n{sa.text}"
                assert "enc cbc(aes)" in sa.text and "hmac(sha256)" in sa.text, sa.text
        pols = ip(lab, lab.a, "xfrm", "policy")
        assert policy in pols, pols
        # RFC 9061's state of the connection (retried while the IKE SA is rekeyed)
        assert wait_for(lambda: rfc_state_problem(gw, conn) is None, timeout=SLOW,
                        every=0.5), rfc_state_problem(gw, conn)
    finally:
        delete(gw)
    # the lab as it was: nothing in the kernels, no IKE SA in our state
    assert wait_for(lambda: kernel_empty(gw), timeout=SLOW, every=1), diagnose(gw) + "\n".join(
        f"{s.ns} {w}:\n{ip(lab, s, 'xfrm', w)}" for s in lab.sites for w in ("state", "policy"))
    assert wait_for(lambda: not state(gw.m(lab.a)).xpath("//i:ike-sa", namespaces=NS),
                    timeout=SLOW, every=1), etree.tostring(state(gw.m(lab.a))).decode()
