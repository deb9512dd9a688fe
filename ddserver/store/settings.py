"""Site-wide settings kept in the database (for values every node must share)."""

from __future__ import annotations

import uuid

from ddserver.db import Database, Transaction

#: Changes whenever a host's secret is replaced: updater processes that keep authenticated hosts in memory
#: forget them when they see it change.
HOST_SECRETS_EPOCH = "host_secrets_epoch"


def get(db: Database, name: str) -> str | None:
    return db.read(lambda tx: tx.scalar("SELECT value FROM settings WHERE name = ?", (name,)))


def put(db: Database, name: str, value: str) -> None:
    db.run(lambda tx: put_tx(tx, name, value))


def put_tx(tx: Transaction, name: str, value: str) -> None:
    tx.execute("DELETE FROM settings WHERE name = ?", (name,))
    tx.execute("INSERT INTO settings (name, value) VALUES (?, ?)", (name, value))


def bump_tx(tx: Transaction, name: str) -> None:
    """Give ``name`` a value it never had (for epochs that readers compare with the one they saw)."""
    put_tx(tx, name, uuid.uuid4().hex)
