"""Does this host's kernel have ESP? `serve --backend kernel-netlink` asks before it starts.

charon's kernel-netlink plugin puts the SAs in the kernel: without the kernel's ESP (module
`esp4`/`esp6`, or built in) every CHILD SA would fail later, one by one, with charon's
"unable to add SAD entry" (the kernel answers "Requested type not found" / EPROTONOSUPPORT).
XFRM alone is not enough: our CI hosts have XFRM and the SPD but no ESP.

ESP is there when any of these holds (checked in this order, only files are read):

- `/sys/module/esp4` (or `esp6`) exists: the module is loaded, or built in;
- `/lib/modules/RELEASE/modules.builtin` lists it: built in;
- `/lib/modules/RELEASE/modules.dep` lists it: installed, and the kernel loads it by itself
  (alias `xfrm-type-2-50` / `xfrm-type-10-50`) at the first ESP SA.

/proc/crypto is not a test of ESP (it lists the ciphers loaded so far, with or without ESP);
it is read only to name, in the refusal, that an AEAD such as gcm is missing too.
"""

from __future__ import annotations

from pathlib import Path

MODULES = ("esp4", "esp6")


def _listed(path: Path, module: str) -> bool:
    """Whether a modules.builtin / modules.dep file names MODULE's .ko (any compression)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        ko = line.split(":", 1)[0].rsplit("/", 1)[-1]
        if ko.split(".ko", 1)[0] == module and ".ko" in ko:
            return True
    return False


def esp_sources(root: Path = Path("/")) -> list[str]:
    """Where ESP was found (``"esp4: loaded or built in (/sys/module/esp4)"``, ...); empty when
    the kernel has none. ``root`` lets tests point at a fake tree."""
    found = []
    try:
        release = (root / "proc/sys/kernel/osrelease").read_text().strip()
    except OSError:
        release = ""
    mods = root / "lib/modules" / release if release else None
    for m in MODULES:
        if (root / "sys/module" / m).exists():
            found.append(f"{m}: loaded or built in (/sys/module/{m})")
        elif mods is not None and _listed(mods / "modules.builtin", m):
            found.append(f"{m}: built in ({mods}/modules.builtin)")
        elif mods is not None and _listed(mods / "modules.dep", m):
            found.append(f"{m}: installed, loaded at the first SA ({mods}/modules.dep)")
    return found


def kernel_esp_missing(root: Path = Path("/")) -> str | None:
    """None when the kernel has ESP; else why `--backend kernel-netlink` cannot work here."""
    if esp_sources(root):
        return None
    try:
        release = (root / "proc/sys/kernel/osrelease").read_text().strip()
    except OSError:
        release = "?"
    try:
        crypto = (root / "proc/crypto").read_text(errors="replace")
    except OSError:
        crypto = ""
    gcm = "" if "gcm(aes)" in crypto else "; /proc/crypto has no gcm(aes) either"
    return (f"the kernel ({release}) has no ESP: no esp4 or esp6 module is loaded, built in "
            f"or installed (checked /sys/module/esp4, /sys/module/esp6 and "
            f"/lib/modules/{release}/modules.builtin, modules.dep){gcm}. "
            "--backend kernel-netlink puts the SAs in the kernel and needs it: load esp4 "
            "(modprobe esp4), or use --backend kernel-libipsec (ESP in user space)")
