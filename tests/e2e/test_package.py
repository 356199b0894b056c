"""ipsec-nf as a package: the sdist and wheel built from the tree (python -m build), installed
in a fresh virtual environment that knows nothing of the checkout, serve a NETCONF client with
every YANG module; the systemd unit shipped in packaging/ verifies against that install."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.tools.gateway import Server, add_user, connect, netns

pytestmark = pytest.mark.e2e  # root, network namespaces, charon
ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("nf", "northbound", "southbound", "tools")
UNIT = ROOT / "packaging" / "ipsec-nf.service"
UNIT_BIN = "/opt/ipsec-nf/bin/ipsec-nf"


@dataclass
class Installed:
    """A wheel installed in a fresh virtual environment."""

    sdist: Path
    wheel: Path
    venv: Path
    work: Path

    @property
    def cli(self) -> tuple[str, ...]:
        return (str(self.venv / "bin" / "ipsec-nf"),)


def run(*argv: str | Path, cwd: Path, timeout: float = 900) -> str:
    """Run a command outside the checkout (no PYTHONPATH); fail with its output."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    r = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=timeout)
    if r.returncode != 0:
        pytest.fail(f"{' '.join(map(str, argv))} failed ({r.returncode}):\n"
                    f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Copy the tree (tracked and new files, as git sees them), build it, install the wheel."""
    work = tmp_path_factory.mktemp("package")
    src = work / "src"
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT, capture_output=True, check=True)
    for name in listed.stdout.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    run(sys.executable, "-m", "build", "--outdir", work / "dist", src, cwd=work)
    (sdist,) = (work / "dist").glob("ipsec_nf-*.tar.gz")
    (wheel,) = (work / "dist").glob("ipsec_nf-*.whl")
    venv = work / "venv"
    # without a pip of its own (ensurepip alone took 8 s): this run's pip installs into it
    run("python3", "-m", "venv", "--without-pip", venv, cwd=work)
    run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q",
        wheel, cwd=work)
    return Installed(sdist, wheel, venv, work)


@pytest.fixture
def ns() -> Iterator[str]:
    with netns("nfpkg") as name:
        yield name


def test_the_wheel_carries_every_module_and_our_yang(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for pkg in PACKAGES:
        for py in (ROOT / pkg).rglob("*.py"):
            rel = py.relative_to(ROOT).as_posix()
            assert rel in names, f"{rel} is not in the wheel (a package missing in pyproject?)"
    yang = sorted(p.name for p in (ROOT / "yang").glob("*.yang"))
    assert yang and all(f"nf/yang/{n}" in names for n in yang), yang
    with tarfile.open(installed.sdist) as sd:  # the sdist builds the same wheel
        members = {m.name.split("/", 1)[1] for m in sd.getmembers() if "/" in m.name}
    assert {f"yang/{n}" for n in yang} <= members
    meta = zipfile.ZipFile(installed.wheel).read(
        next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "Requires-Dist: pyang" in meta  # the IETF modules, at run time


def test_the_installed_package_finds_its_modules_outside_the_checkout(
        installed: Installed) -> None:
    probe = ("import json, nf.schema as s, nf.yang_modules as y; s.Schema(); "
             "print(json.dumps([s.__file__, str(y.YANG_DIR), "
             "[str(d) for d in y.standard_module_dirs()]]))")
    where, yang_dir, std = json.loads(run(installed.venv / "bin" / "python", "-c", probe,
                                          cwd=installed.work))
    venv = str(installed.venv)
    assert where.startswith(venv) and yang_dir.startswith(venv), (where, yang_dir)
    assert any(d.startswith(venv) and d.endswith("ietf") for d in std), std
    version = run(*installed.cli, "--version", cwd=installed.work).strip()
    assert version == "ipsec-nf " + installed.wheel.name.split("-")[1]
    checked = run(*installed.cli, "check", ROOT / "docs" / "examples" / "site-a.xml",
                  cwd=installed.work)  # the offline check finds the wheel's modules too
    assert "vpn siteA-siteB" in checked and "connections {" in checked


def test_the_installed_server_serves_netconf(installed: Installed, ns: str) -> None:
    state = installed.work / "state"
    add_user(state, installed.cli)
    conf = installed.work / "serve.toml"
    conf.write_text(f'state-dir = "{state}"\nlisten = ["127.0.0.1:8830"]\n')
    with Server(ns, installed.work / "serve", ["--config", str(conf)], cli=installed.cli,
                cwd=installed.work) as server:
        server.wait_listening()
        with connect(ns) as m:
            caps = set(m.server_capabilities)
            ours = m.get_schema("ipsec-nf").data
            acm = m.get_schema("ietf-netconf-acm").data
            m.get_config("running")
    assert "urn:ietf:params:netconf:base:1.1" in caps
    assert "urn:ietf:params:netconf:capability:candidate:1.0" in caps
    assert any(c.startswith("urn:ietf:params:netconf:capability:yang-library:1.1")
               for c in caps), caps
    assert "module ipsec-nf" in ours and "module ietf-netconf-acm" in acm
    assert "Traceback" not in server.log(), server.log()


def test_the_systemd_unit(installed: Installed, tmp_path: Path) -> None:
    text = UNIT.read_text()
    settings = [ln.split("=", 1) for ln in text.splitlines()
                if "=" in ln and not ln.startswith("#")]
    unit = {k: v for k, v in settings}
    assert unit["ExecStart"] == f"{UNIT_BIN} serve --config /etc/ipsec-nf/ipsec-nf.toml"
    assert unit["Restart"] == "on-failure" and unit["StateDirectory"] == "ipsec-nf"
    assert unit["StateDirectoryMode"] == "0700" and unit["UMask"] == "0077"
    assert unit["StandardInput"] == "null" and "TTYPath" not in unit
    assert unit["StandardOutput"] == unit["StandardError"] == "journal"
    assert unit["Type"] == "notify"  # serve sends READY=1 (tests/integration/tools)
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing: `make test` installs it (package systemd)")
    # the unit as shipped, but its ExecStart pointing at this test's installed package
    local = tmp_path / "ipsec-nf.service"
    local.write_text(text.replace(UNIT_BIN, str(installed.venv / "bin" / "ipsec-nf")))
    r = subprocess.run([analyze, "verify", str(local)], capture_output=True, text=True,
                       timeout=120)
    complaints = [ln for ln in (r.stdout + r.stderr).splitlines() if "ipsec-nf" in ln]
    assert r.returncode == 0 and not complaints, r.stdout + r.stderr
