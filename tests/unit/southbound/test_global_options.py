"""How charon takes a change of global options: nothing, a settings reload or a restart."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from nf.effective import DosProtection, GlobalOptions
from southbound.charon import MODEL_DEFAULTS, apply_method, render_conf

UNSET = GlobalOptions()


def test_unset_options_are_the_models_defaults() -> None:
    """An empty datastore and one holding the defaults give charon the same settings."""
    assert apply_method(UNSET, MODEL_DEFAULTS) is None
    assert render_conf(Path("/x"), options=UNSET) == render_conf(
        Path("/x"), options=MODEL_DEFAULTS)


@pytest.mark.parametrize(("change", "method"), [
    ({"retransmit_tries": 2}, "reload"),
    ({"retransmit_timeout": 1.5, "retransmit_base": 1.0}, "reload"),
    ({"threads": 20}, "restart"),
    ({"acquire_timeout": 60}, "restart"),
    ({"retransmit_tries": 2, "threads": 20}, "restart"),
    ({"dos_protection": DosProtection(cookie_threshold=20, block_threshold=5,
                                      init_limit_half_open=0)}, "restart"),
])
def test_method(change: dict, method: str) -> None:
    assert apply_method(MODEL_DEFAULTS, replace(MODEL_DEFAULTS, **change)) == method
