"""The RFC 2136 worker's queries: zones it pushes, per-zone leases, its view of the feed and of DNS data."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from ddserver.db import Database, Transaction
from ddserver.store import dnsdata, zones
from ddserver.store.changes import Change
from ddserver.store.dnsdata import HostData, RecordData


@dataclass(frozen=True)
class Lease:
    zone_id: int
    holder: str
    expires_at: float
    full_sync: bool


def pushed_zones(db: Database) -> list[zones.Zone]:
    """The zones served by an external primary (``rfc2136_server`` set), by name."""
    return [zone for zone in zones.list_all(db) if zone.rfc2136_server and zone.served]


def _ensure_row(tx: Transaction, zone_id: int) -> None:
    ignore = "INSERT OR IGNORE" if tx.dialect == "sqlite" else "INSERT IGNORE"
    if tx.scalar("SELECT COUNT(*) FROM zones WHERE id = ?", (zone_id,)):
        tx.execute(f"{ignore} INTO rfc2136_leases (zone_id) VALUES (?)", (zone_id,))


def _lease_tx(tx: Transaction, zone_id: int) -> Lease | None:
    rows = tx.tuples("SELECT zone_id, holder, expires_at, full_sync FROM rfc2136_leases WHERE zone_id = ?", (zone_id,))
    return Lease(int(rows[0][0]), rows[0][1], float(rows[0][2]), bool(rows[0][3])) if rows else None


def acquire(db: Database, zone_id: int, holder: str, seconds: float) -> Lease | None:
    """Take or renew the zone's lease for ``seconds``; None while another holder's lease runs."""

    def run(tx: Transaction) -> Lease | None:
        _ensure_row(tx, zone_id)
        stamp = time.time()
        tx.execute(
            "UPDATE rfc2136_leases SET holder = ?, expires_at = ? WHERE zone_id = ? AND (holder = ? OR expires_at < ?)",
            (holder, stamp + seconds, zone_id, holder, stamp),
        )
        return _lease_tx(tx, zone_id) if tx.rowcount == 1 else None

    return db.run(run)


def take_over(db: Database, zone_id: int, old: str, holder: str, seconds: float) -> Lease | None:
    """Take the zone's lease from ``old`` (a holder known to be gone) for ``seconds``, if ``old`` still holds it."""

    def run(tx: Transaction) -> Lease | None:
        tx.execute(
            "UPDATE rfc2136_leases SET holder = ?, expires_at = ? WHERE zone_id = ? AND holder = ?",
            (holder, time.time() + seconds, zone_id, old),
        )
        return _lease_tx(tx, zone_id) if tx.rowcount == 1 else None

    return db.run(run)


def release(db: Database, zone_id: int, holder: str) -> None:
    """Give the lease up (on a clean stop), so another worker takes the zone at once."""
    db.run(
        lambda tx: tx.execute(
            "UPDATE rfc2136_leases SET expires_at = 0 WHERE zone_id = ? AND holder = ?", (zone_id, holder)
        )
    )


def leases(db: Database) -> dict[int, Lease]:
    """Every zone's lease row, by zone id (one read per pass of the worker)."""
    rows = db.read(lambda tx: tx.tuples("SELECT zone_id, holder, expires_at, full_sync FROM rfc2136_leases"))
    return {int(r[0]): Lease(int(r[0]), r[1], float(r[2]), bool(r[3])) for r in rows}


def get_lease(db: Database, zone_id: int) -> Lease | None:
    return db.read(lambda tx: _lease_tx(tx, zone_id))


def request_full_sync(db: Database, zone_id: int) -> None:
    """Ask the worker holding the zone to compare it in full with the server (AXFR) and fix it."""

    def run(tx: Transaction) -> None:
        _ensure_row(tx, zone_id)
        tx.execute("UPDATE rfc2136_leases SET full_sync = 1 WHERE zone_id = ?", (zone_id,))

    db.run(run)


def clear_full_sync(db: Database, zone_id: int) -> None:
    db.run(lambda tx: tx.execute("UPDATE rfc2136_leases SET full_sync = 0 WHERE zone_id = ?", (zone_id,)))


def feed(db: Database, after_id: int, limit: int) -> tuple[list[Change], int]:
    """Changes above ``after_id`` (every zone, oldest first), and the oldest id still kept (0: none).

    Read together, so a worker sees whether pruning passed its position.
    """

    def run(tx: Transaction) -> tuple[list[Change], int]:
        rows = tx.tuples(
            "SELECT id, zone_id, zone, name, created_at FROM changes WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        oldest = int(tx.scalar("SELECT COALESCE(MIN(id), 0) FROM changes"))
        return [Change(int(r[0]), int(r[1]), r[2], r[3], float(r[4])) for r in rows], oldest

    return db.read(run)


def names_state(db: Database, names: Iterable[str]) -> tuple[list[HostData], list[RecordData]]:
    """The hosts and records in DNS for these owner names, read in one transaction.

    A wildcard name ``*.h.zone`` takes its addresses from the host ``h.zone``, which is read too.
    """
    wanted = set(names)
    wanted |= {name[2:] for name in wanted if name.startswith("*.")}
    ordered = sorted(wanted)
    return db.read(lambda tx: (dnsdata.hosts_named(tx, ordered), dnsdata.records_named(tx, ordered)))


def zone_state(db: Database, zone_id: int) -> tuple[list[HostData], list[RecordData]]:
    """Every host and record in DNS for one zone, read in one transaction."""

    def run(tx: Transaction) -> tuple[list[HostData], list[RecordData]]:
        hosts = [HostData(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in dnsdata.iter_hosts(tx, zone_id)]
        records = [RecordData(*r) for r in dnsdata.iter_records(tx, zone_id)]
        return hosts, records

    return db.read(run)


def zone_position(db: Database, zone_id: int) -> int | None:
    """The zone's stored position in the feed, or None when the zone is gone."""
    value = db.read(lambda tx: tx.scalar("SELECT rfc2136_position FROM zones WHERE id = ?", (zone_id,)))
    return None if value is None else int(value)
