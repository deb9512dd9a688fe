"""Zones: the DNS zones admins run, with their SOA, NS and optional RFC 2136 primary."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from ddserver.db import Database, Transaction
from ddserver.errors import Conflict, NotFound, ValidationError
from ddserver.store import changes
from ddserver.store.common import boolean, for_update, now

_COLUMNS = (
    "id, name, nameservers, hostmaster, serial, refresh, retry, expire, minimum, zone_ttl, ttl, is_public, "
    "description, rfc2136_server, rfc2136_transport, tsig_name, tsig_algorithm, tsig_secret, "
    "rfc2136_position, rfc2136_error, rfc2136_error_at, rfc2136_ok_at, created_at, min_ttl, max_ttl, allow_wildcards, "
    "owner_id, served, approved, delegation_checked_at, delegation_ok_at, delegation_failing_since, delegation_error, "
    "also_notify"
)
#: Every column of a zone row, for the other store modules.
COLUMNS = _COLUMNS

#: Columns an admin may change with ``update``.
EDITABLE = {
    "nameservers",
    "hostmaster",
    "refresh",
    "retry",
    "expire",
    "minimum",
    "zone_ttl",
    "ttl",
    "is_public",
    "description",
    "rfc2136_server",
    "rfc2136_transport",
    "tsig_name",
    "tsig_algorithm",
    "tsig_secret",
    "min_ttl",
    "max_ttl",
    "allow_wildcards",
    "also_notify",
}
#: Of those, the ones that change what DNS serves (also_notify: the recursor serves it to PowerDNS).
_DNS_COLUMNS = {"nameservers", "hostmaster", "refresh", "retry", "expire", "minimum", "zone_ttl", "ttl", "also_notify"}


@dataclass(frozen=True)
class Zone:
    id: int
    name: str
    nameservers: tuple[str, ...]
    hostmaster: str
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int
    zone_ttl: int
    ttl: int | None
    is_public: bool
    description: str
    rfc2136_server: str | None
    rfc2136_transport: str
    tsig_name: str | None
    tsig_algorithm: str | None
    tsig_secret: str | None = dataclasses.field(repr=False)
    rfc2136_position: int
    rfc2136_error: str | None
    rfc2136_error_at: int | None
    rfc2136_ok_at: int | None
    created_at: int
    #: The TTL range the owners of its hosts may choose, in seconds.
    min_ttl: int = 60
    max_ttl: int = 86400
    #: Whether owners may make a host a wildcard.
    allow_wildcards: bool = True
    #: The user who brought the zone (None: a zone the admins run); see ``store.ownzones``.
    owner_id: int | None = None
    #: Whether DNS serves it (always for admins' zones; for a user's, while approved and delegated).
    served: bool = True
    approved: bool = True
    delegation_checked_at: int | None = None
    delegation_ok_at: int | None = None
    delegation_failing_since: int | None = None
    delegation_error: str | None = None
    #: Secondaries PowerDNS notifies besides the nameservers: addresses, or address:port.
    also_notify: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Zone:
        row = dict(row)
        row["nameservers"] = tuple(row["nameservers"].split())
        row["also_notify"] = tuple((row.get("also_notify") or "").split())
        row["is_public"] = boolean(row["is_public"])
        row["allow_wildcards"] = boolean(row["allow_wildcards"])
        row["served"] = boolean(row["served"])
        row["approved"] = boolean(row["approved"])
        return cls(**row)

    def host_ttl(self, default: int) -> int:
        return self.ttl if self.ttl is not None else default

    def check_host_ttl(self, ttl: int) -> None:
        """:raises ValidationError: if a host of this zone may not have this TTL."""
        if not self.min_ttl <= ttl <= self.max_ttl:
            raise ValidationError(
                f"The TTL must be between {self.min_ttl} and {self.max_ttl} seconds in the zone {self.name}."
            )


def check_ttl_range(min_ttl: int, max_ttl: int) -> None:
    """:raises ValidationError: for a range hosts could not pick from."""
    if not 1 <= min_ttl <= max_ttl <= 2**31 - 1:
        raise ValidationError(f"The TTL range {min_ttl} to {max_ttl} is empty or out of bounds.")


def initial_serial(at: float | None = None) -> int:
    """A date-based first serial (YYYYMMDD01), as people expect to see."""
    return int(time.strftime("%Y%m%d", time.gmtime(at)) + "01")


def add(
    db: Database,
    name: str,
    nameservers: list[str] | tuple[str, ...],
    hostmaster: str,
    *,
    ttl: int | None = None,
    is_public: bool = True,
    description: str = "",
    rfc2136_server: str | None = None,
    rfc2136_transport: str = "tcp",
    tsig_name: str | None = None,
    tsig_algorithm: str | None = None,
    tsig_secret: str | None = None,
    min_ttl: int = 60,
    max_ttl: int = 86400,
    allow_wildcards: bool = True,
    also_notify: list[str] | tuple[str, ...] = (),
) -> Zone:
    """Add a zone; ``name``, ``nameservers`` and ``hostmaster`` must be validated already.

    :raises Conflict: if the zone exists.
    :raises ValidationError: if the host TTL range is empty.
    """
    check_ttl_range(min_ttl, max_ttl)

    def run(tx: Transaction) -> Zone:
        if tx.scalar("SELECT COUNT(*) FROM zones WHERE name = ?", (name,)):
            raise Conflict(f"zone {name} exists already")
        try:
            zone_id = tx.insert(
                "INSERT INTO zones (name, nameservers, hostmaster, serial, ttl, is_public, description, "
                "rfc2136_server, rfc2136_transport, tsig_name, tsig_algorithm, tsig_secret, created_at, "
                "min_ttl, max_ttl, allow_wildcards, also_notify) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    " ".join(nameservers),
                    hostmaster,
                    initial_serial(),
                    ttl,
                    int(is_public),
                    description,
                    rfc2136_server,
                    rfc2136_transport,
                    tsig_name,
                    tsig_algorithm,
                    tsig_secret,
                    now(),
                    min_ttl,
                    max_ttl,
                    int(allow_wildcards),
                    " ".join(also_notify),
                ),
            )
        except Exception as exc:
            if db.is_integrity_error(exc):
                raise Conflict(f"zone {name} exists already")
            raise
        # A new zone is a change too: followers learn of it from the feed. Its RFC 2136 position
        # starts here, so the worker does not replay the history of other zones.
        change_id = changes.record(tx, zone_id, name, name)
        tx.execute("UPDATE zones SET rfc2136_position = ? WHERE id = ?", (change_id - 1, zone_id))
        return _get(tx, "id", zone_id)

    return db.run(run)


def _get(tx: Transaction, column: str, value: Any) -> Zone:
    row = tx.one(f"SELECT {_COLUMNS} FROM zones WHERE {column} = ?", (value,))
    if row is None:
        raise NotFound(f"no zone {value}")
    return Zone.from_row(row)


def get(db: Database, name: str) -> Zone:
    """:raises NotFound: if there is no such zone."""
    return db.read(lambda tx: _get(tx, "name", name))


def get_by_id(db: Database, zone_id: int) -> Zone:
    return db.read(lambda tx: _get(tx, "id", zone_id))


def get_tx(tx: Transaction, zone_id: int) -> Zone:
    """The zone, read in a transaction under way."""
    return _get(tx, "id", zone_id)


def list_all(db: Database) -> list[Zone]:
    rows = db.read(lambda tx: tx.all(f"SELECT {_COLUMNS} FROM zones ORDER BY name"))
    return [Zone.from_row(row) for row in rows]


def host_counts(db: Database) -> dict[int, int]:
    """Number of hosts in each zone, by zone id."""
    rows = db.read(lambda tx: tx.tuples("SELECT zone_id, COUNT(*) FROM hosts GROUP BY zone_id"))
    return {zone_id: count for zone_id, count in rows}


def find_for_name(tx: Transaction, fqdn: str) -> Zone | None:
    """The most specific zone that contains ``fqdn`` (``a.dyn.example.org`` is in ``dyn.example.org``
    rather than ``example.org``), or None."""
    labels = fqdn.split(".")
    candidates = [".".join(labels[i:]) for i in range(1, len(labels) - 1)]
    if not candidates:
        return None
    marks = ", ".join("?" for _ in candidates)
    rows = tx.all(f"SELECT {_COLUMNS} FROM zones WHERE name IN ({marks})", candidates)
    if not rows:
        return None
    best = max(rows, key=lambda row: len(row["name"]))
    return Zone.from_row(best)


def usable_by(db: Database, user_id: int, is_admin: bool) -> list[Zone]:
    """Zones in which this user may create hosts: public ones, their own and those granted to them while
    served; all for admins."""
    if is_admin:
        return list_all(db)
    rows = db.read(
        lambda tx: tx.all(
            f"SELECT {_COLUMNS} FROM zones WHERE served = 1 AND (is_public = 1 OR owner_id = ? "
            "OR id IN (SELECT zone_id FROM zone_users WHERE user_id = ?)) ORDER BY name",
            (user_id, user_id),
        )
    )
    return [Zone.from_row(row) for row in rows]


def may_use(tx: Transaction, zone: Zone, user_id: int, is_admin: bool) -> bool:
    if is_admin:
        return True
    if not zone.served:
        return False
    if zone.is_public or zone.owner_id == user_id:
        return True
    return bool(tx.scalar("SELECT COUNT(*) FROM zone_users WHERE zone_id = ? AND user_id = ?", (zone.id, user_id)))


def allowed_users(db: Database, zone_id: int) -> list[int]:
    return [r[0] for r in db.read(lambda tx: tx.tuples("SELECT user_id FROM zone_users WHERE zone_id = ?", (zone_id,)))]


def set_allowed_users(db: Database, zone_id: int, user_ids: list[int]) -> None:
    def run(tx: Transaction) -> None:
        tx.execute("DELETE FROM zone_users WHERE zone_id = ?", (zone_id,))
        if user_ids:
            tx.executemany("INSERT INTO zone_users (zone_id, user_id) VALUES (?, ?)", [(zone_id, u) for u in user_ids])

    db.run(run)


def update(db: Database, zone_id: int, **values: Any) -> Zone:
    """Change some of a zone's settings (see ``EDITABLE``); a change to its DNS data enters the feed.

    :raises NotFound: if the zone is gone.
    """
    unknown = set(values) - EDITABLE
    if unknown:
        raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
    for column in ("nameservers", "also_notify"):
        if column in values and not isinstance(values[column], str):
            values[column] = " ".join(values[column])
    for flag in ("is_public", "allow_wildcards"):
        if flag in values:
            values[flag] = int(values[flag])

    def run(tx: Transaction) -> Zone:
        zone = _get(tx, "id", zone_id)
        check_ttl_range(values.get("min_ttl", zone.min_ttl), values.get("max_ttl", zone.max_ttl))
        if values:
            assignments = ", ".join(f"{column} = ?" for column in values)
            tx.execute(f"UPDATE zones SET {assignments} WHERE id = ?", (*values.values(), zone_id))
        if _DNS_COLUMNS & set(values):
            changes.record(tx, zone.id, zone.name, zone.name)
            if "ttl" in values:
                # Every host that inherits the zone's TTL changes: followers reload the whole zone.
                changes.record(tx, zone.id, zone.name, "*")
        if {"min_ttl", "max_ttl", "allow_wildcards"} & set(values):
            _fit_hosts(tx, _get(tx, "id", zone_id))
        return _get(tx, "id", zone_id)

    return db.run(run)


def _fit_hosts(tx: Transaction, zone: Zone) -> None:
    """Bring the zone's hosts within its rules: a TTL out of the range moves to its nearest end, and
    wildcards go when the zone no longer allows them; each host changed enters the feed."""
    rows = tx.all(
        "SELECT id, name, ttl, wildcard FROM hosts WHERE zone_id = ? AND "
        "(ttl < ? OR ttl > ? OR (wildcard = 1 AND ? = 0)) ORDER BY id",
        (zone.id, zone.min_ttl, zone.max_ttl, int(zone.allow_wildcards)),
    )
    for row in rows:
        ttl = row["ttl"] if row["ttl"] is None else min(max(int(row["ttl"]), zone.min_ttl), zone.max_ttl)
        wildcard = int(boolean(row["wildcard"]) and zone.allow_wildcards)
        tx.execute("UPDATE hosts SET ttl = ?, wildcard = ? WHERE id = ?", (ttl, wildcard, row["id"]))
        changes.record(tx, zone.id, zone.name, row["name"])


def delete(db: Database, zone_id: int, *, with_hosts: bool = True) -> int:
    """Delete a zone with all its hosts and records.

    :param with_hosts: False: only a zone without hosts (checked in the deleting transaction).
    :returns: how many hosts went with it.
    :raises Conflict: the zone has hosts and ``with_hosts`` is False.
    """
    return db.run(lambda tx: delete_tx(tx, zone_id, with_hosts=with_hosts))


def delete_tx(tx: Transaction, zone_id: int, *, with_hosts: bool = True) -> int:
    """``delete`` in a transaction under way."""
    # The zone's row lock first: a host being added to the zone (its foreign key check reads the row)
    # either committed before and is counted, or waits and then finds the zone gone.
    tx.scalar(f"SELECT id FROM zones WHERE id = ?{for_update(tx)}", (zone_id,))
    zone = _get(tx, "id", zone_id)
    count = int(tx.scalar("SELECT COUNT(*) FROM hosts WHERE zone_id = ?", (zone_id,)))
    if count and not with_hosts:
        raise Conflict(f"zone {zone.name} has {count} host{'s' if count != 1 else ''}")
    # The serial bump in record() must happen before the row goes; the change stays in the feed.
    changes.record(tx, zone.id, zone.name, zone.name)
    tx.execute("DELETE FROM records WHERE zone_id = ?", (zone_id,))
    tx.execute("DELETE FROM hosts WHERE zone_id = ?", (zone_id,))
    tx.execute("DELETE FROM zones WHERE id = ?", (zone_id,))
    return count


def set_rfc2136_state(
    db: Database, zone_id: int, *, position: int | None = None, error: str | None = None, ok: bool = False
) -> None:
    """Record the RFC 2136 worker's progress (position) and its last error or success for a zone."""

    def run(tx: Transaction) -> None:
        if position is not None:
            tx.execute(
                "UPDATE zones SET rfc2136_position = ? WHERE id = ? AND rfc2136_position < ?",
                (position, zone_id, position),
            )
        if error is not None:
            tx.execute(
                "UPDATE zones SET rfc2136_error = ?, rfc2136_error_at = ? WHERE id = ?",
                (error, now(), zone_id),
            )
        elif ok:
            tx.execute("UPDATE zones SET rfc2136_error = NULL, rfc2136_ok_at = ? WHERE id = ?", (now(), zone_id))

    db.run(run)


