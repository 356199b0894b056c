"""`ipsec-nf check` (tools/check.py): a file checked offline gets the effective VPNs and the
connections the backend would load, or every error with its path; the backend's refusals are
the server's own (tools.backends), and secrets never show."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from lxml import etree

from nf.datastore import Datastores
from nf.errors import RpcError
from nf.schema import Schema
from tools import check as chk
from tools.backends import BACKENDS, DEFAULT_BACKEND, backend_checks, dataplane
from tools.cli import COMMANDS, build_parser
from tools.serve_config import BACKENDS as CLI_BACKENDS
from tools.serve_config import ServeConfig

DATA = Path(__file__).resolve().parents[2] / "data"
NS = "urn:ipsec-nf:yang:ipsec-nf"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
SECRET = "0seaJ31RfzHNRvUSH0oUYg7znTW0I="  # site_a's pre-shared key
BAD_SECRET = "check-errors-secret-42"  # check_errors.xml's
P = "/ipsec-nf:ike"
IPSEC_T = f"{P}/ipsec-nf:ipsec-policy-template[ipsec-nf:name='ipsectemp1']"


def vpn(name: str) -> str:
    return f"{P}/ipsec-nf:vpn[ipsec-nf:name='{name}']"


# path -> (error-tag, app-tag) of every error of check_errors.xml
ERRORS = {
    f"{vpn('bad-address')}/ipsec-nf:local-address": ("invalid-value", None),
    f"{vpn('no-ike-template')}/ipsec-nf:ike-policy/ipsec-nf:template":
        ("data-missing", "mandatory"),
    f"{vpn('missing-template')}/ipsec-nf:ike-policy/ipsec-nf:template":
        ("data-missing", "instance-required"),
}
ESN = (f"{IPSEC_T}/ipsec-nf:esp-proposal[ipsec-nf:id='1']/ipsec-nf:esn",
       ("invalid-value", "not-supported-by-backend"))


@pytest.fixture(scope="module")
def schema() -> Schema:
    return Schema()


def run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    """The command in this process: (exit status, stdout, stderr)."""
    parsed = build_parser().parse_args(["check", *args])
    out, err = io.StringIO(), io.StringIO()
    code = chk.run(parsed.file, parsed.backend, parsed.format, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def ike(body: str) -> bytes:
    return f'<ike xmlns="{NS}">{body}</ike>'.encode()


# ---- a valid file ---------------------------------------------------------------------------

def test_a_valid_file_prints_the_effective_vpns_and_the_connections() -> None:
    code, out, err = run(str(DATA / "site_a.xml"))
    assert (code, err) == (0, "")
    assert "valid for the kernel-libipsec backend" in out
    assert "vpn siteA-siteB" in out
    # the template's values filled in, with the template named
    assert "ike-policy iketemp1" in out and "enc-alg aes128-cbc" in out
    assert "security-policy trunk" in out
    assert "connections {" in out and "proposals = aes128-sha512-prfsha512-modp2048" in out
    assert "esp_proposals = aes128-sha256" in out
    # kernel-libipsec has no acquires: trap is loaded as start, as the server would
    assert "start_action = start" in out
    assert "pre-shared-key siteb" in out and "secgwb.example.net" in out
    assert SECRET not in out and "<hidden>" in out


def test_json_input_gives_what_xml_gives(schema: Schema) -> None:
    from_xml = chk.check((DATA / "site_a.xml").read_bytes(), schema=schema)
    from_json = chk.check((DATA / "site_a.json").read_bytes(), schema=schema)
    assert from_xml.errors == [] and from_json.errors == []
    assert from_xml.effective is not None and from_json.effective is not None
    assert dict(from_json.effective.vpns) == dict(from_xml.effective.vpns)
    assert from_json.loads == from_xml.loads


def test_a_bare_top_container_is_the_same_as_a_config_element(schema: Schema) -> None:
    inner = etree.fromstring((DATA / "site_a.xml").read_bytes())[0]
    bare = chk.check(etree.tostring(inner), schema=schema)
    wrapped = chk.check((DATA / "site_a.xml").read_bytes(), schema=schema)
    assert bare.errors == [] and bare.loads == wrapped.loads


def test_json_report_names_leaves_as_the_model_and_hides_secrets() -> None:
    code, out, _ = run("--format", "json", str(DATA / "site_a.xml"))
    assert code == 0
    report = json.loads(out)
    assert report["valid"] is True and report["errors"] == []
    v = report["vpns"]["siteA-siteB"]
    assert v["ike-policy"]["template"] == "iketemp1"
    assert v["ike-policy"]["ike-proposal"][0]["dh-group"] == ["modp2048"]
    assert "192.168.0.0/24" in json.dumps(v["security-policy"][0]["local-ts"])
    conn = report["load"]["vpn"]["siteA-siteB"]
    assert conn["children"]["trunk"]["esp_proposals"] == ["aes128-sha256"]
    assert report["pre-shared-keys"]["siteb"] == {
        "name": "siteb", "id": ["secgwa.example.net", "secgwb.example.net"],
        "secret": "<hidden>"}
    assert report["load"]["pre-shared-key"]["siteb"]["data"] == "<hidden>"
    assert SECRET not in out


def test_the_backend_changes_what_is_loaded() -> None:
    _, out, _ = run("--backend", "kernel-netlink", str(DATA / "site_a.xml"))
    assert "start_action = trap" in out


# ---- errors ---------------------------------------------------------------------------------

def test_every_error_is_reported_with_its_path_and_line() -> None:
    code, out, err = run(str(DATA / "check_errors.xml"))
    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert lines[-1].endswith(": 4 errors")
    for path in [*ERRORS, ESN[0]]:
        assert sum(path + ":" in line for line in lines) == 1, (path, err)
    assert any(line.startswith(f"{DATA / 'check_errors.xml'}:26: {vpn('bad-address')}/")
               for line in lines), err
    assert "kernel-libipsec" in err and BAD_SECRET not in err


def test_the_errors_in_json(schema: Schema) -> None:
    code, out, err = run("--format", "json", str(DATA / "check_errors.xml"))
    assert (code, err) == (1, "")
    report = json.loads(out)
    assert report["valid"] is False and report["complete"] is True
    found = {e["error-path"]: (e["error-tag"], e["error-app-tag"]) for e in report["errors"]}
    assert found == {**ERRORS, ESN[0]: ESN[1]}
    assert all(isinstance(e["line"], int) for e in report["errors"])
    assert BAD_SECRET not in out


def test_a_backend_refusal_only_where_the_backend_cannot() -> None:
    result = chk.check((DATA / "check_errors.xml").read_bytes(), "kernel-netlink")
    assert {p.path: (p.tag, p.app_tag) for p in result.errors} == ERRORS


def test_check_refuses_what_the_server_refuses_at_validate(schema: Schema,
                                                             tmp_path: Path) -> None:
    """The same checks: an inline <validate> of the server's datastores with the checks the
    server builds for kernel-libipsec answers the refusals `check` prints."""
    text = (DATA / "site_a.xml").read_text().replace(
        "<auth-alg>hmac-sha256</auth-alg>", "<auth-alg>hmac-sha256</auth-alg><esn>true</esn>"
    ).replace("<name>trunk</name>", "<name>trunk</name><mode>transport</mode>")
    ds = Datastores(schema, tmp_path)
    ds.checks.extend(backend_checks(dataplane(DEFAULT_BACKEND)))
    with pytest.raises(RpcError) as e:
        ds.validate_config(etree.fromstring(text.encode()))
    server = {(i.path, i.message, i.app_tag) for i in e.value.errors}
    result = chk.check(text.encode(), DEFAULT_BACKEND, schema=schema)
    assert {(p.path, p.message, p.app_tag) for p in result.errors} == server
    assert len(server) == 2


def test_a_vpn_without_templates_gets_both_reported(schema: Schema) -> None:
    result = chk.check(ike("<vpn><name>bare</name></vpn>"), schema=schema)
    assert [(p.path, p.app_tag, p.line) for p in result.errors] == [
        (f"{vpn('bare')}/ipsec-nf:ike-policy/ipsec-nf:template", "mandatory", 1),
        (f"{vpn('bare')}/ipsec-nf:ipsec-policy/ipsec-nf:template", "mandatory", 1)]


def test_a_bad_secret_is_reported_without_its_value(schema: Schema) -> None:
    result = chk.check(ike("<pre-shared-key><name>k</name><id>a</id>"
                           "<secret>0xNOTHEX-secret</secret></pre-shared-key>"), schema=schema)
    assert [p.path for p in result.errors] == [
        f"{P}/ipsec-nf:pre-shared-key[ipsec-nf:name='k']/ipsec-nf:secret"]
    assert "NOTHEX" not in result.errors[0].message


def test_unknown_nodes_duplicates_and_keys(schema: Schema) -> None:
    result = chk.check(
        b"<config>" + ike(
            "<bogus/>"
            "<ike-policy-template><name>t</name>"
            "<ike-proposal><id>2</id><enc-alg>aes128-cbc</enc-alg><auth-alg>hmac-sha512"
            "</auth-alg><dh-group>modp2048</dh-group></ike-proposal>"
            "<ike-proposal><id>x</id></ike-proposal></ike-policy-template>"
            "<ipsec-policy-template><name>s</name></ipsec-policy-template>"
            "<vpn><name>a</name><ike-policy><template>t</template></ike-policy>"
            "<ipsec-policy><template>s</template></ipsec-policy><frob>1</frob></vpn>"
            "<vpn><name>a</name></vpn>"
            "<vpn><local-id>x</local-id></vpn>")
        + b'<other xmlns="urn:example:other"/></config>', schema=schema)
    paths = [p.path for p in result.errors]
    assert set(paths) == {
        "/other",
        f"{P}/bogus",
        f"{P}/ipsec-nf:ike-policy-template[ipsec-nf:name='t']/ipsec-nf:ike-proposal"
        "/ipsec-nf:id",
        f"{P}/ipsec-nf:vpn",  # the entry without its key
        f"{vpn('a')}/frob",
        vpn("a"),  # given twice
    }, paths
    assert result.complete


def test_json_errors_have_paths(schema: Schema) -> None:
    doc = {"ipsec-nf:ike": {"vpn": [
        {"name": "v", "local-address": "1.2.3.999", "ike-policy": {"template": "nope"}},
        {"name": "w", "ike-policy": {"template": "nope"}}]}}
    result = chk.check(json.dumps(doc).encode(), schema=schema)
    assert {p.path for p in result.errors} == {
        f"{vpn('v')}/ipsec-nf:local-address", f"{vpn('v')}/ipsec-nf:ike-policy/ipsec-nf:template",
        f"{vpn('w')}/ipsec-nf:ike-policy/ipsec-nf:template",
        # each VPN is set aside for its missing template: every mandatory leaf it lacks first
        f"{vpn('v')}/ipsec-nf:ipsec-policy/ipsec-nf:template",
        f"{vpn('w')}/ipsec-nf:ipsec-policy/ipsec-nf:template"}
    assert {p.line for p in result.errors} == {None}  # JSON has no line numbers here


# ---- files that cannot be read: exit status 2 ----------------------------------------------

@pytest.mark.parametrize(("content", "words"), [
    (b'<config><ike xmlns="urn:ipsec-nf:yang:ipsec-nf"><vpn>\n</config>', "line 1"),
    (b"<foo/>", "expected a <config> element"),
    (b'{"ipsec-nf:ike": \n', "not valid JSON: Expecting value (line 2"),
    (b'{"ike": {}}', "needs its module name"),
    (b"", "empty"),
    (b"hello", "neither XML"),
])
def test_an_unreadable_file_is_exit_2(tmp_path: Path, content: bytes, words: str) -> None:
    f = tmp_path / "f"
    f.write_bytes(content)
    code, out, err = run(str(f))
    assert (code, out) == (2, "")
    assert words in err and err.startswith("ipsec-nf check: ")


def test_a_missing_file_is_exit_2(tmp_path: Path) -> None:
    code, _, err = run(str(tmp_path / "nope.xml"))
    assert code == 2 and "No such file" in err


def test_the_command_is_wired_with_the_servers_backends() -> None:
    assert "check" in COMMANDS
    assert CLI_BACKENDS == BACKENDS and ServeConfig().backend == DEFAULT_BACKEND
    args = build_parser().parse_args(["check", "x.xml"])
    assert (args.backend, args.format) == (DEFAULT_BACKEND, "text")
    assert "exit status" in build_parser()._subparsers._group_actions[0].choices[  # noqa: SLF001
        "check"].format_help()
