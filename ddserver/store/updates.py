"""The updater's hot path: look up hosts and credentials in one read, apply an update in one short
transaction, and keep the fault and rate-limit counters that several updater processes share."""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ddserver import prefixes
from ddserver.db import Database, Transaction
from ddserver.errors import NotFound
from ddserver.store import changes, events, history, hosts, relays, settings, tokens
from ddserver.store.common import for_update, now

#: The token kind of update and API tokens (``store.tokens``: named, with scopes, hashed).
UPDATE_TOKEN = tokens.UPDATE

_HOST_COLUMNS = (
    "h.id, h.name, h.zone_id, z.name, h.user_id, u.username, h.secret_hash, h.ipv4, h.ipv6, h.abuse, "
    "h.blocked, u.is_disabled, h.address_changed_at, h.last_update_at, h.wildcard, h.ipv6_prefix"
)
# The lookups below leave related names out (``h.parent_id IS NULL``): they follow their main host and are not
# updated on their own.
_HOST_FROM = " FROM hosts h JOIN zones z ON z.id = h.zone_id JOIN users u ON u.id = h.user_id"
_HOST_WIDTH = 16
#: Names per query when reading many hosts (SQLite takes 999 parameters at most in older builds).
_READ_CHUNK = 500


@dataclass(frozen=True, slots=True)
class HostState:
    """What an update needs to know about a host."""

    id: int
    name: str
    zone_id: int
    zone: str
    user_id: int
    username: str
    secret_hash: str
    ipv4: str | None
    ipv6: str | None
    abuse: bool
    blocked: bool
    user_disabled: bool
    address_changed_at: int | None
    last_update_at: int | None
    wildcard: bool = False
    #: The last IPv6 prefix an update carried, while it is the base of the host's related names.
    ipv6_prefix: str | None = None

    @property
    def in_dns(self) -> bool:
        return not (self.abuse or self.blocked or self.user_disabled)

    @classmethod
    def from_tuple(cls, row: Sequence[Any]) -> HostState:
        """From a row of ``_HOST_COLUMNS``; the flags come back from the drivers as integers."""
        return cls(
            row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8],
            bool(row[9]), bool(row[10]), bool(row[11]), row[12], row[13], bool(row[14]), row[15],
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Account:
    """The user whose name was given as the login."""

    id: int
    disabled: bool
    #: The presented secret is one of this user's update tokens, valid and unexpired: what it may do.
    grant: tokens.Grant | None = None

    @property
    def token_ok(self) -> bool:
        return self.grant is not None


@dataclass(frozen=True, slots=True)
class Lookup:
    """Everything one update request reads, in one read transaction."""

    hosts: dict[str, HostState]
    account: Account | None
    #: Failures counted in the current window, by rate-limit key.
    failures: dict[str, int]


