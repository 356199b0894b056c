"""Global options: the model's defaults are the vRouter manual's, render_conf carries each option
to its charon setting, and how charon takes a change (nothing, a settings reload or a restart).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree

from nf.effective import DosProtection, GlobalOptions, Logging, LogLevels, SpHash
from nf.errors import RpcError
from nf.schema import Schema
from nf.templates import global_options
from nf.validate import validate
from southbound.charon_conf import COOKIE_ALWAYS, MODEL_DEFAULTS, apply_method, render_conf

UNSET = GlobalOptions()
IPNF = "urn:ipsec-nf:yang:ipsec-nf"

# The defaults the manual (/work/shared/seeds/vrouter-ike-templates.txt) states, in its words.
MANUAL_DEFAULTS = {
    "retransmit-tries": "5",  # l.1520 "integer value ranging from 0 to 100 (default 5)"
    "retransmit-timeout": "4.0",  # l.1522 "from 0.000 to 60.000 (default 4.0)"
    "retransmit-base": "1.8",  # l.1524 "from 0.000 to 10.000 (default. 1.8)"
    "acquire-timeout": "165",  # l.1553 "integer number of seconds (default 165)", l.1536
    "dos-protection/cookie-threshold": "10",  # l.1581 "integer number or ... always (default 10)"
    "dos-protection/block-threshold": "5",  # l.1583 "(default 5)"
    "dos-protection/init-limit-half-open": "0",  # l.1585 "(default 0)"
    "threads": "16",  # l.1609 "threads is an 32 bit integer (default 16)"
    "sa-table-size": "1",  # l.1633 "size of the SA hash table (default 1)"
    "sa-table-segments": "1",  # l.1635 "number of sergments (default 1)"
    "sp-hash-ipv4/local": "32",  # l.1664 "They range from 0 to 32 (default 32)"
    "sp-hash-ipv4/remote": "32",  # l.1664
    "sp-hash-ipv6/local": "128",  # l.1666 "They range from 0 to 128 (default 128)"
    "sp-hash-ipv6/remote": "128",  # l.1666
    "install-routes": "false",  # l.1703 "route installation (default false)"
    "routing-table": "220",  # l.1705 "(Default 220)"
    "routing-table-prio": "220",  # l.1707 "(default 220)"
}
# No default is stated in the manual's text for these: the values are those of its `show state`
# example (l.860-864), which are also charon 5.9.8's defaults (strongswan.conf(5)). That example
# is not a list of defaults (it shows acquire-timeout 30, l.849, against the stated 165).
STATE_EXAMPLE = {
    "delete-rekeyed": "false",  # l.860
    "delete-rekeyed-delay": "5",  # l.861
    "make-before-break": "false",  # l.862
    "mobike-prefer-best-path": "false",  # l.864
}
# Not in the manual at all: charon's own defaults (strongswan.conf(5): charon.port [500],
# charon.port_nat_t [4500]).
CHARON_DEFAULTS = {"ike-port": "500", "ike-nat-port": "4500",
                   "dos-protection/cookie-threshold-ip": "3"}  # not in the manual: charon's
# /ike/logging (l.1271-1281 "The default configuration for ike logs is the following: daemon
# default 0, authpriv default disable"; the same in `show state`, l.834-840). The subsystems
# have no default: absent, they take the facility's.
MANUAL_LOGGING = {"daemon/default": "0", "authpriv/default": "disable"}
SUBSYSTEMS = ("asn1", "child", "config", "daemon", "encoding", "ike", "ipsec", "job", "kernel",
              "manager", "network")  # l.1226-1268


@pytest.fixture(scope="module")
def schema() -> Schema:
    return Schema()


def defaults_of(schema: Schema, container: str) -> dict[str, str | None]:
    """Every leaf under /ike/``container`` with its default (None: none), from libyang."""
    top = schema.top[(IPNF, "ike")].child(IPNF, container)
    assert top is not None
    out: dict[str, str | None] = {}

    def walk(node: object, prefix: str) -> None:
        for child in node.children.values():  # type: ignore[attr-defined]
            name = f"{prefix}{child.name}"
            if child.kind == "leaf":  # libyang's default, as Python prints it (True, 4.0)
                d = child.default
                out[name] = None if d is None else {"True": "true", "False": "false"}.get(
                    str(d), str(d))
            else:
                walk(child, f"{name}/")
    walk(top, "")
    return out


@pytest.fixture(scope="module")
def model_defaults(schema: Schema) -> dict[str, str]:
    """Every leaf of /ike/global-options with its default, read from the libyang schema."""
    top = schema.top[(IPNF, "ike")].child(IPNF, "global-options")
    assert top is not None
    out: dict[str, str] = {}

    def walk(node: object, prefix: str) -> None:
        for child in node.children.values():  # type: ignore[attr-defined]
            name = f"{prefix}{child.name}"
            if child.kind == "leaf":  # libyang's default, as Python prints it (True, 4.0)
                out[name] = {"True": "true", "False": "false"}.get(child.default, child.default)
            else:
                walk(child, f"{name}/")
    walk(top, "")
    return out


def test_model_defaults_are_the_manuals(model_defaults: dict[str, str]) -> None:
    """Each default the manual states is the model's, and every leaf has a default."""
    assert {k: model_defaults.get(k) for k in MANUAL_DEFAULTS} == MANUAL_DEFAULTS
    assert {k: model_defaults.get(k) for k in STATE_EXAMPLE} == STATE_EXAMPLE
    assert {k: model_defaults.get(k) for k in CHARON_DEFAULTS} == CHARON_DEFAULTS
    assert set(model_defaults) == set(MANUAL_DEFAULTS) | set(STATE_EXAMPLE) | set(
        CHARON_DEFAULTS)


