"""Group commit: several updates in one transaction, each checked on its own, the feed and serial per change;
the committer gathers what waits while a commit is held up, and falls back to one transaction per update."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from ddserver.db import Database, Transaction, _mariadb_returning
from ddserver.errors import DatabaseError, NotFound
from ddserver.store import changes, hosts, updates, zones
from ddserver.updater.committer import Committer
from tests import support
from tests.updater_support import ZONE, Site, make_site


@pytest.fixture
def site(db: Database) -> Site:
    return make_site(db)


def state(db: Database, name: str) -> updates.HostState:
    found = updates.lookup(db, [name], name, None, [], 60)
    return found.hosts[name]


def change(db: Database, name: str, ipv4: str, **kw: object) -> updates.Update:
    return updates.Update(state(db, name), ipv4, None, True, False, **kw)  # type: ignore[arg-type]


def test_apply_many_checks_each_update_on_its_own(db: Database, site: Site) -> None:
    other_zone = zones.add(db, "dyn2.example.org", ["ns1.example.org"], "hostmaster.example.org")
    far = hosts.add(db, site.alice.id, "far.dyn2.example.org", "x", default_limit=-1)
    home, office, other = site.home.name, site.office.name, site.other.name
    batch = [
        change(db, home, "198.51.100.1"),
        change(db, far.name, "198.51.100.9"),
        change(db, other, "198.51.100.3"),
        change(db, office, "198.51.100.2"),
        # The same host twice: the second sees the first.
        change(db, home, "198.51.100.1", result="nochg"),
        change(db, home, "198.51.100.4"),
    ]
    hosts.delete(db, site.other.id)
    hosts.set_flags(db, site.office.id, abuse=True)
    serial, serial2 = zones.get(db, ZONE).serial, zones.get(db, other_zone.name).serial
    feed = changes.last_id(db)

    results = updates.apply_many(db, batch)

    assert isinstance(results[2], NotFound)
    assert isinstance(results[3], updates.Applied) and results[3].refused
    first, again, last = results[0], results[4], results[5]
    assert isinstance(first, updates.Applied) and first.changed and first.ipv4 == "198.51.100.1"
    assert isinstance(again, updates.Applied) and not again.changed
    assert isinstance(last, updates.Applied) and last.changed and last.ipv4 == "198.51.100.4"
    assert hosts.get(db, home).ipv4 == "198.51.100.4"
    assert hosts.get(db, far.name).ipv4 == "198.51.100.9"
    assert hosts.get(db, office).ipv4 is None
    # One serial step and one feed entry per change, each zone its own.
    assert zones.get(db, ZONE).serial == serial + 2
    assert zones.get(db, other_zone.name).serial == serial2 + 1
    assert sorted(c.name for c in changes.since(db, feed)) == sorted([home, home, far.name])


def record_many(tx: Transaction, zone_id: int, zone: str, names: list[str]) -> dict[str, int]:
    """The group commit's feed and serial statements for ``names``, run alone: each name's newest change id."""
    return changes.change_ids(tx.script(changes.record_many_statements(tx.db, zone_id, zone, names))[0])


def test_record_many_wraps_the_serial(db: Database, site: Site) -> None:
    db.run(lambda tx: tx.execute("UPDATE zones SET serial = ? WHERE id = ?", (changes.SERIAL_MAX - 1, site.zone.id)))
    db.run(lambda tx: record_many(tx, site.zone.id, ZONE, ["a." + ZONE, "b." + ZONE, "c." + ZONE]))
    assert zones.get(db, ZONE).serial == 1
    db.run(lambda tx: record_many(tx, site.zone.id, ZONE, ["a." + ZONE]))
    assert zones.get(db, ZONE).serial == 2


@contextmanager
def held(db: Database, host_id: int) -> Iterator[None]:
    """Hold a write lock that the committer's next transaction waits for (the host's row; SQLite's only one)."""
    with db.transaction() as tx:
        tx.execute(f"SELECT id FROM hosts WHERE id = ?{' FOR UPDATE' if db.dialect == 'mysql' else ''}", (host_id,))
        yield


