"""The store on both databases: zones, users, hosts, records, changes, tokens, events."""

from __future__ import annotations

import pytest

from ddserver import secrets, validate
from ddserver.errors import Conflict, LimitReached, NotFound, ValidationError
from ddserver.store import changes, dnsdata, events, hosts, records, tokens, users, zones
from ddserver.store.common import KEEP


@pytest.fixture
def zone(db):
    return zones.add(db, "dyn.example.org", ["ns1.example.org", "ns2.example.org"], "hostmaster.example.org")


@pytest.fixture
def alice(db):
    return users.add(db, "alice", "alice@example.org", password_hash="x")


def test_zone_add_get_list(db, zone):
    assert zone.serial == zones.initial_serial() + 1  # the creation itself is a change
    assert zones.get(db, "dyn.example.org") == zone
    assert [z.name for z in zones.list_all(db)] == ["dyn.example.org"]
    with pytest.raises(Conflict):
        zones.add(db, "dyn.example.org", ["ns1.example.org"], "hostmaster.example.org")
    with pytest.raises(NotFound):
        zones.get(db, "nope.example.org")


def test_host_lifecycle_bumps_serial_and_feed(db, zone, alice):
    start = changes.last_id(db)
    host = hosts.add(db, alice.id, "home.dyn.example.org", secrets.hash_host_secret("s"), default_limit=5)
    assert host.zone == "dyn.example.org" and host.label == "home" and host.username == "alice"
    result = hosts.set_addresses(db, host.id, ipv4="192.0.2.1", client="198.51.100.1", result="good")
    assert result.changed and result.host.ipv4 == "192.0.2.1" and result.host.ipv6 is None
    assert result.host.last_client == "198.51.100.1" and result.host.last_result == "good"
    same = hosts.set_addresses(db, host.id, ipv4="192.0.2.1", client="198.51.100.1", result="nochg")
    assert not same.changed
    both = hosts.set_addresses(db, host.id, ipv6="2001:db8::1")
    assert both.host.ipv4 == "192.0.2.1" and both.host.ipv6 == "2001:db8::1"
    cleared = hosts.set_addresses(db, host.id, ipv4=None, ipv6=KEEP)
    assert cleared.host.ipv4 is None and cleared.host.ipv6 == "2001:db8::1"
    feed = changes.since(db, start)
    assert [c.name for c in feed] == ["home.dyn.example.org"] * 4  # add, v4, v6, clear; not the nochg
    assert zones.get(db, "dyn.example.org").serial == zone.serial + 4
    hosts.delete(db, host.id)
    assert changes.since(db, start)[-1].name == "home.dyn.example.org"
    with pytest.raises(NotFound):
        hosts.get(db, "home.dyn.example.org")


def test_host_rules(db, zone, alice):
    zones.add(db, "example.org", ["ns1.example.org"], "hostmaster.example.org")
    with pytest.raises(NotFound):
        hosts.add(db, alice.id, "x.other.net", "h", default_limit=5)
    with pytest.raises(ValidationError):
        hosts.add(db, alice.id, "a.b.dyn.example.org", "h", default_limit=5)
    # The most specific zone wins.
    assert hosts.add(db, alice.id, "a.dyn.example.org", "h", default_limit=5).zone == "dyn.example.org"
    assert hosts.add(db, alice.id, "b.example.org", "h", default_limit=5).zone == "example.org"
    with pytest.raises(Conflict):
        hosts.add(db, alice.id, "a.dyn.example.org", "h", default_limit=5)
    with pytest.raises(LimitReached):
        hosts.add(db, alice.id, "c.dyn.example.org", "h", default_limit=2)
    users.set_max_hosts(db, alice.id, -1)
    hosts.add(db, alice.id, "c.dyn.example.org", "h", default_limit=2)
    private = zones.add(db, "priv.example.org", ["ns1.example.org"], "hostmaster.example.org", is_public=False)
    with pytest.raises(ValidationError):
        hosts.add(db, alice.id, "x.priv.example.org", "h", default_limit=5)
    zones.set_allowed_users(db, private.id, [alice.id])
    hosts.add(db, alice.id, "x.priv.example.org", "h", default_limit=5)


def test_flags_remove_hosts_from_dns(db, zone, alice):
    host = hosts.add(db, alice.id, "home.dyn.example.org", "h", default_limit=5, ipv4="192.0.2.1")

    def names():
        return db.read(lambda tx: [row[0] for row in dnsdata.iter_hosts(tx)])

    assert names() == ["home.dyn.example.org"]
    before = changes.last_id(db)
    hosts.set_flags(db, host.id, blocked=True, reason="spam")
    assert names() == [] and changes.last_id(db) > before
    hosts.set_flags(db, host.id, blocked=False)
    users.set_flags(db, alice.id, is_disabled=True)
    assert names() == []
    users.set_flags(db, alice.id, is_disabled=False)
    assert db.read(lambda tx: dnsdata.hosts_named(tx, ["home.dyn.example.org"]))[0].ipv4 == "192.0.2.1"


