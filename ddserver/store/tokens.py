"""Tokens for activation, password reset, e-mail confirmation and API access: stored hashed, with expiry."""

from __future__ import annotations

from dataclasses import dataclass

from ddserver.db import Database, Transaction
from ddserver.secrets import expiry, new_token, token_hash
from ddserver.store.common import for_update, now


@dataclass(frozen=True)
class Token:
    id: int
    kind: str
    user_id: int | None
    payload: str | None
    created_at: int
    expires_at: int | None
    used_at: int | None


_COLUMNS = "id, kind, user_id, payload, created_at, expires_at, used_at"


def create(
    db: Database,
    kind: str,
    user_id: int | None,
    lifetime: int | None,
    payload: str | None = None,
    *,
    replace: bool = False,
) -> str:
    """Make a token; only its hash is stored. ``replace`` drops the user's other tokens of that kind.

    :param lifetime: seconds until it expires, or None for a token that does not (API tokens).
    :returns: the token itself, to be given to the person once.
    """
    token, hashed = new_token()

    def run(tx: Transaction) -> None:
        if replace and user_id is not None:
            tx.execute("DELETE FROM tokens WHERE user_id = ? AND kind = ?", (user_id, kind))
        tx.execute(
            "INSERT INTO tokens (token_hash, kind, user_id, payload, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (hashed, kind, user_id, payload, now(), None if lifetime is None else expiry(lifetime)),
        )

    db.run(run)
    return token


def _valid(tx: Transaction, kind: str, token: str, lock: bool) -> Token | None:
    row = tx.one(
        f"SELECT {_COLUMNS} FROM tokens WHERE token_hash = ? AND kind = ?{for_update(tx) if lock else ''}",
        (token_hash(token), kind),
    )
    if row is None or row["used_at"] is not None:
        return None
    if row["expires_at"] is not None and row["expires_at"] < now():
        return None
    return Token(**row)


def check(db: Database, kind: str, token: str) -> Token | None:
    """The token if it is of this kind, unused and unexpired (reusable tokens, such as API tokens)."""
    return db.read(lambda tx: _valid(tx, kind, token, lock=False))


def consume(db: Database, kind: str, token: str) -> Token | None:
    """Like ``check``, and mark it used: a single-use token works once, even under concurrent requests."""

    def run(tx: Transaction) -> Token | None:
        found = _valid(tx, kind, token, lock=True)
        if found is not None:
            tx.execute("UPDATE tokens SET used_at = ? WHERE id = ? AND used_at IS NULL", (now(), found.id))
            if tx.rowcount != 1:
                return None
        return found

    return db.run(run)


def for_user(db: Database, user_id: int, kind: str) -> list[Token]:
    rows = db.read(
        lambda tx: tx.all(f"SELECT {_COLUMNS} FROM tokens WHERE user_id = ? AND kind = ? ORDER BY id", (user_id, kind))
    )
    return [Token(**row) for row in rows]


def delete_for_user(db: Database, user_id: int, kind: str) -> None:
    db.run(lambda tx: tx.execute("DELETE FROM tokens WHERE user_id = ? AND kind = ?", (user_id, kind)))


def prune(db: Database) -> int:
    """Delete expired and used tokens."""

    def run(tx: Transaction) -> int:
        tx.execute(
            "DELETE FROM tokens WHERE used_at IS NOT NULL OR (expires_at IS NOT NULL AND expires_at < ?)",
            (now(),),
        )
        return tx.rowcount

    return db.run(run)
