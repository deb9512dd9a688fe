"""ddserver-rfc2136 against a real BIND 9 ``named`` (and the core of it against Knot DNS as well): pushes,
errors, outages, several workers, repair."""

from __future__ import annotations

import subprocess
import threading
import time

import dns.rdatatype
import pytest

from ddserver.rfc2136.worker import Worker
from ddserver.store import changes, hosts, records, updates, users, zones
from ddserver.store import rfc2136 as rfc2136_store
from tests import named as named_support
from tests import support
from tests.knot import KnotServer
from tests.named import NamedServer, make_secret

named = named_support.named  # the fixture


@pytest.fixture(params=["bind", "knot"])
def primary(request, tmp_path):
    """A started primary nameserver: BIND's named, then Knot DNS (configured as etc/knot/ advises)."""
    server = NamedServer(tmp_path / "named") if request.param == "bind" else KnotServer(tmp_path / "knot")
    with named_support.started(server):
        yield server


ZONE = "dyn.example.org"


def add_zone(db, server: NamedServer, **settings):
    values = dict(
        rfc2136_server=server.server,
        tsig_name=server.key_name,
        tsig_algorithm=server.key_algorithm,
        tsig_secret=server.secret,
    )
    values.update(settings)
    return zones.add(db, ZONE, ["ns1.dyn.example.org"], "hostmaster.example.org", **values)


@pytest.fixture
def alice(db):
    return users.add(db, "alice", "alice@example.org", password_hash="x")


def worker(db, config, **rfc2136):
    config = config.replace("rfc2136", **{"retry_min": 0.1, "retry_max": 0.5, **rfc2136})
    return Worker(db, config)


def new_host(db, user, label, **kw):
    return hosts.add(db, user.id, f"{label}.{ZONE}", "hash", default_limit=-1, **kw)


def test_add_change_delete_both_families_and_txt(db, config, primary, alice):
    zone = add_zone(db, primary)
    w = worker(db, config)
    home = new_host(db, alice, "home", ipv4="192.0.2.1", ipv6="2001:db8::1")
    v6only = new_host(db, alice, "six", ipv6="2001:db8::6", ttl=300)
    records.add(db, home.id, f"_acme-challenge.home.{ZONE}", "TXT", "challenge-token")
    records.add(db, home.id, f"home.{ZONE}", "TXT", "v=spf1 -all")
    result = w.run_pass()
    assert not result.errors, result.errors
    assert primary.query(f"home.{ZONE}") == ["192.0.2.1"]
    assert primary.query(f"home.{ZONE}", "AAAA") == ["2001:db8::1"]
    assert primary.query(f"six.{ZONE}") == [] and primary.query(f"six.{ZONE}", "AAAA") == ["2001:db8::6"]
    assert primary.ttl(f"six.{ZONE}", "AAAA") == 300 and primary.ttl(f"home.{ZONE}") == 60
    assert primary.query(f"_acme-challenge.home.{ZONE}", "TXT") == ['"challenge-token"']
    assert primary.query(f"home.{ZONE}", "TXT") == ['"v=spf1 -all"']
    state = zones.get(db, ZONE)
    assert state.rfc2136_position == changes.last_id(db) and state.rfc2136_error is None
    assert state.rfc2136_ok_at is not None

    # Change one family, clear the other, switch the v6-only host to v4 and a wildcard.
    hosts.set_addresses(db, home.id, ipv4="192.0.2.2", ipv6=None)
    hosts.set_addresses(db, v6only.id, ipv4="192.0.2.6", ipv6=None)
    hosts.set_properties(db, v6only.id, wildcard=True)
    assert not w.run_pass().errors
    assert primary.query(f"home.{ZONE}") == ["192.0.2.2"] and primary.query(f"home.{ZONE}", "AAAA") == []
    assert primary.query(f"six.{ZONE}") == ["192.0.2.6"] and primary.query(f"six.{ZONE}", "AAAA") == []
    assert primary.query(f"anything.six.{ZONE}") == ["192.0.2.6"]

    # Blocked: out of DNS with its records; unblocked: back.
    hosts.set_flags(db, home.id, blocked=True)
    assert not w.run_pass().errors
    assert primary.query(f"home.{ZONE}") == [] and primary.query(f"_acme-challenge.home.{ZONE}", "TXT") == []
    hosts.set_flags(db, home.id, blocked=False)
    assert not w.run_pass().errors
    assert primary.query(f"_acme-challenge.home.{ZONE}", "TXT") == ['"challenge-token"']

    # Deleted: every name of it leaves; the glue and the apex stay.
    hosts.delete(db, home.id)
    records.delete(db, v6only.id)
    hosts.set_properties(db, v6only.id, wildcard=False)
    assert not w.run_pass().errors
    assert primary.query(f"home.{ZONE}") == [] and primary.query(f"home.{ZONE}", "TXT") == []
    assert primary.query(f"_acme-challenge.home.{ZONE}", "TXT") == []
    assert primary.query(f"anything.six.{ZONE}") == []
    assert primary.query(f"ns1.{ZONE}") == ["192.0.2.53"]
    assert zones.get(db, ZONE).rfc2136_position == changes.last_id(db)
    assert zone.id


