"""Crash-safe files: a reader finds the old content or the new one, never a mix.

Files of the state directory may hold secrets (pre-shared keys in running, candidate, startup,
their logs and the commit history; password hashes in users.json; the SSH host key): they are
created 0600 from the start, and :func:`secure_state_dir` checks, at start-up, that they and
the folders holding them are private to the server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

FILE_MODE = 0o600
DIR_MODE = 0o700
# what the state directory holds that may be a secret (glob patterns, relative to it)
SECRET_FILES = (
    "running.xml", "running.*.log", "candidate.xml", "candidate.*.log", "startup.xml",
    "confirmed-backup.xml", "users.json", "ssh_host_*_key", ".*.tmp",
    "history/*",
    "ca/ca.key", "ca/*.pem", "ca/index.json", "ca/.*", "ca/issued/*",  # nf/ca_store.py
)
PRIVATE_DIRS = (".", "history", "ca", "ca/issued")


class UnsafeStateError(OSError):
    """A file or folder of the state directory is not the server's own: refuse to start."""


def atomic_write(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Write ``data`` to ``path`` through a temporary file, fsync and rename.

    The temporary file is created with ``mode`` (never wider, whatever the umask or a left-over
    temporary file): no reader can open it in the meantime.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # a left-over may have other permissions: never write into it
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # exactly mode, whatever the umask
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a created, renamed or removed name in ``directory`` durable."""
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def read(path: Path) -> bytes | None:
    """The content of ``path``, or None when it does not exist."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def secure_state_dir(state_dir: Path) -> list[Path]:
    """Check the state directory before the server reads it; return what was fixed.

    The directory (and ``history/``) must be 0700 and every file that may hold a secret 0600,
    all owned by the server's user. Wider permissions are narrowed, each with a warning naming
    the file; something owned by another user, or not a regular file or folder (a symbolic
    link, a device), raises :class:`UnsafeStateError`: someone else can write it.
    """
    uid = os.geteuid()
    fixed: list[Path] = []

    def check(path: Path, want: int, is_dir: bool, follow: bool = False) -> None:
        def kind(st: os.stat_result) -> None:
            if not (stat.S_ISDIR(st.st_mode) if is_dir else stat.S_ISREG(st.st_mode)):
                what = "a folder" if is_dir else "a regular file"
                raise UnsafeStateError(f"{path} is not {what}: refusing to use it")

        kind(path.stat() if follow else path.lstat())  # before opening: no device, no link
        flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)
        fd = os.open(path, flags)  # fstat/fchmod what was opened: nothing swapped in between
        try:
            st = os.fstat(fd)
            kind(st)
            if st.st_uid != uid:
                raise UnsafeStateError(
                    f"{path} belongs to uid {st.st_uid}, not to this server (uid {uid}): "
                    "refusing to use it")
            mode = stat.S_IMODE(st.st_mode)
            if mode & ~want:
                os.fchmod(fd, want)
                log.warning("%s was open to other users (mode %04o): changed to %04o",
                            path, mode, want)
                fixed.append(path)
        finally:
            os.close(fd)

    for name in PRIVATE_DIRS:  # the state directory itself may be a symbolic link
        d = state_dir / name
        if os.path.lexists(d):
            check(d, DIR_MODE, True, follow=name == ".")
    for pattern in SECRET_FILES:
        for f in sorted(state_dir.glob(pattern)):
            check(f, FILE_MODE, False)
    return fixed
