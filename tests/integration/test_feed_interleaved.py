"""The change feed as Galera and a failover make it, on a real MariaDB: interleaved auto-increment ids (many of
which never exist), commits out of id order, rolled-back changes, and a reader switched to another server with
the same data, or with a tail it lacks. The recursor's follower and the RFC 2136 worker must apply every change
once, never miss one, and not spin on ids that never come."""

from __future__ import annotations

import collections
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ddserver.db import Database, Transaction
from ddserver.recursor.follower import Follower
from ddserver.rfc2136 import worker as worker_module
from ddserver.rfc2136.worker import Worker
from ddserver.store import changes, zones
from tests import support

pytestmark = pytest.mark.mysql

#: Zones written to, one per writer: writers on distinct zones do not queue on one zone's serial, so a
#: transaction holding a lower id can commit after one holding a higher id.
ZONES = [f"z{n}.example.org" for n in range(4)]
#: A three-node Galera cluster with writers on two nodes: node 1 makes ids 1, 4, 7..., node 2 2, 5, 8...,
#: and ids of node 3 never exist.
NODES = 3


class RolledBack(Exception):
    pass


@dataclass
class Feed:
    """What the writers did: every change committed (name -> id) and every name rolled back."""

    committed: dict[str, int] = field(default_factory=dict)
    rolled_back: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def add_zones(db: Database) -> list[zones.Zone]:
    return [
        zones.add(db, name, ["ns1.example.org"], "hostmaster.example.org", rfc2136_server="127.0.0.1:53")
        for name in ZONES
    ]


def write(db: Database, feed: Feed, zone: zones.Zone, offset: int, count: int, prefix: str, seed: int) -> None:
    """``count`` changes of ``zone``, each in a transaction of its own with Galera's interleaved ids, held open
    a moment (so commits cross), one in 30 rolled back."""
    rng = random.Random(seed)
    for n in range(count):
        name = f"{prefix}{n}.{zone.name}"
        hold = rng.uniform(0, 0.004)
        rollback = rng.random() < 1 / 30

        def run(tx: Transaction, name: str = name, hold: float = hold, rollback: bool = rollback) -> int:
            tx.execute(f"SET SESSION auto_increment_increment = {NODES}, auto_increment_offset = {offset}")
            change_id = changes.record(tx, zone.id, zone.name, name)
            time.sleep(hold)
            if rollback:
                raise RolledBack
            return change_id

        try:
            change_id = db.run(run)
        except RolledBack:
            with feed.lock:
                feed.rolled_back.add(name)
            continue
        with feed.lock:
            feed.committed[name] = change_id


def write_all(db: Database, feed: Feed, zone_list: list[zones.Zone], count: int, prefix: str) -> None:
    """Four writers at once, two on each of two nodes."""
    threads = [
        threading.Thread(target=write, args=(db, feed, zone, 1 + n % 2, count, prefix, n))
        for n, zone in enumerate(zone_list)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)