def lookup(
    db: Database,
    names: Iterable[str],
    login: str,
    token_hash: str | None,
    limit_keys: Sequence[str],
    window: int,
    *,
    account_hosts: bool = False,
) -> Lookup:
    """Read the named hosts, the login (a host or a user, with a token check), and the rate-limit counters.

    :param token_hash: the hash of the presented secret, checked against the user's update tokens (whose
        grant comes back in ``Lookup.account``).
    :param account_hosts: also read every host of the user named by the login (for a request without
        hostnames that authenticates with a user name).
    """
    wanted = sorted(set(names) | ({login} if "." in login else set()))
    since = now() - window

    # The rate-limit counters ride along with the host query as scalar subqueries: one round trip fewer
    # on the hot path.
    counters = "".join(", (SELECT hits FROM rate_limits WHERE name = ? AND window_start >= ?)" for _ in limit_keys)
    counter_params = [value for key in limit_keys for value in (key, since)]

    def run(tx: Transaction) -> Lookup:
        hosts: dict[str, HostState] = {}
        failures: dict[str, int] = {}
        if wanted:
            rows = _host_rows(tx, wanted, counters, counter_params)
            for row in rows:
                host = HostState.from_tuple(row[:_HOST_WIDTH])
                hosts[host.name] = host
            if rows:
                failures = {key: int(hits) for key, hits in zip(limit_keys, rows[0][_HOST_WIDTH:], strict=True) if hits}
        account = None
        if login not in hosts:
            # The user with the token, if the secret is one of theirs: one statement (the hosts of a token
            # limited to listed hosts take a second).
            row = tx.one(
                f"SELECT u.id AS uid, u.is_disabled, {tokens.GRANT_COLUMNS} FROM users u LEFT JOIN tokens t "
                "ON t.user_id = u.id AND t.kind = ? AND t.token_hash = ? AND t.used_at IS NULL "
                "AND (t.expires_at IS NULL OR t.expires_at >= ?) WHERE u.username = ?",
                (UPDATE_TOKEN, token_hash or "", now(), login),
            )
            if row is not None:
                grant = None if row["id"] is None else tokens.grant_from_row(tx, row)
                account = Account(int(row["uid"]), bool(row["is_disabled"]), grant)
                if account_hosts:
                    for row in tx.tuples(
                        f"SELECT {_HOST_COLUMNS}{_HOST_FROM} WHERE h.user_id = ? AND h.parent_id IS NULL", (account.id,)
                    ):
                        host = HostState.from_tuple(row)
                        hosts[host.name] = host
        if limit_keys and not (wanted and hosts):
            marks = ", ".join("?" for _ in limit_keys)
            for key, hits in tx.tuples(
                f"SELECT name, hits FROM rate_limits WHERE name IN ({marks}) AND window_start >= ?",
                (*limit_keys, since),
            ):
                failures[str(key)] = int(hits)
        return Lookup(hosts, account, failures)

    # No transaction: the usual request is one statement, and the rest need no common snapshot.
    return db.query(run)


def _host_rows(tx: Transaction, names: Sequence[str], extra: str = "", extra_params: Sequence[Any] = ()) -> list[Any]:
    """The rows of the named hosts: ``_HOST_COLUMNS``, then the ``extra`` columns (SQL with ``extra_params``)."""
    marks = ", ".join("?" for _ in names)
    # One JSON array per row instead of 16 columns: pymysql decodes every column's description in Python on
    # every query, which cost more than the query itself (half the read's CPU time).
    return [
        json.loads(row[0])
        for row in tx.tuples(
            f"SELECT JSON_ARRAY({_HOST_COLUMNS}{extra}){_HOST_FROM} WHERE h.name IN ({marks}) AND h.parent_id IS NULL",
            (*extra_params, *names),
        )
    ]


def read_hosts(db: Database, names: Iterable[str]) -> dict[str, HostState]:
    """The named hosts that exist, by name (the host caches' refresh of what changed)."""
    wanted = sorted(set(names))

    def run(tx: Transaction) -> dict[str, HostState]:
        found: dict[str, HostState] = {}
        for start in range(0, len(wanted), _READ_CHUNK):
            for row in _host_rows(tx, wanted[start : start + _READ_CHUNK]):
                host = HostState.from_tuple(row)
                found[host.name] = host
        return found

    return db.query(run)


