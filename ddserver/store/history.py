"""Each host's recent updates and the failed logins against its name, for its owner's page; kept to the last
few per host by ``prune``. Never a secret: the rows say what was answered, to whom and why."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ddserver.db import Database, Transaction

#: Why a login against a host failed (``host_auth_failures.reason``).
WRONG_SECRET = "wrong-secret"
#: A wrong secret, after which the client's address was at its failure limit: its further failures are
#: answered ``abuse`` and neither counted nor recorded until the window has passed.
CLIENT_LIMIT = "client-limit"
#: A weak (imported) secret that was not checked: its failures reached their limit and the client is not
#: the address of the host's last update.
WEAK_GUARD = "weak-guard"

#: The fault of a bad request (``notfqdn``, ``nohost``, ``badagent``) in a host's history; those of updates
#: are the updater's (``too-soon``, ``nochg-flood``).
BAD_REQUEST = "bad-request"

UPDATES = "host_updates"
AUTH_FAILURES = "host_auth_failures"

_UPDATE_COLUMNS = "host_id, created_at, client, tls, result, ipv4, ipv6, fault"
#: Rows per INSERT of the group commit (8 parameters each: under SQLite's oldest parameter limit).
_INSERT_CHUNK = 100
#: Hosts whose old rows one transaction of ``prune`` deletes.
_PRUNE_CHUNK = 500


@dataclass(frozen=True, slots=True)
class UpdateEntry:
    """One update of a host as its page shows it."""

    created_at: int
    client: str | None
    tls: bool
    #: The answer (``good``, ``nochg``, ``badagent``...; ``web`` for the interface's address form).
    result: str
    ipv4: str | None
    ipv6: str | None
    #: The client fault the update counted as (``too-soon``, ``nochg-flood``, ``bad-request``), if any.
    fault: str | None


@dataclass(frozen=True, slots=True)
class AuthFailure:
    """One failed login against a host's name."""

    created_at: int
    client: str | None
    tls: bool
    reason: str


def update_row(
    host_id: int,
    stamp: int,
    *,
    client: str | None,
    tls: bool,
    result: str,
    ipv4: str | None,
    ipv6: str | None,
    fault: str | None = None,
) -> tuple[Any, ...]:
    """A row for ``updates_statements``."""
    return (host_id, stamp, client, int(tls), result, ipv4, ipv6, fault)


def updates_statements(rows: Sequence[tuple[Any, ...]]) -> list[tuple[str, list[Any]]]:
    """Insert the rows of ``update_row`` (hosts the transaction holds locked: they exist), to run with the
    group commit's other statements (``Transaction.script``)."""
    statements: list[tuple[str, list[Any]]] = []
    for start in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[start : start + _INSERT_CHUNK]
        marks = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
        statements.append((f"INSERT INTO {UPDATES} ({_UPDATE_COLUMNS}) VALUES {marks}", [v for r in chunk for v in r]))
    return statements


def add_update_tx(tx: Transaction, row: tuple[Any, ...]) -> None:
    """Insert one row of ``update_row``, unless its host is gone (an insert from a select of it)."""
    tx.execute(
        f"INSERT INTO {UPDATES} ({_UPDATE_COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ?, ? FROM hosts WHERE id = ?",
        (*row, row[0]),
    )


def add_auth_failures_tx(
    tx: Transaction, host_ids: Iterable[int], stamp: int, *, client: str | None, tls: bool, reason: str, keep: int
) -> None:
    """Record a failed login against each host (those still there), and trim a trail that reached twice
    ``keep`` rows back to ``keep``, so that a flood of failures does not wait for ``prune`` to be bounded."""
    for host_id in sorted(set(host_ids)):
        tx.execute(
            f"INSERT INTO {AUTH_FAILURES} (host_id, created_at, client, tls, reason) "
            "SELECT ?, ?, ?, ?, ? FROM hosts WHERE id = ?",
            (host_id, stamp, client, int(tls), reason, host_id),
        )
        # A count on the host's index (at most 2 * keep rows): the trail never holds more than that.
        if tx.scalar(f"SELECT COUNT(*) FROM {AUTH_FAILURES} WHERE host_id = ?", (host_id,)) >= 2 * max(keep, 1):
            _trim(tx, AUTH_FAILURES, host_id, keep)


def _trim(tx: Transaction, table: str, host_id: int, keep: int) -> int:
    """Delete a host's rows but the newest ``keep``. The derived table is what lets MySQL read the table a
    DELETE writes."""
    if keep <= 0:
        tx.execute(f"DELETE FROM {table} WHERE host_id = ?", (host_id,))
    else:
        tx.execute(
            f"DELETE FROM {table} WHERE host_id = ? AND id < (SELECT id FROM (SELECT id FROM {table} "
            "WHERE host_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?) AS newest)",
            (host_id, host_id, keep - 1),
        )
    return tx.rowcount


def recent_updates(db: Database, host_id: int, limit: int) -> list[UpdateEntry]:
    """A host's last ``limit`` updates, newest first."""
    rows = db.read(
        lambda tx: tx.tuples(
            f"SELECT created_at, client, tls, result, ipv4, ipv6, fault FROM {UPDATES} WHERE host_id = ? "
            "ORDER BY id DESC LIMIT ?",
            (host_id, max(0, limit)),
        )
    )
    return [UpdateEntry(int(r[0]), r[1], bool(r[2]), r[3], r[4], r[5], r[6]) for r in rows]


def recent_auth_failures(db: Database, host_id: int, limit: int) -> list[AuthFailure]:
    """The last ``limit`` failed logins against a host, newest first."""
    rows = db.read(
        lambda tx: tx.tuples(
            f"SELECT created_at, client, tls, reason FROM {AUTH_FAILURES} WHERE host_id = ? ORDER BY id DESC LIMIT ?",
            (host_id, max(0, limit)),
        )
    )
    return [AuthFailure(int(r[0]), r[1], bool(r[2]), r[3]) for r in rows]


def prune(db: Database, *, updates_kept: int, failures_kept: int) -> tuple[int, int]:
    """Keep the last ``updates_kept`` updates and ``failures_kept`` failed logins of each host.

    :returns: how many updates and failed logins were deleted.
    """
    return _prune_table(db, UPDATES, updates_kept), _prune_table(db, AUTH_FAILURES, failures_kept)


def _prune_table(db: Database, table: str, keep: int) -> int:
    if keep <= 0:
        return int(db.run(lambda tx: tx.execute(f"DELETE FROM {table}").rowcount))
    # Per host with more than ``keep`` rows, its newest row to delete: one scan, then deletes along the
    # (host_id, id) index in transactions of a few hundred hosts each.
    last = db.read(
        lambda tx: tx.tuples(
            f"SELECT host_id, id FROM (SELECT host_id, id, ROW_NUMBER() OVER (PARTITION BY host_id ORDER BY id DESC) "
            f"AS n FROM {table}) AS ranked WHERE n = ?",
            (keep + 1,),
        )
    )

    def delete(tx: Transaction, chunk: Sequence[tuple[Any, ...]]) -> int:
        removed = 0
        for host_id, row_id in chunk:
            removed += tx.execute(f"DELETE FROM {table} WHERE host_id = ? AND id <= ?", (host_id, row_id)).rowcount
        return removed

    removed = 0
    for start in range(0, len(last), _PRUNE_CHUNK):
        chunk = last[start : start + _PRUNE_CHUNK]
        removed += db.run(lambda tx, chunk=chunk: delete(tx, chunk))  # type: ignore[misc]
    return removed
