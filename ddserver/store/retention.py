"""Retention of personal data: what ``ddserver prune`` deletes when it has served its use, and the deletion
of an account with everything that names it (docs/privacy.md says what is kept, how long and why)."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from ddserver.db import Database, Transaction
from ddserver.errors import LimitReached
from ddserver.store import changes, events, ownzones, sessions, tokens
from ddserver.store.audit import ADMIN
from ddserver.store.common import now
from ddserver.store.users import _admin_count, _get, _record_host_changes


@dataclass(frozen=True)
class Ages:
    """How long each kind of data is kept, in seconds (from the configuration: see ``ages_for`` in the cli)."""

    changes: int
    audit: int
    #: The facts rate limits count; at least the longest window that counts them (the caller ensures it).
    events: int
    #: The updater's failure counters: a counter whose window started longer ago than this counts no more.
    rate_limits: int
    #: Accounts never activated; 0 keeps them.
    unactivated: int


#: One step of ``ddserver prune``: deletes what is older than its age, and says what and how many.
Pruner = Callable[[Database, Ages], tuple[str, int]]


def _changes(db: Database, ages: Ages) -> tuple[str, int]:
    return "change-feed entries", changes.prune(db, ages.changes)


def _tokens(db: Database, ages: Ages) -> tuple[str, int]:
    return "expired or used tokens", tokens.prune(db)


def _sessions(db: Database, ages: Ages) -> tuple[str, int]:
    return "expired sessions", sessions.prune(db)


#: Rows deleted per transaction: an attack can leave millions of failed logins, and one huge transaction
#: would hold its locks long and exceed a Galera cluster's write-set limits.
BATCH = 5000


def _delete_events(db: Database, kinds: tuple[str, ...], keep: bool, older_than: int) -> int:
    """Delete events older than ``older_than`` seconds of ``kinds`` (``keep``: of every other kind)."""
    marks = ", ".join("?" for _ in kinds)
    cutoff = time.time() - older_than

    def run(tx: Transaction) -> int:
        ids = [
            int(row[0])
            for row in tx.tuples(
                f"SELECT id FROM events WHERE created_at < ? AND kind {'NOT IN' if keep else 'IN'} ({marks}) "
                "ORDER BY created_at LIMIT ?",
                (cutoff, *kinds, BATCH),
            )
        ]
        if ids:
            tx.execute(f"DELETE FROM events WHERE id IN ({', '.join('?' for _ in ids)})", ids)
        return len(ids)

    deleted = 0
    while True:
        batch = db.run(run)
        deleted += batch
        if batch < BATCH:
            return deleted


def _audit(db: Database, ages: Ages) -> tuple[str, int]:
    return "audit entries", _delete_events(db, events.RATE_LIMIT_KINDS, True, ages.audit)


def _rate_limit_events(db: Database, ages: Ages) -> tuple[str, int]:
    return "login-failure and mail-request events", _delete_events(db, events.RATE_LIMIT_KINDS, False, ages.events)


def _rate_limits(db: Database, ages: Ages) -> tuple[str, int]:
    def run(tx: Transaction) -> int:
        tx.execute("DELETE FROM rate_limits WHERE window_start < ?", (now() - ages.rate_limits,))
        return tx.rowcount

    return "update-login failure counters", db.run(run)


def _unactivated(db: Database, ages: Ages) -> tuple[str, int]:
    if not ages.unactivated:
        return "accounts never activated", 0
    stale = db.read(
        lambda tx: tx.tuples(
            # An account with hosts was set up by someone (an admin, an import): it is not a stale sign-up.
            "SELECT id FROM users u WHERE is_active = 0 AND last_login_at IS NULL AND is_admin = 0 AND created_at < ? "
            "AND NOT EXISTS (SELECT 1 FROM hosts h WHERE h.user_id = u.id)",
            (now() - ages.unactivated,),
        )
    )
    for (user_id,) in stale:
        delete_account(db, int(user_id), detail="never activated: deleted by prune")
    return "accounts never activated", len(stale)


#: What ``ddserver prune`` runs, in order. A store module whose table keeps data for a while adds its step
#: here; a step that needs another setting adds a field to ``Ages``, filled in by ``retention_ages`` in the cli.
PRUNERS: list[Pruner] = [_changes, _tokens, _sessions, _audit, _rate_limit_events, _rate_limits, _unactivated]


def prune(db: Database, ages: Ages) -> list[tuple[str, int]]:
    """Run every step of ``PRUNERS``: what each deleted, and how many."""
    return [step(db, ages) for step in PRUNERS]


@dataclass(frozen=True)
class Deleted:
    """What ``delete_account`` did."""

    hosts: int
    #: The name the audit trail knows the account by from now on (``user deleted-…``).
    pseudonym: str


def delete_account(
    db: Database,
    user_id: int,
    *,
    actor_id: int | None = None,
    client: str | None = None,
    detail: str = "",
) -> Deleted:
    """Delete an account and everything that names it, in one transaction; the one function every way of
    deleting an account (web interface, admin pages, command line, prune) goes through.

    Deleted: the user row, its sessions, tokens, zone memberships, the zones it brought (with every host in
    them), hosts and records (with change-feed entries so that DNS drops the names), its own account and host events, the rate-limit facts and
    counters about its name, e-mail, id, sessions and hosts. Anonymised: audit entries of admin actions
    about it or by it keep a pseudonym instead of its name and hosts; any other event keeps no client
    address the account logged in or updated from. Kept: facts counted against a client address
    (``address:…`` events, the updater's ``client:…`` counters), which are not tied to the account and
    expire with their window, since deleting them would let anyone reset the limits by deleting an account.

    :param actor_id: the admin who deletes it (None: the account itself, or the command line).
    :param client: the admin's address, for the audit entry of the deletion.
    :param detail: what the audit entry of the deletion says besides the number of hosts.
    :raises NotFound: no such user.
    :raises LimitReached: for the last admin.
    """
    pseudonym = "deleted-" + secrets.token_hex(4)

    def run(tx: Transaction) -> Deleted:
        user = _get(tx, "id", user_id)
        if user.is_admin and not user.is_disabled and _admin_count(tx) <= 1:
            raise LimitReached("this is the last admin: make another user admin first")
        host_rows = tx.tuples("SELECT name, last_client, ipv4, ipv6 FROM hosts WHERE user_id = ?", (user_id,))
        host_names = [str(row[0]) for row in host_rows]
        session_ids = [str(row[0]) for row in tx.tuples("SELECT id FROM sessions WHERE user_id = ?", (user_id,))]
        account_subject = f"user {user.username}"
        # The subjects that name it: audit and rate-limit events about the account, its sessions and hosts.
        subjects = [
            account_subject,
            f"user:{user_id}",
            f"name:{user.username}",
            f"name:{user.email}",
            *(f"session:{sid}" for sid in session_ids),
            *(f"host {name}" for name in host_names),
            *host_names,
        ]
        # The client addresses it used: its sessions', its hosts' last updates and addresses, its events'.
        addresses = {str(value) for row in host_rows for value in row[1:] if value}
        addresses |= {
            str(row[0])
            for row in tx.tuples("SELECT client FROM sessions WHERE user_id = ? AND client IS NOT NULL", (user_id,))
        }
        marks = ", ".join("?" for _ in subjects)
        addresses |= {
            str(row[0])
            for row in tx.tuples(
                f"SELECT DISTINCT client FROM events WHERE client IS NOT NULL "
                f"AND (actor_id = ? OR (kind <> ? AND subject IN ({marks})))",
                (user_id, ADMIN, *subjects),
            )
        }

        # Its names in free text, as whole words (a short user name must not eat into other words).
        naming = re.compile(
            "|".join(rf"(?<![\w.@-]){re.escape(n)}(?![\w.@-])" for n in (user.email, *host_names, user.username))
        )
        # Admin actions: kept for the audit trail, under a pseudonym.
        renames = {
            account_subject: f"user {pseudonym}",
            **{f"host {n}": f"host of user {pseudonym}" for n in host_names},
        }
        for event_id, subject, actor, text in tx.tuples(
            f"SELECT id, subject, actor_id, detail FROM events WHERE kind = ? "
            f"AND (actor_id = ? OR subject IN ({marks}))",
            (ADMIN, user_id, *subjects),
        ):
            text = naming.sub(pseudonym, str(text))
            if actor == user_id:
                text = f"{text} (by {pseudonym})".strip()
            tx.execute(
                "UPDATE events SET subject = ?, actor_id = ?, detail = ? WHERE id = ?",
                (renames.get(str(subject), subject), None if actor == user_id else actor, text[:65000], event_id),
            )
        # Everything else about it, or done by it, goes.
        tx.execute(
            f"DELETE FROM events WHERE kind <> ? AND (actor_id = ? OR subject IN ({marks}))",
            (ADMIN, user_id, *subjects),
        )
        if addresses:
            # Facts counted against an address keep it: see above.
            where = ", ".join("?" for _ in addresses)
            tx.execute(
                f"UPDATE events SET client = NULL WHERE client IN ({where}) AND subject NOT LIKE 'address:%'",
                tuple(addresses),
            )
        if host_names:
            weak = ", ".join("?" for _ in host_names)
            tx.execute(f"DELETE FROM rate_limits WHERE name IN ({weak})", tuple(f"weak:{n}"[:191] for n in host_names))

        tx.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
        tx.execute("DELETE FROM tokens WHERE user_id = ?", (user_id,))
        tx.execute("DELETE FROM zone_users WHERE user_id = ?", (user_id,))
        # The zones it brought go, with every host in them (other users' too), each through the feed.
        ownzones.delete_owned_tx(tx, user_id)
        _record_host_changes(tx, user_id)
        tx.execute("DELETE FROM records WHERE host_id IN (SELECT id FROM hosts WHERE user_id = ?)", (user_id,))
        tx.execute("DELETE FROM hosts WHERE user_id = ?", (user_id,))
        tx.execute("DELETE FROM users WHERE id = ?", (user_id,))
        gone = f"deleted with {len(host_names)} hosts" + (f"; {detail}" if detail else "")
        events.add_tx(
            tx,
            ADMIN if actor_id is not None else "account",
            f"user {pseudonym}",
            actor_id=actor_id,
            client=client,
            detail=gone,
        )
        return Deleted(len(host_names), pseudonym)

    return db.run(run)
