"""The RFC 2136 worker's window on the feed: read once, then only what is new and the ids still missing; a
missing id is read once more before the frontier passes it; another feed behind the URL is read afresh."""

from __future__ import annotations

import time

import pytest

from ddserver.db import Database, Transaction
from ddserver.rfc2136.worker import FeedWindow
from ddserver.store import changes, zones


def add_change(db: Database, zone: zones.Zone, change_id: int, name: str, age: float = 0.0) -> None:
    """A change with the given id (as a transaction that took it commits), ``age`` seconds old."""
    db.run(
        lambda tx: tx.execute(
            "INSERT INTO changes (id, zone_id, zone, name, created_at) VALUES (?, ?, ?, ?, ?)",
            (change_id, zone.id, zone.name, name, time.time() - age),
        )
    )


def setup(db: Database) -> zones.Zone:
    return zones.add(db, "dyn.example.org", ["ns1.example.org"], "hostmaster.example.org")


def ids(rows: list[changes.Change]) -> list[int]:
    return [c.id for c in rows]


def test_only_new_changes_are_read_again(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    zone = setup(db)
    base = changes.last_id(db)
    add_change(db, zone, base + 1, "a.dyn.example.org")
    window = FeedWindow()
    rows, _, edge = window.read(db, base, 100, 10.0)
    assert ids(rows) == [base + 1] and edge == base + 1
    add_change(db, zone, base + 2, "b.dyn.example.org")
    read: list[int] = []
    after = changes.changes_after

    def counted(tx: Transaction, after_id: int, limit: int) -> list[changes.Change]:
        found = after(tx, after_id, limit)
        read.extend(c.id for c in found)
        return found

    monkeypatch.setattr(changes, "changes_after", counted)
    rows, _, edge = window.read(db, base + 1, 100, 10.0)
    assert ids(rows) == [base + 2] and edge == base + 2
    assert read == [base + 1, base + 2]  # the change at the position (still the same?) and the new one


def test_a_missing_id_is_read_again_before_the_frontier_passes_it(db: Database) -> None:
    zone = setup(db)
    base = changes.last_id(db)
    add_change(db, zone, base + 1, "a.dyn.example.org", age=60)
    add_change(db, zone, base + 3, "c.dyn.example.org")  # base + 2: a transaction still open
    window = FeedWindow()
    rows, _, edge = window.read(db, base, 100, 10.0)
    assert ids(rows) == [base + 1, base + 3] and edge == base + 1  # c is young: base + 2 is waited for
    # base + 2 commits, but is not due to be re-read for long; meanwhile c grows old.
    add_change(db, zone, base + 2, "b.dyn.example.org", age=30)
    window.cursor.due[base + 2] = time.monotonic() + 3600
    rows, _, edge = window.read(db, base, 100, 0.0)  # gap_timeout 0: the frontier would pass base + 2
    assert ids(rows) == [base + 1, base + 2, base + 3] and edge == base + 3


def test_another_feed_is_read_afresh(db: Database) -> None:
    zone = setup(db)
    base = changes.last_id(db)
    add_change(db, zone, base + 1, "a.dyn.example.org")
    add_change(db, zone, base + 2, "b.dyn.example.org")
    window = FeedWindow()
    rows, _, _ = window.read(db, base, 100, 10.0)
    assert ids(rows) == [base + 1, base + 2]
    # A failover lost change base + 2; the new primary gives its id to another change.
    db.run(lambda tx: tx.execute("DELETE FROM changes WHERE id = ?", (base + 2,)))
    add_change(db, zone, base + 2, "other.dyn.example.org")
    rows, _, _ = window.read(db, base, 100, 10.0)
    assert [c.name for c in rows] == ["a.dyn.example.org", "other.dyn.example.org"]
