"""Extra records of a host (TXT, for ACME DNS-01 challenges and the like)."""

from __future__ import annotations

from dataclasses import dataclass

from ddserver.db import Database, Transaction
from ddserver.errors import NotFound
from ddserver.store import changes
from ddserver.store.common import now


@dataclass(frozen=True)
class Record:
    id: int
    host_id: int
    zone_id: int
    name: str
    type: str
    content: str
    ttl: int | None
    created_at: int


_COLUMNS = "id, host_id, zone_id, name, type, content, ttl, created_at"


def _host_zone(tx: Transaction, host_id: int) -> tuple[int, str]:
    row = tx.one("SELECT z.id, z.name FROM hosts h JOIN zones z ON z.id = h.zone_id WHERE h.id = ?", (host_id,))
    if row is None:
        raise NotFound(f"no host {host_id}")
    return row["id"], row["name"]


def add(db: Database, host_id: int, name: str, rtype: str, content: str, ttl: int | None = None) -> Record:
    """Add a record at ``name`` (the host's name or a name below it) and put it in the feed."""

    def run(tx: Transaction) -> Record:
        zone_id, zone = _host_zone(tx, host_id)
        record_id = tx.insert(
            "INSERT INTO records (host_id, zone_id, name, type, content, ttl, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (host_id, zone_id, name, rtype, content, ttl, now()),
        )
        changes.record(tx, zone_id, zone, name)
        return Record(record_id, host_id, zone_id, name, rtype, content, ttl, now())

    return db.run(run)


def for_host(db: Database, host_id: int) -> list[Record]:
    rows = db.read(
        lambda tx: tx.tuples(f"SELECT {_COLUMNS} FROM records WHERE host_id = ? ORDER BY name, id", (host_id,))
    )
    return [Record(*row) for row in rows]


def delete(
    db: Database,
    host_id: int,
    *,
    name: str | None = None,
    rtype: str | None = None,
    content: str | None = None,
    record_id: int | None = None,
) -> int:
    """Delete the host's records matching every given filter; each name touched enters the feed.

    :returns: how many were deleted.
    """
    conditions: list[str] = ["host_id = ?"]
    params: list[object] = [host_id]
    for column, value in (("name", name), ("type", rtype), ("content", content), ("id", record_id)):
        if value is not None:
            conditions.append(f"{column} = ?")
            params.append(value)
    where = " AND ".join(conditions)

    def run(tx: Transaction) -> int:
        zone_id, zone = _host_zone(tx, host_id)
        names = sorted({r[0] for r in tx.tuples(f"SELECT name FROM records WHERE {where}", params)})
        tx.execute(f"DELETE FROM records WHERE {where}", params)
        deleted = tx.rowcount
        for changed in names:
            changes.record(tx, zone_id, zone, changed)
        return deleted

    return db.run(run)
