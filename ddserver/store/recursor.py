"""Reads the recursor needs beyond store/dnsdata.py: zones as index rows, paged host loads, records by host,
and a window of the change feed."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ddserver.db import Database, Transaction
from ddserver.dns.zoneindex import ZoneRow
from ddserver.store import dnsdata
from ddserver.store.changes import Change

_ZONE_SQL = (
    "SELECT id, name, nameservers, hostmaster, serial, refresh, retry, expire, minimum, zone_ttl, ttl FROM zones"
)
_ACTIVE = "h.blocked = 0 AND h.abuse = 0 AND u.is_disabled = 0"
_HOST_PAGE_SQL = (
    "SELECT h.id, h.name, h.zone_id, h.ipv4, h.ipv6, h.ttl, h.wildcard FROM hosts h "
    f"JOIN users u ON u.id = h.user_id WHERE {_ACTIVE} AND h.id > ? ORDER BY h.id LIMIT ?"
)
_RECORDS_SQL = (
    "SELECT h.name, r.name, r.type, r.content, r.ttl FROM records r JOIN hosts h ON h.id = r.host_id "
    f"JOIN users u ON u.id = h.user_id WHERE {_ACTIVE}"
)


def _zone(row: tuple) -> ZoneRow:
    return ZoneRow(
        row[0], row[1], tuple(row[2].split()), row[3], row[4], row[5], row[6], row[7], row[8], row[9], row[10]
    )


def zones(tx: Transaction, ids: Iterable[int] | None = None) -> list[ZoneRow]:
    """All zones, or those with the given ids, as index rows."""
    if ids is None:
        return [_zone(row) for row in tx.tuples(_ZONE_SQL)]
    ids = list(ids)
    found: list[ZoneRow] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        found.extend(_zone(row) for row in tx.tuples(_ZONE_SQL + f" WHERE id IN ({marks})", chunk))
    return found


def iter_all_hosts(db: Database, page: int = 50000) -> Iterator[tuple]:
    """Every host in DNS as ``(name, zone_id, ipv4, ipv6, ttl, wildcard)``, read in pages by id so a
    million hosts never sit in the driver's buffers at once."""
    after = 0
    while True:
        params = (after, page)
        rows = db.read(lambda tx, params=params: tx.tuples(_HOST_PAGE_SQL, params))
        for row in rows:
            yield row[1:]
        if len(rows) < page:
            return
        after = rows[-1][0]


def all_records(tx: Transaction) -> list[tuple]:
    """Every extra record in DNS as ``(host name, owner name, type, content, ttl)``."""
    return tx.tuples(_RECORDS_SQL)


def zone_hosts(tx: Transaction, zone_id: int) -> list[tuple]:
    """The hosts of one zone in DNS, as ``(name, zone_id, ipv4, ipv6, ttl, wildcard)``."""
    return list(dnsdata.iter_hosts(tx, zone_id))


def zone_records(tx: Transaction, zone_id: int) -> list[tuple]:
    """The extra records of one zone's hosts, as ``(host name, owner name, type, content, ttl)``."""
    return tx.tuples(_RECORDS_SQL + " AND h.zone_id = ?", (zone_id,))


def hosts_owning(tx: Transaction, owners: Iterable[str]) -> set[str]:
    """Names of the hosts (in DNS or not) that own records at any of ``owners``."""
    owners = list(owners)
    found: set[str] = set()
    for start in range(0, len(owners), 500):
        chunk = owners[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        sql = f"SELECT DISTINCT h.name FROM records r JOIN hosts h ON h.id = r.host_id WHERE r.name IN ({marks})"
        found.update(row[0] for row in tx.tuples(sql, chunk))
    return found


def host_rows(tx: Transaction, names: Iterable[str]) -> tuple[list[tuple], list[tuple]]:
    """The current DNS data of the named hosts: host rows ``(name, zone_id, ipv4, ipv6, ttl, wildcard)``
    and record rows ``(host name, owner name, type, content, ttl)``; a host out of DNS is absent."""
    names = list(names)
    hosts = [(h.name, h.zone_id, h.ipv4, h.ipv6, h.ttl, h.wildcard) for h in dnsdata.hosts_named(tx, names)]
    records: list[tuple] = []
    for start in range(0, len(names), 500):
        chunk = names[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        records.extend(tx.tuples(_RECORDS_SQL + f" AND h.name IN ({marks})", chunk))
    return hosts, records


def changes_after(tx: Transaction, after_id: int, limit: int) -> list[Change]:
    """Up to ``limit`` changes with an id above ``after_id``, oldest first."""
    rows = tx.tuples(
        "SELECT id, zone_id, zone, name, created_at FROM changes WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
    )
    return [Change(*row) for row in rows]


def changes_with_ids(tx: Transaction, ids: list[int]) -> list[Change]:
    """The changes among ``ids`` that are visible now (ids that committed late), oldest first."""
    found: list[Change] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        rows = tx.tuples(f"SELECT id, zone_id, zone, name, created_at FROM changes WHERE id IN ({marks})", chunk)
        found.extend(Change(*row) for row in rows)
    return sorted(found, key=lambda c: c.id)


def feed_bounds(tx: Transaction) -> tuple[int, int]:
    """The oldest and newest change ids kept (0, 0 for an empty feed)."""
    row = tx.tuples("SELECT COALESCE(MIN(id), 0), COALESCE(MAX(id), 0) FROM changes")[0]
    return int(row[0]), int(row[1])