def test_logging_defaults_are_the_manuals(schema: Schema) -> None:
    """/ike/logging: the manual's two facilities, its subsystems, its defaults."""
    got = defaults_of(schema, "logging")
    assert set(got) == {f"{f}/{s}" for f in ("daemon", "authpriv")
                        for s in ("default", *SUBSYSTEMS)}
    assert {k: v for k, v in got.items() if v is not None} == MANUAL_LOGGING
    assert MODEL_DEFAULTS.logging == Logging(daemon=LogLevels(default=0),
                                             authpriv=LogLevels(default="disable"))


def test_model_defaults_are_what_charon_is_given_unset(model_defaults: dict[str, str]) -> None:
    """MODEL_DEFAULTS (what an unset option becomes) is the model's defaults, as libyang fills
    them in (JSON numbers/booleans)."""
    def typed(v: str) -> object:
        if v in ("true", "false"):
            return v == "true"
        return float(v) if "." in v else int(v)
    tree: dict[str, object] = {}
    for path, v in model_defaults.items():
        *parents, leaf = path.split("/")
        d = tree
        for p in parents:
            d = d.setdefault(p, {})  # type: ignore[assignment]
        d[leaf] = typed(v)
    logging_tree = {"daemon": {"default": 0}, "authpriv": {"default": "disable"}}
    assert global_options(tree, logging_tree) == MODEL_DEFAULTS


def test_unset_options_are_the_models_defaults() -> None:
    """An empty datastore and one holding the defaults give charon the same settings."""
    assert apply_method(UNSET, MODEL_DEFAULTS) is None
    assert render_conf(Path("/x"), options=UNSET) == render_conf(
        Path("/x"), options=MODEL_DEFAULTS)


def charon_section(conf: str) -> dict[str, str]:
    """``key = value`` lines right under ``charon {`` (two-space indent)."""
    return dict(re.findall(r"^  (\w+) = (.*)$", conf, re.M))


def spdh(conf: str) -> dict[str, str]:
    """``ipv4.lbits``... from the kernel-netlink spdh_thresh block."""
    block = conf.split("spdh_thresh {", 1)[1]
    out = {}
    for family, body in re.findall(r"(ipv[46]) \{(.*?)\}", block, re.S):
        out.update({f"{family}.{k}": v for k, v in re.findall(r"(\w+) = (\S+)", body)})
    return out


