"""The ``ddserver`` admin command: the contract of DESIGN.md, on both databases, and its answers to mistakes."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ddserver import cli, secrets
from ddserver.errors import NotFound
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
        (("user", "disable", "bob"), "no user bob"),
        (("user", "enable", "Bad Name"), "is not a valid user name"),
        (("user", "reset-2fa", "bob"), "no user bob"),
        (("user", "delete", "bob", "--yes"), "no user bob"),
        (("user", "delete", "alice"), "no terminal to ask for confirmation: give --yes to delete user alice"),
        (("user", "set-limit", "alice", "many"), "give a number of hosts (0 to 1000000000), default or unlimited"),
        (("user", "set-limit", "alice", "-2"), "give a number of hosts"),
        (("user", "set-limit", "alice", "1000000001"), "give a number of hosts"),
        (("zone", "delete", "dyn.example.org", "--yes"), "has 1 host: give --with-hosts to delete them with it"),
        (("zone", "delete", "nope.example.org", "--yes"), "no zone nope.example.org"),
        (("zone", "delete", "dyn.example.org", "--with-hosts"), "no terminal to ask for confirmation"),
        (("host", "block", "nope.dyn.example.org", "--reason", "spam"), "no host nope.dyn.example.org"),
        (("host", "block", "home.dyn.example.org", "--reason", "  "), "--reason: say why the host is blocked"),
        (("host", "block", "home.dyn.example.org", "--reason", "x" * 201), "at most 200 printable characters"),
        (("host", "block", "home.dyn.example.org", "--reason", "a\x07b"), "at most 200 printable characters"),
        (("host", "unblock", "bad_name.dyn.example.org"), "only letters, digits and hyphens"),
        (("host", "clear", "nope.dyn.example.org"), "no host nope.dyn.example.org"),
        (("host", "list", "--stale", "soon"), "--stale 'soon': give a number of days, such as 90"),
        (("host", "list", "--stale", "0"), "give a number of days"),
        (("host", "list", "--flagged", "--user", "bob"), "no user bob"),
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
    assert code == 0 and "expired or used tokens" in out and "expired sessions" in out and "audit entries" in out
    # Old entries go, the newest stays so followers can tell where the feed is.
    assert changes.first_id(db) == newest == changes.last_id(db)


# -- the admin command's user, zone and host management --------------------------------------------------


def _in_dns(db, name: str) -> bool:
    """Whether the recursor and the RFC 2136 worker would serve ``name`` (store/dnsdata.py)."""
    from ddserver.store import dnsdata

    return bool(db.read(lambda tx: dnsdata.hosts_named(tx, [name])))


def _feed(db) -> tuple[int, list[str]]:
    """The zone's serial and the names in the change feed, oldest first."""
    from ddserver.store import changes, zones

    return zones.get(db, "dyn.example.org").serial, [c.name for c in changes.since(db, 0)]


def _audit_details(db) -> list[str]:
    from ddserver.store import audit

    return [f"{e.subject}: {e.detail}" for e in reversed(audit.recent(db))]


class _Terminal(io.StringIO):
    """Standard input that says it is a terminal, with the admin's typed answer."""

    def isatty(self) -> bool:
        return True


def test_user_disable_and_enable_take_hosts_out_of_dns_and_back(ready, db):
    from ddserver.store import sessions, users

    ready("host", "add", "alice", "home.dyn.example.org")
    ready("host", "set-address", "home.dyn.example.org", "192.0.2.1")
    alice = users.get_by_name(db, "alice")
    sessions.create(db, alice.id, 3600)
    serial, feed = _feed(db)
    assert ready("user", "disable", "alice") == (0, "disabled alice: 1 host out of DNS, 1 session ended\n", "")
    assert users.get(db, alice.id).is_disabled and not _in_dns(db, "home.dyn.example.org")
    assert sessions.delete_for_user(db, alice.id) == 0
    # The host left DNS in the change feed, with the zone's serial.
    assert _feed(db) == (serial + 1, [*feed, "home.dyn.example.org"])
    assert ready("user", "disable", "alice") == (0, "alice is disabled already\n", "")
    assert _feed(db)[0] == serial + 1
    assert "\tdisabled" in ready("user", "list")[1]
    assert ready("user", "enable", "ALICE")[:2] == (
        0,
        "enabled alice: 1 host back in DNS (unless blocked or flagged)\n",
    )
    assert not users.get(db, alice.id).is_disabled and _in_dns(db, "home.dyn.example.org")
    assert _feed(db) == (serial + 2, [*feed, "home.dyn.example.org", "home.dyn.example.org"])
    assert ready("user", "enable", "alice") == (0, "alice is enabled already\n", "")
    assert _audit_details(db)[-2:] == [
        "user alice: disable (ddserver command)",
        "user alice: enable (ddserver command)",
    ]


