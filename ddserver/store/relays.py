"""Relays of a host to third-party dyndns2 services, and their outbox: what is pending, leases, last results.

A host's address change bumps the ``generation`` of its relays in the same transaction (``changed_statements``,
``mark_changed_tx``); a relay whose ``sent_generation`` is behind is pending, and a worker that claimed it
(a lease on the row, as the RFC 2136 worker's per zone) sends the host's addresses as they are then, so only
the latest state is sent. The secret stays sealed here; only the worker opens it, to send it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ddserver.db import Database, Transaction
from ddserver.errors import LimitReached, NotFound
from ddserver.store.common import for_update, now

_COLUMNS = (
    "r.id, r.host_id, h.name, r.url, r.remote_name, r.username, r.family, r.created_at, r.generation, "
    "r.sent_generation, r.stopped, r.attempts, r.due_at, r.last_at, r.last_result, r.last_detail, r.last_sent"
)
_FROM = " FROM host_relays r JOIN hosts h ON h.id = r.host_id"


@dataclass(frozen=True, slots=True)
class Relay:
    """A relay as its owner sees it (never the secret)."""

    id: int
    host_id: int
    host_name: str
    url: str
    remote_name: str
    username: str
    family: str
    created_at: int
    generation: int
    sent_generation: int
    stopped: bool
    attempts: int
    #: When it may be tried next (None: nothing to send).
    due_at: float | None
    last_at: int | None
    last_result: str | None
    last_detail: str | None
    last_sent: str | None

    @property
    def pending(self) -> bool:
        """A change waits to be sent (and will be: the relay is not stopped)."""
        return self.generation > self.sent_generation and not self.stopped

    @classmethod
    def from_tuple(cls, row: Sequence[Any]) -> Relay:
        return cls(
            int(row[0]), int(row[1]), row[2], row[3], row[4], row[5], row[6], int(row[7]), int(row[8]),
            int(row[9]), bool(row[10]), int(row[11]), None if row[12] is None else float(row[12]), row[13], row[14],
            row[15], row[16],
        )  # fmt: skip


def secret_context(host_id: int) -> str:
    """The sealing context of a relay's secret: it opens only in a relay of the same host."""
    return f"relay:host:{host_id}"


def for_host(db: Database, host_id: int) -> list[Relay]:
    rows = db.read(lambda tx: tx.tuples(f"SELECT {_COLUMNS}{_FROM} WHERE r.host_id = ? ORDER BY r.id", (host_id,)))
    return [Relay.from_tuple(r) for r in rows]


def get(db: Database, relay_id: int) -> Relay:
    """:raises NotFound: no such relay."""
    rows = db.read(lambda tx: tx.tuples(f"SELECT {_COLUMNS}{_FROM} WHERE r.id = ?", (relay_id,)))
    if not rows:
        raise NotFound(f"no relay {relay_id}")
    return Relay.from_tuple(rows[0])


def add(
    db: Database,
    host_id: int,
    *,
    url: str,
    remote_name: str,
    username: str,
    sealed_secret: str,
    family: str,
    limit: int,
) -> Relay:
    """Add a relay (pending at once: the host's current addresses are sent).

    :raises LimitReached: the host has ``limit`` relays already.
    :raises NotFound: the host is gone.
    """

    def run(tx: Transaction) -> int:
        # The host's row lock serialises two adds racing for the last place.
        if tx.one(f"SELECT id FROM hosts WHERE id = ?{for_update(tx)}", (host_id,)) is None:
            raise NotFound(f"no host {host_id}")
        count = int(tx.scalar("SELECT COUNT(*) FROM host_relays WHERE host_id = ?", (host_id,)))
        if count >= limit:
            raise LimitReached(f"a host may have at most {limit} relays")
        return tx.insert(
            "INSERT INTO host_relays (host_id, url, remote_name, username, secret, family, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (host_id, url, remote_name, username, sealed_secret, family, now()),
        )

    return get(db, db.run(run))


def edit(
    db: Database,
    relay_id: int,
    *,
    url: str,
    remote_name: str,
    username: str,
    family: str,
    sealed_secret: str | None = None,
) -> Relay:
    """Change a relay (``sealed_secret`` None keeps the secret); it is pending again and no longer stopped, so
    the current addresses are sent with the new settings at once.

    :raises NotFound: the relay is gone.
    """
    assignments = "url = ?, remote_name = ?, username = ?, family = ?"
    params: list[Any] = [url, remote_name, username, family]
    if sealed_secret is not None:
        assignments += ", secret = ?"
        params.append(sealed_secret)

    def run(tx: Transaction) -> None:
        tx.execute(
            f"UPDATE host_relays SET {assignments}, generation = generation + 1, stopped = 0, attempts = 0, "
            "due_at = 0 WHERE id = ?",
            (*params, relay_id),
        )
        if tx.rowcount != 1:
            raise NotFound(f"no relay {relay_id}")

    db.run(run)
    return get(db, relay_id)


def remove(db: Database, relay_id: int) -> None:
    """:raises NotFound: the relay is gone."""

    def run(tx: Transaction) -> None:
        tx.execute("DELETE FROM host_relays WHERE id = ?", (relay_id,))
        if tx.rowcount != 1:
            raise NotFound(f"no relay {relay_id}")

    db.run(run)