@dataclass(frozen=True)
class TransferKey:
    """A TSIG key allowed to transfer a zone from PowerDNS; the secret stays sealed."""

    id: int
    zone_id: int
    name: str
    algorithm: str
    secret: str = dataclasses.field(repr=False)
    created_at: int = 0


def transfer_keys(db: Database, zone_id: int) -> list[TransferKey]:
    """The zone's transfer keys, by name."""
    rows = db.read(
        lambda tx: tx.all(
            "SELECT id, zone_id, name, algorithm, secret, created_at FROM zone_transfer_keys "
            "WHERE zone_id = ? ORDER BY name",
            (zone_id,),
        )
    )
    return [TransferKey(**row) for row in rows]


def add_transfer_key(db: Database, zone_id: int, name: str, algorithm: str, sealed_secret: str) -> TransferKey:
    """Allow a key (its secret sealed already) to transfer the zone; the change enters the feed, so the
    recursors serve it.

    :raises Conflict: a key of that name exists (for this zone or another: PowerDNS asks by name alone).
    :raises NotFound: the zone is gone.
    """

    def run(tx: Transaction) -> TransferKey:
        zone = _get(tx, "id", zone_id)
        if tx.scalar("SELECT COUNT(*) FROM zone_transfer_keys WHERE name = ?", (name,)):
            raise Conflict(f"a transfer key named {name} exists already")
        try:
            key_id = tx.insert(
                "INSERT INTO zone_transfer_keys (zone_id, name, algorithm, secret, created_at) VALUES (?, ?, ?, ?, ?)",
                (zone.id, name, algorithm, sealed_secret, now()),
            )
        except Exception as exc:
            if db.is_integrity_error(exc):
                raise Conflict(f"a transfer key named {name} exists already")
            raise
        changes.record(tx, zone.id, zone.name, zone.name)
        row = tx.one("SELECT id, zone_id, name, algorithm, secret, created_at FROM zone_transfer_keys WHERE id = ?",
                     (key_id,))  # fmt: skip
        assert row is not None
        return TransferKey(**row)

    return db.run(run)


def remove_transfer_key(db: Database, zone_id: int, name: str) -> None:
    """Take a key's right to transfer the zone away; the change enters the feed.

    :raises NotFound: the zone has no key of that name.
    """

    def run(tx: Transaction) -> None:
        zone = _get(tx, "id", zone_id)
        if not tx.scalar("SELECT COUNT(*) FROM zone_transfer_keys WHERE zone_id = ? AND name = ?", (zone.id, name)):
            raise NotFound(f"zone {zone.name} has no transfer key {name}")
        tx.execute("DELETE FROM zone_transfer_keys WHERE zone_id = ? AND name = ?", (zone.id, name))
        changes.record(tx, zone.id, zone.name, zone.name)

    return db.run(run)
