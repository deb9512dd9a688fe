"""Mail to host owners (stale warnings, removals, abuse flags): what is due, what was sent, confirmations.

One row per host, kind and cycle (``sql/*/0014_host_notices.sql``): the unique key makes the same event enter
once, however many runs of ``ddserver notify`` find it at the same time. A row is ``queued`` until a run
claims it (``sending``, in a transaction of its own, before the mail goes out), and ``sent`` after the SMTP
server took the mail; a refused mail puts it back to ``queued``. A run that dies between claim and ``sent``
leaves the row ``sending``: it is never sent again (at most once), and is marked ``unknown`` later.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ddserver.db import Database, Transaction
from ddserver.errors import NotFound
from ddserver.secrets import token_hash
from ddserver.store import events, hosts
from ddserver.store.common import for_update, now


class Kind(enum.StrEnum):
    STALE = "stale"
    REMOVAL = "removal"
    ABUSE = "abuse"


class State(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    #: Claimed by a run that never said whether the mail went out.
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Pending:
    """A queued notice and the owner it goes to."""

    id: int
    host_id: int
    host_name: str
    kind: Kind
    cycle: int
    user_id: int
    username: str
    email: str
    language: str | None


@dataclass(frozen=True)
class Removable:
    """A host whose warning was sent long enough ago, with neither an update nor a confirmation since."""

    host_id: int
    host_name: str
    cycle: int


def _insert_ignore(tx: Transaction) -> str:
    return "INSERT OR IGNORE" if tx.dialect == "sqlite" else "INSERT IGNORE"


def _alive(created_at: int, last_update_at: int | None, confirmed_at: int | None) -> int:
    """A host's last sign of life: made, updated (``nochg`` included) or confirmed by its owner."""
    return max(int(created_at), int(last_update_at or 0), int(confirmed_at or 0))


_CANDIDATES = (
    "SELECT h.id, h.name, h.user_id, h.created_at, h.last_update_at, "
    "(SELECT MAX(n.confirmed_at) FROM host_notices n WHERE n.host_id = h.id AND n.kind = 'stale') AS confirmed_at "
    "FROM hosts h JOIN users u ON u.id = h.user_id "
    "WHERE u.is_disabled = 0 AND h.blocked = 0 AND COALESCE(h.last_update_at, h.created_at) < ? "
    # Hosts warned already about this silence (a confirmation only ever answers the current warning, so an
    # unanswered one at or after the last update is the current one): not read again every day.
    "AND NOT EXISTS (SELECT 1 FROM host_notices s WHERE s.host_id = h.id AND s.kind = 'stale' "
    "AND s.confirmed_at IS NULL AND s.cycle >= COALESCE(h.last_update_at, h.created_at))"
)


def queue_stale(db: Database, *, stale_after: int, at: int) -> int:
    """Queue a warning for each host without a sign of life for ``stale_after`` seconds that has none yet for
    this stretch of silence. Blocked hosts (an admin's decision) and disabled owners' hosts are left alone.

    :returns: how many were queued.
    """
    cutoff = at - stale_after

    def run(tx: Transaction) -> int:
        queued = 0
        for row in tx.all(_CANDIDATES, (cutoff,)):
            alive = _alive(row["created_at"], row["last_update_at"], row["confirmed_at"])
            if alive >= cutoff:
                continue
            tx.execute(
                f"{_insert_ignore(tx)} INTO host_notices (host_id, user_id, host_name, kind, cycle, state, created_at) "
                "VALUES (?, ?, ?, 'stale', ?, 'queued', ?)",
                (row["id"], row["user_id"], row["name"], alive, at),
            )
            queued += tx.rowcount
        return queued

    return db.run(run)


def removable(db: Database, *, remove_after: int, at: int) -> list[Removable]:
    """Hosts whose warning went out ``remove_after`` seconds ago or more, silent and unconfirmed since."""

    def run(tx: Transaction) -> list[Removable]:
        rows = tx.all(
            "SELECT h.id, h.name, h.created_at, h.last_update_at, n.cycle, "
            "(SELECT MAX(c.confirmed_at) FROM host_notices c WHERE c.host_id = h.id AND c.kind = 'stale') "
            "AS confirmed_at "
            "FROM host_notices n JOIN hosts h ON h.id = n.host_id JOIN users u ON u.id = h.user_id "
            "WHERE n.kind = 'stale' AND n.state = 'sent' AND n.sent_at <= ? AND n.confirmed_at IS NULL "
            "AND u.is_disabled = 0 AND h.blocked = 0",
            (at - remove_after,),
        )
        return [
            Removable(int(row["id"]), str(row["name"]), int(row["cycle"]))
            for row in rows
            if _alive(row["created_at"], row["last_update_at"], row["confirmed_at"]) == int(row["cycle"])
        ]

    return db.read(run)


