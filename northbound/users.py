"""Local NETCONF user store: ``<state_dir>/users.json``.

Passwords are stored as salted scrypt hashes together with their parameters
(N = 2^17, r = 8, p = 1: 128 MiB of memory per hash, OWASP's recommendation).
A hash made with other parameters (older entries used N = 2^14) keeps working
and is replaced by one at today's cost on the user's next successful login
(:func:`authenticate`).  The file is rewritten atomically (temporary file,
fsync, rename) with mode 0600.  The first user created in a fresh state
directory becomes a member of the ``admin`` group: an appliance's first user
is its administrator.

File layout::

    {"version": 1,
     "users": {"alice": {"groups": ["admin"],
                         "password": {"alg": "scrypt", "n": 131072, "r": 8,
                                      "p": 1, "salt": "<b64>", "hash": "<b64>"},
                         "authorized_keys": ["ssh-ed25519 AAAA... comment"]}}}
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

USERS_FILE = "users.json"
ADMIN_GROUP = "admin"

_LOCK_FILE = ".users.lock"
_SCRYPT_N = 2**17
_SCRYPT_R = 8
_SCRYPT_P = 1
# Bounds on the parameters read from users.json, so a damaged file cannot ask for
# gigabytes of memory: N up to 2^20 and r up to 32 (4 GiB at most in theory, 1 GiB at r = 8).
_MAX_N = 2**20
_MAX_R = 32
_MAX_P = 16
_DKLEN = 32
_SALT_LEN = 16
_DUMMY_SALT = b"\0" * _SALT_LEN


class UsersFileError(ValueError):
    """users.json exists but cannot be parsed."""


def users_path(state_dir: Path | str) -> Path:
    """Return the path of the user store inside ``state_dir``."""
    return Path(state_dir) / USERS_FILE


def _check_name(user: str) -> None:
    if not isinstance(user, str) or not user or len(user) > 255:
        raise ValueError("user name must be a non-empty string of at most 255 characters")
    if any(c.isspace() or not c.isprintable() or c == ":" for c in user):
        raise ValueError(f"invalid character in user name {user!r}")


def _load(state_dir: Path | str) -> dict[str, Any]:
    path = users_path(state_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"version": 1, "users": {}}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsersFileError(f"{path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("users"), dict):
        raise UsersFileError(f"{path}: missing 'users' object")
    return data


def _save(state_dir: Path | str, data: dict[str, Any]) -> None:
    path = users_path(state_dir)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


@contextlib.contextmanager
def _locked(state_dir: Path | str) -> Iterator[dict[str, Any]]:
    """Read-modify-write users.json under an exclusive lock; save on success."""
    sd = Path(state_dir)
    sd.mkdir(parents=True, exist_ok=True, mode=0o700)
    lfd = os.open(sd / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lfd, fcntl.LOCK_EX)
        data = _load(sd)
        yield data
        _save(sd, data)
    finally:
        os.close(lfd)


def _get_or_create(data: dict[str, Any], user: str) -> dict[str, Any]:
    users: dict[str, Any] = data["users"]
    entry = users.get(user)
    if entry is None:
        groups = [ADMIN_GROUP] if not users else []
        entry = {"groups": groups, "authorized_keys": []}
        users[user] = entry
    return entry


def _hash(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    # OpenSSL needs 128 * r * (N + p + 2) bytes; maxmem must cover it (its default is 32 MiB).
    maxmem = 128 * r * (n + p + 2) + (1 << 20)
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=maxmem
    )


def _new_record(password: str) -> dict[str, Any]:
    """A password record at today's cost, with a fresh salt."""
    salt = secrets.token_bytes(_SALT_LEN)
    digest = _hash(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _DKLEN)
    return {
        "alg": "scrypt",
        "n": _SCRYPT_N,
        "r": _SCRYPT_R,
        "p": _SCRYPT_P,
        "salt": base64.b64encode(salt).decode("ascii"),
        "hash": base64.b64encode(digest).decode("ascii"),
    }


def needs_rehash(record: Any) -> bool:
    """True when a stored password record was not made with today's algorithm and cost."""
    if not isinstance(record, dict):
        return False
    return (record.get("alg"), record.get("n"), record.get("r"), record.get("p")) != (
        "scrypt", _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)


def set_password(
    state_dir: Path | str, user: str, password: str, groups: list[str] | None = None
) -> list[str]:
    """Create ``user`` or change its password; return the user's groups.

    The first user of a fresh state directory also gets the ``admin`` group.
    ``groups`` (when given) replaces the groups of an existing user; when
    ``None`` an existing user keeps its groups and a new user gets none
    (except the first user, see above).
    """
    _check_name(user)
    if not isinstance(password, str) or not password:
        raise ValueError("password must be a non-empty string")
    record = _new_record(password)
    with _locked(state_dir) as data:
        first = not data["users"]
        entry = _get_or_create(data, user)
        if groups is not None:
            new = list(dict.fromkeys(groups))
            if first and ADMIN_GROUP not in new:
                new.insert(0, ADMIN_GROUP)
            entry["groups"] = new
        entry["password"] = record
        return list(entry["groups"])


