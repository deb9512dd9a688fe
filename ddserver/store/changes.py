"""The change feed: every write to DNS data bumps the zone's serial and appends here, in one transaction."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

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


def record_many(tx: Transaction, zone_id: int, zone: str, names: Sequence[str]) -> None:
    """``record`` for several names of one zone in two statements (the updater's group commit): the serial
    goes up by one per name, as that many ``record`` calls would move it, and each name enters the feed."""
    if not names:
        return
    count = len(names)
    stamp = time.time()
    tx.execute(
        "INSERT INTO changes (zone_id, zone, name, created_at) VALUES " + ", ".join(["(?, ?, ?, ?)"] * count),
        [value for name in names for value in (zone_id, zone, name, stamp)],
    )
    # The serial last: its row lock is held until the commit, and every writer to the zone waits for it.
    tx.execute(
        "UPDATE zones SET serial = CASE WHEN serial > ? THEN serial - ? ELSE serial + ? END WHERE id = ?",
        (SERIAL_MAX - count, SERIAL_MAX + 1 - count, count, zone_id),
    )


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
