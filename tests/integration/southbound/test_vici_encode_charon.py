"""load-conn, load-shared and their unloads sent by the charon backend with our own encoder
(southbound/vici_encode.py) against a real charon: taken, shown by list-conns / get-shared as
the same message sent through the vici package is, and a refusal gives charon's error text as
the vici package's path does.

Needs root and ``ip netns`` (CI runs as root): fails loudly, never skips, when unusable.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from southbound import charon_backend
from southbound.backend import EntryRefused
from southbound.charon import CharonProcess
from southbound.charon_backend import PSK, VPN, CharonSession
from southbound.convert import SecretBytes, conn_for
from southbound.vici_client import ViciClient, ViciError
from tests.integration.southbound.test_charon_limits import charon  # noqa: F401 (fixture)
from tests.unit.southbound.test_convert import VPN as SITE

pytestmark = pytest.mark.e2e

CONN = conn_for(replace(SITE, ipsec=replace(SITE.ipsec, start_action="none",
                                            close_action="none")))
BAD_CONN = {"version": "2", "children": {"c": {"esp_proposals": ["no-such-alg"]}}}


def test_loads_through_our_encoder_are_taken_and_refused_as_before(
        charon: CharonProcess) -> None:  # noqa: F811
    with ViciClient(charon.socket_path, timeout=10) as client:
        session = CharonSession(client)
        session.load(VPN, "ours", CONN, replaced=False)
        client.load_conn("package", CONN)  # the vici package's encoder
        session.load(PSK, "ours-k", {"type": "IKE", "data": SecretBytes(b"\x00s3cr3t"),
                                     "owners": ["peer.example.net"]}, replaced=False)
        assert client.get_conns() >= {"ours", "package"}
        assert "ours-k" in client.get_shared()
        conns = {name: entry for e in client.list_conns() for name, entry in e.items()}
        assert conns["ours"] == conns["package"]
        assert conns["ours"]["children"]["trunk"]["remote-ts"] == [b"192.168.99.0/24"]

        with pytest.raises(ViciError) as package:
            client.load_conn("bad", BAD_CONN)
        with pytest.raises(EntryRefused) as ours:
            session.load(VPN, "bad", BAD_CONN, replaced=False)
        assert ours.value.message == package.value.errmsg != ""
        with pytest.raises(ViciError) as package:
            client.load_shared("bad-k", {"type": "BOGUS", "data": b"x"})
        with pytest.raises(EntryRefused) as ours:
            session.load(PSK, "bad-k", {"type": "BOGUS", "data": b"x"}, replaced=False)
        assert ours.value.message == package.value.errmsg != ""
        # the session is still usable after the refusals (nothing left unread)
        assert "bad" not in client.get_conns() and "ours" in client.get_conns()

        # unloads: charon's refusal of a missing connection is the same text either way
        with pytest.raises(ViciError) as package:
            client.unload_conn("never-loaded")
        with pytest.raises(ViciError) as ours_unload:
            charon_backend._request(client, "unload-conn", {"name": "never-loaded"})
        assert ours_unload.value.errmsg == package.value.errmsg
        assert "not found" in package.value.errmsg
        session.unload(VPN, "never-loaded")  # already gone is what we want, as before
        assert session.unload_bulk(VPN, ["ours", "never2"]) == {"ours": None, "never2": None}
        session.unload(PSK, "ours-k")
        assert "ours" not in client.get_conns() and "ours-k" not in client.get_shared()
