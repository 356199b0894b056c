"""The kernel test harness: boot Debian's stock kernel under QEMU (TCG) once and run the
kernel-dependent tests inside it.

Our CI hosts have XFRM but no ESP in their kernel (docs/benchmarks.md, /proc/crypto has no
gcm); Debian's `linux-image-amd64` has both. The guest runs the *host's own root*, shared
read-only over virtio-9p with a tmpfs overlay on top, so it runs the host's ip, charon,
python3 and this checkout at the same paths, with no image to build. A second, read-write
9p share (the results folder) brings the guest's junit XML, output and exit status back.

    python -m tests.kernel.vm prepare            # download + unpack the kernel, build the initramfs
    python -m tests.kernel.vm run -- CMD ARGS    # boot, run CMD in the checkout, power off

`prepare` is idempotent: the kernel package is resolved from `linux-image-amd64` with
apt-cache, unpacked under the cache folder ($IPSEC_NF_KERNEL_CACHE, default
/var/cache/ipsec-nf-test; not in git) and reused while its version stays the same.
`run` always ends QEMU: the guest powers itself off, and QEMU runs under `timeout
--kill-after` with a deadline, so nothing is left behind even when the guest hangs.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("IPSEC_NF_KERNEL_CACHE", "/var/cache/ipsec-nf-test"))
CHECKOUT = Path(__file__).resolve().parents[2]
META_PACKAGE = "linux-image-amd64"
# what the initramfs needs to mount the host's root (9p over virtio-pci) and the overlay
INITRAMFS_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay")
# loaded in the guest before the command runs: the kernel data plane and its algorithms
GUEST_MODULES = ("xfrm_user", "esp4", "esp6", "ah4", "ah6", "xfrm_interface", "ip_vti",
                 "ip6_vti", "gcm", "ccm", "authenc", "seqiv", "echainiv", "ctr",
                 "ghash_generic", "chacha20poly1305", "veth", "dummy", "tun", "af_key")
GUEST_MARK = "ipsec_nf_guest=1"  # on the guest's kernel command line (tests/kernel/guest)
MEMORY_MB = 2048
CPUS = 2


class HarnessError(RuntimeError):
    """The harness itself failed (no kernel, no QEMU, the guest did not boot or report)."""


@dataclass(frozen=True)
class Kernel:
    """A prepared guest kernel: its version, image, initramfs and module tree."""

    version: str
    vmlinuz: Path
    initrd: Path
    modules: Path  # .../lib/modules/VERSION, depmod'ed


@dataclass
class GuestRun:
    """What one boot of the guest gave back."""

    rc: int | None  # the command's exit status; None: it never reported one
    results: Path  # the read-write share: rc, output.log, junit XML, ...
    console: str  # the guest's serial console (kernel and init messages)
    output: str  # the command's stdout and stderr
    seconds: float  # wall time from QEMU's start to its end
    qemu_rc: int  # QEMU's own exit status (124/137: killed by the deadline)


def _run(*cmd: str, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True,
                              **kw)
    except FileNotFoundError as e:
        raise HarnessError(f"{cmd[0]} is not installed (make test installs it): {e}") from e
    except subprocess.CalledProcessError as e:
        raise HarnessError(f"{shlex.join(cmd)} failed ({e.returncode}): "
                           f"{(e.stderr or e.stdout).strip()[-2000:]}") from e


def kernel_package() -> str:
    """The versioned package `linux-image-amd64` depends on (linux-image-6.1.0-NN-amd64)."""
    def depends() -> str:
        r = subprocess.run(["apt-cache", "depends", META_PACKAGE], capture_output=True,
                           text=True, timeout=120)
        return r.stdout + r.stderr
    out = depends()
    if "Depends:" not in out:  # a fresh machine's empty package index
        _run("apt-get", "update", "-q", timeout=900)
        out = depends()
    m = re.search(r"Depends:\s*(linux-image-\S+)", out)
    if not m:
        raise HarnessError(f"apt-cache knows no {META_PACKAGE} (apt-get update?):\n{out}")
    return m.group(1)


def _download(pkg: str, into: Path) -> Path:
    for attempt in (1, 2):
        try:
            _run("apt-get", "download", pkg, cwd=into, timeout=900)
            break
        except HarnessError:
            if attempt == 2:
                raise
            _run("apt-get", "update", "-q", timeout=900)  # a stale index names a gone .deb
    debs = sorted(into.glob(f"{pkg}_*.deb"))
    if not debs:
        raise HarnessError(f"apt-get download {pkg} left no .deb in {into}")
    return debs[-1]


def _module_order(root: Path, version: str, names: tuple[str, ...]) -> list[Path]:
    """The .ko files to insmod, dependencies first, each once."""
    out = _run("modprobe", "-d", str(root), "-S", version, "--show-depends", "-a",
               *names).stdout
    seen: list[Path] = []
    for line in out.splitlines():
        parts = line.split()
        if parts[:1] == ["insmod"] and Path(parts[1]) not in seen:
            seen.append(Path(parts[1]))
        elif parts[:1] == ["builtin"]:
            continue
    return seen


def newc_archive(top: Path) -> bytes:
    """A cpio archive (the "newc" format the kernel unpacks as an initramfs) of a folder's
    files, folders and symbolic links (no cpio program needed)."""
    out = bytearray()

    def entry(name: str, mode: int, data: bytes, ino: int) -> None:
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0)
        out.extend(b"070701" + b"".join(b"%08x" % f for f in fields))
        out.extend(name.encode() + b"\0")
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))
    paths = sorted(top.rglob("*"))
    for ino, path in enumerate(paths, 1):
        st = path.lstat()
        data = os.readlink(path).encode() if path.is_symlink() else (
            b"" if path.is_dir() else path.read_bytes())
        entry(str(path.relative_to(top)), st.st_mode, data, ino)
    entry("TRAILER!!!", 0, b"", 0)
    return bytes(out)


INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
fail() { echo "ipsec-nf-initramfs: $*"; echo o > /proc/sysrq-trigger; sleep 10; }
echo 1 > /proc/sys/kernel/sysrq
for m in $(cat /modules.order); do insmod /modules/$m || fail "insmod $m"; done
mkdir -p /lower /rw /newroot
OPTS=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o $OPTS,ro,cache=loose hostroot /lower || fail "mount hostroot"
mount -t tmpfs -o mode=0755 tmpfs /rw && mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot \
  || fail "mount overlay"
mkdir -p /newroot/ipsec-nf-results
mount -t 9p -o $OPTS results /newroot/ipsec-nf-results || fail "mount results"
mount --move /dev /newroot/dev
umount /sys /proc
exec switch_root /newroot /bin/sh /ipsec-nf-results/guest.sh
"""

