"""southbound/kernel_esp.py on fake /proc, /sys and /lib/modules trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from southbound.kernel_esp import esp_sources, kernel_esp_missing

RELEASE = "6.1.0-57-amd64"


def tree(tmp_path: Path, crypto: str = "name : cbc(aes)\n") -> Path:
    (tmp_path / "proc/sys/kernel").mkdir(parents=True)
    (tmp_path / "proc/sys/kernel/osrelease").write_text(RELEASE + "\n")
    (tmp_path / "proc/crypto").write_text(crypto)
    (tmp_path / "sys/module/xfrm_user").mkdir(parents=True)
    (tmp_path / "lib/modules" / RELEASE).mkdir(parents=True)
    return tmp_path


def test_no_esp_is_refused_with_the_reason(tmp_path: Path) -> None:
    root = tree(tmp_path)
    # XFRM alone, and modules whose names only start like esp4, are not ESP
    (root / "lib/modules" / RELEASE / "modules.dep").write_text(
        "kernel/net/ipv4/esp4_offload.ko: kernel/net/xfrm/xfrm_algo.ko\n"
        "kernel/net/xfrm/xfrm_user.ko: kernel/net/xfrm/xfrm_algo.ko\n")
    assert esp_sources(root) == []
    why = kernel_esp_missing(root)
    assert why is not None
    assert f"the kernel ({RELEASE}) has no ESP" in why
    assert "--backend kernel-libipsec" in why and "modprobe esp4" in why
    assert "no gcm(aes)" in why


def test_no_module_tree_at_all(tmp_path: Path) -> None:
    root = tree(tmp_path, crypto="name : gcm(aes)\n")
    (root / "lib/modules" / RELEASE).rmdir()
    why = kernel_esp_missing(root)
    assert why is not None and "has no ESP" in why and "no gcm(aes)" not in why


@pytest.mark.parametrize("where", ["loaded", "builtin", "dep", "dep-xz", "esp6"])
def test_esp_found(tmp_path: Path, where: str) -> None:
    root = tree(tmp_path)
    mods = root / "lib/modules" / RELEASE
    if where == "loaded":
        (root / "sys/module/esp4").mkdir()
    elif where == "builtin":
        (mods / "modules.builtin").write_text("kernel/net/ipv4/esp4.ko\n")
    elif where == "dep":
        (mods / "modules.dep").write_text(
            "kernel/net/ipv4/esp4.ko: kernel/net/xfrm/xfrm_algo.ko\n")
    elif where == "dep-xz":
        (mods / "modules.dep").write_text("kernel/net/ipv4/esp4.ko.xz:\n")
    else:
        (root / "sys/module/esp6").mkdir()
    assert esp_sources(root), where
    assert kernel_esp_missing(root) is None
