"""The configuration of `ipsec-nf serve`: its options' defaults, the listen addresses, and the
TOML configuration file (``--config``), checked field by field into a :class:`ServeConfig`."""

from __future__ import annotations

import argparse
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_LISTEN = "127.0.0.1:830"
BACKENDS = ("kernel-libipsec", "kernel-netlink")  # tools.backends, without its imports
DEFAULT_BACKEND = BACKENDS[0]
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_CONFIG_HINT = "/etc/ipsec-nf/ipsec-nf.toml"


def format_listen(host: str, port: int) -> str:
    """(host, port) -> HOST:PORT, or [V6]:PORT."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_listen(text: str) -> tuple[str, int]:
    """HOST:PORT or [V6]:PORT -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


class ConfigError(ValueError):
    """The configuration file cannot be used; the message names the file and the key."""


@dataclass
class ServeConfig:
    """What `serve` runs with: built-in defaults, then the file, then the command line."""

    state_dir: Path | None = None
    listen: list[tuple[str, int]] = field(
        default_factory=lambda: [parse_listen(DEFAULT_LISTEN)])
    backend: str = DEFAULT_BACKEND
    log_level: str = "info"
    sync_interval: float = 30.0
    state_interval: float = 5.0
    limits: dict[str, Any] = field(default_factory=dict)  # northbound.frontdoor.Limits overrides
    gnmi: dict[str, Any] = field(default_factory=dict)  # the [gnmi] table (gnmi_listen)


def _listen_list(value: Any) -> list[tuple[str, int]]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) for v in items):
        raise ValueError('expected "HOST:PORT" or a non-empty list of them')
    try:
        return [parse_listen(v) for v in items]
    except argparse.ArgumentTypeError as e:
        raise ValueError(str(e)) from None


def _choice(choices: tuple[str, ...]) -> Any:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return value
    return check


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"expected a positive number of seconds, got {value!r}")
    return float(value)


def _limits(value: Any) -> dict[str, Any]:
    """The ``[limits]`` table: front-door limits (docs/security.md), by the field names of
    ``northbound.frontdoor.Limits`` with dashes; each a positive number of its field's type."""
    import dataclasses

    from northbound.frontdoor import Limits

    if not isinstance(value, dict):
        raise ValueError("expected a table of limits")
    fields = {f.name.replace("_", "-"): f for f in dataclasses.fields(Limits)}
    out = {}
    for key, v in value.items():
        f = fields.get(key)
        if f is None:
            raise ValueError(f"unknown limit {key!r}; known: {', '.join(fields)}")
        want = int if isinstance(f.default, int) else float
        if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0 \
                or (want is int and not isinstance(v, int)):
            raise ValueError(f"{key}: expected a positive {want.__name__}, got {v!r}")
        out[f.name] = want(v)
    return out


GNMI_KEYS = ("listen", "tls-cert", "tls-key", "insecure")


def _gnmi(value: Any) -> dict[str, Any]:
    """The ``[gnmi]`` table: ``listen = "HOST:PORT"``, ``tls-cert``/``tls-key`` (files) or
    ``insecure = true`` (plaintext: loopback and tests only)."""
    if not isinstance(value, dict):
        raise ValueError("expected a table: listen, tls-cert, tls-key, insecure")
    out: dict[str, Any] = {}
    for key, v in value.items():
        if key not in GNMI_KEYS:
            raise ValueError(f"unknown key {key!r}; known: {', '.join(GNMI_KEYS)}")
        if key == "insecure":
            if not isinstance(v, bool):
                raise ValueError(f"insecure: expected true or false, got {v!r}")
            out[key] = v
        else:
            try:
                out[key] = parse_listen(_text(v)) if key == "listen" else _text(v)
            except ValueError as e:
                raise ValueError(f"{key}: {e}") from None
    return out


def gnmi_listen(cfg: dict[str, Any], args: argparse.Namespace) -> Any:
    """Where gNMI listens (northbound.gnmi.server.GnmiListen) from the ``[gnmi]`` table and
    --gnmi*, or None (off, the default). ConfigError without a certificate and key or
    --gnmi-insecure."""
    cert_file, key_file = args.gnmi_cert or cfg.get("tls-cert"), args.gnmi_key or cfg.get("tls-key")
    cert = Path(cert_file) if cert_file else None
    key = Path(key_file) if key_file else None
    insecure = args.gnmi_insecure or cfg.get("insecure", False)
    where = args.gnmi or cfg.get("listen")
    if where is None:
        if args.gnmi_cert or args.gnmi_key or args.gnmi_insecure:
            raise ConfigError("--gnmi-cert, --gnmi-key and --gnmi-insecure need --gnmi "
                              "HOST:PORT")
        return None
    if not insecure and (cert is None or key is None):
        raise ConfigError("gNMI needs a TLS certificate and key (--gnmi-cert FILE --gnmi-key "
                          "FILE, or tls-cert/tls-key in [gnmi]), or --gnmi-insecure for "
                          "plaintext")
    from northbound.gnmi.server import GnmiListen

    return GnmiListen(where[0], where[1], None if insecure else cert,
                      None if insecure else key, insecure)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


# key of the file -> (ServeConfig field, checker)
CONFIG_KEYS: dict[str, tuple[str, Any]] = {
    "state-dir": ("state_dir", _text),
    "listen": ("listen", _listen_list),
    "backend": ("backend", _choice(BACKENDS)),
    "log-level": ("log_level", _choice(LOG_LEVELS)),
    "sync-interval": ("sync_interval", _seconds),
    "state-interval": ("state_interval", _seconds),
    "limits": ("limits", _limits),
    "gnmi": ("gnmi", _gnmi),
}


def load_config(path: Path) -> dict[str, Any]:
    """Read a TOML configuration file of `serve`: {ServeConfig field: checked value}.

    Unknown keys are an error that names them; a relative ``state-dir`` is taken relative to
    the file's folder.
    """
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in CONFIG_KEYS:
            raise ConfigError(f"{path}: unknown key {key!r}; known keys: "
                              f"{', '.join(CONFIG_KEYS)}")
        name, check = CONFIG_KEYS[key]
        try:
            out[name] = check(value)
        except ValueError as e:
            raise ConfigError(f"{path}: {key}: {e}") from None
    if "state_dir" in out:
        out["state_dir"] = path.parent / out["state_dir"]
    for k in ("tls-cert", "tls-key"):  # [gnmi]'s files, relative to the file's folder too
        if k in out.get("gnmi", {}):
            out["gnmi"][k] = str(path.parent / out["gnmi"][k])
    return out


def serve_config(args: argparse.Namespace) -> ServeConfig:
    """The settings of `serve`: the configuration file's, overridden by the command line's."""
    cfg = ServeConfig()
    if args.config is not None:
        for name, value in load_config(Path(args.config)).items():
            setattr(cfg, name, value)
    if args.state_dir is not None:
        cfg.state_dir = Path(args.state_dir)
    if args.listen:
        cfg.listen = args.listen
    if args.backend is not None:
        cfg.backend = args.backend
    if args.log_level is not None:
        cfg.log_level = args.log_level
    if args.debug:
        cfg.log_level = "debug"
    if args.sync_interval is not None:
        cfg.sync_interval = args.sync_interval
    if args.state_interval is not None:
        cfg.state_interval = args.state_interval
    if cfg.state_dir is None:
        raise ConfigError("no state directory: give --state-dir, or state-dir in the "
                          "configuration file (--config)")
    return cfg


