"""Hosts: one row per dynamic name, with its addresses, secret hash, update status and flags.

A row with a parent is a related name of that (main) host: it follows the main host's addresses
(``ddserver.prefixes``), in the transactions that write the main host (``follow_tx``), and is neither listed,
counted against host limits nor updated on its own (``store.related`` adds and edits them).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ddserver import prefixes
from ddserver.db import Database, Transaction
from ddserver.errors import Conflict, LimitReached, NotFound, ValidationError
from ddserver.store import changes, history, relays, settings, zones
from ddserver.store.common import KEEP, Keep, boolean, for_update, like_pattern, now

_COLUMNS = (
    "h.id, h.name, h.zone_id, z.name AS zone, h.user_id, u.username, h.ipv4, h.ipv6, h.ttl, h.wildcard, "
    "h.secret_hash, h.description, h.created_at, h.address_changed_at, h.last_update_at, h.last_client, "
    "h.last_tls, h.last_result, h.client_faults, h.server_faults, h.abuse, h.blocked, h.blocked_reason, "
    "h.parent_id, h.ifid, h.prefix_len, h.follow_ipv4, h.ipv6_prefix"
)
#: Main hosts only: related names are shown with their main host.
MAIN = "h.parent_id IS NULL"
_FROM = " FROM hosts h JOIN zones z ON z.id = h.zone_id JOIN users u ON u.id = h.user_id"
#: The longest reason an admin gives for blocking a host.
REASON_MAX = 200


@dataclass(frozen=True)
class Host:
    id: int
    name: str
    zone_id: int
    zone: str
    user_id: int
    username: str
    ipv4: str | None
    ipv6: str | None
    ttl: int | None
    wildcard: bool
    secret_hash: str = dataclasses.field(repr=False)
    description: str = ""
    created_at: int = 0
    address_changed_at: int | None = None
    last_update_at: int | None = None
    last_client: str | None = None
    last_tls: bool | None = None
    last_result: str | None = None
    client_faults: int = 0
    server_faults: int = 0
    abuse: bool = False
    blocked: bool = False
    blocked_reason: str | None = None
    #: The main host of a related name (None: a host of its own).
    parent_id: int | None = None
    #: A related name's interface identifier (``::1:2:3:4``) and prefix length, and whether it takes the main
    #: host's IPv4 address.
    ifid: str | None = None
    prefix_len: int | None = None
    follow_ipv4: bool = False
    #: The last IPv6 prefix an update of this (main) host carried, while it is the base of its related names.
    ipv6_prefix: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Host:
        row = dict(row)
        for flag in ("wildcard", "abuse", "blocked", "follow_ipv4"):
            row[flag] = boolean(row[flag])
        if row["last_tls"] is not None:
            row["last_tls"] = bool(row["last_tls"])
        return cls(**row)

    @property
    def label(self) -> str:
        """The part of the name below the zone."""
        return self.name[: -len(self.zone) - 1]

    @property
    def is_related(self) -> bool:
        return self.parent_id is not None


def _get(tx: Transaction, column: str, value: Any) -> Host:
    row = tx.one(f"SELECT {_COLUMNS}{_FROM} WHERE h.{column} = ?", (value,))
    if row is None:
        raise NotFound(f"no host {value}")
    return Host.from_row(row)


def get(db: Database, name: str) -> Host:
    """:raises NotFound: if there is no such host."""
    return db.read(lambda tx: _get(tx, "name", name))


def get_by_id(db: Database, host_id: int) -> Host:
    return db.read(lambda tx: _get(tx, "id", host_id))


def add(
    db: Database,
    user_id: int,
    name: str,
    secret_hash: str,
    *,
    default_limit: int,
    ttl: int | None = None,
    wildcard: bool = False,
    description: str = "",
    ipv4: str | None = None,
    ipv6: str | None = None,
) -> Host:
    """Add a host, one label below one of the zones; the name must be validated already.

    The user's row is locked while their hosts are counted, so concurrent adds cannot pass the limit.

    :raises NotFound: no zone contains the name, or the user is gone.
    :raises ValidationError: the name is not exactly one label below its zone, or the zone is not open
        to this user.
    :raises LimitReached: the user has as many hosts as they may.
    :raises Conflict: the name is taken.
    """

    def run(tx: Transaction) -> Host:
        user = tx.one(f"SELECT id, is_admin, max_hosts FROM users WHERE id = ?{for_update(tx)}", (user_id,))
        if user is None:
            raise NotFound(f"no user {user_id}")
        zone = zones.find_for_name(tx, name)
        if zone is None:
            raise NotFound(f"no zone served here contains {name}")
        label = name[: -len(zone.name) - 1]
        if "." in label:
            raise ValidationError(f"{name} is more than one label below the zone {zone.name}")
        if not zones.may_use(tx, zone, user_id, bool(user["is_admin"])):
            raise ValidationError(f"the zone {zone.name} is not open to this user")
        limit = user["max_hosts"] if user["max_hosts"] is not None else default_limit
        if limit >= 0:
            count = int(tx.scalar("SELECT COUNT(*) FROM hosts WHERE user_id = ? AND parent_id IS NULL", (user_id,)))
            if count >= limit:
                raise LimitReached(f"the limit of {limit} hosts for this user is reached")
        if tx.scalar("SELECT COUNT(*) FROM hosts WHERE name = ?", (name,)):
            raise Conflict(f"{name} is taken")
        stamp = now()
        try:
            host_id = tx.insert(
                "INSERT INTO hosts (name, zone_id, user_id, ipv4, ipv6, ttl, wildcard, secret_hash, description, "
                "created_at, address_changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    zone.id,
                    user_id,
                    ipv4,
                    ipv6,
                    ttl,
                    int(wildcard),
                    secret_hash,
                    description,
                    stamp,
                    stamp if ipv4 or ipv6 else None,
                ),
            )
        except Exception as exc:
            if db.is_integrity_error(exc):
                raise Conflict(f"{name} is taken")
            raise
        changes.record(tx, zone.id, zone.name, name)
        return _get(tx, "id", host_id)

    return db.run(run)


def search(
    db: Database,
    *,
    user_id: int | None = None,
    zone_id: int | None = None,
    text: str = "",
    flagged: bool = False,
    updated_before: int | None = None,
    offset: int = 0,
    limit: int = 1000,
) -> tuple[list[Host], int]:
    """Main hosts by name (related names are not listed), filtered by owner, zone, a part of the name or
    owner, abuse/blocked flags, or staleness (``updated_before``: last updated before that time, or never and
    created before it).

    :returns: the page and the total number of matches.
    """
    conditions: list[str] = [MAIN]
    params: list[object] = []
    if user_id is not None:
        conditions.append("h.user_id = ?")
        params.append(user_id)
    if zone_id is not None:
        conditions.append("h.zone_id = ?")
        params.append(zone_id)
    if text:
        conditions.append("(h.name LIKE ? ESCAPE '!' OR u.username LIKE ? ESCAPE '!')")
        params += [like_pattern(text.strip().lower())] * 2
    if flagged:
        conditions.append("(h.abuse = 1 OR h.blocked = 1)")
    if updated_before is not None:
        conditions.append("COALESCE(h.last_update_at, h.created_at) < ?")
        params.append(updated_before)
    where = (" WHERE " + " AND ".join(conditions)) if conditions else ""

    def run(tx: Transaction) -> tuple[list[Host], int]:
        total = int(tx.scalar(f"SELECT COUNT(*){_FROM}{where}", params))
        rows = tx.all(f"SELECT {_COLUMNS}{_FROM}{where} ORDER BY h.name LIMIT ? OFFSET ?", (*params, limit, offset))
        return [Host.from_row(row) for row in rows], total

    return db.read(run)


def list_for_user(db: Database, user_id: int) -> list[Host]:
    return search(db, user_id=user_id, limit=2**31 - 1)[0]


def count_for_user(db: Database, user_id: int) -> int:
    """The user's hosts (related names do not count)."""
    return int(
        db.read(lambda tx: tx.scalar("SELECT COUNT(*) FROM hosts WHERE user_id = ? AND parent_id IS NULL", (user_id,)))
    )