def _check(rec: Any, password: Any) -> bool:
    """Check ``password`` against a stored record; a missing or malformed one costs the same."""
    try:
        if not isinstance(rec, dict) or rec.get("alg") != "scrypt":
            raise KeyError("no password")
        salt = base64.b64decode(rec["salt"], validate=True)
        expected = base64.b64decode(rec["hash"], validate=True)
        n, r, p = int(rec["n"]), int(rec["r"]), int(rec["p"])
        if not (2 <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= _MAX_R
                and 1 <= p <= _MAX_P and 16 <= len(expected) <= 64):
            raise ValueError("scrypt parameters out of bounds")
    except (KeyError, TypeError, ValueError, binascii.Error):
        _hash(password if isinstance(password, str) else "", _DUMMY_SALT,
              _SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _DKLEN)
        return False
    if not isinstance(password, str):
        return False
    digest = _hash(password, salt, n, r, p, len(expected))
    return hmac.compare_digest(digest, expected)


def _password_record(state_dir: Path | str, user: Any) -> Any:
    entry = _load(state_dir)["users"].get(user) if isinstance(user, str) else None
    return entry.get("password") if isinstance(entry, dict) else None


def verify(state_dir: Path | str, user: str, password: str) -> bool:
    """Return True if ``password`` is the password of ``user``.

    Unknown users, users without a password and malformed entries give False.
    The comparison is constant-time, and an unknown user costs the same scrypt
    computation as a known one.  This blocks for the whole hash (about a
    second): call it in a thread from an event loop.
    """
    return _check(_password_record(state_dir, user), password)


def authenticate(state_dir: Path | str, user: str, password: str) -> bool:
    """Like :func:`verify`, and re-hash an outdated record after a success.

    When the password is right but its record was made with another algorithm
    or cost (see :func:`needs_rehash`), it is replaced by a record at today's
    cost, unless the password was changed meanwhile.  Blocking: call it in a
    thread.
    """
    rec = _password_record(state_dir, user)
    if not _check(rec, password):
        return False
    if needs_rehash(rec):
        new = _new_record(password)
        with _locked(state_dir) as data:
            entry = data["users"].get(user)
            if isinstance(entry, dict) and entry.get("password") == rec:
                entry["password"] = new
    return True


def groups_of(state_dir: Path | str, user: str) -> list[str]:
    """Return the groups of ``user`` (empty for an unknown user)."""
    entry = _load(state_dir)["users"].get(user)
    if not isinstance(entry, dict):
        return []
    return [g for g in entry.get("groups", []) if isinstance(g, str)]


def list_users(state_dir: Path | str) -> list[str]:
    """Return the names of all users, sorted."""
    return sorted(_load(state_dir)["users"])


def _check_pubkey_line(line: str) -> str:
    line = line.strip()
    fields = line.split(None, 2)
    if len(fields) < 2 or "\n" in line:
        raise ValueError("expected an OpenSSH public key line: '<type> <base64> [comment]'")
    ktype, blob = fields[0], fields[1]
    if not (ktype.startswith(("ssh-", "ecdsa-", "sk-"))):
        raise ValueError(f"unsupported key type {ktype!r} (options are not supported)")
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("public key is not valid base64") from exc
    # The blob starts with the length-prefixed key type.
    if len(raw) < 4 or raw[4 : 4 + int.from_bytes(raw[:4], "big")] != ktype.encode():
        raise ValueError("public key blob does not match its key type")
    return line


def add_authorized_key(state_dir: Path | str, user: str, openssh_pubkey_line: str) -> None:
    """Allow ``user`` to log in with the given OpenSSH public key.

    Creates the user (without password) if needed; the same rules as for
    :func:`set_password` apply to the first user's groups.
    """
    _check_name(user)
    line = _check_pubkey_line(openssh_pubkey_line)
    with _locked(state_dir) as data:
        entry = _get_or_create(data, user)
        keys: list[str] = entry.setdefault("authorized_keys", [])
        blob = line.split()[1]
        if all(k.split()[1:2] != [blob] for k in keys):
            keys.append(line)


def authorized_keys(state_dir: Path | str, user: str) -> list[str]:
    """Return the OpenSSH public key lines ``user`` may log in with."""
    entry = _load(state_dir)["users"].get(user)
    if not isinstance(entry, dict):
        return []
    return [k for k in entry.get("authorized_keys", []) if isinstance(k, str)]