@dataclass(frozen=True, slots=True)
class Applied:
    """The host's addresses after ``apply``, whether they changed, and its times after it."""

    ipv4: str | None
    ipv6: str | None
    changed: bool
    #: The host was flagged or blocked meanwhile: nothing was written.
    refused: bool = False
    #: The host's secret was replaced since it was read (``Update.check_secret``): nothing was written.
    stale_secret: bool = False
    address_changed_at: int | None = None
    last_update_at: int | None = None
    #: Whether the host is a wildcard after the update.
    wildcard: bool = False
    #: The feed's id for this change, when it is the host's last in its batch and the database tells ids.
    change_id: int | None = None
    #: The update entered the host's history (``Update.history``): it wrote the host's status.
    recorded: bool = False
    #: The host's IPv6 prefix after the update (``HostState.ipv6_prefix``).
    ipv6_prefix: str | None = None
    #: The related names whose addresses changed with the host's, in the same transaction.
    related: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Update:
    """One update to write: the host as it was read, the addresses asked for, and the status to record."""

    host: HostState
    ipv4: str | None
    ipv6: str | None
    set_ipv4: bool
    set_ipv6: bool
    client: str | None = None
    tls: bool = False
    result: str = "good"
    #: A change of nothing writes the update status only when it is older than this many seconds.
    refresh_status_after: int = 0
    #: The host's secret authenticated the update: write nothing if it was replaced since ``host`` was read.
    check_secret: bool = False
    #: Make the host a wildcard (True, only where its zone allows wildcards) or not (False); None leaves it.
    wildcard: bool | None = None
    #: An update that writes the host's status also enters its history (``store.history``), in the same
    #: transaction.
    history: bool = True
    #: The client fault the update counts as, for its history row (``too-soon``, ``nochg-flood``).
    fault: str | None = None
    #: The IPv6 prefix the update carries (``2001:db8:1234:5600::/56``), for the host's related names; None:
    #: none (``prefixes.prefix_after``).
    ipv6_prefix: str | None = None


#: The columns of a host that ``apply_many`` locks and compares, in this order.
# related_count is kept under the host's row lock by whoever adds or removes a related name, so the locked row
# tells exactly whether there are any: a host without costs no further read.
_LOCKED = (
    "id, ipv4, ipv6, abuse, blocked, address_changed_at, last_update_at, secret_hash, wildcard, zone_id, "
    "ipv6_prefix, related_count"
)
#: The columns it writes, from a ``_Row``.
_WRITTEN = (
    "ipv4",
    "ipv6",
    "address_changed_at",
    "last_update_at",
    "last_client",
    "last_tls",
    "last_result",
    "wildcard",
    "ipv6_prefix",
)


@dataclass(slots=True)
class _Row:
    """A locked host row as the transaction has made it so far."""

    ipv4: str | None
    ipv6: str | None
    abuse: bool
    blocked: bool
    address_changed_at: int | None
    last_update_at: int | None
    secret_hash: str
    wildcard: int
    zone_id: int
    ipv6_prefix: str | None = None
    #: Related names the host has.
    related: int = 0
    last_client: str | None = None
    last_tls: int | None = None
    last_result: str | None = None
    #: Something was changed that must be written.
    dirty: bool = False
    #: Its addresses or prefix changed: its related names follow.
    moved: bool = False


def _apply_to(row: _Row, update: Update, stamp: int, no_wildcards: set[int]) -> Applied:
    """Apply ``update`` to a locked row, in memory (written at the end of the transaction).

    :param no_wildcards: the zones (ids) that allow no wildcards: a wildcard asked for there is ignored.
    """
    old4, old6, old_wildcard, old_prefix = row.ipv4, row.ipv6, bool(row.wildcard), row.ipv6_prefix
    if row.abuse or row.blocked:
        return Applied(old4, old6, False, refused=True, wildcard=old_wildcard, ipv6_prefix=old_prefix)
    if update.check_secret and row.secret_hash != update.host.secret_hash:
        return Applied(old4, old6, False, stale_secret=True, wildcard=old_wildcard, ipv6_prefix=old_prefix)
    new4 = update.ipv4 if update.set_ipv4 else old4
    new6 = update.ipv6 if update.set_ipv6 else old6
    cleared = update.set_ipv6 and update.ipv6 is None
    prefix = prefixes.prefix_after(old6, new6, old_prefix, update.ipv6_prefix, cleared=cleared)
    wildcard = old_wildcard
    if update.wildcard is not None and not (update.wildcard and row.zone_id in no_wildcards):
        wildcard = update.wildcard
    changed = (new4, new6, prefix) != (old4, old6, old_prefix)
    if changed:
        row.ipv4, row.ipv6, row.ipv6_prefix, row.address_changed_at = new4, new6, prefix, stamp
        row.moved = True
    if wildcard != old_wildcard:
        row.wildcard = int(wildcard)
        changed = True
    elif (
        not changed and row.last_update_at is not None and stamp - int(row.last_update_at) < update.refresh_status_after
    ):
        return Applied(
            new4,
            new6,
            False,
            address_changed_at=row.address_changed_at,
            last_update_at=row.last_update_at,
            wildcard=wildcard,
            ipv6_prefix=prefix,
        )
    row.last_update_at, row.last_client, row.last_tls, row.last_result = (
        stamp,
        update.client,
        int(update.tls),
        update.result,
    )
    row.dirty = True
    return Applied(
        new4,
        new6,
        changed,
        address_changed_at=row.address_changed_at,
        last_update_at=stamp,
        wildcard=wildcard,
        recorded=update.history,
        ipv6_prefix=prefix,
    )


