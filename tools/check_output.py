"""The reports of `ipsec-nf check`: text (the effective parameters, and what the backend
would load in swanctl.conf's syntax), the error lines, and JSON."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from tools.check_result import HIDDEN, Result

_NAMES = {"ike": "ike-policy", "ipsec": "ipsec-policy", "ike_proposals": "ike-proposal",
          "esp_proposals": "esp-proposal", "ah_proposals": "ah-proposal",
          "security_policies": "security-policy", "ids": "id", "vip_pools": "vip-pool",
          "certificates": "certificate", "remote_ca_certificates": "remote-ca-certificate"}


def plain(value: Any) -> Any:
    """A value of nf.effective as JSON-ready data named as in the YANG model; unset leaves
    (None, empty lists) left out."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if v is None or v == () or f.name in ("ike_template", "ipsec_template", "secret"):
                continue
            if not f.repr:  # key material, PEM blobs resolved for the backend
                continue
            out[_NAMES.get(f.name, f.name.replace("_", "-"))] = plain(v)
        return out
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    return value


def vpn_view(vpn: Any) -> dict[str, Any]:
    """A VPN's effective parameters; each policy names its template."""
    out = plain(vpn)
    for key, template in (("ike-policy", vpn.ike_template), ("ipsec-policy", vpn.ipsec_template)):
        if template is not None:
            out[key] = {"template": template, **out.get(key, {})}
    return out


def psk_view(psk: Any) -> dict[str, Any]:
    """A pre-shared key: its name and ids; never its secret."""
    return {"name": psk.name, "id": list(psk.ids), "secret": HIDDEN}


# ---- output --------------------------------------------------------------------------------

def as_json(result: Result, name: str) -> dict[str, Any]:
    """The JSON report of ``--format json``."""
    out: dict[str, Any] = {"file": name, "backend": result.backend,
                           "valid": not result.errors}
    out["errors"] = [p.as_dict() for p in result.errors]
    if result.errors:
        out["complete"] = result.complete
        return out
    eff = result.effective
    assert eff is not None
    out["enabled"] = eff.enabled
    out["global-options"] = plain(eff.global_options)
    out["vpns"] = {n: vpn_view(v) for n, v in sorted(eff.vpns.items())}
    out["pre-shared-keys"] = {n: psk_view(p) for n, p in sorted(eff.psks.items())}
    out["load"] = result.loads
    return out


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return ", ".join(_value(x) for x in v)
    return str(v)


def _tree(data: Mapping[str, Any], indent: int) -> Iterator[str]:
    """Nested YANG-named data as indented ``name value`` lines."""
    pad = "  " * indent
    for k, v in data.items():
        if isinstance(v, Mapping):
            yield f"{pad}{k}" + (f" {v['template']}" if "template" in v else "")
            yield from _tree({a: b for a, b in v.items() if a != "template"}, indent + 1)
        elif isinstance(v, list) and v and isinstance(v[0], Mapping):
            for entry in v:
                first, *_ = entry  # the key (name or id) first
                yield f"{pad}{k} {entry[first]}"
                yield from _tree({a: b for a, b in entry.items() if a != first}, indent + 1)
        else:
            yield f"{pad}{k} {_value(v)}"


def _swanctl(data: Mapping[str, Any], indent: int) -> Iterator[str]:
    """A VICI payload in swanctl.conf's syntax."""
    pad = "    " * indent
    for k, v in data.items():
        if isinstance(v, Mapping):
            yield f"{pad}{k} {{"
            yield from _swanctl(v, indent + 1)
            yield f"{pad}}}"
        else:
            yield f"{pad}{k} = {_value(v)}"


_SECTIONS = {"vpn": ("connections", "load-conn"), "pre-shared-key": ("secrets", "load-shared")}


def as_text(result: Result, name: str) -> Iterator[str]:
    """The text report of a valid file (stdout)."""
    eff = result.effective
    assert eff is not None
    yield (f"{name}: valid for the {result.backend} backend: {len(eff.vpns)} VPN(s), "
           f"{len(eff.psks)} pre-shared key(s)")
    if not eff.enabled:
        yield "ike enabled is false: nothing would be loaded"
    options = plain(eff.global_options)
    if options:
        yield ""
        yield "global-options"
        yield from _tree(options, 1)
    for vpn in sorted(eff.vpns.values(), key=lambda v: v.name):
        yield ""
        yield f"vpn {vpn.name}"
        yield from _tree({k: v for k, v in vpn_view(vpn).items() if k != "name"}, 1)
    for psk in sorted(eff.psks.values(), key=lambda p: p.name):
        yield ""
        yield f"pre-shared-key {psk.name}"
        yield from _tree({k: v for k, v in psk_view(psk).items() if k != "name"}, 1)
    for kind, entries in result.loads.items():
        section, command = _SECTIONS.get(kind, (kind, "load"))
        yield ""
        yield f"# what the backend would load ({command})"
        yield f"{section} {{"
        yield from _swanctl(entries, 1)
        yield "}"


def error_lines(result: Result, name: str) -> Iterator[str]:
    """The errors, one a line: ``FILE:LINE: PATH: MESSAGE (error-tag/app-tag)``."""
    for p in result.errors:
        where = f"{name}:{p.line}" if p.line else name
        tag = p.tag + (f"/{p.app_tag}" if p.app_tag else "")
        yield f"{where}: {p.path or '/'}: {p.message} ({tag})"
    n = len(result.errors)
    more = "" if result.complete else " (an error could not be set aside: there may be more)"
    yield f"{name}: {n} error{'s' if n != 1 else ''}{more}"