def test_the_last_admin_stays(ready, db):
    ready("user", "add", "root", "--email", "root@example.org", "--admin", "--password-stdin", stdin="long enough pw\n")
    for args in (("user", "disable", "root"), ("user", "delete", "root", "--yes")):
        code, out, err = ready(*args)
        assert (code, out) == (1, "") and err == "ddserver: this is the last admin: make another user admin first\n"
    # Another admin first: then the first one may go.
    ready("user", "add", "admin2", "--email", "a2@example.org", "--admin", "--password-stdin", stdin="long enough pw\n")
    assert ready("user", "delete", "root", "--yes") == (0, "deleted root with 0 hosts\n", "")


def test_user_delete_removes_their_hosts_from_dns(ready, db, monkeypatch, capsys):
    from ddserver.store import users

    ready("host", "add", "alice", "home.dyn.example.org")
    ready("host", "add", "alice", "work.dyn.example.org")
    serial, feed = _feed(db)
    # Asked on a terminal: another answer deletes nothing.
    monkeypatch.setattr(sys, "stdin", _Terminal("bob\n"))
    assert cli.main(["--config", str(ready.config_file), "user", "delete", "alice"]) == 1
    assert capsys.readouterr().err.endswith("Type alice to confirm: ddserver: not confirmed: nothing was deleted\n")
    assert hosts.count_for_user(db, users.get_by_name(db, "alice").id) == 2
    assert ready("user", "delete", "alice", "--yes") == (0, "deleted alice with 2 hosts\n", "")
    with pytest.raises(NotFound):
        users.get_by_name(db, "alice")
    assert hosts.search(db)[1] == 0
    # Each host left DNS in the feed, the serial moving with each.
    new_serial, new_feed = _feed(db)
    assert sorted(new_feed[len(feed) :]) == ["home.dyn.example.org", "work.dyn.example.org"]
    assert new_serial == serial + 2
    # The audit trail keeps the deletion under a pseudonym only.
    assert re.fullmatch(r"user deleted-[0-9a-f]{8}: .*2 hosts.*\(ddserver command\)", _audit_details(db)[-1])
    assert not any("alice" in line for line in _audit_details(db))


