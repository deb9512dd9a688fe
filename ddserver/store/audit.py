"""The audit view of the interface: account, host and admin events with the acting user's name."""

from __future__ import annotations

from dataclasses import dataclass

from ddserver.db import Database

#: The kind of admin actions' events (kept under a pseudonym when the account they are about is deleted).
ADMIN = "admin"
#: Event kinds the audit view shows (rate-limit facts are events too, but not audit entries).
KINDS = (ADMIN, "account", "host")


@dataclass(frozen=True)
class Entry:
    id: int
    created_at: float
    kind: str
    subject: str
    actor: str | None
    client: str | None
    detail: str


def recent(db: Database, *, offset: int = 0, limit: int = 50) -> list[Entry]:
    """Newest first."""
    marks = ", ".join("?" for _ in KINDS)
    rows = db.read(
        lambda tx: tx.tuples(
            "SELECT e.id, e.created_at, e.kind, e.subject, u.username, e.client, e.detail FROM events e "
            f"LEFT JOIN users u ON u.id = e.actor_id WHERE e.kind IN ({marks}) ORDER BY e.id DESC LIMIT ? OFFSET ?",
            (*KINDS, limit, offset),
        )
    )
    return [Entry(*row) for row in rows]
