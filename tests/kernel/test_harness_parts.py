"""The kernel harness's pure parts, on the host: the guest's junit results become host
results (a skip in the guest is a failure), and the initramfs archive format."""

from __future__ import annotations

from pathlib import Path

from tests.kernel.guest_run import guest_tests, parse_junit
from tests.kernel.vm import newc_archive

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.kernel.guest.test_x" name="test_ok" time="1"/>
<testcase classname="tests.kernel.guest.test_x" name="test_p[a]" time="1"/>
<testcase classname="tests.kernel.guest.test_x" name="test_p[b]" time="1">
  <failure message="AssertionError: boom">trace</failure></testcase>
<testcase classname="tests.kernel.guest.test_x" name="test_s" time="0">
  <skipped message="no esp4"/></testcase>
</testsuite></testsuites>"""


def test_junit_cases_by_function(tmp_path: Path) -> None:
    f = tmp_path / "j.xml"
    f.write_text(JUNIT)
    cases = parse_junit(f)
    assert cases["test_x.py::test_ok"] == [("test_ok", None)]
    assert [n for n, _ in cases["test_x.py::test_p"]] == ["test_p[a]", "test_p[b]"]
    assert cases["test_x.py::test_p"][0][1] is None
    assert "failure: AssertionError: boom" in cases["test_x.py::test_p"][1][1]
    assert "must not skip" in cases["test_x.py::test_s"][0][1]


def test_guest_tests_are_read_not_imported() -> None:
    names = guest_tests()
    assert "test_site_to_site_kernel.py::test_trap_vpn_comes_up_on_the_first_packet" in names


def test_newc_archive(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "init").write_text("#!/bin/sh\n")
    (tmp_path / "bin" / "sh").symlink_to("busybox")
    data = newc_archive(tmp_path)
    assert data.startswith(b"070701") and data.count(b"070701") == 4
    assert b"TRAILER!!!\0" in data and len(data) % 4 == 0
    assert b"bin/sh\0" in data and b"busybox" in data