def test_user_delete_asks_on_a_terminal(ready, db, monkeypatch, capsys):
    from ddserver.store import users

    monkeypatch.setattr(sys, "stdin", _Terminal("Alice\n"))
    assert cli.main(["--config", str(ready.config_file), "user", "delete", "alice"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "This will delete user alice and their 0 hosts. Type alice to confirm: "
    assert captured.out == "deleted alice with 0 hosts\n"
    assert users.count(db) == 0


def test_user_set_limit(ready, db):
    from ddserver.store import users

    def limit() -> int | None:
        return users.get_by_name(db, "alice").max_hosts

    for label in "ab":
        ready("host", "add", "alice", f"{label}.dyn.example.org")
    assert ready("user", "set-limit", "alice", "10") == (0, "alice: host limit 10, 2 hosts\n", "")
    assert limit() == 10
    assert ready("user", "set-limit", "alice", "unlimited")[1] == "alice: host limit unlimited, 2 hosts\n"
    assert limit() == users.UNLIMITED
    assert ready("user", "set-limit", "alice", "1")[1] == (
        "alice: host limit 1, 2 hosts: they keep them, but cannot add more\n"
    )
    code, _, err = ready("host", "add", "alice", "c.dyn.example.org")
    assert code == 1 and "the limit of 1 hosts for this user is reached" in err
    assert ready("user", "set-limit", "alice", "-1")[0] == 0 and limit() == -1
    assert ready("user", "set-limit", "alice", "Default")[1] == "alice: host limit default (5), 2 hosts\n"
    assert limit() is None
    assert ready("user", "list")[1].startswith("alice\talice@example.org\thosts 2/5")
    assert [d for d in _audit_details(db) if "limit" in d][-1] == (
        "user alice: host limit set to default (ddserver command)"
    )


def test_user_reset_2fa(ready, db):
    from ddserver.store import accounts, users

    alice = users.get_by_name(db, "alice")
    assert ready("user", "reset-2fa", "alice") == (0, "alice has no second factor\n", "")
    accounts.set_totp(db, alice.id, "JBSWY3DPEHPK3PXP", 12345)
    code, out, _ = ready("user", "reset-2fa", "alice")
    assert code == 0 and out.startswith("alice: second factor off")
    assert users.get(db, alice.id).totp_secret is None
    # The replay guard goes with it: a factor set up again starts afresh.
    assert db.read(lambda tx: tx.scalar("SELECT totp_last_step FROM users WHERE id = ?", (alice.id,))) is None
    assert _audit_details(db)[-1] == "user alice: second factor turned off (ddserver command)"


def test_zone_delete(ready, db):
    from ddserver.store import changes, zones

    ready("host", "add", "alice", "home.dyn.example.org")
    code, _, err = ready("zone", "delete", "dyn.example.org", "--yes")
    assert code == 1
    assert err == "ddserver: zone dyn.example.org has 1 host: give --with-hosts to delete them with it\n"
    assert zones.get(db, "dyn.example.org") and hosts.get(db, "home.dyn.example.org")
    zone = zones.get(db, "dyn.example.org")
    before = changes.last_id(db)
    assert ready("zone", "delete", "dyn.example.org", "--with-hosts", "--yes") == (
        0,
        "deleted zone dyn.example.org with 1 host\n",
        "",
    )
    with pytest.raises(NotFound):
        zones.get(db, "dyn.example.org")
    assert hosts.search(db)[1] == 0
    # The feed says the zone went (followers drop it with every name in it).
    assert [(c.zone_id, c.name) for c in changes.since(db, before)] == [(zone.id, "dyn.example.org")]
    # A zone without hosts needs no --with-hosts; one pushed by RFC 2136 is said to live on at its primary.
    ready("zone", "add", "empty.example.org", "--ns", "ns1.example.org", "--hostmaster", "h@example.org")
    assert ready("zone", "delete", "empty.example.org", "--yes")[1] == "deleted zone empty.example.org with 0 hosts\n"
    ready(
        "zone", "add", "pushed.example.org", "--ns", "ns1.example.org", "--hostmaster", "h@example.org",
        "--rfc2136", "192.0.2.53:53",
    )  # fmt: skip
    code, out, _ = ready("zone", "delete", "pushed.example.org", "--yes")
    assert code == 0 and "the primary 192.0.2.53:53 keeps its copy of the zone: remove it there" in out
    assert ready("zone", "list")[1] == ""
    assert _audit_details(db)[-1] == "zone pushed.example.org: deleted with 0 hosts (ddserver command)"


def test_zone_delete_refuses_a_host_added_meanwhile(ready, db):
    """The check without --with-hosts is made again in the deleting transaction."""
    from ddserver.errors import Conflict
    from ddserver.store import zones

    zone = zones.get(db, "dyn.example.org")
    ready("host", "add", "alice", "home.dyn.example.org")
    with pytest.raises(Conflict, match=r"zone dyn\.example\.org has 1 host"):
        zones.delete(db, zone.id, with_hosts=False)
    assert zones.get(db, "dyn.example.org").serial == zone.serial + 1  # the host's add only: nothing written


def test_host_block_unblock(ready, db):
    ready("host", "add", "alice", "home.dyn.example.org")
    ready("host", "add", "alice", "work.dyn.example.org")
    ready("host", "set-address", "home.dyn.example.org", "192.0.2.1")
    serial, feed = _feed(db)
    code, out, err = ready("host", "block", "Home.dyn.example.org", "--reason", "phishing  site,\n ticket 42")
    assert (code, err) == (0, "")
    assert out == "blocked home.dyn.example.org: blocked (phishing site, ticket 42), out of DNS\n"
    host = hosts.get(db, "home.dyn.example.org")
    assert host.blocked and host.blocked_reason == "phishing site, ticket 42"
    assert not _in_dns(db, "home.dyn.example.org") and _in_dns(db, "work.dyn.example.org")
    assert _feed(db) == (serial + 1, [*feed, "home.dyn.example.org"])
    # A new reason for a blocked host: nothing changes in DNS.
    ready("host", "block", "home.dyn.example.org", "--reason", "phishing")
    assert hosts.get(db, "home.dyn.example.org").blocked_reason == "phishing"
    assert _feed(db)[0] == serial + 1
    assert (
        ready("host", "list", "--flagged")[1] == "home.dyn.example.org\t192.0.2.1\t-\tnever\talice\tblocked\tphishing\n"
    )
    assert ready("host", "list")[1].splitlines()[0].endswith("\tblocked")
    assert ready("host", "unblock", "home.dyn.example.org") == (0, "unblocked home.dyn.example.org: in DNS\n", "")
    host = hosts.get(db, "home.dyn.example.org")
    assert not host.blocked and host.blocked_reason is None and _in_dns(db, "home.dyn.example.org")
    assert _feed(db) == (serial + 2, [*feed, "home.dyn.example.org", "home.dyn.example.org"])
    assert ready("host", "unblock", "home.dyn.example.org") == (0, "home.dyn.example.org is not blocked\n", "")
    assert ready("host", "list", "--flagged")[1] == ""
    assert _audit_details(db)[-3:] == [
        "host home.dyn.example.org: block: phishing site, ticket 42 (ddserver command)",
        "host home.dyn.example.org: block: phishing (ddserver command)",
        "host home.dyn.example.org: unblock (ddserver command)",
    ]


def test_host_clear_faults_and_abuse(ready, db):
    from ddserver.store import updates

    ready("host", "add", "alice", "home.dyn.example.org")
    ready("host", "set-address", "home.dyn.example.org", "192.0.2.1")

    def fault(limit: int) -> bool:
        state = updates.read_hosts(db, ["home.dyn.example.org"])["home.dyn.example.org"]
        return updates.add_fault(db, state, limit=limit, window=3600, reason="badauth", client="192.0.2.9")

    assert not fault(3) and not fault(3) and fault(3)
    host = hosts.get(db, "home.dyn.example.org")
    assert host.abuse and host.client_faults == 3 and not _in_dns(db, "home.dyn.example.org")
    assert ready("host", "list", "--flagged")[1] == (
        "home.dyn.example.org\t192.0.2.1\t-\tnever\talice\tabuse\t3 client faults within 3600 s (last: badauth)\n"
    )
    serial, feed = _feed(db)
    assert ready("host", "clear", "home.dyn.example.org") == (0, "cleared home.dyn.example.org: in DNS\n", "")
    host = hosts.get(db, "home.dyn.example.org")
    assert not host.abuse and host.client_faults == host.server_faults == 0 and host.blocked_reason is None
    assert _in_dns(db, "home.dyn.example.org")
    assert _feed(db) == (serial + 1, [*feed, "home.dyn.example.org"])
    # The updater's fault window starts afresh: the next fault does not flag the host again at once.
    assert not fault(3) and not fault(3) and fault(3)
    # Clearing a blocked host clears its abuse flag only: the block and its reason stay.
    ready("host", "clear", "home.dyn.example.org")
    ready("host", "block", "home.dyn.example.org", "--reason", "spam")
    assert ready("host", "clear", "home.dyn.example.org")[1] == (
        "cleared home.dyn.example.org: blocked (spam), out of DNS\n"
    )
    assert _audit_details(db)[-1] == "host home.dyn.example.org: clear-abuse (ddserver command)"


def test_host_list_stale(ready, db):
    import time

    ready("user", "add", "bob", "--email", "bob@example.org", "--password-stdin", stdin="long enough password\n")
    for owner, label in (("alice", "old"), ("alice", "fresh"), ("alice", "never"), ("bob", "unused"), ("bob", "new")):
        ready("host", "add", owner, f"{label}.dyn.example.org")
    day = 86400
    stamp = int(time.time())

    def set_times(label: str, created: int, updated: int | None) -> None:
        db.run(
            lambda tx: tx.execute(
                "UPDATE hosts SET created_at = ?, last_update_at = ? WHERE name = ?",
                (created, updated, f"{label}.dyn.example.org"),
            )
        )

    set_times("old", stamp - 400 * day, stamp - 91 * day)
    set_times("fresh", stamp - 400 * day, stamp - 89 * day)
    set_times("never", stamp - 100 * day, None)  # created long ago, never updated: stale
    set_times("unused", stamp - 200 * day, None)
    set_times("new", stamp - day, None)  # created yesterday: not stale yet
    out = ready("host", "list", "--stale", "90")[1]
    old = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp - 91 * day))
    assert out.splitlines() == [
        "never.dyn.example.org\t-\t-\tnever\talice\t-\t-",
        f"old.dyn.example.org\t-\t-\t{old}\talice\t-\t-",
        "unused.dyn.example.org\t-\t-\tnever\tbob\t-\t-",
    ]
    assert ready("host", "list", "--stale", "90", "--user", "bob")[1].split("\t")[0] == "unused.dyn.example.org"
    assert ready("host", "list", "--stale", "365")[1] == ""
    ready("host", "block", "unused.dyn.example.org", "--reason", "unused")
    assert ready("host", "list", "--stale", "90", "--flagged")[1] == (
        "unused.dyn.example.org\t-\t-\tnever\tbob\tblocked\tunused\n"
    )


