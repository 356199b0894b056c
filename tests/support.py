"""Constants and small helpers shared by the tests."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parent / "data"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS = "urn:ipsec-nf:yang:ipsec-nf"
P = {"nc": NC, "i": NS}


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command, failing the test with its output."""
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if check and res.returncode != 0:
        pytest.fail(f"{' '.join(argv)} failed ({res.returncode}): {res.stderr}{res.stdout}")
    return res


def wait_for(pred: Callable[[], Any], timeout: float = 30, every: float = 0.5) -> Any:
    """Poll ``pred`` until it returns something true or ``timeout`` passes; its last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(every)
    return last


_NETNS = itertools.count()


def ns_pids(ns: str) -> list[int]:
    """Live processes in a network namespace (zombies have left it)."""
    res = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
    return [int(p) for p in res.stdout.split()]


@contextlib.contextmanager
def netns(prefix: str = "nft", addresses: tuple[str, ...] = ()) -> Iterator[str]:
    """A fresh network namespace (a unique name), lo up with ``addresses`` (CIDR) on it;
    afterwards the processes left in it (only the test's own live there) are killed and it is
    deleted. Fails loudly, never skips, without root or a usable ``ip netns``."""
    if os.geteuid() != 0:
        pytest.fail("this test needs root (ip netns, charon); run it as root")
    name = f"{prefix}{os.getpid()}x{next(_NETNS)}"[:15]
    res = sh("ip", "netns", "add", name, check=False)
    if res.returncode != 0:
        pytest.fail(f"`ip netns add` is not usable here: {res.stderr.strip()}")
    try:
        sh("ip", "-n", name, "link", "set", "lo", "up")
        for cidr in addresses:
            sh("ip", "-n", name, "addr", "add", cidr, "dev", "lo")
        yield name
    finally:
        for pid in ns_pids(name):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def libyang_printed(schema: Any, roots: list) -> Any:
    """ROOTS (config with state merged in) parsed strictly by libyang as data of ``schema``
    (an nf.schema.Schema) and printed back, under one ``<r>`` element: fails when the tree is
    not valid data of the modules."""
    from lxml import etree

    xml = "".join(etree.tostring(r, encoding="unicode") for r in roots)
    dnode = schema.ctx.parse_data_mem(xml, "xml", strict=True, validate_present=True)
    assert dnode is not None
    try:
        out = dnode.print_mem("xml", with_siblings=True)
    finally:
        dnode.free()
    return etree.fromstring(f"<r>{out}</r>".encode())


def port_open(host: str, port: int) -> bool:
    """Whether a TCP connection to HOST:PORT is accepted now (a server is listening)."""
    import socket

    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False