GUEST_SH = r"""#!/bin/sh
# written by tests/kernel/vm.py for one boot: set up the guest, run the command, power off
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
export PYTHONUNBUFFERED=1
R=/ipsec-nf-results
mount -t proc proc /proc
mount -t sysfs sys /sys
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /var/tmp
[ -d /sys/fs/bpf ] || true
mkdir -p /lib/modules
ln -sfn {modules} /lib/modules/{version}
modprobe -a {guest_modules} > $R/modprobe.log 2>&1 || echo "modprobe failed: see modprobe.log"
ip link set lo up
hostname ipsec-nf-guest
cd {checkout}
echo "guest ready after $(cut -d' ' -f1 /proc/uptime) s"
{command} > $R/output.log 2>&1
echo $? > $R/rc.tmp && mv $R/rc.tmp $R/rc
sync
echo o > /proc/sysrq-trigger
sleep 30
"""


def prepare(cache: Path = CACHE, log=print) -> Kernel:
    """The guest kernel, downloaded, unpacked and with its initramfs (reused when cached)."""
    pkg = kernel_package()
    version = pkg.removeprefix("linux-image-")
    top = cache / pkg
    root = top / "root"
    kernel = Kernel(version, root / "boot" / f"vmlinuz-{version}", top / "initrd.cpio",
                    root / "lib" / "modules" / version)
    if (top / ".ready").exists() and kernel.vmlinuz.exists() and kernel.initrd.exists():
        return kernel
    busybox = Path("/bin/busybox")
    if not busybox.exists():
        raise HarnessError("busybox is not installed (package busybox-static; make test "
                           "installs it)")
    log(f"kernel harness: preparing {pkg} in {top}")
    shutil.rmtree(top, ignore_errors=True)
    top.mkdir(parents=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        deb = _download(pkg, Path(tmp))
        _run("dpkg-deb", "-x", str(deb), str(root))
    _run("depmod", "-b", str(root), version)
    if not kernel.vmlinuz.exists():
        raise HarnessError(f"{deb.name} holds no {kernel.vmlinuz.name}")
    # the initramfs: busybox, the modules to reach the host's root, /init
    ird = top / "initramfs"
    for d in ("bin", "proc", "sys", "dev", "modules"):
        (ird / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, ird / "bin" / "busybox")
    order = []
    for ko in _module_order(root, version, INITRAMFS_MODULES):
        shutil.copy2(ko, ird / "modules" / ko.name)
        order.append(ko.name)
    (ird / "modules.order").write_text("\n".join(order) + "\n")
    (ird / "init").write_text(INIT)
    (ird / "init").chmod(0o755)
    kernel.initrd.write_bytes(newc_archive(ird))
    (top / ".ready").write_text(version + "\n")
    # an older kernel's folder is dead weight once a new one is ready
    for old in cache.glob("linux-image-*"):
        if old != top and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return kernel


def qemu_pids() -> list[int]:
    """QEMU processes started by this harness (found by the results share on their command
    line), to check that none is left behind."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"qemu-system-x86_64") and \
                any(b"mount_tag=results" in a and b"ipsec-nf-kvm" in a for a in cmd):
            pids.append(int(proc.name))
    return pids


def run(command: list[str], results: Path, timeout: float = 900, kernel: Kernel | None = None,
        log=print) -> GuestRun:
    """Boot the guest, run ``command`` (argv, in the checkout) in it, and return when QEMU
    has ended (at most ``timeout`` seconds, then it is killed)."""
    kernel = kernel or prepare(log=log)
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        raise HarnessError("qemu-system-x86_64 is not installed (package qemu-system-x86; "
                           "make test installs it)")
    results.mkdir(parents=True, exist_ok=True)
    for stale in ("rc", "output.log", "console.log", "modprobe.log"):
        (results / stale).unlink(missing_ok=True)
    (results / "guest.sh").write_text(GUEST_SH.format(
        modules=shlex.quote(str(kernel.modules)), version=kernel.version,
        guest_modules=" ".join(GUEST_MODULES), checkout=shlex.quote(str(CHECKOUT)),
        command=shlex.join(command)))
    console = results / "console.log"
    append = ("console=ttyS0 panic=-1 quiet loglevel=4 cryptomgr.notests=1 "
              f"rdinit=/init {GUEST_MARK}")
    # the tag "ipsec-nf-kvm" in the share's path names our QEMUs (qemu_pids)
    share = results.resolve()
    argv = [
        "timeout", "--kill-after=10", str(int(timeout)), qemu,
        "-accel", "tcg,thread=multi", "-cpu", "max", "-M", "pc", "-smp", str(CPUS),
        "-m", str(MEMORY_MB), "-nodefaults", "-display", "none", "-monitor", "none",
        "-no-reboot", "-serial", f"file:{console}",
        "-kernel", str(kernel.vmlinuz), "-initrd", str(kernel.initrd), "-append", append,
        "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,"
                   "multidevs=remap",
        "-virtfs", f"local,path={share},mount_tag=results,security_model=none,"
                   f"id=ipsec-nf-kvm",
    ]
    start = time.monotonic()
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    seconds = time.monotonic() - start
    rc_file = results / "rc"
    rc = int(rc_file.read_text().strip()) if rc_file.exists() else None

    def text(p: Path) -> str:
        return p.read_text(errors="replace") if p.exists() else ""
    out = GuestRun(rc, results, text(console), text(results / "output.log"), seconds,
                   proc.returncode)
    if proc.returncode != 0 and rc is None:
        out.console += f"\n[qemu exit status {proc.returncode}]\n{proc.stderr[-4000:]}"
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.kernel.vm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("prepare", help="download and unpack the kernel, build the initramfs")
    r = sub.add_parser("run", help="boot the guest and run a command in the checkout")
    r.add_argument("--results", type=Path, default=None,
                   help="the read-write share (default: a new temporary folder)")
    r.add_argument("--timeout", type=float, default=900)
    r.add_argument("command", nargs="+")
    args = p.parse_args(argv)
    try:
        if args.cmd == "prepare":
            k = prepare()
            print(f"kernel {k.version}: {k.vmlinuz}, initramfs {k.initrd}")
            return 0
        results = args.results or Path(tempfile.mkdtemp(prefix="ipsec-nf-kvm-"))
        g = run(args.command, results, args.timeout)
    except HarnessError as e:
        print(f"kernel harness: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(g.output)
    print(f"--- guest exit status {g.rc}, {g.seconds:.1f} s; results in {results}",
          file=sys.stderr)
    if g.rc is None:
        print(g.console[-6000:], file=sys.stderr)
        return 2
    return g.rc


if __name__ == "__main__":
    sys.exit(main())