@pytest.mark.parametrize(("change", "key", "value"), [
    ({"sa_table_size": 128}, "ikesa_table_size", "128"),
    ({"sa_table_segments": 16}, "ikesa_table_segments", "16"),
    ({"install_routes": True}, "install_routes", "yes"),
    ({"install_routes": False}, "install_routes", "no"),
    ({"routing_table": 230}, "routing_table", "230"),
    ({"routing_table_prio": 231}, "routing_table_prio", "231"),
    ({"delete_rekeyed": True}, "delete_rekeyed", "yes"),
    ({"delete_rekeyed_delay": 9}, "delete_rekeyed_delay", "9"),
    ({"make_before_break": True}, "make_before_break", "yes"),
    ({"mobike_prefer_best_path": True}, "prefer_best_path", "yes"),
    ({"retransmit_timeout": 2.125}, "retransmit_timeout", "2.125"),
    ({"retransmit_base": 1.375}, "retransmit_base", "1.375"),
    ({"retransmit_tries": 100}, "retransmit_tries", "100"),
])
def test_render_conf_option(change: dict, key: str, value: str) -> None:
    conf = charon_section(render_conf(Path("/x"), options=replace(MODEL_DEFAULTS, **change)))
    assert conf[key] == value


def test_render_conf_defaults() -> None:
    """With nothing set, charon is given the model's (the manual's) defaults."""
    text = render_conf(Path("/x"))
    conf = charon_section(text)
    assert {k: conf[k] for k in (
        "retransmit_tries", "retransmit_timeout", "retransmit_base", "ikesa_table_size",
        "ikesa_table_segments", "install_routes", "routing_table", "routing_table_prio",
        "delete_rekeyed", "delete_rekeyed_delay", "make_before_break", "prefer_best_path",
        "cookie_threshold", "cookie_threshold_ip")} == {
        "retransmit_tries": "5", "retransmit_timeout": "4.0", "retransmit_base": "1.8",
        "ikesa_table_size": "1", "ikesa_table_segments": "1", "install_routes": "no",
        "routing_table": "220", "routing_table_prio": "220", "delete_rekeyed": "no",
        "delete_rekeyed_delay": "5", "make_before_break": "no", "prefer_best_path": "no",
        "cookie_threshold": "10", "cookie_threshold_ip": "3"}
    assert "xfrm_acq_expires = 165" in text
    assert spdh(text) == {"ipv4.lbits": "32", "ipv4.rbits": "32", "ipv6.lbits": "128",
                          "ipv6.rbits": "128"}


def test_render_conf_sp_hash() -> None:
    opts = replace(MODEL_DEFAULTS, sp_hash_ipv4=SpHash(local=16, remote=24),
                   sp_hash_ipv6=SpHash(local=56, remote=64))
    assert spdh(render_conf(Path("/x"), "kernel-netlink", opts)) == {
        "ipv4.lbits": "16", "ipv4.rbits": "24", "ipv6.lbits": "56", "ipv6.rbits": "64"}
    # a half-set container takes the model's default for the other leaf
    half = replace(UNSET, sp_hash_ipv4=SpHash(local=20))
    assert spdh(render_conf(Path("/x"), options=half))["ipv4.rbits"] == "32"


def test_render_conf_acquire_timeout() -> None:
    assert "xfrm_acq_expires = 60" in render_conf(
        Path("/x"), options=replace(MODEL_DEFAULTS, acquire_timeout=60))


def test_cookie_threshold_always() -> None:
    """charon 5.9.8 has no 'always': the nearest, a cookie from one half-open IKE SA on."""
    opts = replace(MODEL_DEFAULTS, dos_protection=replace(MODEL_DEFAULTS.dos_protection,
                                                          cookie_threshold="always"))
    assert charon_section(render_conf(Path("/x"), options=opts))["cookie_threshold"] == str(
        COOKIE_ALWAYS) == "1"
    assert apply_method(MODEL_DEFAULTS, opts) == "restart"


def ike(options: str) -> list[etree._Element]:
    """An ``<ike>`` config holding ``options`` in its global-options."""
    return [etree.fromstring(f'<ike xmlns="{IPNF}"><global-options>{options}'
                             "</global-options></ike>")]


