"""Related names in the store, on SQLite and MariaDB: they follow their main host in the transactions that
write it (the updater's group commit, the interface's and the command's address changes), each change in the
feed, and they are neither listed, counted nor found by the updater on their own."""

from __future__ import annotations

import threading

import pytest

from ddserver import prefixes
from ddserver.db import Database
from ddserver.errors import Conflict, LimitReached, NotFound, ValidationError
from ddserver.store import changes, hosts, listing, related, updates, users, zones
from tests.updater_support import ZONE, make_site

HOME = f"home.{ZONE}"
NAS = f"nas.{HOME}"


def _update(db: Database, name: str, **values: object) -> updates.Applied:
    host = updates.read_hosts(db, [name])[name]
    fields = {"ipv4": None, "ipv6": None, "set_ipv4": False, "set_ipv6": False, **values}
    result = updates.apply_many(db, [updates.Update(host, **fields)])[0]  # type: ignore[arg-type]
    assert isinstance(result, updates.Applied)
    return result


def _fed(db: Database, after: int) -> list[str]:
    return [c.name for c in changes.since(db, after)]


def test_related_names_follow_the_main_host(db: Database) -> None:
    site = make_site(db)
    hosts.set_addresses(db, site.home.id, ipv4="192.0.2.1", ipv6="2001:db8:1:2::1")
    nas = related.add(db, site.home.id, NAS, "::1:2:3:4", limit=5)
    printer = related.add(db, site.home.id, f"printer.{ZONE}", "::5", prefix_len=56, follow_ipv4=True, limit=5)
    assert (nas.ipv4, nas.ipv6, nas.parent_id) == (None, "2001:db8:1:2:1:2:3:4", site.home.id)
    assert (printer.ipv4, printer.ipv6) == ("192.0.2.1", "2001:db8:1::5")
    assert [h.name for h in related.of(db, site.home.id)] == [NAS, f"printer.{ZONE}"]

    # A dyndns2 update of the main host's IPv6 address: its related names in the same transaction and feed.
    serial = zones.get_by_id(db, site.zone.id).serial
    mark = changes.last_id(db)
    applied = _update(db, HOME, ipv6="2001:db8:9:9::1", set_ipv6=True)
    assert applied.changed and set(applied.related) == {NAS, f"printer.{ZONE}"}
    assert sorted(_fed(db, mark)) == sorted([HOME, NAS, f"printer.{ZONE}"])
    assert zones.get_by_id(db, site.zone.id).serial == serial + 3
    assert hosts.get(db, NAS).ipv6 == "2001:db8:9:9:1:2:3:4"
    assert hosts.get(db, f"printer.{ZONE}").ipv6 == "2001:db8:9::5"

    # IPv4 alone: only the related name that takes it changes.
    mark = changes.last_id(db)
    applied = _update(db, HOME, ipv4="198.51.100.7", set_ipv4=True)
    assert applied.related == (f"printer.{ZONE}",)
    assert _fed(db, mark) == [HOME, f"printer.{ZONE}"]
    assert hosts.get(db, f"printer.{ZONE}").ipv4 == "198.51.100.7"
    assert hosts.get(db, NAS).ipv4 is None

    # A prefix on its own: the main host keeps its addresses, its related names take the prefix.
    applied = _update(db, HOME, ipv6_prefix="2001:db8:77:6600::/56")
    assert applied.changed and (applied.ipv6, applied.ipv6_prefix) == ("2001:db8:9:9::1", "2001:db8:77:6600::/56")
    assert hosts.get(db, NAS).ipv6 == "2001:db8:77:6600:1:2:3:4"
    assert hosts.get(db, f"printer.{ZONE}").ipv6 == "2001:db8:77:6600::5"
    # The same prefix again changes nothing; an address that stays keeps the prefix as the base.
    mark = changes.last_id(db)
    assert not _update(db, HOME, ipv6_prefix="2001:db8:77:6600::/56").changed
    assert not _update(db, HOME, ipv6="2001:db8:9:9::1", set_ipv6=True).changed
    assert _fed(db, mark) == []
    # A new address without a prefix is the base again.
    _update(db, HOME, ipv6="2001:db8:5:5::1", set_ipv6=True)
    assert hosts.get(db, NAS).ipv6 == "2001:db8:5:5:1:2:3:4"
    assert hosts.get(db, HOME).ipv6_prefix is None

    # The interface's (and the command's) address change brings them along too; cleared, they are cleared.
    hosts.set_addresses(db, site.home.id, ipv4=None, ipv6=None)
    assert (hosts.get(db, NAS).ipv6, hosts.get(db, f"printer.{ZONE}").ipv4) == (None, None)


def test_related_names_are_neither_listed_counted_nor_updated_alone(db: Database) -> None:
    site = make_site(db)
    related.add(db, site.home.id, NAS, "::4", limit=5)
    assert hosts.count_for_user(db, site.alice.id) == 2
    assert NAS not in [h.name for h in hosts.search(db, user_id=site.alice.id)[0]]
    assert NAS not in [h.name for h in listing.hosts_of_user(db, site.alice.id)]
    assert NAS not in updates.read_hosts(db, [NAS, HOME])
    found = updates.lookup(db, [NAS], site.alice.username, None, [], 60, account_hosts=True)
    assert NAS not in found.hosts
    with pytest.raises(ValidationError):
        hosts.set_addresses(db, hosts.get(db, NAS).id, ipv4="192.0.2.9")


