"""Reads the recursor needs beyond store/dnsdata.py: zones as index rows, paged host loads, records by host
(the change feed is read through ``changes.FeedCursor``)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from typing import Any

from ddserver.db import Database, Transaction
from ddserver.store import dnsdata, dnssec
from ddserver.store.dnsdata import ZoneRow

# Only the zones DNS serves (a user's zone is not while it awaits approval or its delegation, or is suspended).
_ZONE_SQL = (
    "SELECT id, name, nameservers, hostmaster, serial, refresh, retry, expire, minimum, zone_ttl, ttl, dnssec, "
    "nsec3param, also_notify FROM zones WHERE served = 1"
)
_KEYS_SQL = "SELECT zone_id, name, algorithm, secret FROM zone_transfer_keys"
_ACTIVE = "h.blocked = 0 AND h.abuse = 0 AND u.is_disabled = 0 AND z.served = 1"
# Hosts alone, in primary key order: with a join to users, MariaDB began at the users table and sorted every
# remaining host for each page (44 s for a million hosts). Hosts of disabled users and of zones not served
# are left out in Python.
_HOST_PAGE_SQL = (
    "SELECT id, name, zone_id, ipv4, ipv6, ttl, wildcard, user_id FROM hosts "
    "WHERE id > ? AND blocked = 0 AND abuse = 0 ORDER BY id LIMIT ?"
)
# MariaDB/MySQL: a page as one row, its hosts joined into one text (a tab between fields, a newline between
# hosts; host names and addresses contain neither), because the pure-Python driver spends far longer
# decoding eight values per host than the server takes to join them.
_HOST_PAGE_TEXT_SQL = (
    "SELECT COUNT(*), MAX(id), GROUP_CONCAT(CONCAT_WS('\t', name, zone_id, IFNULL(ipv4, ''), IFNULL(ipv6, ''), "
    "IFNULL(ttl, ''), wildcard, user_id) SEPARATOR '\n') FROM (" + _HOST_PAGE_SQL + ") AS page"
)
#: Hosts per page of text: at most about 350 bytes each, so a page stays far below MariaDB's default
#: max_allowed_packet (16 MB) and below group_concat_max_len as set here.
TEXT_PAGE = 20000
_RECORDS_SQL = (
    "SELECT h.name, r.name, r.type, r.content, r.ttl FROM records r JOIN hosts h ON h.id = r.host_id "
    f"JOIN users u ON u.id = h.user_id JOIN zones z ON z.id = h.zone_id WHERE {_ACTIVE}"
)


def _zone(row: tuple, keys: dict[int, tuple], transfer: dict[int, list[tuple[str, str, str]]]) -> ZoneRow:
    return ZoneRow(
        row[0], row[1], tuple(row[2].split()), row[3], row[4], row[5], row[6], row[7], row[8], row[9], row[10],
        bool(row[11]), row[12], keys.get(row[0], ()),
        tuple((row[13] or "").split()), tuple(sorted(transfer.get(row[0], ()))),
    )  # fmt: skip


def _transfer_keys(rows: Iterable[tuple]) -> dict[int, list[tuple[str, str, str]]]:
    keys: dict[int, list[tuple[str, str, str]]] = {}
    for zone_id, name, algorithm, secret in rows:
        keys.setdefault(zone_id, []).append((name, algorithm, secret))
    return keys


def zones(tx: Transaction, ids: Iterable[int] | None = None) -> list[ZoneRow]:
    """All zones, or those with the given ids, as index rows (with their DNSSEC and transfer keys, still
    sealed)."""
    if ids is None:
        keys = dnssec.keys_for_zones(tx, None)
        transfer = _transfer_keys(tx.tuples(_KEYS_SQL))
        return [_zone(row, keys, transfer) for row in tx.tuples(_ZONE_SQL)]
    ids = list(ids)
    keys = dnssec.keys_for_zones(tx, ids)
    found: list[ZoneRow] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        transfer = _transfer_keys(tx.tuples(_KEYS_SQL + f" WHERE zone_id IN ({marks})", chunk))
        found.extend(_zone(row, keys, transfer) for row in tx.tuples(_ZONE_SQL + f" AND id IN ({marks})", chunk))
    return found


def iter_all_hosts(db: Database, page: int = 50000) -> Iterator[tuple]:
    """Every host in DNS as ``(name, zone_id, ipv4, ipv6, ttl, wildcard)``, read in pages by id so a
    million hosts never sit in the driver's buffers at once."""
    disabled = set(db.read(disabled_users))
    unserved = set(db.read(unserved_zones))
    if db.dialect == "mysql":
        yield from _iter_host_text(db, disabled, unserved)
        return
    after = 0
    while True:
        rows = db.read(functools.partial(_host_page, params=(after, page)))
        for row in rows:
            if (not disabled or row[7] not in disabled) and (not unserved or row[2] not in unserved):
                yield row[1:7]
        if len(rows) < page:
            return
        after = rows[-1][0]


def _host_page(tx: Transaction, params: tuple[int, int]) -> list[tuple[Any, ...]]:
    return tx.tuples(_HOST_PAGE_SQL, params)


def disabled_users(tx: Transaction) -> list[int]:
    """Ids of the disabled users, whose hosts are out of DNS."""
    return [row[0] for row in tx.tuples("SELECT id FROM users WHERE is_disabled <> 0")]


def unserved_zones(tx: Transaction) -> list[int]:
    """Ids of the zones DNS does not serve, whose hosts are out of DNS."""
    return [row[0] for row in tx.tuples("SELECT id FROM zones WHERE served = 0")]


def _iter_host_text(db: Database, disabled: set[int], unserved: set[int]) -> Iterator[tuple]:
    after = 0
    while True:
        count, high, text = db.read(functools.partial(_host_text_page, after=after))
        if count and (text is None or text.count("\n") != count - 1 or text.count("\t") != 6 * count):
            # Cut short (a smaller group_concat_max_len than asked for?): read this page value by value.
            rows = db.read(functools.partial(_host_page, params=(after, TEXT_PAGE)))
            text = "\n".join("\t".join("" if v is None else str(v) for v in row[1:]) for row in rows)
            count, high = len(rows), (rows[-1][0] if rows else after)
        if count:
            for line in text.split("\n"):  # type: ignore[union-attr]
                name, zone_id, ipv4, ipv6, ttl, wildcard, user = line.split("\t")
                if disabled and int(user) in disabled:
                    continue
                if unserved and int(zone_id) in unserved:
                    continue
                yield name, int(zone_id), ipv4 or None, ipv6 or None, int(ttl) if ttl else None, wildcard == "1"
        if count < TEXT_PAGE:
            return
        after = high


def _host_text_page(tx: Transaction, after: int) -> tuple[int, int, str | None]:
    tx.execute("SET SESSION group_concat_max_len = 67108864")
    count, high, text = tx.tuples(_HOST_PAGE_TEXT_SQL, (after, TEXT_PAGE))[0]
    if isinstance(text, bytes):
        text = text.decode()
    return int(count), int(high or after), text


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
