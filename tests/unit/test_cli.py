"""The ``ddserver`` admin command: the contract of DESIGN.md, on both databases, and its answers to mistakes."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from ddserver import cli, secrets
from ddserver.store import hosts, zones
from tests import support


@pytest.fixture
def run(monkeypatch, tmp_path, capsys):
    """Run ``ddserver ARGS`` in-process against the ``db`` fixture's database; returns (code, out, err)."""

    def call(*args: str, stdin: str = "", url: str | None = None) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = cli.main(["--config", str(config_file), *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    config_file = tmp_path / "ddserver.conf"
    monkeypatch.setenv("DDSERVER_AUTH_SECRET_KEY_FILE", str(tmp_path / "secret"))
    call.config_file = config_file  # type: ignore[attr-defined]
    return call


@pytest.fixture
def ready(run, db_url):
    support.write_config_file(run.config_file, db_url)
    assert run("init")[0] == 0
    assert (
        run(
            "zone",
            "add",
            "dyn.example.org",
            "--ns",
            "ns1.example.org",
            "--ns",
            "ns2.example.org",
            "--hostmaster",
            "hostmaster@example.org",
        )[0]
        == 0
    )
    assert (
        run("user", "add", "alice", "--email", "alice@example.org", "--password-stdin", stdin="long enough password\n")[
            0
        ]
        == 0
    )
    return run


def test_contract(ready, db):
    code, out, _ = ready("host", "add", "alice", "Home.dyn.example.org")
    assert code == 0
    secret = out.strip().splitlines()[-1]
    assert len(secret) >= 22
    host = hosts.get(db, "home.dyn.example.org")
    assert secrets.verify_host_secret(secret, host.secret_hash).ok
    assert ready("host", "set-address", "home.dyn.example.org", "2001:db8::1", "192.0.2.1")[0] == 0
    code, out, _ = ready("host", "list", "--user", "alice")
    assert out.split("\t")[:3] == ["home.dyn.example.org", "192.0.2.1", "2001:db8::1"]
    code, out, _ = ready("zone", "list")
    assert out.startswith("dyn.example.org\tserial ") and "hosts 1" in out
    code, out, _ = ready("user", "list")
    assert out.startswith("alice\talice@example.org\thosts 1/5")
    assert ready("host", "delete", "home.dyn.example.org") == (0, "deleted home.dyn.example.org\n", "")
    assert ready("migrate")[0] == 0  # idempotent


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("host", "add", "alice", "x.unknown.org"), "no zone served here contains x.unknown.org"),
        (("host", "add", "alice", "www.dyn.example.org"), "'www' is reserved"),
        (("host", "add", "alice", "bad_name.dyn.example.org"), "only letters, digits and hyphens"),
        (("host", "add", "bob", "x.dyn.example.org"), "no user bob"),
        (("host", "set-address", "home.dyn.example.org", "300.1.1.1"), "not a valid IP address"),
        (("host", "set-address", "home.dyn.example.org", "224.0.0.1"), "a multicast address, not a host's"),
        (("host", "delete", "nope.dyn.example.org"), "no host nope.dyn.example.org"),
        (
            ("zone", "add", "dyn.example.org", "--ns", "ns1.example.org", "--hostmaster", "h@example.org"),
            "zone dyn.example.org exists already",
        ),
        (("zone", "add", "org", "--ns", "ns1.example.org", "--hostmaster", "h@example.org"), "at least two labels"),
        (("user", "add", "alice", "--email", "a2@example.org", "--password-stdin"), "at least 10 characters"),
    ],
)
def test_mistakes_give_one_line(ready, args, message):
    ready("host", "add", "alice", "home.dyn.example.org")
    code, _, err = ready(*args, stdin="short\n")
    assert code == 1
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_duplicate_host_and_limit(ready):
    assert ready("host", "add", "alice", "a.dyn.example.org")[0] == 0
    code, _, err = ready("host", "add", "alice", "a.dyn.example.org")
    assert code == 1 and "a.dyn.example.org is taken" in err
    for label in "bcde":
        assert ready("host", "add", "alice", f"{label}.dyn.example.org")[0] == 0
    code, _, err = ready("host", "add", "alice", "f.dyn.example.org")
    assert code == 1 and "limit of 5 hosts" in err