@dataclass(frozen=True)
class AddressChange:
    """What ``set_addresses`` found and did."""

    host: Host
    changed: bool


def set_addresses(
    db: Database,
    host_id: int,
    *,
    ipv4: str | Keep | None = KEEP,
    ipv6: str | Keep | None = KEEP,
    client: str | None = None,
    tls: bool | None = None,
    result: str | None = None,
    record: bool = False,
) -> AddressChange:
    """Set one family or both (None clears it, ``KEEP`` leaves it) in one short transaction.

    Only a real change bumps the serial and enters the feed; the update status (time, client, TLS,
    result) is written either way when ``client`` or ``result`` is given, and with ``record`` it enters the
    host's history (``store.history``). The host's related names follow it in the same transaction.

    :raises NotFound: if the host is gone.
    """

    def run(tx: Transaction) -> AddressChange:
        row = tx.one(f"SELECT ipv4, ipv6, ipv6_prefix, parent_id FROM hosts WHERE id = ?{for_update(tx)}", (host_id,))
        if row is None:
            raise NotFound(f"no host {host_id}")
        if row["parent_id"] is not None:
            raise ValidationError("A related name takes its addresses from its main host.")
        new4 = row["ipv4"] if ipv4 is KEEP else ipv4
        new6 = row["ipv6"] if ipv6 is KEEP else ipv6
        prefix = prefixes.prefix_after(row["ipv6"], new6, row["ipv6_prefix"], None)
        changed = (new4, new6) != (row["ipv4"], row["ipv6"])
        stamp = now()
        assignments, params = [], []
        if changed:
            assignments += ["ipv4 = ?", "ipv6 = ?", "ipv6_prefix = ?", "address_changed_at = ?"]
            params += [new4, new6, prefix, stamp]
        if client is not None or result is not None:
            assignments += ["last_update_at = ?", "last_client = ?", "last_tls = ?", "last_result = ?"]
            params += [stamp, client, None if tls is None else int(tls), result]
        if assignments:
            tx.execute(f"UPDATE hosts SET {', '.join(assignments)} WHERE id = ?", (*params, host_id))
        if record and result is not None:
            history.add_update_tx(
                tx,
                history.update_row(host_id, stamp, client=client, tls=bool(tls), result=result, ipv4=new4, ipv6=new6),
            )
        host = _get(tx, "id", host_id)
        if changed:
            changes.record(tx, host.zone_id, host.zone, host.name)
            relays.mark_changed_tx(tx, host_id)
            follow_tx(tx, host)
        return AddressChange(host, changed)

    return db.run(run)


