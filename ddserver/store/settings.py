"""Site-wide settings kept in the database (for values every node must share)."""

from __future__ import annotations

from ddserver.db import Database, Transaction


def get(db: Database, name: str) -> str | None:
    return db.read(lambda tx: tx.scalar("SELECT value FROM settings WHERE name = ?", (name,)))


def put(db: Database, name: str, value: str) -> None:
    def run(tx: Transaction) -> None:
        tx.execute("DELETE FROM settings WHERE name = ?", (name,))
        tx.execute("INSERT INTO settings (name, value) VALUES (?, ?)", (name, value))

    db.run(run)
