"""gNMI credentials: a checked password is remembered while used (northbound/gnmi/auth.py).

The user store is real (users.json written by ``users.set_password``), with a cheaper scrypt
cost than the product's so the test does not spend seconds hashing; the hash checks are
counted by wrapping ``users.authenticate``, and the clock is the module's, moved by hand.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest

from northbound import users
from northbound.gnmi import auth


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(users, "_SCRYPT_N", 2**10)
    users.set_password(tmp_path, "alice", "secret-1")
    checks: list[str] = []
    real = users.authenticate

    def counted(state_dir, user, password):
        checks.append(user)
        return real(state_dir, user, password)

    monkeypatch.setattr(users, "authenticate", counted)
    clock = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(auth, "time", SimpleNamespace(monotonic=lambda: clock.now))
    return auth.Authenticator(tmp_path), checks, clock, tmp_path


def login(a: auth.Authenticator, password: str = "secret-1") -> auth.GnmiSession:
    return asyncio.run(a.check({"username": "alice", "password": password},
                               "ipv4:192.0.2.1:5000"))


def test_a_poller_pays_one_hash_while_it_keeps_calling(setup) -> None:
    a, checks, clock, _ = setup
    assert login(a).user == "alice"
    for _ in range(30):  # one call every 4 minutes for 2 hours minus: within IDLE each time
        clock.now += 240
        if clock.now - 1000.0 >= auth.LIFETIME:
            break
        login(a)
    assert checks == ["alice"]
    clock.now = 1000.0 + auth.LIFETIME + 1  # past the lifetime: checked again
    login(a)
    assert checks == ["alice", "alice"]


def test_an_idle_caller_is_checked_again(setup) -> None:
    a, checks, clock, _ = setup
    login(a)
    clock.now += auth.IDLE + 1
    login(a)
    assert len(checks) == 2


def test_a_wrong_password_is_never_taken_for_the_remembered_one(setup) -> None:
    a, checks, _, _ = setup
    login(a)
    with pytest.raises(auth.Unauthenticated):
        login(a, "secret-2")
    assert len(checks) == 2


def test_a_password_change_forgets_at_once(setup) -> None:
    a, checks, _, state = setup
    login(a)
    users.set_password(state, "alice", "secret-2")
    with pytest.raises(auth.Unauthenticated):
        login(a, "secret-1")
    assert login(a, "secret-2").user == "alice"
    assert len(checks) == 3