def remove(db: Database, candidate: Removable, *, at: int) -> bool:
    """Delete a stale host through ``hosts.delete_tx`` (change feed, records) and queue the mail that says so,
    in one transaction, after checking under the host's row lock that it is still silent and unconfirmed.

    :returns: False when it was updated or confirmed meanwhile, or is gone already.
    """

    def run(tx: Transaction) -> bool:
        row = tx.one(
            f"SELECT h.id, h.name, h.user_id, h.created_at, h.last_update_at, h.blocked, u.is_disabled "
            f"FROM hosts h JOIN users u ON u.id = h.user_id WHERE h.id = ?{for_update(tx)}",
            (candidate.host_id,),
        )
        if row is None or row["blocked"] or row["is_disabled"]:
            return False
        confirmed = tx.scalar(
            "SELECT MAX(confirmed_at) FROM host_notices WHERE host_id = ? AND kind = 'stale'", (candidate.host_id,)
        )
        if _alive(row["created_at"], row["last_update_at"], confirmed) != candidate.cycle:
            return False
        try:
            hosts.delete_tx(tx, candidate.host_id)
        except NotFound:
            return False
        tx.execute(
            f"{_insert_ignore(tx)} INTO host_notices (host_id, user_id, host_name, kind, cycle, state, created_at) "
            "VALUES (?, ?, ?, 'removal', ?, 'queued', ?)",
            (candidate.host_id, row["user_id"], row["name"], candidate.cycle, at),
        )
        events.add_tx(tx, "host", f"host {row['name']}", detail="removed by ddserver notify: stale, warning unanswered")
        return True

    return db.run(run)


def queue_abuse(db: Database, *, at: int) -> int:
    """Close the abuse notices of hosts whose flag was cleared, and queue one for each flagged host without
    an open one (a host flagged again after a clear gets a new cycle).

    :returns: how many were queued.
    """

    def run(tx: Transaction) -> int:
        tx.execute(
            "UPDATE host_notices SET resolved_at = ? WHERE kind = 'abuse' AND resolved_at IS NULL "
            "AND host_id NOT IN (SELECT id FROM hosts WHERE abuse = 1)",
            (at,),
        )
        queued = 0
        for row in tx.all(
            "SELECT h.id, h.name, h.user_id, "
            "(SELECT MAX(n.cycle) FROM host_notices n WHERE n.host_id = h.id AND n.kind = 'abuse') AS last "
            "FROM hosts h JOIN users u ON u.id = h.user_id WHERE h.abuse = 1 AND u.is_disabled = 0 "
            "AND NOT EXISTS (SELECT 1 FROM host_notices o WHERE o.host_id = h.id AND o.kind = 'abuse' "
            "AND o.resolved_at IS NULL)"
        ):
            tx.execute(
                f"{_insert_ignore(tx)} INTO host_notices (host_id, user_id, host_name, kind, cycle, state, created_at) "
                "VALUES (?, ?, ?, 'abuse', ?, 'queued', ?)",
                (row["id"], row["user_id"], row["name"], int(row["last"] or 0) + 1, at),
            )
            queued += tx.rowcount
        return queued

    return db.run(run)


def pending(db: Database) -> list[Pending]:
    """Queued notices whose owner is not disabled (a disabled owner's wait until the account is enabled)."""
    rows = db.read(
        lambda tx: tx.all(
            "SELECT n.id, n.host_id, n.host_name, n.kind, n.cycle, n.user_id, u.username, u.email, u.language "
            "FROM host_notices n JOIN users u ON u.id = n.user_id "
            "WHERE n.state = 'queued' AND u.is_disabled = 0 ORDER BY n.id"
        )
    )
    return [Pending(**{**row, "kind": Kind(row["kind"])}) for row in rows]


def claim(db: Database, notice_id: int, *, at: int, token: str | None = None, expires_at: int | None = None) -> bool:
    """Take a queued notice for sending (with the hash of its confirmation link's token, if it has one).

    :returns: False when another run took it first.
    """

    def run(tx: Transaction) -> bool:
        tx.execute(
            "UPDATE host_notices SET state = 'sending', claimed_at = ?, token_hash = ?, expires_at = ? "
            "WHERE id = ? AND state = 'queued'",
            (at, None if token is None else token_hash(token), expires_at, notice_id),
        )
        return tx.rowcount == 1

    return db.run(run)


def mark_sent(db: Database, notice_id: int, *, at: int) -> None:
    db.run(
        lambda tx: tx.execute(
            "UPDATE host_notices SET state = 'sent', sent_at = ? WHERE id = ? AND state = 'sending'", (at, notice_id)
        )
    )


def release(db: Database, notice_id: int) -> None:
    """The SMTP server did not take the mail: queue it again for the next run (with a new link)."""
    db.run(
        lambda tx: tx.execute(
            "UPDATE host_notices SET state = 'queued', claimed_at = NULL, token_hash = NULL, expires_at = NULL "
            "WHERE id = ? AND state = 'sending'",
            (notice_id,),
        )
    )