def set_secret_hash(db: Database, host_id: int, secret_hash: str) -> None:
    """Replace a host's secret; the old one stops working in every updater process (see
    ``settings.HOST_SECRETS_EPOCH``)."""

    def run(tx: Transaction) -> None:
        tx.execute("UPDATE hosts SET secret_hash = ? WHERE id = ?", (secret_hash, host_id))
        settings.bump_tx(tx, settings.HOST_SECRETS_EPOCH)

    db.run(run)


def set_properties(
    db: Database,
    host_id: int,
    *,
    ttl: int | Keep | None = KEEP,
    wildcard: bool | Keep = KEEP,
    description: str | Keep = KEEP,
) -> Host:
    """Change TTL (None: the zone's), wildcard or description; the first two change DNS and enter the feed.

    :raises ValidationError: a TTL outside the zone's range, or a wildcard where the zone allows none.
    """

    def run(tx: Transaction) -> Host:
        host = _get(tx, "id", host_id)
        zone = zones.get_tx(tx, host.zone_id)
        if isinstance(ttl, int) and ttl != host.ttl:
            zone.check_host_ttl(ttl)
        if wildcard is True and not host.wildcard and not zone.allow_wildcards:
            raise ValidationError(f"The zone {zone.name} does not allow wildcard hosts.")
        dns_change = (ttl is not KEEP and ttl != host.ttl) or (wildcard is not KEEP and wildcard != host.wildcard)
        values = {"ttl": ttl, "wildcard": wildcard, "description": description}
        values = {k: (int(v) if isinstance(v, bool) else v) for k, v in values.items() if v is not KEEP}
        if values:
            assignments = ", ".join(f"{column} = ?" for column in values)
            tx.execute(f"UPDATE hosts SET {assignments} WHERE id = ?", (*values.values(), host_id))
        if dns_change:
            changes.record(tx, host.zone_id, host.zone, host.name)
        if ttl is not KEEP and ttl != host.ttl:
            # Related names have their main host's TTL.
            for related_id, name in _related_names(tx, host_id):
                tx.execute("UPDATE hosts SET ttl = ? WHERE id = ?", (ttl, related_id))
                changes.record(tx, host.zone_id, host.zone, name)
        return _get(tx, "id", host_id)

    return db.run(run)