def test_the_model_takes_the_manuals_examples(schema: Schema) -> None:
    """The manual's examples validate and reach the effective options as set (three decimals,
    'always', sp-hash, reverse route injection; l.1505-1507, 1563, 1617-1618, 1650-1651,
    1689-1691, 1731)."""
    cfg = validate(schema, ike(
        "<retransmit-timeout>3.125</retransmit-timeout><retransmit-base>1.0</retransmit-base>"
        "<dos-protection><cookie-threshold>always</cookie-threshold></dos-protection>"
        "<sa-table-size>128</sa-table-size><sa-table-segments>16</sa-table-segments>"
        "<sp-hash-ipv4><local>16</local><remote>24</remote></sp-hash-ipv4>"
        "<sp-hash-ipv6><local>56</local><remote>64</remote></sp-hash-ipv6>"
        "<install-routes>true</install-routes><routing-table>230</routing-table>"
        "<routing-table-prio>230</routing-table-prio><delete-rekeyed>true</delete-rekeyed>"
        "<delete-rekeyed-delay>10</delete-rekeyed-delay>"
        "<make-before-break>true</make-before-break>"
        "<mobike-prefer-best-path>true</mobike-prefer-best-path>"))
    got = global_options(cfg["ike"]["global-options"], cfg["ike"]["logging"])
    assert got == replace(
        MODEL_DEFAULTS, retransmit_timeout=3.125, retransmit_base=1.0,
        dos_protection=replace(MODEL_DEFAULTS.dos_protection, cookie_threshold="always"),
        sa_table_size=128, sa_table_segments=16, sp_hash_ipv4=SpHash(local=16, remote=24),
        sp_hash_ipv6=SpHash(local=56, remote=64), install_routes=True, routing_table=230,
        routing_table_prio=230, delete_rekeyed=True, delete_rekeyed_delay=10,
        make_before_break=True, mobike_prefer_best_path=True)
    numeric = validate(schema, ike("<dos-protection><cookie-threshold>12</cookie-threshold>"
                                   "</dos-protection>"))
    assert global_options(numeric["ike"]["global-options"]).dos_protection.cookie_threshold == 12


@pytest.mark.parametrize("bad", [
    "<retransmit-timeout>60.001</retransmit-timeout>",  # l.1522: 0.000 to 60.000
    "<retransmit-timeout>1.0005</retransmit-timeout>",  # three decimals
    "<retransmit-base>10.001</retransmit-base>",  # l.1524: 0.000 to 10.000
    "<retransmit-tries>101</retransmit-tries>",  # l.1520: 0 to 100
    "<sp-hash-ipv4><local>33</local></sp-hash-ipv4>",  # l.1664: 0 to 32
    "<sp-hash-ipv6><remote>129</remote></sp-hash-ipv6>",  # l.1666: 0 to 128
    "<dos-protection><cookie-threshold>never</cookie-threshold></dos-protection>",
])
def test_the_model_refuses_out_of_the_manuals_ranges(schema: Schema, bad: str) -> None:
    with pytest.raises(RpcError):
        validate(schema, ike(bad))


@pytest.mark.parametrize(("change", "method"), [
    ({"retransmit_tries": 2}, "reload"),
    ({"retransmit_timeout": 1.5, "retransmit_base": 1.0}, "reload"),
    ({"threads": 20}, "restart"),
    ({"acquire_timeout": 60}, "restart"),
    ({"retransmit_tries": 2, "threads": 20}, "restart"),
    ({"dos_protection": DosProtection(cookie_threshold=20, block_threshold=5,
                                      init_limit_half_open=0)}, "restart"),
    ({"sa_table_size": 128}, "restart"),
    ({"sa_table_segments": 16}, "restart"),
    ({"sp_hash_ipv4": SpHash(local=16, remote=32)}, "restart"),
    ({"sp_hash_ipv6": SpHash(local=128, remote=64)}, "restart"),
    ({"install_routes": True}, "restart"),
    ({"routing_table": 230}, "restart"),
    ({"routing_table_prio": 230}, "restart"),
    ({"delete_rekeyed": True}, "restart"),
    ({"delete_rekeyed_delay": 10}, "reload"),
    ({"make_before_break": True}, "reload"),
    ({"make_before_break": True, "routing_table": 230}, "restart"),
    ({"mobike_prefer_best_path": True}, "restart"),
])
def test_method(change: dict, method: str) -> None:
    assert apply_method(MODEL_DEFAULTS, replace(MODEL_DEFAULTS, **change)) == method


# ---- /ike/logging and the IKE ports -----------------------------------------------------------