def _write_rows(rows: dict[int, _Row]) -> list[tuple[str, list[Any]]]:
    """The statement that writes the rows that changed, whatever their number (none if none changed)."""
    dirty = sorted(host_id for host_id, row in rows.items() if row.dirty)
    if len(dirty) == 1:
        row = rows[dirty[0]]
        assignments = ", ".join(f"{column} = ?" for column in _WRITTEN)
        return [(f"UPDATE hosts SET {assignments} WHERE id = ?", [*(getattr(row, c) for c in _WRITTEN), dirty[0]])]
    if dirty:
        # A CASE per column: standard SQL, the same on both dialects.
        cases = " ".join("WHEN ? THEN ?" for _ in dirty)
        assignments = ", ".join(f"{column} = CASE id {cases} END" for column in _WRITTEN)
        params: list[Any] = []
        for column in _WRITTEN:
            for host_id in dirty:
                params += (host_id, getattr(rows[host_id], column))
        marks = ", ".join("?" for _ in dirty)
        return [(f"UPDATE hosts SET {assignments} WHERE id IN ({marks})", [*params, *dirty])]
    return []


def apply(
    db: Database,
    host: HostState,
    ipv4: str | None,
    ipv6: str | None,
    set_ipv4: bool,
    set_ipv6: bool,
    *,
    client: str | None,
    tls: bool,
    result: str,
    refresh_status_after: int = 0,
) -> Applied:
    """Apply an update in one short transaction: lock the host's row, compare, write, and for a real change
    bump the zone's serial and append to the feed (``changes.record``), so a committed ``good`` is in DNS.

    A change of nothing writes the update status only when it is older than ``refresh_status_after``.

    :raises NotFound: the host was deleted meanwhile.
    """
    outcome = apply_many(db, [Update(host, ipv4, ipv6, set_ipv4, set_ipv6, client, tls, result, refresh_status_after)])
    if isinstance(outcome[0], NotFound):
        raise outcome[0]
    return outcome[0]