def mark_unknown(db: Database, *, claimed_before: int) -> list[str]:
    """Notices claimed before that time and never finished (the run died): marked ``unknown``, not resent.

    :returns: their descriptions (``kind host``), to be reported once.
    """

    def run(tx: Transaction) -> list[str]:
        rows = tx.all(
            "SELECT id, kind, host_name FROM host_notices WHERE state = 'sending' AND claimed_at < ?",
            (claimed_before,),
        )
        for row in rows:
            tx.execute("UPDATE host_notices SET state = 'unknown' WHERE id = ? AND state = 'sending'", (row["id"],))
        return [f"{row['kind']} {row['host_name']}" for row in rows]

    return db.run(run)


def forget_gone(db: Database) -> int:
    """Drop the finished notices of hosts that no longer exist (nothing can be mailed twice about them)."""

    def run(tx: Transaction) -> int:
        tx.execute(
            "DELETE FROM host_notices WHERE state IN ('sent', 'unknown') "
            "AND NOT EXISTS (SELECT 1 FROM hosts h WHERE h.id = host_notices.host_id)"
        )
        return tx.rowcount

    return db.run(run)


def check_link(db: Database, token: str, *, at: int | None = None) -> str | None:
    """The host a warning's link is about, if the link is known, unexpired and unanswered, and the host exists."""
    stamp = now() if at is None else at
    row = db.read(
        lambda tx: tx.one(
            "SELECT n.expires_at, n.confirmed_at, h.name FROM host_notices n JOIN hosts h ON h.id = n.host_id "
            "WHERE n.token_hash = ? AND n.kind = 'stale'",
            (token_hash(token),),
        )
    )
    if row is None or row["confirmed_at"] is not None:
        return None
    if row["expires_at"] is not None and int(row["expires_at"]) < stamp:
        return None
    return str(row["name"])


def confirm(db: Database, token: str, *, at: int | None = None) -> str | None:
    """The owner keeps a host with the link of a warning: a sign of life that stops its removal.

    :returns: the host's name, or None for an unknown, expired or spent link, or a host already gone.
    """
    stamp = now() if at is None else at

    def run(tx: Transaction) -> str | None:
        row = tx.one(
            "SELECT n.id, n.host_id, n.cycle, n.expires_at, n.confirmed_at, h.name, h.created_at, h.last_update_at "
            f"FROM host_notices n JOIN hosts h ON h.id = n.host_id WHERE n.token_hash = ? AND n.kind = 'stale'"
            f"{for_update(tx)}",
            (token_hash(token),),
        )
        if row is None or row["confirmed_at"] is not None:
            return None
        if row["expires_at"] is not None and int(row["expires_at"]) < stamp:
            return None
        confirmed = tx.scalar(
            "SELECT MAX(confirmed_at) FROM host_notices WHERE host_id = ? AND kind = 'stale'", (row["host_id"],)
        )
        # Only the warning about the host's current silence is answered: after an update the host is kept
        # anyway, and a later cycle must not be confirmed with an old mail's link.
        if _alive(row["created_at"], row["last_update_at"], confirmed) == int(row["cycle"]):
            tx.execute("UPDATE host_notices SET confirmed_at = ? WHERE id = ?", (stamp, row["id"]))
        return str(row["name"])

    return db.run(run)


def open_warning(db: Database, host_id: int) -> int | None:
    """The cycle of the warning the host's owner got and has not answered (no update or confirmation since),
    if any: the host page offers a button to keep the host."""

    def run(tx: Transaction) -> int | None:
        host = tx.one("SELECT created_at, last_update_at FROM hosts WHERE id = ?", (host_id,))
        if host is None:
            return None
        confirmed = tx.scalar(
            "SELECT MAX(confirmed_at) FROM host_notices WHERE host_id = ? AND kind = 'stale'", (host_id,)
        )
        alive = _alive(host["created_at"], host["last_update_at"], confirmed)
        row = tx.one(
            "SELECT cycle FROM host_notices WHERE host_id = ? AND kind = 'stale' AND cycle = ? "
            "AND confirmed_at IS NULL AND state IN ('sent', 'unknown')",
            (host_id, alive),
        )
        return None if row is None else int(row["cycle"])

    return db.read(run)


def confirm_host(db: Database, host_id: int, *, at: int | None = None) -> bool:
    """The owner keeps a host with the button on its page (the answer to ``open_warning``).

    :returns: False when there was no warning to answer.
    """
    cycle = open_warning(db, host_id)
    if cycle is None:
        return False
    stamp = now() if at is None else at

    def run(tx: Transaction) -> bool:
        tx.execute(
            "UPDATE host_notices SET confirmed_at = ? WHERE host_id = ? AND kind = 'stale' AND cycle = ? "
            "AND confirmed_at IS NULL",
            (stamp, host_id, cycle),
        )
        return tx.rowcount == 1

    return db.run(run)