def set_flags(
    db: Database,
    host_id: int,
    *,
    abuse: bool | Keep = KEEP,
    blocked: bool | Keep = KEEP,
    reason: str | Keep | None = KEEP,
    reset_faults: bool = False,
) -> Host:
    """Flag or clear a host; a flagged host leaves DNS, so a flip enters the feed.

    ``reason`` (at most ``REASON_MAX`` characters) says why the host is blocked or flagged for abuse.
    """

    def run(tx: Transaction) -> Host:
        host = _get(tx, "id", host_id)
        values: dict[str, Any] = {}
        if abuse is not KEEP:
            values["abuse"] = int(abuse)
        if blocked is not KEEP:
            values["blocked"] = int(blocked)
        if reason is not KEEP:
            values["blocked_reason"] = reason
        if reset_faults:
            values["client_faults"] = 0
            values["server_faults"] = 0
            # The updater's window too, or the next fault would flag the host again at once.
            values["fault_window_count"] = 0
            values["fault_window_at"] = None
        if values:
            assignments = ", ".join(f"{column} = ?" for column in values)
            tx.execute(f"UPDATE hosts SET {assignments} WHERE id = ?", (*values.values(), host_id))
        updated = _get(tx, "id", host_id)
        if (updated.abuse or updated.blocked) != (host.abuse or host.blocked):
            changes.record_host(tx, host.zone_id, host.zone, host.id, host.name)
        if values:
            flag_related_tx(tx, updated.id, updated.zone_id, updated.zone, updated.abuse, updated.blocked)
        return updated

    return db.run(run)


def delete(db: Database, host_id: int) -> Host:
    """Delete a host with its records and related names; its names leave DNS."""
    return db.run(lambda tx: delete_tx(tx, host_id))


def delete_tx(tx: Transaction, host_id: int) -> Host:
    """``delete`` inside a caller's transaction (the removal of stale hosts checks and deletes in one).

    :raises NotFound: if the host is gone.
    """
    host = _get(tx, "id", host_id)
    if host.parent_id is not None:
        # A related name: its main host's count first (its row lock before the related row's).
        tx.execute("UPDATE hosts SET related_count = related_count - 1 WHERE id = ?", (host.parent_id,))
    changes.record_host(tx, host.zone_id, host.zone, host.id, host.name)
    for related_id, name in _related_names(tx, host_id):
        changes.record(tx, host.zone_id, host.zone, name)
        tx.execute("DELETE FROM hosts WHERE id = ?", (related_id,))
    tx.execute("DELETE FROM records WHERE host_id = ?", (host_id,))
    tx.execute("DELETE FROM hosts WHERE id = ?", (host_id,))
    return host


# -- related names ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RelatedRow:
    """A related name as a transaction that writes its main host reads it."""

    id: int
    parent_id: int
    name: str
    ipv4: str | None
    ipv6: str | None
    rule: prefixes.Related


_RELATED_SQL = "SELECT id, parent_id, name, ipv4, ipv6, ifid, prefix_len, follow_ipv4 FROM hosts WHERE parent_id IN "


def _related_names(tx: Transaction, parent_id: int) -> list[tuple[int, str]]:
    return [
        (int(i), str(n))
        for i, n in tx.tuples("SELECT id, name FROM hosts WHERE parent_id = ? ORDER BY id", (parent_id,))
    ]