# -- the outbox ---------------------------------------------------------------------------------------


def changed_statements(host_ids: Sequence[int]) -> list[tuple[str, list[Any]]]:
    """The statement that makes these hosts' relays pending, to run in the transaction that changed their
    addresses (``Transaction.script`` with the group commit's other statements)."""
    if not host_ids:
        return []
    ids = sorted(set(host_ids))
    marks = ", ".join("?" for _ in ids)
    # A relay that waits for a retry keeps its wait (a change does not hasten the next try); a stopped one stays
    # without a due time.
    return [
        (
            "UPDATE host_relays SET generation = generation + 1, due_at = CASE WHEN stopped = 1 THEN NULL "
            f"ELSE COALESCE(due_at, 0) END WHERE host_id IN ({marks})",
            ids,
        )
    ]


def mark_changed_tx(tx: Transaction, host_id: int) -> None:
    """Make the host's relays pending, in the transaction that changed its addresses."""
    for sql, params in changed_statements([host_id]):
        tx.execute(sql, params)


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed relay: what to send, and the generation it stands for."""

    id: int
    host_id: int
    url: str
    remote_name: str
    username: str
    sealed_secret: str
    family: str
    generation: int
    attempts: int
    ipv4: str | None
    ipv6: str | None


def due(db: Database, limit: int) -> list[int]:
    """Relays that are pending, due and not held by a live lease, the longest waiting first."""
    stamp = time.time()
    rows = db.read(
        lambda tx: tx.tuples(
            "SELECT id FROM host_relays WHERE due_at IS NOT NULL AND due_at <= ? AND generation > sent_generation "
            "AND stopped = 0 AND lease_until < ? ORDER BY due_at, id LIMIT ?",
            (stamp, stamp, limit),
        )
    )
    return [int(r[0]) for r in rows]


def claim(db: Database, relay_id: int, holder: str, seconds: float) -> Job | None:
    """Take the relay's lease for ``seconds`` and read what to send; None when another holder has it or it
    is no longer pending."""

    def run(tx: Transaction) -> Job | None:
        stamp = time.time()
        tx.execute(
            "UPDATE host_relays SET holder = ?, lease_until = ? WHERE id = ? AND lease_until < ? "
            "AND generation > sent_generation AND stopped = 0 AND due_at <= ?",
            (holder, stamp + seconds, relay_id, stamp, stamp),
        )
        if tx.rowcount != 1:
            return None
        row = tx.tuples(
            "SELECT r.id, r.host_id, r.url, r.remote_name, r.username, r.secret, r.family, r.generation, "
            "r.attempts, h.ipv4, h.ipv6 FROM host_relays r JOIN hosts h ON h.id = r.host_id WHERE r.id = ?",
            (relay_id,),
        )[0]
        return Job(
            int(row[0]), int(row[1]), row[2], row[3], row[4], row[5], row[6], int(row[7]), int(row[8]), row[9], row[10]
        )

    return db.run(run)


def finish(
    db: Database,
    job: Job,
    holder: str,
    *,
    done: bool,
    stop: bool = False,
    retry_in: float = 0.0,
    result: str | None = None,
    detail: str | None = None,
    sent: str | None = None,
) -> bool:
    """File what the try of ``job`` gave and give the lease up.

    :param done: the third party has the addresses of ``job.generation`` (or there was nothing to send).
    :param stop: no more tries until the relay is edited (unless it was edited during the try).
    :param retry_in: seconds before the next try of a failure.
    :param result: the code to show (None: keep the last one shown, for a try that sent nothing).
    :returns: False when the lease was lost meanwhile (another worker took the relay): nothing was filed.
    """
    stamp = time.time()
    assignments = ["holder = ''", "lease_until = 0"]
    params: list[Any] = []
    if done:
        # A change during the try is due at once; else nothing is left to send.
        assignments += ["sent_generation = CASE WHEN sent_generation < ? THEN ? ELSE sent_generation END"]
        assignments += ["attempts = 0", "due_at = CASE WHEN generation > ? THEN 0 ELSE NULL END"]
        params += [job.generation, job.generation, job.generation]
    elif stop:
        # An edit during the try bumped the generation and set it due: its new settings are tried, not stopped.
        assignments += [
            "attempts = attempts + 1",
            "stopped = CASE WHEN generation = ? THEN 1 ELSE stopped END",
            "due_at = CASE WHEN generation = ? THEN NULL ELSE due_at END",
        ]
        params += [job.generation, job.generation]
    else:
        assignments += ["attempts = attempts + 1", "due_at = ?"]
        params += [stamp + retry_in]
    if result is not None:
        assignments += ["last_at = ?", "last_result = ?", "last_detail = ?", "last_sent = ?"]
        params += [int(stamp), result[:32], (detail or "")[:255] or None, sent]

    def run(tx: Transaction) -> bool:
        tx.execute(
            f"UPDATE host_relays SET {', '.join(assignments)} WHERE id = ? AND holder = ?",
            (*params, job.id, holder),
        )
        return tx.rowcount == 1

    return db.run(run)


def release_all(db: Database, holder: str) -> None:
    """Give up every lease of ``holder`` (on a clean stop), so another worker takes those relays at once."""
    db.run(lambda tx: tx.execute("UPDATE host_relays SET lease_until = 0, holder = '' WHERE holder = ?", (holder,)))