def apply_many(db: Database, updates: Sequence[Update]) -> list[Applied | NotFound]:
    """Apply several updates in one transaction (group commit: one log flush for all of them).

    Each update is checked on its own under the row lock of its host, in the order given (a later update
    of the same host sees the earlier one), so one deleted or flagged host does not fail the others. The
    serial of each zone goes up by one per change and every change enters the feed (``changes.record_many_statements``),
    in the same transaction.

    :returns: per update, in order, what ``apply`` would return, or ``NotFound`` for a host deleted meanwhile.
    """
    if not updates:
        return []
    ids = sorted({u.host.id for u in updates})

    def run(tx: Transaction) -> list[Applied | NotFound]:
        # Rows are locked in id order (then zones in id order), the order every other writer of hosts and
        # zones takes them in, so concurrent batches queue instead of deadlocking. A join here would lock
        # the zone's row as well, for the whole transaction.
        marks = ", ".join("?" for _ in ids)
        # One JSON column, as in lookup(): pymysql's decoding of each column's description cost more than the rest.
        locked = [
            json.loads(r[0])
            for r in tx.tuples(
                f"SELECT JSON_ARRAY({_LOCKED}) FROM hosts WHERE id IN ({marks}) ORDER BY id{for_update(tx)}", ids
            )
        ]
        rows = {
            int(r[0]): _Row(
                r[1], r[2], bool(r[3]), bool(r[4]), r[5], r[6], r[7], int(r[8]), int(r[9]), r[10], int(r[11])
            )
            for r in locked
        }
        no_wildcards: set[int] = set()
        asked = sorted({row.zone_id for u in updates if u.wildcard and (row := rows.get(u.host.id)) is not None})
        if asked:
            # Read after the host rows are locked: a zone that stopped allowing wildcards and cleared its hosts'
            # has committed by now, or waits for these locks and clears what this batch sets.
            zone_marks = ", ".join("?" for _ in asked)
            no_wildcards = {
                int(zone_id)
                for zone_id, allowed in tx.tuples(
                    f"SELECT id, allow_wildcards FROM zones WHERE id IN ({zone_marks})", asked
                )
                if not allowed
            }
        stamp = now()
        results: list[Applied | NotFound] = []
        fed: dict[tuple[int, str], list[str]] = {}
        recorded: list[tuple[Any, ...]] = []
        #: Hosts whose addresses changed: their relays become pending in this transaction (the outbox).
        relayed: list[int] = []
        for update in updates:
            host = update.host
            row = rows.get(host.id)
            if row is None:
                results.append(NotFound(f"no host {host.name}"))
                continue
            before = (row.ipv4, row.ipv6)
            applied = _apply_to(row, update, stamp, no_wildcards)
            if applied.changed:
                fed.setdefault((host.zone_id, host.zone), []).append(host.name)
            if (applied.ipv4, applied.ipv6) != before:
                relayed.append(host.id)
            if applied.recorded:
                recorded.append(
                    history.update_row(
                        host.id,
                        stamp,
                        client=update.client,
                        tls=update.tls,
                        result=update.result,
                        ipv4=applied.ipv4,
                        ipv6=applied.ipv6,
                        fault=update.fault,
                    )
                )
            results.append(applied)
        # Related names follow their main hosts, in this transaction (their rows locked after all main rows).
        zone_of = {u.host.id: (u.host.zone_id, u.host.zone) for u in updates}
        moved = sorted(host_id for host_id, row in rows.items() if row.moved and row.related)
        followed: dict[int, list[str]] = {}
        follow: list[tuple[str, list[Any]]] = []
        if moved:
            related_rows = hosts.related_rows_tx(tx, moved)
            for host_id in moved:
                row = rows[host_id]
                plan = hosts.follow_plan(
                    [r for r in related_rows if r.parent_id == host_id], row.ipv4, row.ipv6, row.ipv6_prefix
                )
                follow += hosts.follow_statements(plan, stamp)
                followed[host_id] = [r.name for r, _, _ in plan]
                fed.setdefault(zone_of[host_id], []).extend(followed[host_id])
            if followed:
                last = {u.host.id: i for i, u in enumerate(updates)}
                for host_id, names in followed.items():
                    result = results[last[host_id]]
                    if names and isinstance(result, Applied):
                        results[last[host_id]] = dataclasses.replace(result, related=tuple(names))
        # The writes and the commit in one round trip where the connection takes several statements.
        statements = (
            _write_rows(rows) + follow + history.updates_statements(recorded) + relays.changed_statements(relayed)
        )
        inserts = []
        for (zone_id, zone), names in sorted(fed.items()):
            inserts.append(len(statements))
            statements += changes.record_many_statements(tx.db, zone_id, zone, names)
        outcome = tx.script(statements, commit=True)
        change_ids: dict[str, int] = {}
        for index in inserts:
            change_ids.update(changes.change_ids(outcome[index]))
        if change_ids:
            # Each host's newest change id goes with its last update of the batch (the state it left).
            last = {u.host.id: i for i, u in enumerate(updates)}
            for i in last.values():
                result = results[i]
                if isinstance(result, Applied) and result.changed:
                    results[i] = dataclasses.replace(result, change_id=change_ids.get(updates[i].host.name))
        return results

    return db.run(run)


