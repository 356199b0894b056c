"""Unit tests for northbound.users."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from northbound import users

ED25519 = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKu+0cB4V4yX1hB5q8q0kKcQ7GUfvT9PVl6s1s5f6gG4 alice@lab"
)


def test_first_user_is_admin(tmp_path: Path) -> None:
    assert users.set_password(tmp_path, "alice", "s3cret") == ["admin"]
    assert users.groups_of(tmp_path, "alice") == ["admin"]


def test_first_user_with_groups_also_admin(tmp_path: Path) -> None:
    assert users.set_password(tmp_path, "alice", "pw", ["ops"]) == ["admin", "ops"]


def test_second_user_has_no_groups(tmp_path: Path) -> None:
    users.set_password(tmp_path, "alice", "pw1")
    assert users.set_password(tmp_path, "bob", "pw2") == []
    assert users.groups_of(tmp_path, "bob") == []
    assert users.set_password(tmp_path, "carol", "pw3", ["ops", "ops"]) == ["ops"]
    assert users.list_users(tmp_path) == ["alice", "bob", "carol"]


def test_password_change_keeps_groups(tmp_path: Path) -> None:
    users.set_password(tmp_path, "alice", "old")
    assert users.set_password(tmp_path, "alice", "new") == ["admin"]
    assert users.verify(tmp_path, "alice", "new")
    assert not users.verify(tmp_path, "alice", "old")
    assert users.set_password(tmp_path, "alice", "new", ["ops"]) == ["ops"]


def test_verify(tmp_path: Path) -> None:
    users.set_password(tmp_path, "alice", "correct horse")
    assert users.verify(tmp_path, "alice", "correct horse")
    assert not users.verify(tmp_path, "alice", "correct horsE")
    assert not users.verify(tmp_path, "alice", "")
    assert not users.verify(tmp_path, "mallory", "correct horse")


def test_verify_fresh_state_dir(tmp_path: Path) -> None:
    assert not users.verify(tmp_path / "missing", "alice", "x")
    assert users.groups_of(tmp_path / "missing", "alice") == []


def test_hash_is_salted_and_not_plaintext(tmp_path: Path) -> None:
    users.set_password(tmp_path, "alice", "same-password")
    users.set_password(tmp_path, "bob", "same-password")
    text = (tmp_path / "users.json").read_text()
    assert "same-password" not in text
    data = json.loads(text)["users"]
    a, b = data["alice"]["password"], data["bob"]["password"]
    assert a["alg"] == "scrypt" and {"n", "r", "p", "salt", "hash"} <= a.keys()
    assert a["salt"] != b["salt"] and a["hash"] != b["hash"]


def test_file_permissions(tmp_path: Path) -> None:
    state = tmp_path / "state"
    users.set_password(state, "alice", "pw")
    mode = stat.S_IMODE((state / "users.json").stat().st_mode)
    assert mode == 0o600
    users.set_password(state, "bob", "pw")
    assert stat.S_IMODE((state / "users.json").stat().st_mode) == 0o600
    assert not [p for p in state.iterdir() if p.name.endswith(".tmp")]


def test_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        users.set_password(tmp_path, "", "pw")
    with pytest.raises(ValueError):
        users.set_password(tmp_path, "a b", "pw")
    with pytest.raises(ValueError):
        users.set_password(tmp_path, "alice", "")
    assert not (tmp_path / "users.json").exists()


def test_corrupt_file(tmp_path: Path) -> None:
    (tmp_path / "users.json").write_text("{not json")
    with pytest.raises(users.UsersFileError):
        users.verify(tmp_path, "alice", "pw")


def test_authorized_keys(tmp_path: Path) -> None:
    assert users.authorized_keys(tmp_path, "alice") == []
    users.add_authorized_key(tmp_path, "alice", ED25519 + "\n")
    users.add_authorized_key(tmp_path, "alice", ED25519)  # duplicate ignored
    assert users.authorized_keys(tmp_path, "alice") == [ED25519]
    # key-only first user is admin too, but has no password
    assert users.groups_of(tmp_path, "alice") == ["admin"]
    assert not users.verify(tmp_path, "alice", "")
    users.set_password(tmp_path, "alice", "pw")
    assert users.authorized_keys(tmp_path, "alice") == [ED25519]
    assert users.verify(tmp_path, "alice", "pw")


@pytest.mark.parametrize(
    "line",
    ["", "ssh-ed25519", "ssh-ed25519 !!!notbase64", "foo AAAA", "ssh-rsa " + ED25519.split()[1]],
)
def test_bad_authorized_key(tmp_path: Path, line: str) -> None:
    with pytest.raises(ValueError):
        users.add_authorized_key(tmp_path, "alice", line)