def in_threads(calls: list[Callable[[], object]]) -> tuple[list[threading.Thread], list[object]]:
    results: list[object] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            results[index] = calls[index]()
        except Exception as exc:  # noqa: BLE001 - the test looks at what each call ended with
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    return threads, results


def run_behind_a_held_commit(db: Database, site: Site, waiting: list[updates.Update]) -> tuple[list[int], list[object]]:
    """One update is being committed (and held up by a lock) while ``waiting`` arrive; then the lock goes.

    :returns: the sizes of the committer's transactions, and what each of ``waiting`` got.
    """
    sizes: list[int] = []
    committer = Committer(db, on_batch=sizes.append)
    # The committer's own connection: the held lock belongs to this thread's.
    first = change(db, site.home.name, "198.51.100.200")
    try:
        with held(db, site.home.id):
            head, _ = in_threads([lambda: committer.apply(first)])
            support.wait_until(lambda: committer._thread is not None and not committer._pending, what="first batch")
            threads, results = in_threads([lambda u=u: committer.apply(u) for u in waiting])  # type: ignore[misc]
            support.wait_until(lambda: len(committer._pending) == len(waiting), what="waiting updates")
        for thread in head + threads:
            thread.join(30)
    finally:
        committer.close()
    return sizes, results


def test_committer_writes_what_waited_in_one_transaction(db: Database, site: Site) -> None:
    names = [site.office.name, site.other.name]
    waiting = [change(db, names[i % 2], f"198.51.100.{i}") for i in range(1, 11)]
    feed = changes.last_id(db)
    serial = zones.get(db, ZONE).serial

    sizes, results = run_behind_a_held_commit(db, site, waiting)

    assert sizes == [1, 10]
    assert all(isinstance(r, updates.Applied) and r.changed for r in results), results
    # Each update of a host saw the one before it (all five changed), and one of them stayed.
    assert hosts.get(db, site.office.name).ipv4 in {f"198.51.100.{i}" for i in range(2, 11, 2)}
    assert hosts.get(db, site.other.name).ipv4 in {f"198.51.100.{i}" for i in range(1, 11, 2)}
    assert len(changes.since(db, feed)) == 11
    assert zones.get(db, ZONE).serial == serial + 11


@pytest.mark.mysql
@pytest.mark.parametrize("dialect", ["mysql"])
def test_a_failing_batch_is_written_one_update_at_a_time(db: Database, site: Site) -> None:
    """An update that the database refuses (a value too long for its column, in strict mode) fails alone."""
    bad = change(db, site.other.name, "198.51.100.123-too-long-for-ipv4")
    waiting = [change(db, site.office.name, "198.51.100.7"), bad, change(db, site.home.name, "198.51.100.8")]

    sizes, results = run_behind_a_held_commit(db, site, waiting)

    assert isinstance(results[1], DatabaseError)
    assert isinstance(results[0], updates.Applied) and results[0].changed
    assert isinstance(results[2], updates.Applied) and results[2].changed
    assert sizes == [1, 1, 1]
    assert hosts.get(db, site.office.name).ipv4 == "198.51.100.7"
    assert hosts.get(db, site.home.name).ipv4 == "198.51.100.8"
    assert hosts.get(db, site.other.name).ipv4 is None


def test_committer_thread_ends_when_idle_and_comes_back(db: Database, site: Site) -> None:
    committer = Committer(db, idle=0.05)
    try:
        assert committer.apply(change(db, site.home.name, "198.51.100.1")).changed
        support.wait_until(lambda: committer._thread is None, what="idle committer to end")
        assert committer.apply(change(db, site.home.name, "198.51.100.2")).changed
    finally:
        committer.close()
    assert hosts.get(db, site.home.name).ipv4 == "198.51.100.2"