def _write_status(tx: Transaction, host_id: int, stamp: int, client: str | None, tls: bool, result: str) -> None:
    tx.execute(
        "UPDATE hosts SET last_update_at = ?, last_client = ?, last_tls = ?, last_result = ? WHERE id = ?",
        (stamp, client, int(tls), result, host_id),
    )


def record_status(db: Database, host_id: int, *, client: str | None, tls: bool, result: str) -> None:
    """Write the update status alone (an update that changed nothing, answered without a transaction of its own
    otherwise)."""
    db.run(lambda tx: _write_status(tx, host_id, now(), client, tls, result))


def add_fault(
    db: Database,
    host: HostState,
    *,
    limit: int,
    window: int,
    reason: str,
    client: str | None,
    history_row: tuple[Any, ...] | None = None,
) -> bool:
    """Count one client fault against a host, and flag it for abuse when the window holds ``limit`` of them.

    The counter is updated in the database so every updater process counts into the same window. A host
    that gets flagged leaves DNS (the change enters the feed) and an event records why.

    :param history_row: a row of ``history.update_row`` to enter the host's history in the same transaction.

    :returns: True if this fault flagged the host.
    """
    stamp = now()
    start = stamp - window

    def run(tx: Transaction) -> bool:
        # The count is assigned before the window start: MySQL evaluates assignments left to right with
        # the new values, SQLite with the old ones; in this order both read the old window start.
        tx.execute(
            "UPDATE hosts SET client_faults = client_faults + 1, "
            "fault_window_count = CASE WHEN fault_window_at IS NULL OR fault_window_at < ? THEN 1 "
            "ELSE fault_window_count + 1 END, "
            "fault_window_at = CASE WHEN fault_window_at IS NULL OR fault_window_at < ? THEN ? "
            "ELSE fault_window_at END WHERE id = ?",
            (start, start, stamp, host.id),
        )
        if history_row is not None:
            history.add_update_tx(tx, history_row)
        if not limit:
            return False
        row = tx.one(f"SELECT fault_window_count, abuse, blocked FROM hosts WHERE id = ?{for_update(tx)}", (host.id,))
        if row is None or row["abuse"] or int(row["fault_window_count"]) < limit:
            return False
        tx.execute(
            "UPDATE hosts SET abuse = 1, blocked_reason = ? WHERE id = ?",
            (f"{limit} client faults within {window} s (last: {reason})"[:255], host.id),
        )
        changes.record(tx, host.zone_id, host.zone, host.name)
        hosts.flag_related_tx(tx, host.id, host.zone_id, host.zone, True, bool(row["blocked"]))
        events.add_tx(tx, "host-abuse", host.name, client=client, detail=f"flagged by the updater: {reason}")
        return True

    return db.run(run)


def secrets_epoch(db: Database) -> str | None:
    """What updater processes that keep hosts in memory poll besides the feed: the host secrets' epoch
    (``settings.HOST_SECRETS_EPOCH``, which a replaced secret changes)."""
    return db.query(lambda tx: tx.scalar("SELECT value FROM settings WHERE name = ?", (settings.HOST_SECRETS_EPOCH,)))


def weak_secret_state(db: Database, host_id: int, key: str, window: int) -> tuple[int, str | None]:
    """The failures counted under ``key`` in the current window, and the client address of the host's last
    update (the one address where its weak secret is still checked past its limit)."""
    since = now() - window
    row = db.query(
        lambda tx: tx.one(
            "SELECT h.last_client, (SELECT r.hits FROM rate_limits r WHERE r.name = ? AND r.window_start >= ?) "
            "AS hits FROM hosts h WHERE h.id = ?",
            (key, since, host_id),
        )
    )
    if row is None:
        return 0, None
    return int(row["hits"] or 0), row["last_client"]


def add_server_fault(db: Database, host_id: int) -> None:
    db.run(lambda tx: tx.execute("UPDATE hosts SET server_faults = server_faults + 1 WHERE id = ?", (host_id,)))