@pytest.mark.parametrize("dialect", ["sqlite"])
def test_uninitialised_newer_and_half_applied_schema(run, db, db_url, tmp_path):
    other = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    support.write_config_file(run.config_file, other)
    code, _, err = run("zone", "list")
    assert code == 1 and f"empty.sqlite3 does not exist (configuration {run.config_file}); run 'ddserver init'" in err
    assert not (tmp_path / "empty.sqlite3").exists()
    support.write_config_file(run.config_file, db_url)
    db.run(lambda tx: tx.execute("INSERT INTO schema_version VALUES (999, 'future', 'done', 0)"))
    code, _, err = run("migrate")
    assert code == 1 and "newer than this ddserver knows" in err
    code, _, err = run("zone", "list")
    assert code == 1 and "upgrade ddserver" in err
    db.run(lambda tx: tx.execute("UPDATE schema_version SET state = 'running' WHERE version = 999"))
    code, _, err = run("migrate")
    assert code == 1 and "was interrupted and is half applied" in err


def test_bad_config_and_unreachable_database(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("[dns]\nmax_hosts_per_user = many\n")
    result = subprocess.run(
        [support.console_script("ddserver"), "--config", str(conf), "zone", "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr == "ddserver: config: [dns] max_hosts_per_user = 'many': expected a whole number\n"
    port = support.free_port()
    conf.write_text(f"[database]\nurl = mysql://root:topsecret@127.0.0.1:{port}/ddserver\nconnect_timeout = 2\n")
    result = subprocess.run(
        [support.console_script("ddserver"), "--config", str(conf), "init"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"cannot connect to mysql://root@127.0.0.1:{port}/ddserver" in result.stderr
    assert "topsecret" not in result.stderr


def test_help_everywhere():
    for args in (
        ["--help"],
        ["zone", "--help"],
        ["zone", "add", "--help"],
        ["user", "add", "--help"],
        ["host", "add", "--help"],
        ["host", "list", "--help"],
        ["run", "--help"],
    ):
        result = subprocess.run([support.console_script("ddserver"), *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "usage: ddserver" in result.stdout
    result = subprocess.run(
        [support.console_script("ddserver"), "zone", "frobnicate"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_quickstart_prepares_everything(tmp_path):
    result = subprocess.run(
        [support.console_script("ddserver"), "run", "--no-serve", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "DDSERVER_CONFIG": ""},
    )
    assert result.returncode == 0, result.stderr
    assert "admin account: admin / " in result.stdout and "dyn.example.test" in result.stdout
    assert (tmp_path / "ddserver.sqlite3").exists() and (tmp_path / "ddserver.secret").exists()
    again = subprocess.run(
        [support.console_script("ddserver"), "run", "--no-serve", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "DDSERVER_CONFIG": ""},
    )
    assert again.returncode == 0 and "admin / " not in again.stdout  # the password is shown once


def test_quickstart_next_steps_work_as_printed(tmp_path):
    """The next steps name the ddserver that ran (.venv/bin/ddserver from a checkout) and the configuration it
    wrote, and host add's update URL names the address the quick start serves on."""
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "ddserver").symlink_to(support.console_script("ddserver"))
    env = {"PATH": "/usr/bin:/bin"}
    port = support.free_port()
    result = subprocess.run(
        [".venv/bin/ddserver", "run", "--no-serve", "--listen", f"127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    step = next(line.split("#")[0].split() for line in result.stdout.splitlines() if " host add " in line)
    assert step == [
        ".venv/bin/ddserver",
        "--config",
        "var/ddserver.conf",
        "host",
        "add",
        "admin",
        "home.dyn.example.test",
    ]
    added = subprocess.run(step, capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert added.returncode == 0, added.stderr
    assert f"update URL: http://127.0.0.1:{port}/nic/update?hostname=home.dyn.example.test" in added.stdout


@pytest.mark.parametrize("command", [("host", "list"), ("migrate",), ("zone", "list")])
def test_no_configuration_creates_nothing_and_says_what_was_looked_for(tmp_path, command):
    result = subprocess.run(
        [support.console_script("ddserver"), *command],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    assert result.stderr.startswith("ddserver: no configuration file (no --config, no $DDSERVER_CONFIG, and ")
    assert (
        "/etc/ddserver/ddserver.conf does not exist)" in result.stderr or Path("/etc/ddserver/ddserver.conf").exists()
    )
    assert "ddserver.sqlite3 does not exist; give --config FILE" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_prune(ready, db):
    from ddserver.store import changes, tokens

    ready("host", "add", "alice", "home.dyn.example.org")
    db.run(lambda tx: tx.execute("UPDATE changes SET created_at = 1"))
    newest = changes.last_id(db)
    tokens.create(db, "reset", None, 60)
    db.run(lambda tx: tx.execute("UPDATE tokens SET expires_at = 1"))
    code, out, _ = ready("prune")
    assert code == 0 and "expired or used tokens" in out
    # Old entries go, the newest stays so followers can tell where the feed is.
    assert changes.first_id(db) == newest == changes.last_id(db)


def test_zone_host_rules_and_host_edit(ready, db):
    code, _out, err = ready(
        "zone", "add", "lab.example.org", "--ns", "ns1.example.org", "--hostmaster", "h@example.org",
        "--min-ttl", "30", "--max-ttl", "600", "--no-wildcards",
    )  # fmt: skip
    assert code == 0, err
    lab = zones.get(db, "lab.example.org")
    assert (lab.min_ttl, lab.max_ttl, lab.allow_wildcards) == (30, 600, False)
    assert (
        "lab.example.org\t" in ready("zone", "list")[1]
        and "host TTL 30-600 s, no wildcards" in ready("zone", "list")[1]
    )
    assert ready("host", "add", "alice", "pc.lab.example.org")[0] == 0
    for args, message in [
        (("--ttl", "10"), "ddserver: The TTL must be between 30 and 600 seconds in the zone lab.example.org.\n"),
        (("--ttl", "ten"), "ddserver: --ttl ten: 'ten' is not a whole number of seconds.\n"),
        (("--wildcard",), "ddserver: The zone lab.example.org does not allow wildcard hosts.\n"),
        ((), "ddserver: nothing to change: give --ttl SECONDS, --zone-ttl, --wildcard or --no-wildcard\n"),
    ]:
        assert ready("host", "edit", "pc.lab.example.org", *args) == (1, "", message)
    assert ready("host", "edit", "pc.lab.example.org", "--ttl", "600") == (
        0,
        "pc.lab.example.org\tttl 600\tno wildcard\n",
        "",
    )
    assert ready("zone", "edit", "lab.example.org", "--min-ttl", "700")[2] == (
        "ddserver: The TTL range 700 to 600 is empty or out of bounds.\n"
    )
    assert ready("zone", "edit", "lab.example.org", "--max-ttl", "300", "--wildcards") == (
        0, "lab.example.org: host TTL 30-300 s, wildcards allowed\n", "",
    )  # fmt: skip
    assert hosts.get(db, "pc.lab.example.org").ttl == 300  # brought within the new range
    assert ready("host", "edit", "pc.lab.example.org", "--wildcard", "--zone-ttl") == (
        0, "pc.lab.example.org\tzone ttl\twildcard\n", "",
    )  # fmt: skip
    with pytest.raises(SystemExit) as stop:  # argparse: one or the other
        ready("host", "edit", "pc.lab.example.org", "--ttl", "60", "--zone-ttl")
    assert stop.value.code == 2
