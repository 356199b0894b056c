"""Constants shared by the tests."""

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS = "urn:ipsec-nf:yang:ipsec-nf"
P = {"nc": NC, "i": NS}