def syslog_block(conf: str) -> dict[str, dict[str, str]]:
    """The ``syslog { facility { group = level } }`` block of a strongswan.conf."""
    block = conf.split("  syslog {\n", 1)[1].split("\n  }\n", 1)[0]
    return {f: dict(re.findall(r"(\w+) = (\S+)", body))
            for f, body in re.findall(r"(\w+) \{(.*?)\}", block, re.S)}


def test_render_conf_logging_defaults() -> None:
    """The manual's defaults: daemon at 0, authpriv (charon's auth) silent; the filelog our
    health check reads is untouched."""
    conf = render_conf(Path("/x"))
    assert syslog_block(conf) == {"daemon": {"default": "0"}, "auth": {"default": "-1"}}
    assert "path = /x/charon.log" in conf and "      default = 1" in conf


def test_render_conf_logging_every_subsystem() -> None:
    """Each subsystem to its charon log group, `disable` to -1, unset ones left out (they take
    the facility's default in charon)."""
    levels = dict(zip(SUBSYSTEMS, (0, 1, 2, 3, 4, "disable", 0, 1, 2, 3, 4), strict=True))
    opts = replace(MODEL_DEFAULTS, logging=Logging(
        daemon=LogLevels(default="disable", **levels), authpriv=LogLevels(default=1, ike=2)))
    assert syslog_block(render_conf(Path("/x"), options=opts)) == {
        "daemon": {"default": "-1", "asn": "0", "chd": "1", "cfg": "2", "dmn": "3", "enc": "4",
                   "ike": "-1", "esp": "0", "job": "1", "knl": "2", "mgr": "3", "net": "4"},
        "auth": {"default": "1", "ike": "2"}}


def test_render_conf_ports() -> None:
    conf = charon_section(render_conf(Path("/x")))
    assert (conf["port"], conf["port_nat_t"]) == ("500", "4500")
    conf = charon_section(render_conf(Path("/x"), options=replace(
        MODEL_DEFAULTS, ike_port=1500, ike_nat_port=14500)))
    assert (conf["port"], conf["port_nat_t"]) == ("1500", "14500")


@pytest.mark.parametrize(("logging", "method"), [
    (Logging(daemon=LogLevels(default=1)), "reload"),
    (Logging(daemon=LogLevels(default=0, ike=2)), "reload"),
    (Logging(authpriv=LogLevels(default=1, ike=2)), "reload"),
    (Logging(daemon=LogLevels(default=0), authpriv=LogLevels(default="disable")), None),
    (Logging(), None),  # unset: the model's defaults
])
def test_logging_is_reloaded(logging: Logging, method: str | None) -> None:
    assert apply_method(MODEL_DEFAULTS, replace(MODEL_DEFAULTS, logging=logging)) == method
    # and back: a subsystem level removed is a change too
    assert apply_method(replace(MODEL_DEFAULTS, logging=logging), MODEL_DEFAULTS) == method


def test_ports_restart() -> None:
    assert apply_method(MODEL_DEFAULTS, replace(MODEL_DEFAULTS, ike_port=1500)) == "restart"
    assert apply_method(MODEL_DEFAULTS, replace(MODEL_DEFAULTS, ike_nat_port=14500)) == "restart"
    both = replace(MODEL_DEFAULTS, retransmit_tries=2, logging=Logging(
        daemon=LogLevels(default=2)), ike_port=1500)
    assert apply_method(MODEL_DEFAULTS, both) == "restart"


def logging_ike(body: str) -> list[etree._Element]:
    return [etree.fromstring(f'<ike xmlns="{IPNF}"><logging>{body}</logging></ike>')]


def test_the_model_takes_the_manuals_logging_example(schema: Schema) -> None:
    """l.1300-1318: authpriv default 1, ike 2."""
    cfg = validate(schema, logging_ike(
        "<authpriv><default>1</default><ike>2</ike></authpriv>"
        "<daemon><network>disable</network></daemon>"))
    got = global_options(cfg["ike"].get("global-options"), cfg["ike"]["logging"]).logging
    assert got == Logging(daemon=LogLevels(default=0, network="disable"),
                          authpriv=LogLevels(default=1, ike=2))