def test_zone_ttl_change_resyncs_every_host(db, config, primary, alice):
    add_zone(db, primary)
    w = worker(db, config)
    new_host(db, alice, "a", ipv4="192.0.2.1")
    new_host(db, alice, "b", ipv6="2001:db8::2", ttl=30)
    assert not w.run_pass().errors
    zones.update(db, zones.get(db, ZONE).id, ttl=120)
    assert not w.run_pass().errors
    assert primary.ttl(f"a.{ZONE}") == 120 and primary.ttl(f"b.{ZONE}", "AAAA") == 30


def test_once_console_script(db, db_url, named, alice, tmp_path):
    add_zone(db, named)
    new_host(db, alice, "home", ipv4="192.0.2.9")
    conf = support.write_config_file(tmp_path / "ddserver.conf", db_url)
    out = subprocess.run(
        [support.console_script("ddserver-rfc2136"), "--config", str(conf), "--once"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert f"{ZONE}: 2 names pushed" in out.stdout
    assert named.query(f"home.{ZONE}") == ["192.0.2.9"]


@pytest.mark.parametrize(
    "settings, cls_words",
    [
        ({"tsig_secret": make_secret("another secret")}, "BADSIG"),
        ({"tsig_algorithm": "hmac-sha512"}, "BADKEY"),
        ({"tsig_name": "unknown-key"}, "BADKEY"),
        ({"tsig_name": None, "tsig_secret": None, "tsig_algorithm": None}, "REFUSED"),
    ],
    ids=["wrong-secret", "wrong-algorithm", "wrong-key-name", "unsigned"],
)
def test_wrong_key_gives_a_clear_recorded_error(db, config, named, alice, settings, cls_words):
    zone = add_zone(db, named, **settings)
    new_host(db, alice, "home", ipv4="192.0.2.1")
    w = worker(db, config)
    result = w.run_pass()
    message = result.errors[ZONE]
    assert cls_words in message and message.startswith(f"{ZONE} at {named.server}: ")
    assert named.secret not in message
    state = zones.get(db, ZONE)
    assert state.rfc2136_error == message and state.rfc2136_error_at is not None
    assert state.rfc2136_position == zone.rfc2136_position  # nothing was applied
    assert named.query(f"home.{ZONE}") == []
    # Fixed by the admin: the next attempt applies everything and clears the error.
    zones.update(
        db,
        zone.id,
        tsig_name=named.key_name,
        tsig_algorithm=named.key_algorithm,
        tsig_secret=named.secret,
    )
    time.sleep(0.2)  # past the first backoff (retry_min 0.1 s)
    assert not w.run_pass(force=True).errors
    assert named.query(f"home.{ZONE}") == ["192.0.2.1"]
    assert zones.get(db, ZONE).rfc2136_error is None


def test_unreachable_and_wrong_zone_errors(db, config, tmp_path, alice):
    port = support.free_dns_port()
    zones.add(db, ZONE, ["ns1.dyn.example.org"], "hostmaster.example.org", rfc2136_server=f"127.0.0.1:{port}")
    new_host(db, alice, "home", ipv4="192.0.2.1")
    w = worker(db, config, timeout=2.0)
    result = w.run_pass()
    assert "connection refused" in result.errors[ZONE]
    other = NamedServer(tmp_path / "other", zones=("other.example.org",))
    try:
        other.start()
        zones.update(db, zones.get(db, ZONE).id, rfc2136_server=other.server)
        result = w.run_pass(force=True)
        assert "REFUSED" in result.errors[ZONE] or "NOTAUTH" in result.errors[ZONE]
    finally:
        other.stop()


def journal_addresses(server: NamedServer, name: str) -> list[str]:
    """Every address ``name`` was given, in the order named applied the updates (from its journal)."""
    journal = server.folder / f"{ZONE}.zone.jnl"
    printer = support.require_binary("named-journalprint")
    out = subprocess.run([printer, str(journal)], capture_output=True, text=True, check=True)
    added = []
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[0] == "add" and parts[1] == name + "." and parts[4] == "A":
            added.append(parts[5])
    return added


def test_named_down_while_changes_keep_coming(db, config, named, alice):
    add_zone(db, named)
    host = new_host(db, alice, "home", ipv4="192.0.2.1")
    w = worker(db, config, poll_interval=0.05, timeout=1.0, retry_min=0.2, retry_max=1.0)
    thread = threading.Thread(target=w.run_forever, daemon=True)
    thread.start()
    try:
        support.wait_until(lambda: named.query(f"home.{ZONE}") == ["192.0.2.1"], what="the first push")
        named.stop()
        for i in range(2, 40):
            hosts.set_addresses(db, host.id, ipv4=f"192.0.2.{i}")
            time.sleep(0.01)
        late = new_host(db, alice, "late", ipv6="2001:db8::99")
        support.wait_until(lambda: zones.get(db, ZONE).rfc2136_error, what="the outage to be recorded")
        error = zones.get(db, ZONE).rfc2136_error
        assert "connection refused" in error or "no answer" in error
        stuck = zones.get(db, ZONE).rfc2136_position
        assert stuck < changes.last_id(db)
        named.start()
        support.wait_until(
            lambda: zones.get(db, ZONE).rfc2136_position == changes.last_id(db), what="the worker to catch up"
        )
        assert named.query(f"home.{ZONE}") == ["192.0.2.39"]
        assert named.query(f"late.{ZONE}", "AAAA") == ["2001:db8::99"]
        assert zones.get(db, ZONE).rfc2136_error is None
        # In order: the addresses named took only ever moved forward, ending at the newest.
        applied = [int(a.rsplit(".", 1)[1]) for a in journal_addresses(named, f"home.{ZONE}")]
        assert applied == sorted(applied) and applied[-1] == 39
        assert late.id
    finally:
        w.stopping.set()
        thread.join(10)


def test_two_workers_share_zones_without_double_pushes(db, config, named, alice):
    add_zone(db, named)
    first, second = worker(db, config), worker(db, config)
    new_host(db, alice, "home", ipv4="192.0.2.1")
    a = first.run_pass()
    b = second.run_pass()
    assert a.pushed == {ZONE: 2} and b.busy == [ZONE] and not b.pushed
    # The holder stops cleanly: the other takes the zone at once and goes on from the stored position.
    first.release_all()
    hosts.set_addresses(db, hosts.get(db, f"home.{ZONE}").id, ipv4="192.0.2.2")
    b = second.run_pass()
    assert b.pushed == {ZONE: 2}
    assert named.query(f"home.{ZONE}") == ["192.0.2.2"]
    assert first.run_pass().busy == [ZONE]


def test_stale_update_from_another_worker_is_refused(db, config, named, alice):
    """The SOA prerequisite: data read before someone else changed the zone never overwrites it."""
    import dns.rdata

    from ddserver.dns import rfc2136
    from ddserver.rfc2136 import client

    zone = add_zone(db, named)
    host = new_host(db, alice, "home", ipv4="192.0.2.1")
    w = worker(db, config)
    assert not w.run_pass().errors
    target = rfc2136.Target.from_settings(ZONE, named.server, "tcp", named.key_name, "hmac-sha256", named.secret)
    old_soa = client.soa(target, 2)
    stale, _ = rfc2136.desired_state(ZONE, [rfc2136_store.names_state(db, [host.name])[0][0]], [], 60)
    hosts.set_addresses(db, host.id, ipv4="192.0.2.2")
    assert not w.run_pass().errors
    with pytest.raises(rfc2136.ZoneChanged):
        client.send(target, rfc2136.build_update(target, [host.name], stale, soa=old_soa), 2)
    assert named.query(f"home.{ZONE}") == ["192.0.2.2"]
    assert isinstance(old_soa, dns.rdata.Rdata) and zone.id


def test_fell_behind_the_pruned_feed_compares_the_whole_zone(db, config, primary, alice):
    zone = add_zone(db, primary)
    w = worker(db, config)
    keep = new_host(db, alice, "keep", ipv4="192.0.2.1")
    gone = new_host(db, alice, "gone", ipv4="192.0.2.2")
    assert not w.run_pass().errors
    assert primary.query(f"gone.{ZONE}") == ["192.0.2.2"]
    position = zones.get(db, ZONE).rfc2136_position
    hosts.delete(db, gone.id)
    hosts.set_addresses(db, keep.id, ipv4="192.0.2.10")
    other = zones.add(db, "other.example.org", ["ns1.example.org"], "hostmaster.example.org")
    # Everything but the newest change is pruned, as after a long outage.
    db.run(lambda tx: tx.execute("UPDATE changes SET created_at = 0"))
    assert changes.prune(db, 60) >= 2 and changes.first_id(db) > position + 1
    result = w.run_pass()
    assert result.synced == {ZONE: 2} and not result.errors
    assert primary.query(f"gone.{ZONE}") == [] and primary.query(f"keep.{ZONE}") == ["192.0.2.10"]
    assert zones.get(db, ZONE).rfc2136_position == changes.last_id(db)
    assert zone.id != other.id


def test_gap_in_the_feed_holds_the_position_not_the_push(db, config, named, alice):
    """An id that commits late is not skipped: the position stays below it, later changes go out."""
    add_zone(db, named)
    w = worker(db, config, gap_timeout=60)
    assert not w.run_pass().errors
    host = new_host(db, alice, "home", ipv4="192.0.2.1")
    zone = zones.get(db, ZONE)
    # A change whose transaction is still open: its id is taken but not visible yet.
    late_id = changes.last_id(db) + 1
    db.run(
        lambda tx: tx.execute(
            "INSERT INTO changes (id, zone_id, zone, name, created_at) VALUES (?, ?, ?, ?, ?)",
            (late_id + 1, zone.id, ZONE, host.name, time.time()),
        )
    )
    assert not w.run_pass().errors
    assert named.query(f"home.{ZONE}") == ["192.0.2.1"]
    assert zones.get(db, ZONE).rfc2136_position == late_id - 1
    second = new_host(db, alice, "second", ipv4="192.0.2.7")  # as if it committed late
    db.run(lambda tx: tx.execute("UPDATE changes SET id = ? WHERE name = ?", (late_id, second.name)))
    assert not w.run_pass().errors
    assert named.query(f"second.{ZONE}") == ["192.0.2.7"]
    assert zones.get(db, ZONE).rfc2136_position == late_id + 1


def test_axfr_view_matches_database_after_pushes(db, config, primary, alice):
    add_zone(db, primary)
    for i in range(30):
        new_host(db, alice, f"h{i}", ipv4=f"192.0.2.{i + 1}", ipv6=f"2001:db8::{i + 1:x}")
    assert not worker(db, config, batch_size=7).run_pass().errors
    zone = primary.axfr(ZONE)
    assert len([n for n, node in zone.nodes.items() if node.get_rdataset(1, dns.rdatatype.A)]) == 31  # + ns1


def test_a_dead_workers_lease_is_taken_over_at_once(db, config, named, alice):
    """A worker killed without releasing its lease (kill -9, a failover's restart) does not hold the zone up for
    the rest of its lease when its successor runs on the same machine; another machine's holder is waited out."""
    import socket
    import subprocess

    add_zone(db, named)
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = worker(db, config)
    dead.holder = f"{socket.gethostname()}:{gone.pid}:dead"
    host = new_host(db, alice, "home", ipv4="192.0.2.1")
    assert dead.run_pass().pushed == {ZONE: 2}
    hosts.set_addresses(db, host.id, ipv4="192.0.2.2")

    elsewhere = worker(db, config)
    elsewhere.holder = f"other-machine.example:{gone.pid}:x"
    rfc2136_store.release(db, host.zone_id, dead.holder)
    assert elsewhere.run_pass().pushed == {ZONE: 2}  # released: taken as usual
    hosts.set_addresses(db, host.id, ipv4="192.0.2.3")
    # Held by another machine's worker, whose process this machine cannot see: waited out.
    successor = worker(db, config)
    assert successor.run_pass().busy == [ZONE]

    # The same machine's dead holder: taken over on the first pass.
    rfc2136_store.take_over(db, host.zone_id, elsewhere.holder, dead.holder, 30)
    result = successor.run_pass()
    assert result.pushed == {ZONE: 2} and not result.busy
    assert named.query(f"home.{ZONE}") == ["192.0.2.3"]
    assert rfc2136_store.get_lease(db, host.zone_id).holder == successor.holder


def test_wildcard_from_the_updater_and_the_zone_rule(db, config, primary, alice):
    """``wildcard=ON`` through the updater's write path pushes ``*.host``; a zone that stops allowing wildcards
    takes it away again; a name of its own below the wildcard keeps its data."""
    zone = add_zone(db, primary)
    w = worker(db, config)
    home = new_host(db, alice, "home", ipv4="192.0.2.1")
    records.add(db, home.id, f"_acme-challenge.home.{ZONE}", "TXT", "challenge-token")
    assert not w.run_pass().errors
    assert primary.query(f"x.home.{ZONE}") == []
    state = updates.read_hosts(db, [home.name])[home.name]
    applied = updates.apply_many(db, [updates.Update(state, None, None, False, False, wildcard=True)])[0]
    assert isinstance(applied, updates.Applied) and applied.changed and applied.wildcard
    hosts.set_properties(db, home.id, ttl=300)
    assert not w.run_pass().errors
    assert primary.query(f"x.home.{ZONE}") == ["192.0.2.1"] and primary.ttl(f"x.home.{ZONE}") == 300
    assert primary.query(f"_acme-challenge.home.{ZONE}") == []
    assert primary.query(f"_acme-challenge.home.{ZONE}", "TXT") == ['"challenge-token"']

    zones.update(db, zone.id, allow_wildcards=False)
    assert not w.run_pass().errors
    assert primary.query(f"x.home.{ZONE}") == [] and primary.query(f"home.{ZONE}") == ["192.0.2.1"]
    # The updater's wildcard=ON is ignored there, the host stays as it is.
    state = updates.read_hosts(db, [home.name])[home.name]
    applied = updates.apply_many(db, [updates.Update(state, None, None, False, False, wildcard=True)])[0]
    assert isinstance(applied, updates.Applied) and not applied.changed and not applied.wildcard
    assert not hosts.get(db, home.name).wildcard