def test_adding_a_related_name_checks_it(db: Database) -> None:
    site = make_site(db)
    related.add(db, site.home.id, NAS, "::4", limit=2)
    with pytest.raises(Conflict):
        related.add(db, site.home.id, NAS, "::5", limit=2)
    with pytest.raises(Conflict):
        related.add(db, site.home.id, f"office.{ZONE}", "::5", limit=2)
    with pytest.raises(ValidationError, match="not in the zone"):
        related.add(db, site.home.id, "nas.example.com", "::5", limit=2)
    with pytest.raises(ValidationError, match="one label below"):
        related.add(db, site.home.id, f"a.{NAS}", "::5", limit=2)
    with pytest.raises(ValidationError, match="one label below"):
        related.add(db, site.home.id, f"x.other.{ZONE}", "::5", limit=2)
    with pytest.raises(ValidationError, match="bits"):
        related.add(db, site.home.id, f"tv.{HOME}", "1::5", limit=2)
    with pytest.raises(ValidationError, match="related name itself"):
        related.add(db, hosts.get(db, NAS).id, f"tv.{HOME}", "::5", limit=2)
    related.add(db, site.home.id, f"tv.{HOME}", "::5", limit=2)
    with pytest.raises(LimitReached):
        related.add(db, site.home.id, f"pc.{HOME}", "::6", limit=2)
    with pytest.raises(NotFound):
        related.remove(db, site.office.id, hosts.get(db, NAS).id)


def test_edit_flags_ttl_and_delete_reach_the_related_names(db: Database) -> None:
    site = make_site(db)
    hosts.set_addresses(db, site.home.id, ipv6="2001:db8:1:2::1")
    nas = related.add(db, site.home.id, NAS, "::4", limit=5)
    edited = related.edit(db, site.home.id, nas.id, "::9", prefix_len=48, follow_ipv4=False)
    assert (edited.ifid, edited.prefix_len, edited.ipv6) == ("::9", 48, "2001:db8:1::9")

    mark = changes.last_id(db)
    hosts.set_flags(db, site.home.id, blocked=True, reason="test")
    assert hosts.get(db, NAS).blocked and NAS in _fed(db, mark)
    hosts.set_flags(db, site.home.id, blocked=False)
    assert not hosts.get(db, NAS).blocked
    flagged = updates.add_fault(db, updates.read_hosts(db, [HOME])[HOME], limit=1, window=60, reason="x", client=None)
    assert flagged and hosts.get(db, NAS).abuse

    hosts.set_properties(db, site.home.id, ttl=300)
    assert hosts.get(db, NAS).ttl == 300

    mark = changes.last_id(db)
    hosts.delete(db, site.home.id)
    assert NAS in _fed(db, mark)
    with pytest.raises(NotFound):
        hosts.get(db, NAS)


def _count(db: Database, host_id: int) -> int:
    return int(db.read(lambda tx: tx.scalar("SELECT related_count FROM hosts WHERE id = ?", (host_id,))))


def test_removing_a_related_name(db: Database) -> None:
    site = make_site(db)
    nas = related.add(db, site.home.id, NAS, "::4", limit=5)
    tv = related.add(db, site.home.id, f"tv.{HOME}", "::5", limit=5)
    # The count the updater reads with the locked main row goes with every add and removal.
    assert _count(db, site.home.id) == 2
    mark = changes.last_id(db)
    related.remove(db, site.home.id, nas.id)
    assert _fed(db, mark) == [NAS]
    assert _count(db, site.home.id) == 1
    hosts.delete(db, tv.id)
    assert _count(db, site.home.id) == 0
    assert related.of(db, site.home.id) == []
    # Without related names, an update reads none and changes only the host.
    assert _update(db, HOME, ipv6="2001:db8::1", set_ipv6=True).related == ()


def test_deleting_the_owner_or_the_zone_takes_them_along(db: Database) -> None:
    site = make_site(db)
    related.add(db, site.home.id, NAS, "::4", limit=5)
    related.add(db, site.office.id, f"nas.office.{ZONE}", "::4", limit=5)
    users.delete(db, site.alice.id)
    assert db.read(lambda tx: tx.scalar("SELECT COUNT(*) FROM hosts WHERE parent_id IS NOT NULL")) == 0
    bob_home = hosts.add(db, site.bob.id, f"bobhome.{ZONE}", "x", default_limit=-1)
    related.add(db, bob_home.id, f"nas.bobhome.{ZONE}", "::4", limit=5)
    zones.delete(db, site.zone.id)
    assert db.read(lambda tx: tx.scalar("SELECT COUNT(*) FROM hosts")) == 0


def test_related_names_stay_in_step_under_concurrent_writers(db: Database) -> None:
    """The updater moves the main host while related names are added and removed: every writer takes the main
    row first, so none waits for another in a circle, and no related name is left behind the main host."""
    site = make_site(db)
    stop = threading.Event()
    failures: list[BaseException] = []

    def updater() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                _update(db, HOME, ipv6=f"2001:db8:{n:x}::1", set_ipv6=True)
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)
                return

    thread = threading.Thread(target=updater)
    thread.start()
    try:
        for round_ in range(15):
            names = [f"n{round_}x{k}.{HOME}" for k in range(3)]
            added = [related.add(db, site.home.id, name, f"::{k + 1}", limit=-1) for k, name in enumerate(names)]
            related.edit(db, site.home.id, added[0].id, "::99", prefix_len=64, follow_ipv4=False)
            related.remove(db, site.home.id, added[1].id)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not failures, failures
    main = hosts.get(db, HOME)
    rows = related.of(db, site.home.id)
    assert len(rows) == 30
    assert db.read(lambda tx: tx.scalar("SELECT related_count FROM hosts WHERE id = ?", (site.home.id,))) == 30
    for row in rows:
        rule = prefixes.Related(str(row.ifid), int(row.prefix_len or 64), row.follow_ipv4)
        assert (row.ipv4, row.ipv6) == prefixes.related_addresses(rule, main.ipv4, main.ipv6, main.ipv6_prefix)
