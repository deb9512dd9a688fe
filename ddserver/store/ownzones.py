"""Users' own zones: adding one (pending until its delegation is checked), the checks' results, approval, the
users the owner lets add hosts, and the rules of the zone's state (pure functions at the top).

A user's zone is served (``zones.served``, what the recursor and the RFC 2136 worker read) while it is
approved, was found delegated to the service once, and either still was at the last check or the first
failing check since is less than ``[zones] grace_period`` ago. Every change of ``served`` enters the change
feed under the zone's name, so followers add or drop the whole zone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ddserver.db import Database, Transaction
from ddserver.errors import Conflict, LimitReached, NotFound, ValidationError
from ddserver.store import changes, zones
from ddserver.store.common import for_update, like_pattern, now
from ddserver.store.zones import Zone

# -- the rules (pure) ------------------------------------------------------------------------------


class ZoneState(enum.Enum):
    """What the owner and the admins see of a zone."""

    ACTIVE = "active"
    AWAITING_APPROVAL = "awaiting approval"
    PENDING = "pending"
    GRACE = "delegation missing"
    SUSPENDED = "suspended"


@dataclass(frozen=True)
class Delegation:
    """A zone's approval and delegation fields as the store keeps them."""

    approved: bool
    checked_at: int | None = None
    ok_at: int | None = None
    failing_since: int | None = None
    error: str | None = None

    @classmethod
    def of(cls, zone: Zone) -> Delegation:
        return cls(
            zone.approved,
            zone.delegation_checked_at,
            zone.delegation_ok_at,
            zone.delegation_failing_since,
            zone.delegation_error,
        )


def after_check(current: Delegation, ok: bool, reason: str, at: int) -> Delegation:
    """The fields after a check at ``at`` that found the delegation (``ok``) or not (``reason`` says why)."""
    if ok:
        return Delegation(current.approved, at, at, None, None)
    failing_since = current.failing_since if current.failing_since is not None else at
    return Delegation(current.approved, at, current.ok_at, failing_since, reason[:1000])


def is_served(state: Delegation, at: int, grace: int) -> bool:
    """Whether DNS serves a user's zone in this state at ``at``."""
    if not state.approved or state.ok_at is None:
        return False
    return state.failing_since is None or at - state.failing_since < grace


def state_of(zone: Zone) -> ZoneState:
    """What the owner sees of a zone (an admins' zone is always active)."""
    if zone.owner_id is None:
        return ZoneState.ACTIVE
    if not zone.approved:
        return ZoneState.AWAITING_APPROVAL
    if zone.delegation_ok_at is None:
        return ZoneState.PENDING
    if not zone.served:
        return ZoneState.SUSPENDED
    if zone.delegation_failing_since is not None:
        return ZoneState.GRACE
    return ZoneState.ACTIVE


# -- queries ---------------------------------------------------------------------------------------


def add(
    db: Database,
    owner_id: int,
    name: str,
    nameservers: list[str] | tuple[str, ...],
    hostmaster: str,
    *,
    limit: int,
    approved: bool,
) -> Zone:
    """Add a zone that ``owner_id`` brings: not served until a delegation check finds it delegated (and an
    admin approved it, when ``approved`` is False). The owner's row is locked while their zones are counted.

    :param limit: zones a user may own (-1: any number).
    :raises LimitReached: the owner has as many zones as they may.
    :raises Conflict: the zone exists, or it is above or below a zone of this service.
    :raises NotFound: the owner is gone.
    """

    def run(tx: Transaction) -> Zone:
        if tx.one(f"SELECT id FROM users WHERE id = ?{for_update(tx)}", (owner_id,)) is None:
            raise NotFound(f"no user {owner_id}")
        if limit >= 0:
            count = int(tx.scalar("SELECT COUNT(*) FROM zones WHERE owner_id = ?", (owner_id,)))
            if count >= limit:
                raise LimitReached(f"the limit of {limit} zones for this user is reached")
        labels = name.split(".")
        # The zones that could be above it (its parents) or below it (their names end with it).
        parents = [".".join(labels[i:]) for i in range(len(labels))]
        marks = ", ".join("?" for _ in parents)
        below = like_pattern("." + name).removesuffix("%")  # names ending with ".<name>"
        clash = tx.scalar(
            f"SELECT name FROM zones WHERE name IN ({marks}) OR name LIKE ? ESCAPE '!' ORDER BY name LIMIT 1",
            (*parents, below),
        )
        if clash is not None:
            if clash == name:
                raise Conflict(f"zone {name} exists already")
            raise Conflict(f"{name} overlaps the zone {clash} of this service")
        zone_id = tx.insert(
            "INSERT INTO zones (name, nameservers, hostmaster, serial, is_public, created_at, owner_id, served, "
            "approved) VALUES (?, ?, ?, ?, 0, ?, ?, 0, ?)",
            (name, " ".join(nameservers), hostmaster, zones.initial_serial(), now(), owner_id, int(approved)),
        )
        change_id = changes.record(tx, zone_id, name, name)
        tx.execute("UPDATE zones SET rfc2136_position = ? WHERE id = ?", (change_id - 1, zone_id))
        return zones.get_tx(tx, zone_id)

    try:
        return db.run(run)
    except Conflict:
        raise
    except Exception as exc:
        if db.is_integrity_error(exc):
            raise Conflict(f"zone {name} exists already")
        raise


