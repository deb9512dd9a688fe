"""DNSSEC state of zones: whether each is signed, its NSEC3 parameters, and its keys (private keys sealed).

Every change here changes the zone's DNSKEY set or its denial of existence, so it enters the change feed as
a change of the zone itself: followers reload the zone's row with its keys and purge the zone from
PowerDNS's caches, and the serial moves so that secondaries transfer the zone again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ddserver.db import Database, Transaction
from ddserver.errors import NotFound
from ddserver.store import changes
from ddserver.store.common import boolean, now

_KEY_COLUMNS = "id, zone_id, flags, algorithm, tag, active, published, public_key, private_key, created_at"


@dataclass(frozen=True)
class ZoneKey:
    id: int
    zone_id: int
    flags: int
    algorithm: int
    tag: int
    active: bool
    published: bool
    public_key: str
    #: Sealed (``sealing``): never printed.
    private_key: str = field(repr=False)
    created_at: int

    @property
    def role(self) -> str:
        return "KSK" if self.flags == 257 else "ZSK"


def _key(row: tuple) -> ZoneKey:
    return ZoneKey(
        int(row[0]), int(row[1]), int(row[2]), int(row[3]), int(row[4]), boolean(row[5]), boolean(row[6]),
        row[7], row[8], int(row[9]),
    )  # fmt: skip


def _zone(tx: Transaction, name: str) -> tuple[int, bool, str]:
    row = tx.tuples("SELECT id, dnssec, nsec3param FROM zones WHERE name = ?", (name,))
    if not row:
        raise NotFound(f"no zone {name}")
    return int(row[0][0]), boolean(row[0][1]), str(row[0][2])


def state(db: Database, zone: str) -> tuple[bool, str, list[ZoneKey]]:
    """Whether the zone is signed, its NSEC3PARAM, and its keys (oldest first).

    :raises NotFound: if there is no such zone.
    """

    def read(tx: Transaction) -> tuple[bool, str, list[ZoneKey]]:
        zone_id, on, nsec3param = _zone(tx, zone)
        return on, nsec3param, keys_tx(tx, zone_id)

    return db.read(read)


def keys_tx(tx: Transaction, zone_id: int) -> list[ZoneKey]:
    return [
        _key(r) for r in tx.tuples(f"SELECT {_KEY_COLUMNS} FROM zone_keys WHERE zone_id = ? ORDER BY id", (zone_id,))
    ]


@dataclass(frozen=True)
class KeyToAdd:
    flags: int
    algorithm: int
    tag: int
    public_key: str
    sealed_private_key: str = field(repr=False)
    active: bool = True
    published: bool = True


_INSERT_KEY = (
    "INSERT INTO zone_keys (zone_id, flags, algorithm, tag, active, published, public_key, private_key, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _add_keys(tx: Transaction, zone_id: int, keys: Iterable[KeyToAdd]) -> list[int]:
    ids = []
    for key in keys:
        values = (zone_id, key.flags, key.algorithm, key.tag, int(key.active), int(key.published), key.public_key)
        ids.append(tx.insert(_INSERT_KEY, (*values, key.sealed_private_key, now())))
    return ids


def enable(db: Database, zone: str, keys: list[KeyToAdd], nsec3param: str) -> list[ZoneKey]:
    """Sign the zone: store its keys (when it has none yet) and turn DNSSEC on, in one transaction.

    :returns: the zone's keys.
    """

    def run(tx: Transaction) -> list[ZoneKey]:
        zone_id, _, _ = _zone(tx, zone)
        if not keys_tx(tx, zone_id):
            _add_keys(tx, zone_id, keys)
        tx.execute("UPDATE zones SET dnssec = 1, nsec3param = ? WHERE id = ?", (nsec3param, zone_id))
        changes.record(tx, zone_id, zone, zone)
        return keys_tx(tx, zone_id)

    return db.run(run)


def disable(db: Database, zone: str) -> int:
    """Stop signing the zone and delete its keys.

    :returns: the number of keys deleted.
    """

    def run(tx: Transaction) -> int:
        zone_id, _, _ = _zone(tx, zone)
        count = len(keys_tx(tx, zone_id))
        tx.execute("DELETE FROM zone_keys WHERE zone_id = ?", (zone_id,))
        tx.execute("UPDATE zones SET dnssec = 0 WHERE id = ?", (zone_id,))
        changes.record(tx, zone_id, zone, zone)
        return count

    return db.run(run)


def add_key(db: Database, zone: str, key: KeyToAdd) -> ZoneKey:
    """Add one key to a zone (a ZSK rollover's new key, published but not yet active, say)."""

    def run(tx: Transaction) -> ZoneKey:
        zone_id, _, _ = _zone(tx, zone)
        (key_id,) = _add_keys(tx, zone_id, [key])
        changes.record(tx, zone_id, zone, zone)
        return next(k for k in keys_tx(tx, zone_id) if k.id == key_id)

    return db.run(run)


def set_key(
    db: Database, zone: str, key_id: int, *, active: bool | None = None, published: bool | None = None
) -> ZoneKey:
    """Activate or deactivate, publish or unpublish one of the zone's keys.

    :raises NotFound: if the zone has no such key.
    """

    def run(tx: Transaction) -> ZoneKey:
        zone_id, _, _ = _zone(tx, zone)
        found = [k for k in keys_tx(tx, zone_id) if k.id == key_id]
        if not found:
            raise NotFound(f"zone {zone} has no key {key_id}")
        if active is not None:
            tx.execute("UPDATE zone_keys SET active = ? WHERE id = ?", (int(active), key_id))
        if published is not None:
            tx.execute("UPDATE zone_keys SET published = ? WHERE id = ?", (int(published), key_id))
        changes.record(tx, zone_id, zone, zone)
        return next(k for k in keys_tx(tx, zone_id) if k.id == key_id)

    return db.run(run)


def remove_key(db: Database, zone: str, key_id: int) -> None:
    """Delete one of the zone's keys.

    :raises NotFound: if the zone has no such key.
    """

    def run(tx: Transaction) -> None:
        zone_id, _, _ = _zone(tx, zone)
        if not any(k.id == key_id for k in keys_tx(tx, zone_id)):
            raise NotFound(f"zone {zone} has no key {key_id}")
        tx.execute("DELETE FROM zone_keys WHERE id = ?", (key_id,))
        changes.record(tx, zone_id, zone, zone)

    db.run(run)


def keys_for_zones(tx: Transaction, ids: list[int] | None) -> dict[int, tuple[tuple[int, int, bool, bool, str], ...]]:
    """The keys of the given zones (all when None) as the recursor holds them: zone id ->
    ``(id, flags, active, published, sealed private key)`` tuples, oldest first."""
    sql = "SELECT zone_id, id, flags, active, published, private_key FROM zone_keys"
    rows: list[tuple] = []
    if ids is None:
        rows = tx.tuples(sql + " ORDER BY id")
    else:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows.extend(tx.tuples(sql + f" WHERE zone_id IN ({marks}) ORDER BY id", chunk))
    found: dict[int, list[tuple[int, int, bool, bool, str]]] = {}
    for zone_id, key_id, flags, active, published, private in rows:
        found.setdefault(int(zone_id), []).append(
            (int(key_id), int(flags), boolean(active), boolean(published), private)
        )
    return {zone_id: tuple(keys) for zone_id, keys in found.items()}