def test_readme_names_every_command_and_action():
    """The README's block of the admin command and the parser agree, both ways."""
    import argparse
    import re

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = text.split("## The admin command", 1)[1].split("```")[1]
    documented = set()
    for line in block.splitlines():
        words = line.split("#")[0].split()
        if words[:1] == ["ddserver"] and words[1] != "[--config":
            documented.add(" ".join(w for w in words[1:3] if re.fullmatch(r"[a-z0-9-]+", w)))

    def actions(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return dict(found[0].choices) if found else {}

    known = set()
    for command, sub in actions(cli.build_parser()).items():
        known.update({f"{command} {action}" for action in actions(sub)} or {command})
    assert known - {"init", "migrate"} == documented


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


@pytest.mark.parametrize("dialect", ["sqlite"])
def test_host_relay_add_list_remove(ready, db, monkeypatch):
    from ddserver import sealing
    from ddserver.store import relays

    key = sealing.new_key()
    monkeypatch.setenv("DDSERVER_AUTH_DATA_KEY", key)
    ready("host", "add", "alice", "home.dyn.example.org")
    ready("host", "set-address", "home.dyn.example.org", "192.0.2.1")
    url = "https://members.dyndns.org/nic/update"
    args = ("host", "relay", "add", "home.dyn.example.org", url, "--remote-name", "Home.Dyndns.ORG", "--user", "bob")
    code, out, err = ready(*args, "--secret-stdin", stdin="the-third-party-secret\n")
    assert (code, err) == (0, "")
    assert out == f"added relay 1 of home.dyn.example.org to {url} as home.dyndns.org\n"
    host = hosts.get(db, "home.dyn.example.org")
    (relay,) = relays.for_host(db, host.id)
    assert (relay.remote_name, relay.username, relay.family, relay.pending) == ("home.dyndns.org", "bob", "both", True)
    # Sealed: not in the database in clear, and opened only with the key and in this host's context.
    stored = db.read(lambda tx: tx.scalar("SELECT secret FROM host_relays WHERE id = ?", (relay.id,)))
    assert "the-third-party-secret" not in stored and sealing.is_sealed(stored)
    sealer = sealing.Sealer(sealing.parse_key(key))
    assert sealer.unseal(stored, relays.secret_context(host.id)) == "the-third-party-secret"
    code, out, err = ready("host", "relay", "list", "home.dyn.example.org")
    assert (code, err) == (0, "")
    assert out == f"1\t{url}\thome.dyndns.org\tbob\tpending\t-\n"
    assert "the-third-party-secret" not in out
    # One-line mistakes.
    for bad, message in [
        (("host", "relay", "add", "home.dyn.example.org", "ftp://x.example/", "--remote-name", "a.b", "--user", "u"),
         "must begin with https://"),
        (("host", "relay", "add", "home.dyn.example.org", url, "--remote-name", "nodot", "--user", "u"),
         "is not a full host name"),
        (("host", "relay", "add", "nope.dyn.example.org", url, "--remote-name", "a.b", "--user", "u"),
         "no host nope.dyn.example.org"),
        (("host", "relay", "add", "home.dyn.example.org", url, "--remote-name", "a.b", "--user", "u"),
         "no terminal to ask for the password: use --secret-stdin"),
        (("host", "relay", "remove", "home.dyn.example.org", "x"), "give the relay's id"),
        (("host", "relay", "remove", "home.dyn.example.org", "7"), "home.dyn.example.org has no relay 7"),
    ]:  # fmt: skip
        code, _, err = ready(*bad)
        assert code == 1 and message in err and err.count("\n") == 1 and "Traceback" not in err, err
    code, _, err = ready(*args, "--secret-stdin", stdin="\n")
    assert code == 1 and "The password or token is empty." in err
    for _ in range(2):
        assert ready(*args, "--secret-stdin", stdin="s\n")[0] == 0
    code, _, err = ready(*args, "--secret-stdin", stdin="s\n")
    assert code == 1 and "at most 3 relays" in err
    assert ready("host", "relay", "remove", "home.dyn.example.org", "1") == (
        0,
        "removed relay 1 of home.dyn.example.org\n",
        "",
    )
    assert [r.id for r in relays.for_host(db, host.id)] == [2, 3]
    assert "relay 1 to https://members.dyndns.org/nic/update removed (ddserver command)" in _audit_details(db)[-1]
    # Without a data key, nothing is stored in clear: the command says what to do.
    monkeypatch.setenv("DDSERVER_AUTH_DATA_KEY", "")
    monkeypatch.setenv("DDSERVER_AUTH_DATA_KEY_FILE", str(ready.config_file.parent / "missing.key"))
    ready("host", "relay", "remove", "home.dyn.example.org", "2")
    code, _, err = ready(*args, "--secret-stdin", stdin="s\n")
    assert code == 1 and "data_key" in err and err.count("\n") == 1


def test_zone_secondaries(ready, db, monkeypatch):
    """also-notify addresses and transfer keys: checked before anything changes, secrets shown once and
    stored sealed, one-line errors."""
    from ddserver import sealing
    from ddserver.config import load_config
    from ddserver.dns import remote

    assert ready("zone", "edit", "dyn.example.org", "--also-notify", "192.0.2.7, 2001:db8::7", "--also-notify",
                 "[2001:DB8::8]:5300") == (0, "dyn.example.org: also-notify 192.0.2.7 2001:db8::7 [2001:db8::8]:5300\n",
                                           "")  # fmt: skip
    zone = zones.get(db, "dyn.example.org")
    assert zone.also_notify == ("192.0.2.7", "2001:db8::7", "[2001:db8::8]:5300")
    assert "\talso-notify 192.0.2.7,2001:db8::7,[2001:db8::8]:5300" in ready("zone", "list")[1]
    assert ready("zone", "edit", "dyn.example.org", "--also-notify", "ns1.example.org") == (
        1, "", "ddserver: 'ns1.example.org' is not an address or address:port\n"
    )  # fmt: skip
    assert ready("zone", "edit", "dyn.example.org", "--also-notify", "192.0.2.7:0")[2] == (
        "ddserver: '192.0.2.7:0': the port must be a number from 1 to 65535\n"
    )
    assert ready("zone", "edit", "dyn.example.org", "--no-also-notify") == (
        0,
        "dyn.example.org: also-notify none\n",
        "",
    )

    key = sealing.new_key()
    monkeypatch.setenv("DDSERVER_AUTH_DATA_KEY", key)
    code, out, err = ready("zone", "transfer-key", "dyn.example.org", "add", "XFR.example.org")
    assert code == 0, err
    secret = out.splitlines()[-1]
    assert out.startswith("dyn.example.org: transfer key xfr.example.org (hmac-sha256) added; its secret") and len(
        secret
    ) == 44  # fmt: skip
    (stored,) = zones.transfer_keys(db, zone.id)
    assert stored.secret.startswith("sealed1:") and secret not in stored.secret
    sealer = sealing.load(load_config(str(ready.config_file)))
    assert sealer.unseal(stored.secret, remote.transfer_key_context("xfr.example.org")) == secret
    assert ready("zone", "transfer-key", "dyn.example.org", "add", "xfr.example.org") == (
        1, "", "ddserver: a transfer key named xfr.example.org exists already\n"
    )  # fmt: skip
    given = "c2VjcmV0IG9mIHNpeHRlZW4gYnl0ZXM="
    assert ready("zone", "transfer-key", "dyn.example.org", "add", "k2.example.org", "--algorithm", "hmac-sha512",
                 "--secret-file", "-", stdin=given + "\n") == (
        0, "dyn.example.org: transfer key k2.example.org (hmac-sha512) added\n", ""
    )  # fmt: skip
    assert ready("zone", "transfer-key", "dyn.example.org", "add", "k3.example.org", "--secret-file", "-",
                 stdin="not base64!") == (
        1, "", "ddserver: the secret is not base64, such as tsig-keygen prints\n"
    )  # fmt: skip
    code, out, _ = ready("zone", "transfer-key", "dyn.example.org", "list")
    assert [line.split("\t")[:2] for line in out.splitlines()] == [
        ["k2.example.org", "hmac-sha512"], ["xfr.example.org", "hmac-sha256"]
    ]  # fmt: skip
    assert secret not in out and given not in out
    assert ready("zone", "transfer-key", "dyn.example.org", "remove", "k2.example.org") == (
        0, "dyn.example.org: transfer key k2.example.org removed\n", ""
    )  # fmt: skip
    assert ready("zone", "transfer-key", "dyn.example.org", "remove", "k2.example.org") == (
        1, "", "ddserver: zone dyn.example.org has no transfer key k2.example.org\n"
    )  # fmt: skip
    monkeypatch.setenv("DDSERVER_AUTH_DATA_KEY", "")
    monkeypatch.setenv("DDSERVER_AUTH_DATA_KEY_FILE", str(ready.config_file.parent / "missing.key"))
    assert ready("zone", "transfer-key", "dyn.example.org", "add", "k4.example.org")[2] == (
        "ddserver: config: [auth] data_key: not set and data_key_file missing; run 'ddserver init'\n"
    )


def test_token_add_list_revoke(ready, db):
    from ddserver.store import tokens

    ready("host", "add", "alice", "home.dyn.example.org")
    code, out, _ = ready("token", "add", "alice", "router", "--host", "home.dyn.example.org", "--expires-days", "7")
    assert code == 0
    secret = out.splitlines()[-1]
    grant = tokens.grant_for(db, secret)
    assert grant is not None and grant.scopes == {tokens.Scope.UPDATE} and grant.expires_at
    code, out, _ = ready(
        "token", "add", "alice", "acme", "--scope", "txt", "--scope", "api", "--zone", "dyn.example.org"
    )
    assert code == 0
    code, out, _ = ready("token", "list", "alice")
    lines = [line.split("\t") for line in out.splitlines()]
    assert [(f[1], f[2], f[3]) for f in lines] == [
        ("router", "update", "home.dyn.example.org"),
        ("acme", "txt api", "zone dyn.example.org"),
    ]
    assert lines[0][5] == "last used never" and secret not in out
    assert ready("token", "revoke", "alice", "router")[0] == 0
    assert tokens.grant_for(db, secret) is None
    code, _, err = ready("token", "revoke", "alice", "router")
    assert code == 1 and "alice has no token 'router'" in err and err.count("\n") == 1
    code, _, err = ready("token", "add", "alice", "acme")
    assert code == 1 and "exists" in err and "Traceback" not in err
    code, _, err = ready("token", "list", "bob")
    assert code == 1 and "no user bob" in err
