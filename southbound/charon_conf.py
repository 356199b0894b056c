"""strongswan.conf for our charon: plugins, and the global options of the model as charon
settings (:func:`settings`, :func:`render_conf`), and how a change of them is taken
(:func:`apply_method`: not at all, VICI reload-settings, or a restart)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nf.effective import DosProtection, EapRadius, GlobalOptions, Logging, LogLevels, SpHash

PLUGIN_DIR = Path("/usr/lib/ipsec/plugins")

# Plugins in load order. The kernel interface plugins are inserted by backend.
_BASE_PLUGINS = (
    "kdf random nonce aes sha1 sha2 hmac md5 pem pkcs1 x509 revocation constraints pubkey "
    "openssl gmp curve25519 gcm ccm ctr chapoly cmac xcbc aesni"
).split()
_TAIL_PLUGINS = ("socket-default", "vici", "updown", "counters")
# remote access: EAP methods (EAP-MSCHAPv2 needs MD4: the md4 plugin where there is one, else
# OpenSSL's legacy provider, which charon's openssl plugin loads), EAP-Identity for
# remote-eap-id %any, the RADIUS client, attr (mode-config attributes)
_RA_PLUGINS = ("md4", "attr", "eap-identity", "eap-md5", "eap-mschapv2", "eap-radius")
# /ike/eap-radius -> charon.plugins.eap-radius.* (strongswan.conf(5) of 5.9.8)
_RADIUS = "plugins.eap-radius"
_RADIUS_OPTIONS = {"nas_identifier": "nas_identifier", "auth_port": "port",
                   "sockets": "sockets", "accounting": "accounting",
                   "retransmit_tries": "retransmit_tries",
                   "retransmit_timeout": "retransmit_timeout",
                   "retransmit_base": "retransmit_base"}

# Map of global-options fields to strongswan.conf charon settings (strongswan.conf(5) of
# strongSwan 5.9.8; every name below is a string of libcharon or the kernel-netlink plugin).
_GLOBAL_OPTIONS = {
    "retransmit_tries": "retransmit_tries",
    "retransmit_timeout": "retransmit_timeout",
    "retransmit_base": "retransmit_base",
    "sa_table_size": "ikesa_table_size",
    "sa_table_segments": "ikesa_table_segments",
    "install_routes": "install_routes",  # kernel-netlink (kernel-libipsec routes anyway)
    "routing_table": "routing_table",
    "routing_table_prio": "routing_table_prio",
    "delete_rekeyed": "delete_rekeyed",
    "delete_rekeyed_delay": "delete_rekeyed_delay",
    "make_before_break": "make_before_break",
    "mobike_prefer_best_path": "prefer_best_path",
    "ike_port": "port",  # socket-default binds them at start
    "ike_nat_port": "port_nat_t",
}
# /ike/logging: the model's syslog facilities -> charon's names of them (charon.syslog.<name>;
# charon 5.9.8's daemon.c opens "auth" as LOG_AUTHPRIV), and the model's subsystems -> charon's
# log groups (strongswan.conf(5), LOGGER CONFIGURATION; "esp" is libipsec's).
_FACILITIES = {"daemon": "daemon", "authpriv": "auth"}
_LOG_GROUPS = {
    "asn1": "asn", "child": "chd", "config": "cfg", "daemon": "dmn", "encoding": "enc",
    "ike": "ike", "ipsec": "esp", "job": "job", "kernel": "knl", "manager": "mgr",
    "network": "net",
}
LOG_DISABLE = -1  # charon's "absolutely silent", the model's `disable`
# sp-hash-ipv4/-ipv6 local/remote: the kernel's XFRM SPD hash thresholds, which kernel-netlink
# sets at start (with kernel-libipsec there is no kernel SPD: they do nothing).
_SPDH = "plugins.kernel-netlink.spdh_thresh"
_SP_HASH = {"sp_hash_ipv4": "ipv4", "sp_hash_ipv6": "ipv6"}
_SP_BITS = {"local": "lbits", "remote": "rbits"}
# cookie-threshold "always": charon 5.9.8 has no such value; 1 asks a cookie as soon as one
# half-open IKE SA exists (charon's test is half_open >= cookie_threshold; 0 disables cookies).
COOKIE_ALWAYS = 1
# charon's long-running jobs (kernel-netlink/libipsec receivers, sockets, vici, scheduler, ...)
# hold ~9 threads for good: with threads = 8 it never answers on VICI (measured). The model's
# `threads` counts workers for IKE processing, so we add these on top.
RESERVED_THREADS = 10
_DOS_OPTIONS = {
    "cookie_threshold": "cookie_threshold",
    "cookie_threshold_ip": "cookie_threshold_ip",
    "block_threshold": "block_threshold",
    "init_limit_half_open": "init_limit_half_open",
}
# the model's defaults (yang/ipsec-nf.yang): an option not set is this, not charon's default
MODEL_DEFAULTS = GlobalOptions(
    retransmit_tries=5, retransmit_timeout=4.0, retransmit_base=1.8, acquire_timeout=165,
    threads=16, dos_protection=DosProtection(cookie_threshold=10, cookie_threshold_ip=3,
                                             block_threshold=5, init_limit_half_open=0),
    sa_table_size=1, sa_table_segments=1, sp_hash_ipv4=SpHash(local=32, remote=32),
    sp_hash_ipv6=SpHash(local=128, remote=128), install_routes=False, routing_table=220,
    routing_table_prio=220, delete_rekeyed=False, delete_rekeyed_delay=5,
    make_before_break=False, mobike_prefer_best_path=False, ike_port=500, ike_nat_port=4500,
    logging=Logging(daemon=LogLevels(default=0), authpriv=LogLevels(default="disable")))
# settings a VICI reload-settings applies, to IKE SAs created afterwards (charon reads them when
# it creates an IKE SA's task manager; verified with charon 5.9.8 in
# tests/integration/southbound/test_dataplane_limits.py). The others are read once at start:
# threads (the thread pool), the DoS thresholds (the receiver), acquire_timeout
# (kernel-netlink's xfrm_acq_expires), ikesa_table_size/-segments (the IKE SA manager), the
# kernel-netlink settings install_routes, routing_table(_prio) and spdh_thresh (read when the
# plugin starts; routing_table and spdh_thresh are seen unchanged after a reload-settings in
# tests/integration/southbound/test_global_options_charon.py): changing them restarts charon.
# make_before_break is taken by a reload too, for IKE SAs created afterwards (an IKE SA created
# before the reload still reauthenticates break-before-make), and delete_rekeyed_delay for every
# CHILD SA rekeyed afterwards (measured in test_global_options_charon.py). delete_rekeyed (IKEv1
# only) and prefer_best_path are not verified against a real charon (no IKEv1 or roaming test):
# they restart charon, which is never wrong.
RELOADABLE = frozenset({"retransmit_tries", "retransmit_timeout", "retransmit_base",
                        "make_before_break", "delete_rekeyed_delay"})
# /ike/logging: charon's VICI reload-settings calls charon->load_loggers, which sets the syslog
# loggers' levels from the reloaded settings (verified with charon 5.9.8 in
# tests/integration/southbound/test_logging_charon.py: a level raised by a reload shows in
# syslog at once). port / port_nat_t are bound at start: they restart charon.
RELOADABLE_PREFIXES = ("syslog.", f"{_RADIUS}.")


# the eap-radius plugin's reload reads its servers (and their defaults) again, but it
# registers its accounting listener only at start (charon 5.9.8, verified with FreeRADIUS in
# tests/integration/southbound/test_remote_access_charon.py): turning accounting on or off
# restarts charon
NOT_RELOADABLE = frozenset({f"{_RADIUS}.accounting"})


def _reloadable(key: str) -> bool:
    return key not in NOT_RELOADABLE and (key in RELOADABLE
                                          or key.startswith(RELOADABLE_PREFIXES))


def _log_level(value: int | str) -> int:
    return LOG_DISABLE if value == "disable" else int(value)


def _syslog(logging: Logging) -> dict[str, int]:
    """``syslog.<facility>.<group>`` -> level: each facility's default (the model's when not
    set) and the subsystems that are set (the others take the facility's default in charon)."""
    out: dict[str, int] = {}
    for attr, facility in _FACILITIES.items():
        levels: LogLevels = getattr(logging, attr)
        default = levels.default
        if default is None:
            default = getattr(MODEL_DEFAULTS.logging, attr).default
        out[f"syslog.{facility}.default"] = _log_level(default)
        for sub, group in _LOG_GROUPS.items():
            value = getattr(levels, sub)
            if value is not None:
                out[f"syslog.{facility}.{group}"] = _log_level(value)
    return out


def settings(options: GlobalOptions) -> dict[str, Any]:
    """The charon settings ``options`` stand for (unset options take the model's default):
    strongswan.conf key (under ``charon``) -> value."""
    def pick(obj: Any, default: Any, attr: str) -> Any:
        value = getattr(obj, attr)
        return getattr(default, attr) if value is None else value
    out = {key: pick(options, MODEL_DEFAULTS, attr) for attr, key in _GLOBAL_OPTIONS.items()}
    out["threads"] = int(pick(options, MODEL_DEFAULTS, "threads")) + RESERVED_THREADS
    out.update({key: pick(options.dos_protection, MODEL_DEFAULTS.dos_protection, attr)
                for attr, key in _DOS_OPTIONS.items()})
    if out["cookie_threshold"] == "always":
        out["cookie_threshold"] = COOKIE_ALWAYS
    for attr, family in _SP_HASH.items():
        for side, bits in _SP_BITS.items():
            out[f"{_SPDH}.{family}.{bits}"] = pick(getattr(options, attr),
                                                   getattr(MODEL_DEFAULTS, attr), side)
    out["plugins.kernel-netlink.xfrm_acq_expires"] = pick(options, MODEL_DEFAULTS,
                                                          "acquire_timeout")
    out.update(_syslog(options.logging))
    out.update(radius_settings(options.eap_radius))
    return out


def radius_settings(radius: EapRadius) -> dict[str, Any]:
    """``plugins.eap-radius.*`` of /ike/eap-radius (nothing without a server: the plugin then
    has nothing to ask). Holds the servers' secrets: the file is written 0600."""
    if not radius.servers:
        return {}
    out = {f"{_RADIUS}.{key}": getattr(radius, attr) for attr, key in _RADIUS_OPTIONS.items()
           if getattr(radius, attr) is not None}
    for srv in radius.servers:
        base = f"{_RADIUS}.servers.{srv.name}"
        out[f"{base}.address"] = srv.address
        out[f"{base}.secret"] = srv.secret
        out[f"{base}.auth_port"] = srv.auth_port or radius.auth_port or 1812
        out[f"{base}.acct_port"] = srv.acct_port or radius.acct_port or 1813
        out[f"{base}.preference"] = srv.preference
    return out


def _nested(flat: dict[str, Any], indent: int) -> list[str]:
    """Dotted keys (``a.b.c = v``) as strongswan.conf sections."""
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        node = tree
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value

    def lines(node: dict[str, Any], depth: int) -> list[str]:
        pad = "  " * depth
        out = []
        for k, v in node.items():
            if isinstance(v, dict):
                out += [f"{pad}{k} {{", *lines(v, depth + 1), f"{pad}}}"]
            else:
                out.append(f"{pad}{k} = {_conf_value(v)}")
        return out
    return lines(tree, indent)


def apply_method(old: GlobalOptions, new: GlobalOptions) -> str | None:
    """How charon takes a change of options: ``"reload"`` (VICI reload-settings: only
    :data:`RELOADABLE` settings and syslog levels differ), ``"restart"``, or None (nothing
    charon sees changed)."""
    before, after = settings(old), settings(new)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    if not changed:
        return None
    return "reload" if all(_reloadable(k) for k in changed) else "restart"


def plugin_list(backend: str, plugin_dir: Path = PLUGIN_DIR) -> list[str]:
    """Return the ``load =`` plugin list for a kernel backend.

    ``kernel-libipsec`` is only included for backend ``"kernel-libipsec"``; ``kernel-netlink``
    always. Plugins whose shared object is missing are left out when ``plugin_dir`` exists.
    """
    if backend not in ("kernel-libipsec", "kernel-netlink"):
        raise ValueError(f"unknown backend {backend!r}")
    kernel = ["kernel-libipsec", "kernel-netlink"] if backend == "kernel-libipsec" else [
        "kernel-netlink"]
    names = [*_BASE_PLUGINS, *_RA_PLUGINS, *kernel, *_TAIL_PLUGINS]
    if plugin_dir.is_dir():
        names = [n for n in names if (plugin_dir / f"libstrongswan-{n}.so").exists()]
    return names


def _conf_value(value: Any) -> str:
    """A value as strongswan.conf writes it (booleans as yes/no)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def render_conf(run_dir: Path, backend: str = "kernel-libipsec",
                options: GlobalOptions | None = None) -> str:
    """Render a strongswan.conf for an instance living in ``run_dir``.

    ``options`` is the effective ``global-options`` (unset options take the model's defaults,
    :data:`MODEL_DEFAULTS`); :func:`settings` says which charon setting each one sets.
    """
    values = settings(options if options is not None else GlobalOptions())
    acquire = values.pop("plugins.kernel-netlink.xfrm_acq_expires")
    syslog: dict[str, dict[str, int]] = {}
    for key in [k for k in values if k.startswith("syslog.")]:
        _, facility, group = key.split(".")
        syslog.setdefault(facility, {})[group] = values.pop(key)
    spdh = {family: {bits: values.pop(f"{_SPDH}.{family}.{bits}") for bits in _SP_BITS.values()}
            for family in _SP_HASH.values()}
    radius = {k[len("plugins."):]: values.pop(k) for k in list(values)
              if k.startswith(f"{_RADIUS}.")}
    lines = ["charon {", "  load_modular = no", f"  load = {' '.join(plugin_list(backend))}"]
    lines += [f"  {key} = {_conf_value(value)}" for key, value in values.items()]
    lines += [
        "  filelog {", "    log {", f"      path = {run_dir / 'charon.log'}",
        "      time_format = %b %e %T", "      default = 1", "      ike = 1", "      cfg = 1",
        # each IKE SA's lines with " <name|unique id>": southbound/peer_refusals.py reads the
        # refused peers from them (not from VICI's log event stream, which charon sends
        # through its VICI dispatcher while it answers requests: with a listener, 1,000
        # load-conn took 0.45-0.6 s instead of 0.3-0.4; a second filelog cost 15-30%)
        "      ike_name = yes", "      flush_line = yes", "    }", "  }",
    ]
    # /ike/logging: one syslog logger per facility (charon's own filelog above stays as it is:
    # our health check reads it)
    lines += ["  syslog {"]
    for facility, levels in syslog.items():
        lines += [f"    {facility} {{", *(f"      {g} = {v}" for g, v in levels.items()), "    }"]
    lines += [
        "  }",
        "  plugins {",
        "    vici {", f"      socket = unix://{run_dir / 'charon.vici'}", "    }",
    ]
    lines += ["    kernel-netlink {", f"      xfrm_acq_expires = {acquire}", "      spdh_thresh {"]
    for family, bits in spdh.items():
        lines += [f"        {family} {{", *(f"          {k} = {v}" for k, v in bits.items()),
                  "        }"]
    lines += ["      }", "    }"]
    lines += _nested(radius, 2)
    lines += ["  }", "}", ""]
    return "\n".join(lines)
