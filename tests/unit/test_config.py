"""Configuration: file, environment, typed values, one-line errors, and the generated example and reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from ddserver import config as cfg
from ddserver.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_without_file(monkeypatch):
    monkeypatch.setattr(cfg, "DEFAULT_PATH", Path("/nonexistent/ddserver.conf"))
    config = cfg.load_config(env={})
    assert config.source is None
    assert config.database.url == "sqlite:///ddserver.sqlite3"
    assert config.dns.default_ttl == 60 and config.dns.max_hosts_per_user == 5
    assert "www" in config.dns.reserved_names
    assert config.update_url == "http://localhost:8080"


def test_file_then_environment(tmp_path):
    path = tmp_path / "ddserver.conf"
    path.write_text("[dns]\ndefault_ttl = 120\nreserved_names = www, mail\n[database]\nurl = sqlite:///x.db\n")
    config = cfg.load_config(path, env={"DDSERVER_DNS_DEFAULT_TTL": "300", "DDSERVER_HTTP_BASE_URL": "https://d/"})
    assert config.dns.default_ttl == 300  # the environment wins
    assert config.dns.reserved_names == ("www", "mail")
    assert config.database.url == "sqlite:///x.db"
    assert config.update_url == "https://d"
    assert config.source == str(path)


def test_config_from_environment_variable(tmp_path):
    path = tmp_path / "c.conf"
    path.write_text("[dns]\ndefault_ttl = 99\n")
    assert cfg.load_config(env={"DDSERVER_CONFIG": str(path)}).dns.default_ttl == 99


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[dns]\ndefault_ttl = soon\n", {}, "[dns] default_ttl = 'soon': expected a whole number"),
        ("[dns]\ndefault_ttl = 0\n", {}, "[dns] default_ttl = '0': expected at least 1"),
        ("[signup]\nmode = open\n", {}, "expected one of automatic, semi-automatic, manual"),
        ("[interface]\nlisten = localhost\n", {}, "[interface] listen = 'localhost': expected HOST:PORT"),
        ("[http]\ntrusted_proxies = 10.0.0.0/8, banana\n", {}, "expected a list of IP addresses or networks"),
        ("[database]\nurl = postgres://x/y\n", {}, "[database] url = (secret): expected sqlite:///PATH"),
        ("[dns]\nttl = 5\n", {}, "unknown key 'ttl' in [dns]"),
        ("[dnss]\n", {}, "unknown section [dnss]"),
        ("no section here\n", {}, "not a valid INI file"),
        ("", {"DDSERVER_DNS_TTL": "5"}, "DDSERVER_DNS_TTL: [dns] has no key 'ttl'"),
        ("", {"DDSERVER_RECURSOR_POLL_INTERVAL": "x"}, "[recursor] poll_interval = 'x': expected a number"),
        ("[recursor]\ncoprocess_timeout = 1\n", {}, "[recursor] coprocess_timeout = '1': expected 0 (no limit)"),
    ],
)
def test_bad_values_name_key_value_and_expectation(tmp_path, text, env, message):
    path = tmp_path / "ddserver.conf"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        cfg.load_config(path, env=env)
    assert message in info.value.message
    assert "\n" not in info.value.message


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        cfg.load_config(tmp_path / "missing.conf", env={})
    binary = tmp_path / "binary.conf"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="cannot be read"):
        cfg.load_config(binary, env={})


def test_secrets_are_not_shown(tmp_path):
    path = tmp_path / "c.conf"
    path.write_text("[mail]\npassword = hunter2\n[auth]\npepper = pepper-value\n")
    config = cfg.load_config(path, env={})
    assert "hunter2" not in repr(config) and "pepper-value" not in repr(config)
    assert config.mail.password == "hunter2"


def test_parse_listen():
    assert cfg.parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert cfg.parse_listen("[::1]:53") == ("::1", 53)
    assert cfg.parse_listen("8081") == ("127.0.0.1", 8081)
    for bad in ("host", "::1:53", "h:99999", "h:x", ":80"):
        with pytest.raises(ValueError):
            cfg.parse_listen(bad)


def test_generated_files_are_current():
    """etc/ddserver/ddserver.conf and docs/configuration.md come from the declarations and cannot drift."""
    assert (ROOT / "etc/ddserver/ddserver.conf").read_text() == cfg.sample_file(), (
        "regenerate: python -m ddserver.config --sample > etc/ddserver/ddserver.conf"
    )
    assert (ROOT / "docs/configuration.md").read_text() == cfg.markdown_reference(), (
        "regenerate: python -m ddserver.config --markdown > docs/configuration.md"
    )


def test_sample_file_loads_to_defaults(tmp_path):
    """Uncommenting every key of the example file gives exactly the defaults."""
    text = "\n".join(
        line[1:] if line.startswith("#") and "=" in line and not line.startswith("# ") else line
        for line in cfg.sample_file().splitlines()
    )
    path = tmp_path / "all.conf"
    path.write_text(text)
    loaded = cfg.load_config(path, env={})
    assert loaded.replace("database") == cfg.Config(source=str(path)).replace("database")
