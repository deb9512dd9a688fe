"""Events: the audit trail of admin and account actions, and the facts that rate limits count."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ddserver.db import Database, Transaction

#: The kinds of events that rate limits count (the interface's failed logins and mail requests), as opposed
#: to audit entries; ``ddserver prune`` keeps them for ``[retention] events_days``, the rest ``audit_days``.
RATE_LIMIT_KINDS = ("login-failure", "mail-request")
#: Seconds over which mail requests are counted ([interface] mail_per_address is per hour).
MAIL_WINDOW = 3600


@dataclass(frozen=True)
class Event:
    id: int
    created_at: float
    kind: str
    subject: str
    actor_id: int | None
    client: str | None
    detail: str


_COLUMNS = "id, created_at, kind, subject, actor_id, client, detail"


def add_tx(
    tx: Transaction,
    kind: str,
    subject: str = "",
    *,
    actor_id: int | None = None,
    client: str | None = None,
    detail: str = "",
) -> None:
    tx.execute(
        "INSERT INTO events (created_at, kind, subject, actor_id, client, detail) VALUES (?, ?, ?, ?, ?, ?)",
        (time.time(), kind, subject[:255], actor_id, client, detail),
    )


def add(
    db: Database,
    kind: str,
    subject: str = "",
    *,
    actor_id: int | None = None,
    client: str | None = None,
    detail: str = "",
) -> None:
    """Record that something happened (never with a secret in ``detail``)."""
    db.run(lambda tx: add_tx(tx, kind, subject, actor_id=actor_id, client=client, detail=detail))


def count(db: Database, kind: str, subject: str, within: float) -> int:
    """How many events of ``kind`` about ``subject`` happened in the last ``within`` seconds."""
    since = time.time() - within
    return int(
        db.read(
            lambda tx: tx.scalar(
                "SELECT COUNT(*) FROM events WHERE kind = ? AND subject = ? AND created_at >= ?",
                (kind, subject, since),
            )
        )
    )


def recent(db: Database, *, kinds: tuple[str, ...] = (), offset: int = 0, limit: int = 100) -> list[Event]:
    """Newest first, optionally only some kinds."""
    where, params = "", []
    if kinds:
        where = " WHERE kind IN (" + ", ".join("?" for _ in kinds) + ")"
        params = list(kinds)
    rows = db.read(
        lambda tx: tx.tuples(
            f"SELECT {_COLUMNS} FROM events{where} ORDER BY id DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
    )
    return [Event(*row) for row in rows]


def prune(db: Database, kind: str, older_than: float) -> int:
    cutoff = time.time() - older_than

    def run(tx: Transaction) -> int:
        tx.execute("DELETE FROM events WHERE kind = ? AND created_at < ?", (kind, cutoff))
        return tx.rowcount

    return db.run(run)