class Applied:
    """Counts each change the follower applies, and each id it re-reads as a gap."""

    def __init__(self, follower: Follower, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ids: collections.Counter[int] = collections.Counter()
        self.rechecked: collections.Counter[int] = collections.Counter()
        #: The feed position of the last full load.
        self.loaded_at = 0
        apply, with_ids, load = follower.apply, changes.changes_with_ids, follower.load

        def counted_load():  # type: ignore[no-untyped-def]
            index = load()
            self.loaded_at = follower.cursor.high
            return index

        def counted_apply(rows):  # type: ignore[no-untyped-def]
            rows = list(rows)
            stale = apply(rows)
            self.ids.update(c.id for c in rows)
            return stale

        def counted_with_ids(tx: Transaction, ids: list[int]) -> list[changes.Change]:
            self.rechecked.update(ids)
            return with_ids(tx, ids)

        follower.apply = counted_apply  # type: ignore[method-assign]
        follower.load = counted_load  # type: ignore[method-assign]
        monkeypatch.setattr(changes, "changes_with_ids", counted_with_ids)


class Pushed:
    """A worker whose pushes are recorded instead of sent (names without the wildcards it adds)."""

    def __init__(self, worker: Worker) -> None:
        self.names: collections.Counter[str] = collections.Counter()
        #: Zones compared in full (AXFR), each time.
        self.compared: list[str] = []

        def push(zone, target, names):  # type: ignore[no-untyped-def]
            self.names.update(n for n in names if not n.startswith("*."))
            return 1

        def full_sync(zone, target):  # type: ignore[no-untyped-def]
            self.compared.append(zone.name)
            return 0

        worker.push = push  # type: ignore[method-assign]
        worker.full_sync = full_sync  # type: ignore[method-assign]


@pytest.fixture
def mysql_url(tmp_path: Path) -> Iterator[str]:
    url = support.new_database_url("mysql", tmp_path)
    db = support.create_database(url)
    yield url
    db.drop_database()


def make_worker(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Worker, Pushed]:
    monkeypatch.setattr(worker_module, "IDLE_ADVANCE", 0.5)
    config = support.make_config(db._url_text, tmp_path, rfc2136={"poll_interval": 0.02, "gap_timeout": 1.0})
    worker = Worker(db, config)
    return worker, Pushed(worker)


def test_interleaved_ids_and_late_commits_are_applied_once(
    mysql_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(mysql_url)
    zone_list = add_zones(db)
    follower = Follower(Database(mysql_url), poll_interval=0.02)
    follower.load()
    applied = Applied(follower, monkeypatch)
    worker, pushed = make_worker(Database(mysql_url), tmp_path, monkeypatch)
    worker_thread = threading.Thread(target=worker.run_forever, name="rfc2136")
    # Feed rows the worker reads (it reads its window again only when it must).
    worker_rows = collections.Counter()

    def counting(read: Any) -> Any:
        def counted(tx: Transaction, *args: Any, **kwargs: Any) -> list[changes.Change]:
            rows = read(tx, *args, **kwargs)
            if threading.current_thread().name == "rfc2136":
                worker_rows["rows"] += len(rows)
            return rows

        return counted

    for name in ("changes_after", "changes_with_ids"):
        monkeypatch.setattr(changes, name, counting(getattr(changes, name)))
    feed_read = worker_module.store.feed

    def counted_feed(db: Database, after: int, limit: int) -> tuple[list[changes.Change], int]:
        rows, oldest = feed_read(db, after, limit)
        worker_rows["rows"] += len(rows)
        return rows, oldest

    monkeypatch.setattr(worker_module.store, "feed", counted_feed)
    follower.start()
    worker_thread.start()
    feed = Feed()
    try:
        write_all(db, feed, zone_list, 1000, "h")
        ids = set(feed.committed.values())
        assert len(ids) > 3500 and feed.rolled_back
        support.wait_until(lambda: ids <= set(applied.ids), 60, what="the follower to apply every change")
        support.wait_until(lambda: set(feed.committed) <= set(pushed.names), 60, what="the worker to push every change")
        newest = changes.last_id(db)
        # The worker's position passes the ids that never come, once they are older than its gap_timeout.
        support.wait_until(
            lambda: all(z.rfc2136_position == newest for z in map(lambda z: zones.get(db, z.name), zone_list)),
            60,
            what="the worker's positions to reach the newest change",
        )
    finally:
        follower.stop()
        worker.stopping.set()
        worker_thread.join(30)
    # Interleaved: two ids in three never exist (node 3's, and those node 1 and 2 skip past each other).
    assert newest > 1.5 * len(ids)
    assert set(applied.ids) == ids and max(applied.ids.values()) == 1
    assert set(pushed.names) == set(feed.committed) and max(pushed.names.values()) == 1
    assert not feed.rolled_back & set(pushed.names)
    # Ids that never come are re-read ever less often, not at every poll for 30 s (1,500 reads each here).
    assert max(applied.rechecked.values()) <= 40, applied.rechecked.most_common(3)
    assert follower.stats.reloads == 1
    # Each change read about once by the worker (82 times when it read its whole window with each pass).
    assert worker_rows["rows"] < 5 * len(ids), worker_rows


#: Every table with data, parents first.
TABLES = ("users", "zones", "zone_users", "hosts", "records", "changes", "events", "settings", "rfc2136_leases")


def copy_database(source: Database, url: str, *, changes_up_to: int | None = None) -> Database:
    """A copy of ``source`` under ``url``, ids kept, as a replica holds it; ``changes_up_to``: the replica had
    not received the changes after this id (nor the worker's positions past it) when it was promoted."""
    target = support.create_database(url)
    name = source.url.database

    def run(tx: Transaction) -> None:
        tx.execute("SET SESSION foreign_key_checks = 0")
        for table in TABLES:
            where = f" WHERE id <= {int(changes_up_to)}" if table == "changes" and changes_up_to else ""
            tx.execute(f"INSERT INTO {table} SELECT * FROM `{name}`.{table}{where}")
        if changes_up_to:
            tx.execute("UPDATE zones SET rfc2136_position = LEAST(rfc2136_position, ?)", (changes_up_to,))

    target.run(run)
    return target


def wait_for_everything(feed: Feed, applied: Applied, pushed: Pushed, follower: Follower) -> None:
    ids = set(feed.committed.values())
    support.wait_until(
        lambda: ids <= set(applied.ids) | {i for i in ids if i <= applied.loaded_at},
        60,
        what="the follower to apply every change",
    )
    support.wait_until(lambda: set(feed.committed) <= set(pushed.names), 60, what="the worker to push every change")


@pytest.mark.parametrize("lost", [0, 40], ids=["same-data", "lost-tail"])
def test_switch_to_a_promoted_replica(
    lost: int, mysql_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The follower and the worker read the primary, then (a failover) a copy of it with the same ids: every
    change made on either is applied once. When the copy lacks the primary's last changes (asynchronous
    replication) and gives their ids to new changes, those are not taken for changes seen already: the
    follower loads in full, and the worker pushes them."""
    primary = Database(mysql_url)
    zone_list = add_zones(primary)
    follower = Follower(Database(mysql_url), poll_interval=0.02)
    applied = Applied(follower, monkeypatch)
    follower.load()
    worker, pushed = make_worker(Database(mysql_url), tmp_path, monkeypatch)
    worker_thread = threading.Thread(target=worker.run_forever)
    follower.start()
    worker_thread.start()
    feed = Feed()
    replica_url = support.new_database_url("mysql", tmp_path)
    replica: Database | None = None
    try:
        write_all(primary, feed, zone_list, 300, "a")
        wait_for_everything(feed, applied, pushed, follower)
        # The worker writes its positions: stopped while the copy is made, or the copy would lack the last
        # ones (and the worker push those changes again, which is the lost-tail case).
        worker.stopping.set()
        worker_thread.join(30)
        newest = changes.last_id(primary)
        cutoff = newest - lost if lost else None
        replica = copy_database(primary, replica_url, changes_up_to=cutoff)
        before = set(applied.ids)
        follower.db = Database(replica_url)
        worker.db = Database(replica_url)
        worker.stopping.clear()
        worker_thread = threading.Thread(target=worker.run_forever)
        worker_thread.start()
        if cutoff is not None:
            for name, change_id in list(feed.committed.items()):
                if change_id > cutoff:
                    del feed.committed[name]  # lost with the old primary
        pushed_before = collections.Counter(pushed.names)
        compared_before = len(pushed.compared)
        later = Feed()
        write_all(replica, later, zone_list, 300, "b")
        assert min(later.committed.values()) <= newest or not lost  # the lost ids are given again
        wait_for_everything(later, applied, pushed, follower)
        if lost:
            # What the old primary had and lost may still be at the external server: every zone compared.
            support.wait_until(lambda: len(pushed.compared) >= compared_before + len(ZONES), 30, what="comparisons")
    finally:
        follower.stop()
        worker.stopping.set()
        worker_thread.join(30)
        if replica is not None:
            replica.drop_database()
    if lost:
        assert follower.stats.reloads == 2 and "no longer holds change" in caplog.text
        assert sorted(pushed.compared[compared_before:]) == ZONES
    else:
        assert follower.stats.reloads == 1
        # Applied once each, across the switch.
        assert set(applied.ids) == set(feed.committed.values()) | set(later.committed.values())
        assert max(applied.ids.values()) == 1 and before <= set(applied.ids)
        assert len(pushed.compared) == compared_before
    new_pushes = pushed.names - pushed_before
    assert set(later.committed) <= set(new_pushes) and max(pushed.names.values()) == 1


def test_another_server_is_not_followed(mysql_url: str) -> None:
    """A reader that finds another MariaDB server behind the same URL (a failover: its server_id differs)
    loads in full: the old server may have had changes, seen already, that the new one never received."""
    db = Database(mysql_url)
    zone = add_zones(db)[0]
    db.run(lambda tx: changes.record(tx, zone.id, zone.name, f"a.{zone.name}"))
    cursor = changes.FeedCursor.at_newest(db)
    assert cursor.server and cursor.mark == (f"a.{zone.name}", pytest.approx(cursor.mark[1]))  # type: ignore[index]
    rows, cursor = cursor.read(db, 100)
    assert rows == []
    moved = changes.FeedCursor(cursor.high, {}, cursor.mark, str(int(cursor.server or 0) + 1))
    with pytest.raises(changes.FeedDiverged, match="another database server"):
        moved.read(db, 100)
    follower = Follower(db)
    follower.load()
    follower.adopt(follower.index, moved, time.time())  # type: ignore[arg-type]
    follower.poll()
    assert follower.stats.reloads == 2 and follower.cursor.server == cursor.server


def test_a_change_committed_late_across_a_load_is_applied(mysql_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A transaction takes a change id and commits only after hundreds of later ids have (Galera's nodes,
    or one slow writer), and a follower loads in between: the load's position is past the id, which must
    still be awaited, however many ids came after it."""
    db = Database(mysql_url)
    slow_zone, busy_zone = add_zones(db)[:2]
    inserted, release = threading.Event(), threading.Event()
    taken: list[int] = []

    def slow(tx: Transaction) -> None:
        taken.append(changes.record(tx, slow_zone.id, slow_zone.name, f"late.{slow_zone.name}"))
        inserted.set()
        assert release.wait(60)

    writer = threading.Thread(target=db.run, args=(slow,))
    writer.start()
    try:
        assert inserted.wait(30)
        feed = Feed()
        write(db, feed, busy_zone, 1, 400, "busy", 0)
        follower = Follower(Database(mysql_url))
        applied = Applied(follower, monkeypatch)
        follower.load()
        assert follower.cursor.high > taken[0] + 2 * changes.START_WINDOW
    finally:
        release.set()
        writer.join(30)
    support.wait_until(lambda: follower.poll() is not None and taken[0] in applied.ids, 10, what="the late change")
