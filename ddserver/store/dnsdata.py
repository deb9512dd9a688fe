"""What DNS serves: the zones, and the hosts and records that are in DNS, for the recursor and RFC 2136.

A host is in DNS unless it is blocked, flagged for abuse, its owner is disabled, or its zone is not served
(a user's zone awaiting approval or its delegation, or suspended: ``store.ownzones``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ddserver.db import Transaction

_ACTIVE = "h.blocked = 0 AND h.abuse = 0 AND u.is_disabled = 0 AND z.served = 1"
_HOST_SQL = (
    "SELECT h.name, h.zone_id, h.ipv4, h.ipv6, h.ttl, h.wildcard FROM hosts h JOIN users u ON u.id = h.user_id "
    f"JOIN zones z ON z.id = h.zone_id WHERE {_ACTIVE}"
)
_RECORD_SQL = (
    "SELECT r.name, r.zone_id, r.type, r.content, r.ttl FROM records r JOIN hosts h ON h.id = r.host_id "
    f"JOIN users u ON u.id = h.user_id JOIN zones z ON z.id = h.zone_id WHERE {_ACTIVE}"
)


@dataclass(frozen=True, slots=True)
class ZoneRow:
    """A zone as the store gives it."""

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
    #: DNSSEC: signed or not, the NSEC3PARAM text, and the keys as ``(id, flags, active, published, sealed
    #: private key)`` (store/dnssec.py).
    dnssec: bool = False
    nsec3param: str = "1 0 0 -"
    keys: tuple[tuple[int, int, bool, bool, str], ...] = ()
    #: Secondaries PowerDNS notifies besides the nameservers: addresses, or address:port.
    also_notify: tuple[str, ...] = ()
    #: TSIG keys allowed to transfer the zone: (name, algorithm, secret sealed with the data key).
    transfer_keys: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class HostData:
    name: str
    zone_id: int
    ipv4: str | None
    ipv6: str | None
    ttl: int | None
    wildcard: bool


@dataclass(frozen=True, slots=True)
class RecordData:
    name: str
    zone_id: int
    type: str
    content: str
    ttl: int | None


def iter_hosts(tx: Transaction, zone_id: int | None = None) -> Iterator[tuple]:
    """All hosts in DNS as tuples ``(name, zone_id, ipv4, ipv6, ttl, wildcard)``: the cheap form for full loads."""
    if zone_id is None:
        return tx.iter_tuples(_HOST_SQL)
    return tx.iter_tuples(_HOST_SQL + " AND h.zone_id = ?", (zone_id,))


def iter_records(tx: Transaction, zone_id: int | None = None) -> Iterator[tuple]:
    """All extra records in DNS as tuples ``(name, zone_id, type, content, ttl)``."""
    if zone_id is None:
        return tx.iter_tuples(_RECORD_SQL)
    return tx.iter_tuples(_RECORD_SQL + " AND r.zone_id = ?", (zone_id,))


def hosts_named(tx: Transaction, names: Iterable[str]) -> list[HostData]:
    """The hosts in DNS among ``names`` (a name that is missing, blocked or flagged is simply absent)."""
    names = list(names)
    found: list[HostData] = []
    for start in range(0, len(names), 500):
        chunk = names[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        for row in tx.tuples(_HOST_SQL + f" AND h.name IN ({marks})", chunk):
            found.append(HostData(row[0], row[1], row[2], row[3], row[4], bool(row[5])))
    return found


def records_named(tx: Transaction, names: Iterable[str]) -> list[RecordData]:
    """The extra records in DNS whose owner name is among ``names``."""
    names = list(names)
    found: list[RecordData] = []
    for start in range(0, len(names), 500):
        chunk = names[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        for row in tx.tuples(_RECORD_SQL + f" AND r.name IN ({marks})", chunk):
            found.append(RecordData(*row))
    return found