@dataclass(frozen=True, slots=True)
class Trail:
    """The failed login that ``count_failure`` counts, as the hosts it was against record it (``store.history``)."""

    #: Hosts whose secret was checked and did not match.
    wrong: Sequence[int]
    #: Hosts whose weak secret was not checked (``history.WEAK_GUARD``).
    held: Sequence[int]
    client: str | None
    tls: bool
    #: Failed logins kept per host (a trail is trimmed to it now and then).
    keep: int
    #: The client's rate-limit key and its limit: a wrong secret that takes the client to its limit is
    #: recorded as ``history.CLIENT_LIMIT`` (its further failures are neither counted nor recorded).
    client_key: str | None = None
    client_limit: int = 0


def count_failure(db: Database, keys: Sequence[str], window: int, trail: Trail | None = None) -> dict[str, int]:
    """Count a failed login under each rate-limit key (such as ``client:192.0.2.1`` and ``login:alice``);
    a key whose window has passed starts again at one. With ``trail``, record it against the hosts it was
    against, in the same transaction.

    :returns: the failures now counted under each key.
    """
    stamp = now()
    start = stamp - window
    if db.dialect == "mysql":
        sql = (
            "INSERT INTO rate_limits (name, window_start, hits) VALUES (?, ?, 1) ON DUPLICATE KEY UPDATE "
            "hits = IF(window_start < ?, 1, hits + 1), window_start = IF(window_start < ?, ?, window_start)"
        )
    else:
        sql = (
            "INSERT INTO rate_limits (name, window_start, hits) VALUES (?, ?, 1) ON CONFLICT (name) DO UPDATE SET "
            "hits = CASE WHEN window_start < ? THEN 1 ELSE hits + 1 END, "
            "window_start = CASE WHEN window_start < ? THEN ? ELSE window_start END"
        )

    def run(tx: Transaction) -> dict[str, int]:
        names = sorted({key[:191] for key in keys})
        for name in names:
            tx.execute(sql, (name, stamp, start, start, stamp))
        # Now and then, drop counters whose window has long passed.
        if random.random() < 0.02:
            tx.execute("DELETE FROM rate_limits WHERE window_start < ?", (start - window,))
        marks = ", ".join("?" for _ in names)
        counted = {
            str(name): int(hits)
            for name, hits in tx.tuples(f"SELECT name, hits FROM rate_limits WHERE name IN ({marks})", names)
        }
        if trail is not None:
            _record_trail(tx, trail, counted, stamp)
        return counted

    return db.run(run)


def _record_trail(tx: Transaction, trail: Trail, counted: dict[str, int], stamp: int) -> None:
    limited = bool(
        trail.client_key and trail.client_limit and counted.get(trail.client_key[:191], 0) >= trail.client_limit
    )
    for host_ids, reason in (
        (trail.wrong, history.CLIENT_LIMIT if limited else history.WRONG_SECRET),
        (trail.held, history.WEAK_GUARD),
    ):
        if host_ids:
            history.add_auth_failures_tx(
                tx, host_ids, stamp, client=trail.client, tls=trail.tls, reason=reason, keep=trail.keep
            )


def failures(db: Database, key: str, window: int) -> int:
    """The failures counted under ``key`` in the current window."""
    since = now() - window
    value = db.read(
        lambda tx: tx.scalar("SELECT hits FROM rate_limits WHERE name = ? AND window_start >= ?", (key, since))
    )
    return int(value or 0)


def rehash_secret(db: Database, host_id: int, old_hash: str, new_hash: str) -> bool:
    """Replace a legacy secret hash after a successful check (only if nobody changed it meanwhile).

    :returns: whether it was replaced.
    """
    return db.run(
        lambda tx: (
            tx.execute(
                "UPDATE hosts SET secret_hash = ? WHERE id = ? AND secret_hash = ?", (new_hash, host_id, old_hash)
            ).rowcount
            > 0
        )
    )


def ping(db: Database) -> float:
    """Seconds one trivial read takes (for health checks)."""
    started = time.perf_counter()
    db.read(lambda tx: tx.scalar("SELECT 1"))
    return time.perf_counter() - started