def test_records_and_zone_delete(db, zone, alice):
    host = hosts.add(db, alice.id, "home.dyn.example.org", "h", default_limit=5)
    records.add(db, host.id, "_acme-challenge.home.dyn.example.org", "TXT", "token")
    assert [r.content for r in records.for_host(db, host.id)] == ["token"]
    found = db.read(lambda tx: dnsdata.records_named(tx, ["_acme-challenge.home.dyn.example.org"]))
    assert found[0].content == "token"
    assert records.delete(db, host.id, name="_acme-challenge.home.dyn.example.org") == 1
    records.add(db, host.id, "_acme-challenge.home.dyn.example.org", "TXT", "token2")
    assert zones.delete(db, zone.id) == 1
    assert hosts.search(db)[1] == 0
    assert changes.since(db, 0)[-1].name == "dyn.example.org"


def test_users_and_last_admin(db):
    admin = users.add(db, "root", "root@example.org", is_admin=True)
    with pytest.raises(Conflict):
        users.add(db, "root", "other@example.org")
    with pytest.raises(Conflict):
        users.add(db, "other", "root@example.org")
    with pytest.raises(LimitReached):
        users.set_flags(db, admin.id, is_admin=False)
    with pytest.raises(LimitReached):
        users.delete(db, admin.id)
    second = users.add(db, "second", "second@example.org", is_admin=True)
    users.set_flags(db, admin.id, is_admin=False)
    assert users.find_login(db, "SECOND@example.org").id == second.id
    page, total = users.search(db, "o", limit=1)
    assert total == 2 and len(page) == 1
    assert users.search(db, "100%")[1] == 0


def test_tokens_single_use_and_expiry(db, alice):
    token = tokens.create(db, "reset", alice.id, 3600)
    assert tokens.check(db, "activate", token) is None
    assert tokens.consume(db, "reset", token).user_id == alice.id
    assert tokens.consume(db, "reset", token) is None
    expired = tokens.create(db, "reset", alice.id, 60)
    db.run(lambda tx: tx.execute("UPDATE tokens SET expires_at = 1"))
    assert tokens.consume(db, "reset", expired) is None
    api = tokens.create(db, "api", alice.id, None)
    assert tokens.check(db, "api", api) and tokens.check(db, "api", api)


def test_events(db, alice):
    events.add(db, "login-failed", "alice", client="192.0.2.1")
    events.add(db, "login-failed", "alice", client="192.0.2.1")
    assert events.count(db, "login-failed", "alice", 60) == 2
    assert events.recent(db, kinds=("login-failed",))[0].client == "192.0.2.1"


def test_serial_wraps(db, zone, alice):
    db.run(lambda tx: tx.execute("UPDATE zones SET serial = ?", (2**32 - 1,)))
    hosts.add(db, alice.id, "home.dyn.example.org", "h", default_limit=5)
    assert zones.get(db, "dyn.example.org").serial == 0


def test_names_are_stored_as_validated(db, zone, alice):
    name = validate.hostname("Bücher.DYN.example.org")
    host = hosts.add(db, alice.id, name, "h", default_limit=5)
    assert host.name == "xn--bcher-kva.dyn.example.org"


def test_host_ttl_and_wildcard_within_the_zone_rules(db, zone, alice):
    """Each change bumps the serial and enters the feed in its transaction; the zone's rules bind every writer."""
    host = hosts.add(db, alice.id, "home.dyn.example.org", "h", default_limit=5)
    other = hosts.add(db, alice.id, "other.dyn.example.org", "h", default_limit=5)
    zones.update(db, zone.id, min_ttl=30, max_ttl=600)
    start, serial = changes.last_id(db), zones.get(db, zone.name).serial
    with pytest.raises(ValidationError, match="between 30 and 600 seconds"):
        hosts.set_properties(db, host.id, ttl=29)
    with pytest.raises(ValidationError, match="between 30 and 600 seconds"):
        hosts.set_properties(db, host.id, ttl=601)
    assert changes.last_id(db) == start and zones.get(db, zone.name).serial == serial
    hosts.set_properties(db, host.id, ttl=600, wildcard=True)
    hosts.set_properties(db, other.id, ttl=30)
    hosts.set_properties(db, other.id, ttl=30, wildcard=False)  # no change: not in the feed
    assert [c.name for c in changes.since(db, start)] == [host.name, other.name]
    assert zones.get(db, zone.name).serial == serial + 2
    # Narrowing the range and forbidding wildcards bring the hosts in line, each in the feed.
    start = changes.last_id(db)
    zones.update(db, zone.id, min_ttl=60, max_ttl=300, allow_wildcards=False)
    assert (hosts.get(db, host.name).ttl, hosts.get(db, host.name).wildcard) == (300, False)
    assert hosts.get(db, other.name).ttl == 60
    assert {c.name for c in changes.since(db, start)} == {host.name, other.name}
    with pytest.raises(ValidationError, match="does not allow wildcard"):
        hosts.set_properties(db, host.id, wildcard=True)
    hosts.set_properties(db, host.id, ttl=None, wildcard=False)  # back to the zone's TTL, allowed
    assert hosts.get(db, host.name).ttl is None
    with pytest.raises(ValidationError, match="empty"):
        zones.update(db, zone.id, min_ttl=400)
    with pytest.raises(ValidationError, match="empty"):
        zones.add(db, "x.example.org", ["ns1.example.org"], "hostmaster.example.org", min_ttl=10, max_ttl=5)
