"""The worker's frontier in the change feed: ids that commit late are waited for, rolled-back ones are not."""

from __future__ import annotations

from ddserver.rfc2136.worker import frontier
from ddserver.store.changes import Change

NOW = 1_000_000.0


def feed(*rows: tuple[int, float]) -> list[Change]:
    return [Change(i, 1, "dyn.example.org", "h.dyn.example.org", at) for i, at in rows]


def test_contiguous_ids_reach_the_newest():
    assert frontier(feed((11, NOW), (12, NOW)), 10, 10.0, NOW) == 12
    assert frontier([], 10, 10.0, NOW) == 10


def test_a_fresh_gap_holds_the_frontier_below_it():
    # 12 is missing and 13 was written a second ago: 12 may still commit.
    assert frontier(feed((11, NOW), (13, NOW - 1)), 10, 10.0, NOW) == 11
    assert frontier(feed((12, NOW)), 10, 10.0, NOW) == 10


def test_an_old_gap_counts_as_rolled_back():
    # 13 was written 30 s ago: a transaction holding 12 would have committed long since.
    assert frontier(feed((11, NOW - 40), (13, NOW - 30), (14, NOW)), 10, 10.0, NOW) == 14
    # A later fresh gap still holds it.
    assert frontier(feed((13, NOW - 30), (16, NOW)), 10, 10.0, NOW) == 13