@pytest.mark.parametrize("bad", [
    "<daemon><default>5</default></daemon>",  # levels 0..4 (l.1206-1222)
    "<authpriv><ike>-1</ike></authpriv>",
    "<daemon><ike>off</ike></daemon>",
    "<syslog><default>1</default></syslog>",  # facilities daemon and authpriv only
])
def test_the_model_refuses_other_levels(schema: Schema, bad: str) -> None:
    with pytest.raises(RpcError):
        validate(schema, logging_ike(bad))


def test_ports_in_the_model(schema: Schema) -> None:
    cfg = validate(schema, ike("<ike-port>1500</ike-port><ike-nat-port>14500</ike-nat-port>"))
    got = global_options(cfg["ike"]["global-options"])
    assert (got.ike_port, got.ike_nat_port) == (1500, 14500)
    for bad in ("<ike-port>0</ike-port>", "<ike-nat-port>0</ike-nat-port>",
                "<ike-port>65536</ike-port>"):
        with pytest.raises(RpcError):
            validate(schema, ike(bad))


@pytest.mark.parametrize("body", ["<ike-port>4500</ike-port>",
                                  "<ike-nat-port>500</ike-nat-port>",
                                  "<ike-port>1500</ike-port><ike-nat-port>1500</ike-nat-port>"])
def test_ports_must_differ(schema: Schema, body: str) -> None:
    with pytest.raises(RpcError) as e:
        validate(schema, ike(body))
    [err] = e.value.errors
    assert err.message.startswith("ike-nat-port must differ from ike-port"), err
    assert err.path is not None and err.path.endswith("ike-nat-port"), err


def test_cookie_threshold_ip_reaches_charon(schema: Schema) -> None:
    """charon 5.9.8's per-address cookie threshold (default 3): one peer opening hundreds of
    tunnels at once is asked for cookies past it unless it is raised or 0 (off)."""
    cfg = validate(schema, ike("<dos-protection><cookie-threshold>0</cookie-threshold>"
                               "<cookie-threshold-ip>0</cookie-threshold-ip>"
                               "<block-threshold>100000</block-threshold></dos-protection>"))
    opts = global_options(cfg["ike"]["global-options"])
    assert opts.dos_protection == DosProtection(cookie_threshold=0, cookie_threshold_ip=0,
                                                block_threshold=100000, init_limit_half_open=0)
    conf = charon_section(render_conf(Path("/x"), options=opts))
    assert (conf["cookie_threshold"], conf["cookie_threshold_ip"]) == ("0", "0")
    assert apply_method(MODEL_DEFAULTS, opts) == "restart"  # the receiver reads it at start


@pytest.mark.parametrize("block,cookie_ip", [(3, 3), (2, 3), (0, 0), (4, 10)])
def test_block_threshold_must_be_above_cookie_threshold_ip(schema: Schema, block: int,
                                                           cookie_ip: int) -> None:
    """charon 5.9.8 raises a block threshold not above the per-address cookie threshold to
    that + 1 (0 too; charon.log "increasing block threshold", seen with a real charon): the
    model refuses such a pair instead of promising a value charon does not use."""
    with pytest.raises(RpcError) as e:
        validate(schema, ike(f"<dos-protection><cookie-threshold-ip>{cookie_ip}"
                             f"</cookie-threshold-ip><block-threshold>{block}"
                             "</block-threshold></dos-protection>"))
    [err] = e.value.errors
    assert err.message == ("block-threshold must be above cookie-threshold-ip: charon 5.9.8 "
                           "raises a lower block threshold to cookie-threshold-ip + 1 (0 "
                           "included)"), err
    assert err.path is not None and err.path.endswith("block-threshold"), err


def test_block_threshold_above_cookie_threshold_ip_is_taken(schema: Schema) -> None:
    cfg = validate(schema, ike("<dos-protection><cookie-threshold-ip>0</cookie-threshold-ip>"
                               "<block-threshold>1</block-threshold></dos-protection>"))
    assert global_options(cfg["ike"]["global-options"]).dos_protection.block_threshold == 1
    with pytest.raises(RpcError):  # the default cookie-threshold-ip (3) counts too
        validate(schema, ike("<dos-protection><block-threshold>3</block-threshold>"
                             "</dos-protection>"))
