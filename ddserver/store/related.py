"""Related names of a host: other names in its zone (``nas.home.dyn.example.org`` below it, or a name of their
own) whose addresses follow the host's, each with an interface identifier and a prefix length.

They are host rows with a parent (``hosts.parent_id``), so DNS serves them as any host; the transactions that
write the main host bring them along (``hosts.follow_tx``, and the updater's ``updates.apply_many``).
"""

from __future__ import annotations

from ddserver import prefixes
from ddserver.db import Database, Transaction
from ddserver.errors import Conflict, LimitReached, NotFound, ValidationError
from ddserver.store import changes, hosts, zones
from ddserver.store.common import for_update, now
from ddserver.store.hosts import Host

#: What a related row holds instead of a secret hash: no secret matches it (``secrets.verify_host_secret``),
#: and the updater does not look related names up at all.
NO_SECRET = "-"


def of(db: Database, parent_id: int) -> list[Host]:
    """The related names of a host, by name."""
    return db.read(lambda tx: _of(tx, parent_id))


def _of(tx: Transaction, parent_id: int) -> list[Host]:
    rows = tx.all(f"SELECT {hosts._COLUMNS}{hosts._FROM} WHERE h.parent_id = ? ORDER BY h.name", (parent_id,))
    return [Host.from_row(row) for row in rows]


def _lock_main(tx: Transaction, parent_id: int) -> Host:
    """Lock the main host's row (before any related row: the order every writer takes them in)."""
    if tx.one(f"SELECT id FROM hosts WHERE id = ?{for_update(tx)}", (parent_id,)) is None:
        raise NotFound(f"no host {parent_id}")
    parent = hosts._get(tx, "id", parent_id)
    if parent.is_related:
        raise ValidationError(f"{parent.name} is a related name itself; related names belong to a main host.")
    return parent


def check_name(tx: Transaction, parent: Host, name: str) -> zones.Zone:
    """A related name lies one label below its main host (``nas.home.dyn.example.org``) or one label below
    the zone (a name of its own), and in no other zone.

    :raises ValidationError: otherwise.
    """
    zone = zones.find_for_name(tx, name)
    if zone is None or zone.id != parent.zone_id:
        raise ValidationError(f"{name} is not in the zone {parent.zone}.")
    for base in (parent.name, parent.zone):
        label = name[: -len(base) - 1] if name.endswith("." + base) else ""
        if label and "." not in label:
            return zone
    raise ValidationError(f"{name} must be one label below {parent.name} or below the zone {parent.zone}.")


def add(
    db: Database,
    parent_id: int,
    name: str,
    ifid: str,
    *,
    prefix_len: int = prefixes.DEFAULT_PREFIX_LEN,
    follow_ipv4: bool = False,
    limit: int,
) -> Host:
    """Add a related name (validated already as a host name) to a main host, with the addresses it has at
    once; it enters the feed.

    :param limit: related names a host may have (-1: any number).
    :raises NotFound: the main host is gone.
    :raises ValidationError: a name outside the main host's zone or subtree, or a bad identifier.
    :raises LimitReached: the host has ``limit`` related names.
    :raises Conflict: the name is taken.
    """
    prefix_len = prefixes.prefix_len(prefix_len)
    ifid = prefixes.interface_id(ifid, prefix_len)

    def run(tx: Transaction) -> Host:
        parent = _lock_main(tx, parent_id)
        zone = check_name(tx, parent, name)
        if limit >= 0 and int(tx.scalar("SELECT COUNT(*) FROM hosts WHERE parent_id = ?", (parent_id,))) >= limit:
            raise LimitReached(f"{parent.name} has {limit} related names, as many as a host may have")
        if tx.scalar("SELECT COUNT(*) FROM hosts WHERE name = ?", (name,)):
            raise Conflict(f"{name} is taken")
        rule = prefixes.Related(ifid, prefix_len, follow_ipv4)
        ipv4, ipv6 = prefixes.related_addresses(rule, parent.ipv4, parent.ipv6, parent.ipv6_prefix)
        stamp = now()
        try:
            host_id = tx.insert(
                "INSERT INTO hosts (name, zone_id, user_id, ipv4, ipv6, ttl, secret_hash, created_at, "
                "address_changed_at, abuse, blocked, parent_id, ifid, prefix_len, follow_ipv4) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    zone.id,
                    parent.user_id,
                    ipv4,
                    ipv6,
                    parent.ttl,
                    NO_SECRET,
                    stamp,
                    stamp if ipv4 or ipv6 else None,
                    int(parent.abuse),
                    int(parent.blocked),
                    parent.id,
                    ifid,
                    prefix_len,
                    int(follow_ipv4),
                ),
            )
        except Exception as exc:
            if db.is_integrity_error(exc):
                raise Conflict(f"{name} is taken")
            raise
        tx.execute("UPDATE hosts SET related_count = related_count + 1 WHERE id = ?", (parent.id,))
        changes.record(tx, zone.id, zone.name, name)
        return hosts._get(tx, "id", host_id)

    return db.run(run)


def _get_related(tx: Transaction, parent_id: int, related_id: int) -> Host:
    related = hosts._get(tx, "id", related_id)
    if related.parent_id != parent_id:
        raise NotFound(f"no related name {related_id} of host {parent_id}")
    return related


def edit(db: Database, parent_id: int, related_id: int, ifid: str, *, prefix_len: int, follow_ipv4: bool) -> Host:
    """Change a related name's identifier, prefix length or whether it takes the IPv4 address; its addresses
    follow at once.

    :raises NotFound: no such related name of this host.
    :raises ValidationError: a bad identifier for the prefix length.
    """
    prefix_len = prefixes.prefix_len(prefix_len)
    ifid = prefixes.interface_id(ifid, prefix_len)

    def run(tx: Transaction) -> Host:
        parent = _lock_main(tx, parent_id)
        _get_related(tx, parent_id, related_id)
        tx.execute(
            "UPDATE hosts SET ifid = ?, prefix_len = ?, follow_ipv4 = ? WHERE id = ?",
            (ifid, prefix_len, int(follow_ipv4), related_id),
        )
        hosts.follow_tx(tx, parent)
        return hosts._get(tx, "id", related_id)

    return db.run(run)


def remove(db: Database, parent_id: int, related_id: int) -> Host:
    """Delete a related name; it leaves DNS.

    :raises NotFound: no such related name of this host.
    """

    def run(tx: Transaction) -> Host:
        parent = _lock_main(tx, parent_id)
        related = _get_related(tx, parent_id, related_id)
        changes.record(tx, parent.zone_id, parent.zone, related.name)
        tx.execute("DELETE FROM hosts WHERE id = ?", (related_id,))
        tx.execute("UPDATE hosts SET related_count = related_count - 1 WHERE id = ?", (parent.id,))
        return related

    return db.run(run)
