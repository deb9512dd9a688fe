"""``ddserver zone edit/check/sync/list`` for zones served by a real BIND 9 primary."""

from __future__ import annotations

import io
import sys

import dns.rdatatype
import pytest

from ddserver import cli
from ddserver.rfc2136.worker import Worker
from ddserver.store import hosts, records, users, zones
from ddserver.store import rfc2136 as rfc2136_store
from tests import named as named_support
from tests import support
from tests.named import make_secret

named = named_support.named  # the fixture
ZONE = "dyn.example.org"


@pytest.fixture
def run(monkeypatch, tmp_path, capsys, db, db_url, named):
    """Run ``ddserver ARGS`` in-process; a zone pushed to ``named`` exists. Returns (code, out, err)."""
    config_file = support.write_config_file(tmp_path / "ddserver.conf", db_url, "[rfc2136]\ntimeout = 3\n")
    monkeypatch.setenv("DDSERVER_AUTH_SECRET_KEY_FILE", str(tmp_path / "secret"))

    def call(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(""))
        code = cli.main(["--config", str(config_file), *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    secret_file = named.folder / "secret"
    code, _, err = call(
        "zone",
        "add",
        ZONE,
        "--ns",
        "ns1.dyn.example.org",
        "--hostmaster",
        "hostmaster@example.org",
        "--rfc2136",
        named.server,
        "--tsig-name",
        named.key_name,
        "--tsig-secret-file",
        str(secret_file),
    )
    assert code == 0, err
    call.tmp = tmp_path  # type: ignore[attr-defined]
    return call


def test_check_passes_and_list_shows_state_without_the_secret(run, named):
    code, out, err = run("zone", "check", ZONE)
    assert code == 0, err
    assert "with authority: SOA serial" in out and "no-op update signed with ddserver-key (hmac-sha256)" in out
    assert out.strip().endswith(f"{ZONE}: ok")
    code, out, _ = run("zone", "list")
    assert code == 0
    assert f"rfc2136 {named.server} tcp key ddserver-key (hmac-sha256, secret {named.secret[:4]}...)" in out
    assert named.secret not in out and "pending" in out


def test_check_with_a_wrong_secret_fails_in_one_line_and_is_listed(run, named):
    wrong = run.tmp / "wrong"
    wrong.write_text(make_secret("wrong") + "\n")
    code, out, err = run("zone", "edit", ZONE, "--tsig-name", named.key_name, "--tsig-secret-file", str(wrong))
    assert code == 0 and "the worker will compare the whole zone" in out
    assert make_secret("wrong") not in out
    code, out, err = run("zone", "check", ZONE)
    assert code == 1 and err.count("\n") == 1
    assert "BADSIG" in err and "secret differs" in err and make_secret("wrong") not in err
    code, out, _ = run("zone", "list")
    assert "error at " in out and "BADSIG" in out


def test_edit_algorithm_transport_and_mistakes(run, db, named):
    code, _, err = run("zone", "edit", ZONE, "--tsig-algorithm", "hmac-sha512", "--transport", "udp")
    assert code == 0, err
    zone = zones.get(db, ZONE)
    assert (zone.tsig_algorithm, zone.rfc2136_transport, zone.tsig_secret) == ("hmac-sha512", "udp", named.secret)
    code, _, err = run("zone", "check", ZONE)
    assert code == 1 and "BADKEY" in err and "algorithm must match" in err
    assert run("zone", "edit", ZONE, "--tsig-algorithm", "hmac-sha256")[0] == 0
    assert run("zone", "check", ZONE)[0] == 0  # over UDP now
    for args, words in [
        (("--rfc2136", "nohost:port"), "expected HOST:PORT"),
        (("--tsig-name", "k"), "go together"),
        (("--no-tsig", "--tsig-name", "k"), "not both"),
        ((), "nothing to change"),
        (("--tsig-secret-file", "/nonexistent"), "go together"),
    ]:
        code, _, err = run("zone", "edit", ZONE, *args)
        assert code == 1 and words in err, (args, err)
    code, _, err = run("zone", "check", "nope.example.org")
    assert code == 1 and "no zone" in err
    assert run("zone", "edit", ZONE, "--no-rfc2136")[0] == 0
    code, _, err = run("zone", "check", ZONE)
    assert code == 1 and "has no RFC 2136 server" in err


def test_sync_repairs_a_zone_changed_behind_our_back(run, db, config, named):
    alice = users.add(db, "alice", "alice@example.org", password_hash="x")
    home = hosts.add(db, alice.id, f"home.{ZONE}", "h", default_limit=-1, ipv4="192.0.2.1", ipv6="2001:db8::1")
    other = hosts.add(db, alice.id, f"other.{ZONE}", "h", default_limit=-1, ipv4="192.0.2.2")
    records.add(db, home.id, f"_acme-challenge.home.{ZONE}", "TXT", "token")
    assert not Worker(db, config).run_pass().errors

    def tamper(update):
        update.replace(f"home.{ZONE}.", 60, "A", "203.0.113.66")  # changed
        update.delete(f"home.{ZONE}.", "AAAA")  # removed
        update.delete(f"other.{ZONE}.")  # a whole name gone
        update.add(f"stray.{ZONE}.", 60, "A", "203.0.113.1")  # not ours
        update.add(f"_acme-challenge.home.{ZONE}.", 60, "TXT", '"forged"')  # one record too many
        update.add(f"mail.{ZONE}.", 60, "MX", f"10 home.{ZONE}.")  # not a managed type: left alone

    named.update(ZONE, tamper)
    code, out, err = run("zone", "sync", ZONE)
    assert code == 0, err
    fixed = sorted(line.split()[1] for line in out.splitlines() if line.startswith("fixed "))
    assert fixed == [f"_acme-challenge.home.{ZONE}", f"home.{ZONE}", f"other.{ZONE}", f"stray.{ZONE}"]
    assert named.query(f"home.{ZONE}") == ["192.0.2.1"] and named.query(f"home.{ZONE}", "AAAA") == ["2001:db8::1"]
    assert named.query(f"other.{ZONE}") == ["192.0.2.2"] and named.query(f"stray.{ZONE}") == []
    assert named.query(f"_acme-challenge.home.{ZONE}", "TXT") == ['"token"']
    assert named.query(f"mail.{ZONE}", "MX") == [f"10 home.{ZONE}."]
    assert named.query(f"ns1.{ZONE}") == ["192.0.2.53"]  # glue of the zone's nameserver kept
    code, out, _ = run("zone", "sync", ZONE)
    assert code == 0 and "0 names fixed" in out
    assert other.id


def test_edit_asks_the_worker_for_a_full_comparison(run, db, config, named):
    alice = users.add(db, "alice", "alice@example.org", password_hash="x")
    hosts.add(db, alice.id, f"home.{ZONE}", "h", default_limit=-1, ipv4="192.0.2.1")
    assert run("zone", "edit", ZONE, "--no-rfc2136")[0] == 0
    hosts.add(db, alice.id, f"late.{ZONE}", "h", default_limit=-1, ipv4="192.0.2.5")
    named.update(ZONE, lambda u: u.add(f"stray.{ZONE}.", 60, "A", "203.0.113.1"))
    # Pushing again: from now on, and with a full comparison first (the changes made meanwhile included).
    secret = str(named.folder / "secret")
    code, _, err = run(
        "zone", "edit", ZONE, "--rfc2136", named.server, "--tsig-name", named.key_name, "--tsig-secret-file", secret
    )
    assert code == 0, err
    assert rfc2136_store.get_lease(db, zones.get(db, ZONE).id).full_sync
    result = Worker(db, config).run_pass()
    assert result.synced == {ZONE: 3} and not result.errors, result
    assert named.query(f"late.{ZONE}") == ["192.0.2.5"] and named.query(f"stray.{ZONE}") == []
    assert not rfc2136_store.get_lease(db, zones.get(db, ZONE).id).full_sync
    assert named.axfr(ZONE).get_rdataset(f"home.{ZONE}.", dns.rdatatype.A) is not None


def test_refused_transfer_is_reported_and_changes_still_go_out(run, db, config, named, tmp_path):
    """A primary that allows updates but no transfer: sync says what to allow; pushes still work."""
    conf = named.conf.read_text().replace(f"allow-transfer {{ key {named.key_name}; }};", "allow-transfer { none; };")
    named.conf.write_text(conf)
    named.stop()
    named.start()
    code, _, err = run("zone", "sync", ZONE)
    assert code == 1 and "refused the zone transfer" in err and "allow transfers to the key ddserver-key" in err
    alice = users.add(db, "alice", "alice@example.org", password_hash="x")
    hosts.add(db, alice.id, f"home.{ZONE}", "h", default_limit=-1, ipv4="192.0.2.1")
    rfc2136_store.request_full_sync(db, zones.get(db, ZONE).id)
    result = Worker(db, config).run_pass()
    assert "refused the zone transfer" in result.errors[ZONE]
    assert named.query(f"home.{ZONE}") == ["192.0.2.1"]
    assert "refused the zone transfer" in zones.get(db, ZONE).rfc2136_error
