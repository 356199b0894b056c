"""The configuration file of `ipsec-nf serve` (--config, TOML): keys, checks, command-line
overrides, and the example shipped in packaging/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tools.cli import build_parser
from tools.serve_config import ConfigError, load_config, serve_config

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "packaging" / "ipsec-nf.toml"


def settings(*argv: str):  # noqa: ANN201 - ServeConfig
    return serve_config(build_parser().parse_args(["serve", *argv]))


def write(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "serve.toml"
    f.write_text(text)
    return f


def test_file_settings(tmp_path: Path) -> None:
    f = write(tmp_path, 'state-dir = "/srv/nf"\nlisten = ["127.0.0.1:830", "[::1]:8830"]\n'
                        'backend = "kernel-netlink"\nlog-level = "warning"\n'
                        'sync-interval = 5\n')
    cfg = settings("--config", str(f))
    assert cfg.state_dir == Path("/srv/nf")
    assert cfg.listen == [("127.0.0.1", 830), ("::1", 8830)]
    assert (cfg.backend, cfg.log_level, cfg.sync_interval) == ("kernel-netlink", "warning", 5.0)


def test_command_line_overrides_the_file(tmp_path: Path) -> None:
    f = write(tmp_path, 'state-dir = "/srv/nf"\nlisten = "127.0.0.1:830"\n'
                        'backend = "kernel-netlink"\nlog-level = "warning"\n'
                        'sync-interval = 5\n')
    cfg = settings("--config", str(f), "--state-dir", "/other", "--listen", "10.0.0.1:831",
                   "--listen", "[2001:db8::1]:832", "--backend", "kernel-libipsec",
                   "--sync-interval", "7.5", "--debug")
    assert cfg.state_dir == Path("/other")
    assert cfg.listen == [("10.0.0.1", 831), ("2001:db8::1", 832)]
    assert (cfg.backend, cfg.log_level, cfg.sync_interval) == ("kernel-libipsec", "debug", 7.5)
    # what the command line leaves out comes from the file, then from the defaults
    cfg = settings("--config", str(write(tmp_path, 'log-level = "error"\n')),
                   "--state-dir", "/x")
    assert cfg.log_level == "error" and cfg.listen == [("127.0.0.1", 830)]
    assert cfg.backend == "kernel-libipsec" and cfg.sync_interval == 30.0


def test_front_door_limits(tmp_path: Path) -> None:
    f = write(tmp_path, 'state-dir = "/srv/nf"\n[limits]\nmax-sessions-per-user = 4\n'
                        "login-grace-time = 10\n")
    cfg = settings("--config", str(f))
    assert cfg.limits == {"max_sessions_per_user": 4, "login_grace_time": 10.0}


def test_relative_state_dir_is_relative_to_the_file(tmp_path: Path) -> None:
    cfg = settings("--config", str(write(tmp_path, 'state-dir = "state"\n')))
    assert cfg.state_dir == tmp_path / "state"


@pytest.mark.parametrize("text,names", [
    ('stat-dir = "/x"\n', ["'stat-dir'", "state-dir"]),
    ('[gnmi]\nlisten = ["[::]:9339"]\n', ["gnmi", "listen", "string"]),
    ('[gnmi]\nport = 9339\n', ["gnmi", "'port'", "tls-cert"]),
    ('[gnmi]\ninsecure = "yes"\n', ["gnmi", "insecure"]),
    ('gnmi = 9339\n', ["gnmi", "table"]),
    ('listen = ["127.0.0.1"]\n', ["listen", "HOST:PORT"]),
    ('listen = []\n', ["listen"]),
    ('backend = "xfrm"\n', ["backend", "kernel-netlink"]),
    ('log-level = "verbose"\n', ["log-level", "debug"]),
    ('sync-interval = 0\n', ["sync-interval", "positive"]),
    ('sync-interval = true\n', ["sync-interval"]),
    ('state-dir = 3\n', ["state-dir"]),
    ('state-dir = "/x\n', ["not valid TOML"]),
    ('[limits]\nmax-sesions-per-user = 3\n', ["limits", "'max-sesions-per-user'",
                                                "max-sessions-per-user"]),
    ('[limits]\nmax-sessions-per-user = 0\n', ["limits", "positive int"]),
    ('[limits]\nmax-sessions-per-user = 2.5\n', ["limits", "positive int"]),
    ('limits = 3\n', ["limits", "table"]),
])
def test_bad_files_are_refused_naming_the_key(tmp_path: Path, text: str,
                                              names: list[str]) -> None:
    f = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(f)
    for n in [str(f), *names]:
        assert n in str(e.value), str(e.value)


def test_gnmi_is_off_by_default_and_needs_tls_or_insecure(tmp_path: Path) -> None:
    from tools.serve_config import gnmi_listen

    def where(*argv: str):  # noqa: ANN202
        args = build_parser().parse_args(["serve", "--state-dir", "/x", *argv])
        return gnmi_listen(serve_config(args).gnmi, args)

    assert where() is None
    assert where("--gnmi", "127.0.0.1:9339", "--gnmi-insecure") == (
        where("--gnmi", "127.0.0.1:9339", "--gnmi-insecure"))
    plain = where("--gnmi", "127.0.0.1:0", "--gnmi-insecure")
    assert (plain.host, plain.port, plain.insecure, plain.cert) == ("127.0.0.1", 0, True, None)
    tls = where("--gnmi", "[::1]:9339", "--gnmi-cert", "c.pem", "--gnmi-key", "k.pem")
    assert (tls.host, tls.port, tls.cert, tls.key, tls.insecure) == (
        "::1", 9339, Path("c.pem"), Path("k.pem"), False)
    with pytest.raises(ConfigError, match="certificate and key"):
        where("--gnmi", "127.0.0.1:9339")
    with pytest.raises(ConfigError, match="need --gnmi"):
        where("--gnmi-insecure")
    # from the file: the certificate and key relative to its folder; the command line wins
    f = write(tmp_path, 'state-dir = "s"\n[gnmi]\nlisten = "127.0.0.1:9339"\n'
                        'tls-cert = "gnmi.crt"\ntls-key = "gnmi.key"\n')
    args = build_parser().parse_args(["serve", "--config", str(f)])
    g = gnmi_listen(serve_config(args).gnmi, args)
    assert (g.port, g.cert, g.key) == (9339, tmp_path / "gnmi.crt", tmp_path / "gnmi.key")
    args = build_parser().parse_args(["serve", "--config", str(f), "--gnmi", "127.0.0.1:1",
                                      "--gnmi-insecure"])
    g = gnmi_listen(serve_config(args).gnmi, args)
    assert (g.port, g.insecure, g.cert) == (1, True, None)


def test_state_dir_is_required_somewhere(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="state-dir"):
        settings()
    with pytest.raises(ConfigError, match="state-dir"):
        settings("--config", str(write(tmp_path, 'log-level = "info"\n')))
    with pytest.raises(ConfigError, match="No such file"):
        settings("--config", str(tmp_path / "missing.toml"))


def test_serve_exits_2_on_a_bad_file_before_doing_anything(tmp_path: Path) -> None:
    f = write(tmp_path, f'state-dir = "{tmp_path / "state"}"\nlisten-on = "0.0.0.0:830"\n')
    r = subprocess.run([sys.executable, "-m", "tools.cli", "serve", "--config", str(f)],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "unknown key 'listen-on'" in r.stderr and str(f) in r.stderr
    assert not (tmp_path / "state").exists()


def test_the_shipped_example_is_valid_and_matches_the_unit() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg["state_dir"] == Path("/var/lib/ipsec-nf")  # StateDirectory=ipsec-nf
    assert cfg["listen"] and cfg["backend"] and cfg["log_level"] == "info"
    assert "[gnmi]" in EXAMPLE.read_text()  # the documented place of the gNMI settings
    unit = (ROOT / "packaging" / "ipsec-nf.service").read_text()
    assert "--config /etc/ipsec-nf/ipsec-nf.toml" in unit


def test_state_interval_from_the_file_and_the_command_line(tmp_path: Path) -> None:
    f = write(tmp_path, 'state-dir = "/srv/nf"\nstate-interval = 2.5\n')
    assert settings("--config", str(f)).state_interval == 2.5
    assert settings("--config", str(f), "--state-interval", "10").state_interval == 10.0
    assert settings("--state-dir", "/x").state_interval == 5.0  # the default
    assert load_config(EXAMPLE)["state_interval"] == 5
