"""Web sessions of the interface: stored in the database so that several interface nodes share them.

The cookie holds a random token; only its SHA-256 is stored (the row's id), so a copy of the table
does not let anyone log in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ddserver.db import Database, Transaction
from ddserver.secrets import new_token, token_hash
from ddserver.store.common import boolean, now

_COLUMNS = "id, user_id, data, remember, client, created_at, last_seen_at, expires_at"


@dataclass
class Session:
    id: str
    user_id: int
    data: dict[str, Any] = field(default_factory=dict)
    remember: bool = False
    client: str | None = None
    created_at: int = 0
    last_seen_at: int = 0
    expires_at: int = 0

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Session:
        row = dict(row)
        try:
            row["data"] = json.loads(row["data"] or "{}")
        except ValueError:
            row["data"] = {}
        row["remember"] = boolean(row["remember"])
        return cls(**row)


def create(
    db: Database, user_id: int, lifetime: int, *, remember: bool = False, client: str | None = None, data: Any = None
) -> tuple[str, Session]:
    """Start a session for a user.

    :returns: the token for the cookie, and the session.
    """
    token, hashed = new_token()
    stamp = now()
    session = Session(hashed, user_id, dict(data or {}), remember, client, stamp, stamp, stamp + lifetime)

    def run(tx: Transaction) -> None:
        tx.execute(
            "INSERT INTO sessions (id, user_id, data, remember, client, created_at, last_seen_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (hashed, user_id, json.dumps(session.data), int(remember), client, stamp, stamp, session.expires_at),
        )

    db.run(run)
    return token, session


def load(db: Database, token: str) -> Session | None:
    """The live session of a cookie token, or None (unknown or expired)."""
    if not token or len(token) > 200:
        return None
    row = db.read(lambda tx: tx.one(f"SELECT {_COLUMNS} FROM sessions WHERE id = ?", (token_hash(token),)))
    if row is None or row["expires_at"] < now():
        return None
    return Session.from_row(row)


def touch(db: Database, session_id: str, lifetime: int) -> int:
    """Note that the session is in use and push its expiry out (sliding expiry).

    :returns: the new expiry.
    """
    stamp = now()
    expires = stamp + lifetime
    db.run(
        lambda tx: tx.execute(
            "UPDATE sessions SET last_seen_at = ?, expires_at = ? WHERE id = ?", (stamp, expires, session_id)
        )
    )
    return expires


def save_data(db: Database, session_id: str, data: dict[str, Any]) -> None:
    db.run(lambda tx: tx.execute("UPDATE sessions SET data = ? WHERE id = ?", (json.dumps(data), session_id)))


def delete(db: Database, session_id: str) -> None:
    db.run(lambda tx: tx.execute("DELETE FROM sessions WHERE id = ?", (session_id,)))


def delete_for_user(db: Database, user_id: int, *, keep: str | None = None) -> int:
    """End every session of a user (after a password change, say), except ``keep``.

    :returns: how many ended.
    """

    def run(tx: Transaction) -> int:
        if keep is None:
            tx.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
        else:
            tx.execute("DELETE FROM sessions WHERE user_id = ? AND id <> ?", (user_id, keep))
        return tx.rowcount

    return db.run(run)


def count_for_user(db: Database, user_id: int) -> int:
    return int(
        db.read(
            lambda tx: tx.scalar(
                "SELECT COUNT(*) FROM sessions WHERE user_id = ? AND expires_at >= ?", (user_id, now())
            )
        )
    )


def prune(db: Database) -> int:
    """Delete expired sessions."""

    def run(tx: Transaction) -> int:
        tx.execute("DELETE FROM sessions WHERE expires_at < ?", (now(),))
        return tx.rowcount

    return db.run(run)