def test_connection_of_an_ended_thread_is_closed(db: Database) -> None:
    """The updater's servers end idle threads and start new ones: each thread's connection goes with it."""
    before = len(db._all)
    thread = threading.Thread(target=lambda: db.read(lambda tx: tx.scalar("SELECT 1")))
    thread.start()
    thread.join()
    support.wait_until(lambda: len(db._all) == before, what="the ended thread's connection to be closed")


def test_record_many_returns_each_names_newest_change_id(db: Database, site: Site) -> None:
    names = ["a." + ZONE, "b." + ZONE, "a." + ZONE]
    ids = db.run(lambda tx: record_many(tx, site.zone.id, ZONE, names))
    feed = changes.since(db, 0)
    assert ids == {name: max(c.id for c in feed if c.name == name) for name in ("a." + ZONE, "b." + ZONE)}


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("10.11.19-MariaDB-0+deb12u1", True),
        ("10.5.2-MariaDB", True),
        ("10.4.30-MariaDB-log", False),
        ("5.5.5-10.11.6-MariaDB", True),  # the prefix MariaDB 10 showed old MySQL clients
        ("8.0.36", False),
        ("garbage", False),
    ],
)
def test_returning_is_used_on_mariadb_from_10_5(version: str, expected: bool) -> None:
    assert _mariadb_returning(version) is expected


def test_a_batch_waits_for_the_requests_under_way(db: Database, site: Site) -> None:
    """A request that has begun (``arriving``) joins the batch being gathered; one that leaves without an
    update lets it go. ``gather`` is long here so that only those two events end the wait."""
    sizes: list[int] = []
    committer = Committer(db, on_batch=sizes.append, gather=60)
    go_on = threading.Event()
    leave = threading.Event()

    def joining() -> object:
        committer.arriving()
        try:
            go_on.wait(30)
            return committer.apply(change(db, site.office.name, "198.51.100.31"))
        finally:
            committer.leaving()

    def not_writing() -> None:
        committer.arriving()
        leave.wait(30)
        committer.leaving()

    try:
        arrivals, _ = in_threads([joining, not_writing])
        support.wait_until(lambda: committer._arriving == 2, what="two requests under way")
        writer, results = in_threads([lambda: committer.apply(change(db, site.home.name, "198.51.100.30"))])
        support.wait_until(lambda: committer._gathering and len(committer._pending) == 1, what="a batch gathering")
        go_on.set()
        support.wait_until(lambda: len(committer._pending) == 2, what="the second update")
        assert committer._gathering and sizes == []  # still waiting for the request under way
        leave.set()
        for thread in arrivals + writer:
            thread.join(30)
        assert sizes == [2]
        assert isinstance(results[0], updates.Applied) and results[0].changed
        # The next batch waits for as many updates as the last one had (their callers come back together).
        writers, results = in_threads([lambda: committer.apply(change(db, site.home.name, "198.51.100.32"))])
        support.wait_until(lambda: committer._gathering, what="a batch gathering")
        more, _ = in_threads([lambda: committer.apply(change(db, site.office.name, "198.51.100.33"))])
        for thread in writers + more:
            thread.join(30)
        assert sizes == [2, 2]
    finally:
        committer.close()
    assert hosts.get(db, site.home.name).ipv4 == "198.51.100.32"


def test_a_lone_update_waits_for_nothing(db: Database, site: Site) -> None:
    """An idle updater writes a lone update at once: no request under way, no earlier batch to match."""
    sizes: list[int] = []
    committer = Committer(db, on_batch=sizes.append, gather=60)
    try:
        committer.arriving()
        try:
            assert committer.apply(change(db, site.home.name, "198.51.100.34")).changed
        finally:
            committer.leaving()
        assert committer._arriving == 0 and sizes == [1]
    finally:
        committer.close()
