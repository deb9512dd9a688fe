"""The change feed: every write to DNS data bumps the zone's serial and appends here, in one transaction."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ddserver.db import Database, Transaction

SERIAL_MAX = 2**32 - 1


@dataclass(frozen=True)
class Change:
    id: int
    zone_id: int
    zone: str
    name: str
    created_at: float


def record(tx: Transaction, zone_id: int, zone: str, name: str) -> int:
    """Bump the zone's SOA serial (RFC 1982: it wraps to 0) and append ``name`` to the feed.

    The UPDATE takes the zone's row lock, so concurrent writers to one zone get distinct serials.

    :returns: the new change's id.
    """
    tx.execute(
        "UPDATE zones SET serial = CASE WHEN serial >= ? THEN 0 ELSE serial + 1 END WHERE id = ?",
        (SERIAL_MAX, zone_id),
    )
    return tx.insert(
        "INSERT INTO changes (zone_id, zone, name, created_at) VALUES (?, ?, ?, ?)",
        (zone_id, zone, name, time.time()),
    )


def record_many_statements(db: Database, zone_id: int, zone: str, names: Sequence[str]) -> list[tuple[str, list]]:
    """``record`` for several names of one zone in two statements (the updater's group commit), to run with
    others (``Transaction.script``): the serial goes up by one per name, as that many ``record`` calls would
    move it, and each name enters the feed. The first statement's rows go to ``change_ids``."""
    if not names:
        return []
    count = len(names)
    stamp = time.time()
    insert = "INSERT INTO changes (zone_id, zone, name, created_at) VALUES " + ", ".join(["(?, ?, ?, ?)"] * count)
    return [
        (
            insert + (" RETURNING id, name" if db.returning else ""),
            [v for n in names for v in (zone_id, zone, n, stamp)],
        ),
        # The serial last: its row lock is held until the commit, and every writer to the zone waits for it.
        (
            "UPDATE zones SET serial = CASE WHEN serial > ? THEN serial - ? ELSE serial + ? END WHERE id = ?",
            [SERIAL_MAX - count, SERIAL_MAX + 1 - count, count, zone_id],
        ),
    ]


def change_ids(rows: Sequence[Sequence[Any]]) -> dict[str, int]:
    """Each name's newest id from the rows of an ``INSERT ... RETURNING id, name`` (none without them)."""
    ids: dict[str, int] = {}
    for change_id, name in rows:
        ids[name] = max(int(change_id), ids.get(name, 0))
    return ids


def record_host(tx: Transaction, zone_id: int, zone: str, host_id: int, host_name: str) -> None:
    """Record a host's name and the owner names of its extra records (``_acme-challenge.host``, say):
    when a host leaves DNS (deleted, blocked, owner disabled), those names leave with it."""
    record(tx, zone_id, zone, host_name)
    for (name,) in tx.tuples("SELECT DISTINCT name FROM records WHERE host_id = ? AND name <> ?", (host_id, host_name)):
        record(tx, zone_id, zone, name)


def since(db: Database, after_id: int, limit: int = 10000) -> list[Change]:
    """Changes with an id above ``after_id``, oldest first."""
    rows = db.read(
        lambda tx: tx.tuples(
            "SELECT id, zone_id, zone, name, created_at FROM changes WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
    )
    return [Change(*row) for row in rows]


def last_id(db: Database) -> int:
    """The newest change's id (0 for an empty feed)."""
    return int(db.read(lambda tx: tx.scalar("SELECT COALESCE(MAX(id), 0) FROM changes")))


def first_id(db: Database) -> int:
    """The oldest change still kept (0 for an empty feed): a follower behind it must reload in full."""
    return int(db.read(lambda tx: tx.scalar("SELECT COALESCE(MIN(id), 0) FROM changes")))


def prune(db: Database, retention: int) -> int:
    """Delete changes older than ``retention`` seconds, always keeping the newest one.

    :returns: how many were deleted.
    """
    cutoff = time.time() - retention

    def run(tx: Transaction) -> int:
        newest = tx.scalar("SELECT COALESCE(MAX(id), 0) FROM changes")
        tx.execute("DELETE FROM changes WHERE created_at < ? AND id < ?", (cutoff, newest))
        return tx.rowcount

    return db.run(run)


# -- reading the feed -------------------------------------------------------------------------------------

#: Ids just below the newest one at start that are re-checked, in case their transaction commits late: at
#: least these, and every id from the oldest change written in the last ``GAP_TIMEOUT`` seconds on, up to
#: ``START_WINDOW_MAX`` (ids commit out of order by time, not by count: a busy Galera cluster or a slow
#: writer may commit an id after hundreds of later ones).
START_WINDOW = 200
START_WINDOW_MAX = 200_000
#: Seconds an id missing from the feed is waited for before it counts as a rolled-back transaction.
GAP_TIMEOUT = 30.0
#: Longest wait between two re-checks of one missing id. A missing id is re-checked after as long as it has
#: been missing (at each poll at first, then ever less often, up to this): a late commit is seen at most as
#: late again as it came, and ids that never come (rolled back, or skipped by Galera's interleaved
#: auto-increments, two of three on a three-node cluster) cost a few reads each rather than one per poll.
GAP_RECHECK_MAX = 2.0


def changes_after(tx: Transaction, after_id: int, limit: int) -> list[Change]:
    """Up to ``limit`` changes with an id above ``after_id``, oldest first."""
    rows = tx.tuples(
        "SELECT id, zone_id, zone, name, created_at FROM changes WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
    )
    return [Change(*row) for row in rows]


def changes_with_ids(tx: Transaction, ids: list[int]) -> list[Change]:
    """The changes among ``ids`` that are visible now (ids that committed late), oldest first."""
    found: list[Change] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        rows = tx.tuples(f"SELECT id, zone_id, zone, name, created_at FROM changes WHERE id IN ({marks})", chunk)
        found.extend(Change(*row) for row in rows)
    return sorted(found, key=lambda c: c.id)


def feed_bounds(tx: Transaction) -> tuple[int, int]:
    """The oldest and newest change ids kept (0, 0 for an empty feed)."""
    row = tx.tuples("SELECT COALESCE(MIN(id), 0), COALESCE(MAX(id), 0) FROM changes")[0]
    return int(row[0]), int(row[1])


def server_identity(tx: Transaction) -> str:
    """Which database server answers (MariaDB's ``server_id``, distinct per server in replication): a reader
    that finds another one may have read changes the new one lacks (a failover that lost them)."""
    if tx.db.dialect != "mysql":
        return ""
    return str(tx.scalar("SELECT @@server_id"))


class FeedPruned(Exception):
    """The feed no longer holds every change after a reader's position: the reader must load in full."""


class FeedDiverged(FeedPruned):
    """The feed is not the one the reader read (another server or database): the reader must load in full."""


Mark = tuple[str, float]


def mark_of(change: Change) -> Mark:
    """What identifies a change beyond its id, which another server may give to another change."""
    return (change.name, float(change.created_at))


@dataclass(frozen=True)
class FeedCursor:
    """A reader's position in the feed: the newest id read, and the lower ids still awaited.

    Ids are taken when a transaction inserts its change and become visible when it commits, so a change can
    appear below ids already read; such gaps are re-checked until they appear or ``GAP_TIMEOUT`` passes
    (a rolled-back transaction leaves a gap for good, and so does every id Galera's interleaved
    auto-increments skip), ever less often as they age (``GAP_RECHECK_MAX``).

    The change at ``high`` is read again with each read: when it is gone or another (the database was
    replaced, or a failover lost it), or another server answers, the reader is told to load in full.
    """

    high: int = 0
    #: Awaited id -> when it was first missed (``time.monotonic``).
    gaps: dict[int, float] = field(default_factory=dict)
    #: The change at ``high`` as read (name, created_at); None: not known (nothing read yet).
    mark: Mark | None = None
    #: The server read from (:func:`server_identity`); None: not known yet.
    server: str | None = None
    #: Awaited id -> when it is re-checked next (``time.monotonic``); missing: at the next read.
    due: dict[int, float] = field(default_factory=dict)

    @classmethod
    def at_newest(cls, db: Database) -> FeedCursor:
        """At the newest change, awaiting the ids just below it whose transactions may still be open."""

        def read(tx: Transaction) -> tuple[str, int, int, set[int], list[Change]]:
            _, newest = feed_bounds(tx)
            recent = tx.scalar("SELECT MIN(id) FROM changes WHERE created_at >= ?", (time.time() - GAP_TIMEOUT,))
            start = min(newest - START_WINDOW, int(recent) - 1 if recent is not None else newest)
            start = max(0, start, newest - START_WINDOW_MAX)
            present = {int(row[0]) for row in tx.tuples("SELECT id FROM changes WHERE id > ?", (start,))}
            return server_identity(tx), newest, start, present, changes_with_ids(tx, [newest])

        server, newest, start, present, last = db.read(read)
        now = time.monotonic()
        gaps = {i: now for i in range(start + 1, newest + 1) if i not in present}
        mark = mark_of(last[0]) if last else None
        return cls(newest, gaps, mark, server)

    @classmethod
    def at(cls, high: int, gaps: Sequence[int], mark: Mark | None = None, server: str | None = None) -> FeedCursor:
        now = time.monotonic()
        return cls(high, {gap: now for gap in gaps}, mark, server)

    def position(self) -> tuple[int, list[int]]:
        """The newest id read and the ids below it still awaited (to save and resume with ``at``)."""
        return self.high, sorted(self.gaps)

    def read(self, db: Database, limit: int) -> tuple[list[Change], FeedCursor]:
        """The changes after this position (up to ``limit``) and the awaited ones that appeared, oldest first,
        with the position after them. The caller moves to it once it has applied them, so a failure in
        between reads them again.

        :raises FeedPruned: the feed was pruned past this position.
        :raises FeedDiverged: the change at this position is gone or another, or another server answers.
        :raises DatabaseError: when the database cannot be read.
        """
        high, mark = self.high, self.mark
        now = time.monotonic()
        gaps = dict(self.gaps)
        due = {i: at for i, at in self.due.items() if i in gaps}
        recheck = sorted(i for i in gaps if due.get(i, 0.0) <= now)
        # The change at ``high`` is read with the others when it is known, to see it is still the same.
        after = high - 1 if mark is not None and high else high

        def read(tx: Transaction) -> tuple[str, list[Change], list[Change]]:
            late = changes_with_ids(tx, recheck) if recheck else []
            return server_identity(tx), changes_after(tx, after, limit + (after < high)), late

        server, rows, late = db.read(read)
        if self.server is not None and server != self.server:
            raise FeedDiverged(f"another database server answers (server_id {self.server}, now {server})")
        if after < high:
            if not rows or rows[0].id != high:
                oldest, _ = db.read(feed_bounds)
                if oldest > high:
                    raise FeedPruned(f"the change feed was pruned past change {high}")
            if not rows or rows[0].id != high or mark_of(rows[0]) != mark:
                raise FeedDiverged(f"the change feed no longer holds change {high} as it was read")
            rows = rows[1:]
        if rows and high and rows[0].id > high + 1:
            oldest, _ = db.read(feed_bounds)
            if oldest > high + 1:
                raise FeedPruned(f"the change feed was pruned past change {high}")
        rows = late + rows
        for change in rows:
            gaps.pop(change.id, None)
            due.pop(change.id, None)
            if change.id > high:
                gaps.update((i, now) for i in range(high + 1, change.id))
                high, mark = change.id, mark_of(change)
        for gap in recheck:
            since = gaps.get(gap)
            if since is None:
                continue
            if now - since > GAP_TIMEOUT:
                del gaps[gap]
                due.pop(gap, None)
            else:
                due[gap] = now + min(GAP_RECHECK_MAX, now - since)
        return rows, FeedCursor(high, gaps, mark, server, due)
