"""Which YANG modules the server loads, from where, and which of their features it implements."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path


def _our_modules() -> Path:
    """Folder of our own YANG modules: ``nf/yang/`` in an installed package (the wheel carries
    the repository's ``yang/`` there), else the checkout's ``yang/`` (the source of truth)."""
    here = Path(__file__).resolve().parent
    installed = here / "yang"
    if (installed / "ipsec-nf.yang").is_file():
        return installed
    return here.parent / "yang"


YANG_DIR = _our_modules()
MODULES = ("ipsec-nf", "ietf-netconf-acm",
           # RFC 9061 (SDN-based IPsec flow protection): the IKE case; the IKE-less case is
           # loaded and refused at validate (nf/i2nsf_ike.py)
           "ietf-i2nsf-ikec", "ietf-i2nsf-ike", "ietf-i2nsf-ikeless")
SUPPORT_MODULES = (
    "ietf-netconf-with-defaults",
    "ietf-netconf-monitoring",
    "ietf-netconf-notifications",
    "ietf-netconf-nmda",
    "ietf-origin",
    "nc-notifications",
    # RFC 8639/8641 subscribed notifications and YANG-Push (northbound/subscriptions.py)
    "ietf-subscribed-notifications",
    "ietf-yang-push",
)
# Features of the loaded modules that the server implements (announced in the YANG library):
# ietf-netconf's follow the hello capabilities (RFC 6241 section 8; no :url), and
# ietf-netconf-nmda's 'origin' and 'with-defaults' (get-data with-origin, origin-filter and
# with-defaults, RFC 8526 section 3.1.1).
FEATURES: dict[str, tuple[str, ...]] = {
    "ietf-netconf": ("writable-running", "candidate", "confirmed-commit", "rollback-on-error",
                     "validate", "startup", "xpath"),
    "ietf-netconf-nmda": ("origin", "with-defaults"),
    # dynamic subscriptions over NETCONF (RFC 8640 section 4: encode-xml is mandatory); no
    # configured subscriptions, QoS, DSCP, interface or VRF designation, JSON encoding
    "ietf-subscribed-notifications": ("encode-xml", "replay", "subtree", "xpath"),
    "ietf-yang-push": ("on-change",),
    # RFC 9061's IKE-less case: sadb-acquire/expire/seq-overflow/bad-spi from the kernel
    # (southbound/ikeless_events.py)
    "ietf-i2nsf-ikeless": ("ikeless-notification",),
}


def standard_module_dirs() -> list[Path]:
    """Folders of the IETF/IANA modules that the pyang package (a runtime dependency) installs.

    They are data files of the pyang distribution, under ``<prefix>/share/yang/modules``;
    the folders are read from its installed file list, so a ``--user`` or ``/usr/local``
    install is found as well as a virtual environment (``sys.prefix``, the fallback).
    """
    dirs: list[Path] = []
    try:
        files = importlib.metadata.files("pyang") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if f.suffix == ".yang" and "modules" in f.parts:
            d = Path(str(f.locate())).resolve().parent
            if d not in dirs:
                dirs.append(d)
    base = Path(sys.prefix) / "share" / "yang" / "modules"
    for d in (base / "ietf", base / "iana"):
        if d not in dirs:
            dirs.append(d)
    return dirs