def related_rows_tx(tx: Transaction, parent_ids: list[int]) -> list[RelatedRow]:
    """The related names of the given main hosts, locked (their main hosts must be locked already: every
    writer takes a main host's row before its related names', so none wait for each other in a circle)."""
    found: list[RelatedRow] = []
    for start in range(0, len(parent_ids), 500):
        chunk = parent_ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        for row in tx.tuples(f"{_RELATED_SQL}({marks}) ORDER BY id{for_update(tx)}", chunk):
            rule = prefixes.Related(str(row[5]), int(row[6]), bool(row[7]))
            found.append(RelatedRow(int(row[0]), int(row[1]), str(row[2]), row[3], row[4], rule))
    return found


def follow_plan(
    related: list[RelatedRow], ipv4: str | None, ipv6: str | None, prefix: str | None
) -> list[tuple[RelatedRow, str | None, str | None]]:
    """The related names whose addresses change when their main host has ``ipv4``, ``ipv6`` and ``prefix``,
    each with its new addresses."""
    plan = []
    for row in related:
        new4, new6 = prefixes.related_addresses(row.rule, ipv4, ipv6, prefix)
        if (new4, new6) != (row.ipv4, row.ipv6):
            plan.append((row, new4, new6))
    return plan


def follow_statements(plan: list[tuple[RelatedRow, str | None, str | None]], stamp: int) -> list[tuple[str, list[Any]]]:
    """The writes of a ``follow_plan``: one statement, whatever the number of names (a CASE per column, as the
    updater writes its batch's hosts)."""
    if not plan:
        return []
    if len(plan) == 1:
        row, new4, new6 = plan[0]
        return [
            ("UPDATE hosts SET ipv4 = ?, ipv6 = ?, address_changed_at = ? WHERE id = ?", [new4, new6, stamp, row.id])
        ]
    cases = " ".join("WHEN ? THEN ?" for _ in plan)
    params: list[Any] = []
    for column in (1, 2):
        for entry in plan:
            params += (entry[0].id, entry[column])
    marks = ", ".join("?" for _ in plan)
    sql = (
        f"UPDATE hosts SET ipv4 = CASE id {cases} END, ipv6 = CASE id {cases} END, address_changed_at = ? "
        f"WHERE id IN ({marks})"
    )
    return [(sql, [*params, stamp, *(entry[0].id for entry in plan)])]


def follow_tx(tx: Transaction, host: Host) -> list[str]:
    """Bring the related names of ``host`` (a main host, locked, as written so far in ``tx``) to its addresses;
    each changed name enters the feed.

    :returns: the names that changed.
    """
    row = tx.one("SELECT ipv4, ipv6, ipv6_prefix FROM hosts WHERE id = ?", (host.id,))
    if row is None:
        return []
    plan = follow_plan(related_rows_tx(tx, [host.id]), row["ipv4"], row["ipv6"], row["ipv6_prefix"])
    for sql, params in follow_statements(plan, now()):
        tx.execute(sql, params)
    for related, _, _ in plan:
        changes.record(tx, host.zone_id, host.zone, related.name)
    return [related.name for related, _, _ in plan]


def flag_related_tx(tx: Transaction, parent_id: int, zone_id: int, zone: str, abuse: bool, blocked: bool) -> None:
    """Give the related names of a main host its abuse and blocked flags (they leave DNS with it, and come
    back with it); each that flips enters the feed."""
    for related_id, name, old_abuse, old_blocked in tx.tuples(
        "SELECT id, name, abuse, blocked FROM hosts WHERE parent_id = ? ORDER BY id", (parent_id,)
    ):
        if (bool(old_abuse), bool(old_blocked)) == (abuse, blocked):
            continue
        tx.execute("UPDATE hosts SET abuse = ?, blocked = ? WHERE id = ?", (int(abuse), int(blocked), related_id))
        if (bool(old_abuse) or bool(old_blocked)) != (abuse or blocked):
            changes.record(tx, zone_id, zone, name)
