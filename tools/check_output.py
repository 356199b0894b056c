"""The reports of `ipsec-nf check`: text (the effective parameters, and what the backend
would load in swanctl.conf's syntax), the error lines, and JSON."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from tools.check_result import HIDDEN, Result

_NAMES = {"ike": "ike-policy", "ipsec": "ipsec-policy", "ike_proposals": "ike-proposal",
          "esp_proposals": "esp-proposal", "ah_proposals": "ah-proposal",
          "security_policies": "security-policy", "ids": "id", "vip_pools": "vip-pool",
          "certificates": "certificate", "remote_ca_certificates": "remote-ca-certificate"}


# per dataclass: (attribute, YANG name) of the fields a view shows (None: not a dataclass);
# dataclasses.fields() and the name mapping per value were most of a view's cost
_FIELDS: dict[type, tuple[tuple[str, str], ...] | None] = {}


def _fields(cls: type) -> tuple[tuple[str, str], ...] | None:
    hit = _FIELDS.get(cls, ())
    if hit != ():
        return hit
    fields = None
    if dataclasses.is_dataclass(cls):
        # key material and PEM blobs resolved for the backend (repr=False) are never shown
        fields = tuple((f.name, _NAMES.get(f.name, f.name.replace("_", "-")))
                       for f in dataclasses.fields(cls)
                       if f.repr and f.name not in ("ike_template", "ipsec_template", "secret"))
    _FIELDS[cls] = fields
    return fields


def plain(value: Any) -> Any:
    """A value of nf.effective as JSON-ready data named as in the YANG model; unset leaves
    (None, empty lists) left out."""
    fields = _fields(type(value))
    if fields is not None:
        out = {}
        for attr, name in fields:
            v = getattr(value, attr)
            if v is None or v == ():
                continue
            out[name] = plain(v)
        return out
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    return value


PolicyView = Callable[[str, "str | None", Any], dict[str, Any]]


def policy_view(key: str, template: str | None, policy: Any) -> dict[str, Any]:
    """A VPN's ``ike-policy`` or ``ipsec-policy`` view: its template's name, its values."""
    part = plain(policy)
    return {"template": template, **part} if template is not None else part


def vpn_view(vpn: Any, policy: PolicyView = policy_view) -> dict[str, Any]:
    """A VPN's effective parameters; each policy names its template (``policy`` renders the
    two policy parts: the state tree shares one rendering between VPNs)."""
    templates = {"ike": vpn.ike_template, "ipsec": vpn.ipsec_template}
    out = {}
    for attr, name in _fields(type(vpn)) or ():
        v = getattr(vpn, attr)
        if attr in templates and v is not None:
            out[name] = policy(name, templates[attr], v)
        elif v is not None and v != ():
            out[name] = plain(v)
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