def owned_by(db: Database, owner_id: int) -> list[Zone]:
    """The user's zones, by name."""
    rows = db.read(
        lambda tx: tx.all(f"SELECT {zones.COLUMNS} FROM zones WHERE owner_id = ? ORDER BY name", (owner_id,))
    )
    return [Zone.from_row(row) for row in rows]


def all_owned(db: Database) -> list[Zone]:
    """Every user's zone, by name (what the periodic check goes through)."""
    rows = db.read(lambda tx: tx.all(f"SELECT {zones.COLUMNS} FROM zones WHERE owner_id IS NOT NULL ORDER BY name"))
    return [Zone.from_row(row) for row in rows]


def _save(tx: Transaction, zone: Zone, state: Delegation, served: bool) -> Zone:
    tx.execute(
        "UPDATE zones SET approved = ?, delegation_checked_at = ?, delegation_ok_at = ?, "
        "delegation_failing_since = ?, delegation_error = ?, served = ? WHERE id = ?",
        (int(state.approved), state.checked_at, state.ok_at, state.failing_since, state.error, int(served), zone.id),
    )
    if served != zone.served:
        # Followers add or drop the whole zone.
        changes.record(tx, zone.id, zone.name, zone.name)
    return zones.get_tx(tx, zone.id)


def _owned_tx(tx: Transaction, zone_id: int) -> Zone:
    tx.scalar(f"SELECT id FROM zones WHERE id = ?{for_update(tx)}", (zone_id,))
    zone = zones.get_tx(tx, zone_id)
    if zone.owner_id is None:
        raise ValidationError(f"the zone {zone.name} is run by the admins, not a user's")
    return zone


def record_check(db: Database, zone_id: int, ok: bool, reason: str, grace: int, at: int | None = None) -> Zone:
    """Store a delegation check's result and serve or stop serving the zone accordingly.

    :raises NotFound: the zone is gone.
    :raises ValidationError: it is not a user's zone.
    """
    stamp = now() if at is None else at

    def run(tx: Transaction) -> Zone:
        zone = _owned_tx(tx, zone_id)
        state = after_check(Delegation.of(zone), ok, reason, stamp)
        return _save(tx, zone, state, is_served(state, stamp, grace))

    return db.run(run)


def approve(db: Database, zone_id: int, grace: int) -> Zone:
    """An admin approves a user's zone: served from now on if its delegation was found.

    :raises NotFound: the zone is gone.
    :raises ValidationError: it is not a user's zone.
    """

    def run(tx: Transaction) -> Zone:
        zone = _owned_tx(tx, zone_id)
        old = Delegation.of(zone)
        state = Delegation(True, old.checked_at, old.ok_at, old.failing_since, old.error)
        return _save(tx, zone, state, is_served(state, now(), grace))

    return db.run(run)


def awaiting_approval(db: Database) -> list[Zone]:
    rows = db.read(
        lambda tx: tx.all(
            f"SELECT {zones.COLUMNS} FROM zones WHERE owner_id IS NOT NULL AND approved = 0 ORDER BY name"
        )
    )
    return [Zone.from_row(row) for row in rows]


def count_owned(db: Database, owner_id: int) -> int:
    return int(db.read(lambda tx: tx.scalar("SELECT COUNT(*) FROM zones WHERE owner_id = ?", (owner_id,))))


def delete_owned_tx(tx: Transaction, owner_id: int) -> list[str]:
    """Delete every zone of ``owner_id`` with all their hosts (an account being deleted); their names."""
    rows = tx.tuples("SELECT id, name FROM zones WHERE owner_id = ? ORDER BY id", (owner_id,))
    for zone_id, _name in rows:
        zones.delete_tx(tx, int(zone_id))
    return [str(row[1]) for row in rows]


def grantees(db: Database, zone_id: int) -> list[tuple[int, str]]:
    """The users the zone's owner lets add hosts in it, as (id, user name), by name."""
    return [
        (int(r[0]), str(r[1]))
        for r in db.read(
            lambda tx: tx.tuples(
                "SELECT u.id, u.username FROM zone_users zu JOIN users u ON u.id = zu.user_id "
                "WHERE zu.zone_id = ? ORDER BY u.username",
                (zone_id,),
            )
        )
    ]


def grant(db: Database, zone_id: int, username: str) -> int:
    """Let the user named ``username`` add hosts in the zone; their id.

    :raises NotFound: there is no such user (or the zone is gone).
    :raises Conflict: they may already.
    """

    def run(tx: Transaction) -> int:
        user_id = tx.scalar("SELECT id FROM users WHERE username = ?", (username,))
        if user_id is None:
            raise NotFound(f"no user {username}")
        if not tx.scalar("SELECT COUNT(*) FROM zones WHERE id = ?", (zone_id,)):
            raise NotFound(f"no zone {zone_id}")
        if tx.scalar("SELECT COUNT(*) FROM zone_users WHERE zone_id = ? AND user_id = ?", (zone_id, user_id)):
            raise Conflict(f"{username} may add hosts there already")
        tx.execute("INSERT INTO zone_users (zone_id, user_id) VALUES (?, ?)", (zone_id, user_id))
        return int(user_id)

    return db.run(run)


def revoke(db: Database, zone_id: int, user_id: int) -> bool:
    """Stop letting a user add hosts in the zone (their hosts there stay); whether they could."""

    def run(tx: Transaction) -> bool:
        tx.execute("DELETE FROM zone_users WHERE zone_id = ? AND user_id = ?", (zone_id, user_id))
        return tx.rowcount == 1

    return db.run(run)
