"""Related names reach a nameserver fed by RFC 2136 (a real BIND ``named``) as any host does: the worker reads
them from the change feed, unchanged."""

from __future__ import annotations

from ddserver.db import Database
from ddserver.store import hosts, related, updates, users
from tests import named as named_support
from tests.integration.test_rfc2136 import ZONE, add_zone, new_host, worker
from tests.named import NamedServer

named = named_support.named  # the fixture


def test_related_names_are_pushed(db: Database, config, named: NamedServer) -> None:  # type: ignore[no-untyped-def]
    add_zone(db, named)
    alice = users.add(db, "alice", "alice@example.org", password_hash="x")
    w = worker(db, config)
    home = new_host(db, alice, "home", ipv4="192.0.2.1", ipv6="2001:db8:1:2::1")
    nas = related.add(db, home.id, f"nas.home.{ZONE}", "::1:2:3:4", limit=-1)
    related.add(db, home.id, f"tv.{ZONE}", "::5", follow_ipv4=True, limit=-1)
    assert not w.run_pass().errors
    assert named.query(f"nas.home.{ZONE}", "AAAA") == ["2001:db8:1:2:1:2:3:4"]
    assert named.query(f"tv.{ZONE}") == ["192.0.2.1"] and named.query(f"tv.{ZONE}", "AAAA") == ["2001:db8:1:2::5"]

    # A prefix-only update through the updater's group commit.
    state = updates.read_hosts(db, [home.name])[home.name]
    updates.apply_many(db, [updates.Update(state, None, None, False, False, ipv6_prefix="2001:db8:77:6600::/56")])
    assert not w.run_pass().errors
    assert named.query(f"nas.home.{ZONE}", "AAAA") == ["2001:db8:77:6600:1:2:3:4"]
    assert named.query(f"home.{ZONE}", "AAAA") == ["2001:db8:1:2::1"]

    # Blocked with its host, back with it; removed, gone.
    hosts.set_flags(db, home.id, blocked=True)
    assert not w.run_pass().errors
    assert named.query(f"nas.home.{ZONE}", "AAAA") == [] and named.query(f"tv.{ZONE}") == []
    hosts.set_flags(db, home.id, blocked=False)
    related.remove(db, home.id, nas.id)
    assert not w.run_pass().errors
    assert named.query(f"nas.home.{ZONE}", "AAAA") == [] and named.query(f"tv.{ZONE}") == ["192.0.2.1"]
