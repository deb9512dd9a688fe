"""Numbered schema migrations from ``sql/<dialect>/NNNN_name.sql``, recorded in ``schema_version``."""

from __future__ import annotations

import functools
import importlib.resources
import logging
import re
import time
from dataclasses import dataclass

from ddserver.db import Database, Transaction
from ddserver.errors import DatabaseError, SchemaError

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        """Split on semicolons that end a line; migrations hold no procedures or string literals with them."""
        body = "\n".join(line for line in self.sql.splitlines() if not line.strip().startswith("--"))
        return [part.strip() for part in re.split(r";\s*$", body, flags=re.M) if part.strip()]


def available(dialect: str) -> list[Migration]:
    """The migrations shipped for a dialect, in order."""
    folder = importlib.resources.files("ddserver") / "sql" / dialect
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    return found


def latest_version(dialect: str) -> int:
    return available(dialect)[-1].version


_CREATE_VERSION_TABLE = {
    "sqlite": (
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "state TEXT NOT NULL, applied_at INTEGER NOT NULL)"
    ),
    "mysql": (
        "CREATE TABLE IF NOT EXISTS schema_version (version INT PRIMARY KEY, name VARCHAR(200) NOT NULL, "
        "state VARCHAR(16) NOT NULL, applied_at BIGINT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    ),
}


def _has_version_table(tx: Transaction) -> bool:
    if tx.dialect == "sqlite":
        sql = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        return bool(tx.scalar(sql))
    sql = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?"
    return bool(tx.scalar(sql, ("schema_version",)))


def applied_versions(db: Database) -> set[int] | None:
    """The completed migrations, or None for a database that was never initialised.

    :raises SchemaError: if a migration was interrupted half-way.
    """

    def read(tx: Transaction) -> set[int] | None:
        if not _has_version_table(tx):
            return None
        rows = tx.all("SELECT version, name, state FROM schema_version ORDER BY version")
        for row in rows:
            if row["state"] != "done":
                raise SchemaError(
                    f"database: migration {row['version']:04d}_{row['name']} was interrupted and is half "
                    "applied; restore the backup taken before 'ddserver migrate', or finish it by hand "
                    "and mark it done in schema_version"
                )
        return {row["version"] for row in rows}

    return db.read(read)


def current_version(db: Database) -> int | None:
    """The highest completed migration (0 if none), or None for a database that was never initialised."""
    applied = applied_versions(db)
    return None if applied is None else max(applied, default=0)


def check_schema(db: Database) -> int:
    """Make sure the database has exactly the schema this code expects, before a component starts.

    :raises SchemaError: with what to do (init, migrate, upgrade ddserver).
    """
    applied = applied_versions(db)
    latest = latest_version(db.dialect)
    if not applied:
        raise SchemaError(f"database: {db.url.describe()} is not initialised; run 'ddserver init'")
    version = max(applied)
    if version > latest:
        raise SchemaError(
            f"database: schema version {version} is newer than this ddserver knows ({latest}); "
            "upgrade ddserver on this machine"
        )
    if applied != {m.version for m in available(db.dialect)}:
        raise SchemaError(
            f"database: schema version {version} lacks migrations this ddserver has; run 'ddserver migrate'"
        )
    return version


def migrate(db: Database) -> list[Migration]:
    """Apply every migration the database lacks; safe to run on every start.

    On SQLite each migration runs in one transaction. MySQL commits each DDL statement by itself, so
    a migration is marked ``running`` before it starts and ``done`` after: an interrupted one is
    reported instead of being applied twice.

    :returns: the migrations applied now.
    :raises SchemaError: when the database is newer than the code or a migration was interrupted.
    """
    db.create_database()
    db.run(lambda tx: tx.execute(_CREATE_VERSION_TABLE[db.dialect]))
    done = applied_versions(db) or set()
    migrations = available(db.dialect)
    latest = migrations[-1].version
    version = max(done, default=0)
    if version > latest:
        raise SchemaError(
            f"database: schema version {version} is newer than this ddserver knows ({latest}); "
            "upgrade ddserver on this machine"
        )
    applied = []
    for migration in migrations:
        # Every migration not yet recorded runs, even one numbered below the newest applied: branches
        # may land out of order.
        if migration.version in done:
            continue
        logger.info("applying migration %04d_%s", migration.version, migration.name)
        try:
            if db.dialect == "sqlite":
                db.run(functools.partial(_apply_sqlite, migration=migration))
            else:
                _apply_mysql(db, migration)
        except DatabaseError as exc:
            raise SchemaError(f"migration {migration.version:04d}_{migration.name} failed: {exc.message}")
        applied.append(migration)
    return applied


def _execute(tx: Transaction, sql: str) -> None:
    tx.execute(sql)


def _apply_sqlite(tx: Transaction, migration: Migration) -> None:
    for statement in migration.statements():
        tx.execute(statement)
    tx.execute(
        "INSERT INTO schema_version (version, name, state, applied_at) VALUES (?, ?, 'done', ?)",
        (migration.version, migration.name, int(time.time())),
    )


def _apply_mysql(db: Database, migration: Migration) -> None:
    db.run(
        lambda tx: tx.execute(
            "INSERT INTO schema_version (version, name, state, applied_at) VALUES (?, ?, 'running', ?)",
            (migration.version, migration.name, int(time.time())),
        )
    )
    for statement in migration.statements():
        db.run(functools.partial(_execute, sql=statement))
    db.run(
        lambda tx: tx.execute(
            "UPDATE schema_version SET state = 'done', applied_at = ? WHERE version = ?",
            (int(time.time()), migration.version),
        )
    )
