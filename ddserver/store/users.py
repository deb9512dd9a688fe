"""User accounts: names, e-mail, password hashes, flags and host limits."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ddserver.db import Database, Transaction
from ddserver.errors import Conflict, LimitReached, NotFound
from ddserver.store import changes
from ddserver.store.common import boolean, for_update, like_pattern, now

_COLUMNS = (
    "id, username, email, password_hash, is_admin, is_active, is_approved, is_disabled, max_hosts, "
    "totp_secret, language, failed_logins, created_at, last_login_at"
)
_FLAGS = ("is_admin", "is_active", "is_approved", "is_disabled")
UNLIMITED = -1
#: The highest host limit an admin can set (the column holds far more; no one needs more hosts).
MAX_HOST_LIMIT = 10**9


@dataclass(frozen=True)
class User:
    id: int
    username: str
    email: str
    password_hash: str | None = dataclasses.field(repr=False)
    is_admin: bool
    is_active: bool
    is_approved: bool
    is_disabled: bool
    max_hosts: int | None
    totp_secret: str | None = dataclasses.field(repr=False)
    language: str | None
    failed_logins: int
    created_at: int
    last_login_at: int | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> User:
        row = dict(row)
        for flag in _FLAGS:
            row[flag] = boolean(row[flag])
        return cls(**row)

    @property
    def can_log_in(self) -> bool:
        return self.is_active and self.is_approved and not self.is_disabled

    def host_limit(self, default: int) -> int | None:
        """Hosts this user may have; None means unlimited."""
        limit = self.max_hosts if self.max_hosts is not None else default
        return None if limit < 0 else limit


def add(
    db: Database,
    username: str,
    email: str,
    *,
    password_hash: str | None = None,
    is_admin: bool = False,
    is_active: bool = True,
    is_approved: bool = True,
    max_hosts: int | None = None,
    language: str | None = None,
) -> User:
    """Add a user; name and e-mail must be validated already.

    :raises Conflict: if the name or the e-mail address is taken.
    """

    def run(tx: Transaction) -> User:
        if tx.scalar("SELECT COUNT(*) FROM users WHERE username = ?", (username,)):
            raise Conflict(f"user {username} exists already")
        if tx.scalar("SELECT COUNT(*) FROM users WHERE email = ?", (email,)):
            raise Conflict(f"the e-mail address {email} belongs to another user")
        try:
            user_id = tx.insert(
                "INSERT INTO users (username, email, password_hash, is_admin, is_active, is_approved, "
                "max_hosts, language, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    username,
                    email,
                    password_hash,
                    int(is_admin),
                    int(is_active),
                    int(is_approved),
                    max_hosts,
                    language,
                    now(),
                ),
            )
        except Exception as exc:
            if db.is_integrity_error(exc):
                raise Conflict(f"user {username} or e-mail address {email} exists already")
            raise
        return _get(tx, "id", user_id)

    return db.run(run)


def _get(tx: Transaction, column: str, value: Any) -> User:
    row = tx.one(f"SELECT {_COLUMNS} FROM users WHERE {column} = ?", (value,))
    if row is None:
        raise NotFound(f"no user {value}")
    return User.from_row(row)


def get(db: Database, user_id: int) -> User:
    """:raises NotFound: if there is no such user."""
    return db.read(lambda tx: _get(tx, "id", user_id))


def get_by_name(db: Database, username: str) -> User:
    return db.read(lambda tx: _get(tx, "username", username.strip().lower()))


def get_by_email(db: Database, email: str) -> User:
    return db.read(lambda tx: _get(tx, "email", email.strip().lower()))


def find_login(db: Database, login: str) -> User | None:
    """The user whose name or e-mail address is ``login``, or None."""
    login = login.strip().lower()
    row = db.read(lambda tx: tx.one(f"SELECT {_COLUMNS} FROM users WHERE username = ? OR email = ?", (login, login)))
    return None if row is None else User.from_row(row)


def search(db: Database, text: str = "", *, offset: int = 0, limit: int = 50) -> tuple[list[User], int]:
    """Users whose name or e-mail contains ``text``, by name, one page at a time.

    :returns: the page and the total number of matches.
    """
    where, params = "", ()  # type: tuple[str, tuple[str, ...]]
    if text:
        pattern = like_pattern(text.strip().lower())
        where, params = " WHERE username LIKE ? ESCAPE '!' OR email LIKE ? ESCAPE '!'", (pattern, pattern)

    def run(tx: Transaction) -> tuple[list[User], int]:
        total = int(tx.scalar(f"SELECT COUNT(*) FROM users{where}", params))
        rows = tx.all(
            f"SELECT {_COLUMNS} FROM users{where} ORDER BY username LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [User.from_row(row) for row in rows], total

    return db.read(run)


def list_all(db: Database) -> list[User]:
    return search(db, limit=2**31 - 1)[0]


def set_password_hash(db: Database, user_id: int, password_hash: str) -> None:
    db.run(lambda tx: tx.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id)))


def set_email(db: Database, user_id: int, email: str) -> None:
    """:raises Conflict: if another user has that address."""

    def run(tx: Transaction) -> None:
        if tx.scalar("SELECT COUNT(*) FROM users WHERE email = ? AND id <> ?", (email, user_id)):
            raise Conflict(f"the e-mail address {email} belongs to another user")
        tx.execute("UPDATE users SET email = ? WHERE id = ?", (email, user_id))

    db.run(run)


def _admin_count(tx: Transaction) -> int:
    # Lock the admins' rows so two concurrent demotions cannot both see "another admin is left".
    return len(tx.tuples(f"SELECT id FROM users WHERE is_admin = 1 AND is_disabled = 0{for_update(tx)}"))


def set_flags(db: Database, user_id: int, **flags: bool) -> User:
    """Set any of ``is_admin``, ``is_active``, ``is_approved``, ``is_disabled``.

    :raises LimitReached: if this would leave no active admin.
    """
    unknown = set(flags) - set(_FLAGS)
    if unknown:
        raise ValueError(f"unknown flags: {', '.join(sorted(unknown))}")

    def run(tx: Transaction) -> User:
        user = _get(tx, "id", user_id)
        losing_admin = (
            user.is_admin
            and not user.is_disabled
            and (flags.get("is_admin") is False or flags.get("is_disabled") is True)
        )
        if losing_admin and _admin_count(tx) <= 1:
            raise LimitReached("this is the last admin: make another user admin first")
        if flags:
            assignments = ", ".join(f"{flag} = ?" for flag in flags)
            tx.execute(f"UPDATE users SET {assignments} WHERE id = ?", (*(int(v) for v in flags.values()), user_id))
        if "is_disabled" in flags and flags["is_disabled"] != user.is_disabled:
            _record_host_changes(tx, user_id)
        return _get(tx, "id", user_id)

    return db.run(run)


def set_max_hosts(db: Database, user_id: int, max_hosts: int | None) -> None:
    """Set the user's host limit: None for the configured default, -1 for unlimited."""
    db.run(lambda tx: tx.execute("UPDATE users SET max_hosts = ? WHERE id = ?", (max_hosts, user_id)))


def set_language(db: Database, user_id: int, language: str | None) -> None:
    db.run(lambda tx: tx.execute("UPDATE users SET language = ? WHERE id = ?", (language, user_id)))


def set_totp_secret(db: Database, user_id: int, secret: str | None) -> None:
    db.run(lambda tx: tx.execute("UPDATE users SET totp_secret = ? WHERE id = ?", (secret, user_id)))


def record_login_tx(tx: Transaction, user_id: int, ok: bool) -> None:
    """Count a failed login, or reset the count and note the time of a successful one."""
    if ok:
        tx.execute("UPDATE users SET failed_logins = 0, last_login_at = ? WHERE id = ?", (now(), user_id))
    else:
        tx.execute("UPDATE users SET failed_logins = failed_logins + 1 WHERE id = ?", (user_id,))


def record_login(db: Database, user_id: int, ok: bool) -> None:
    """Count a failed login, or reset the count and note the time of a successful one."""
    db.run(lambda tx: record_login_tx(tx, user_id, ok))


def _record_host_changes(tx: Transaction, user_id: int) -> None:
    for host_id, host_name, zone_id, zone_name in tx.tuples(
        "SELECT h.id, h.name, h.zone_id, z.name FROM hosts h JOIN zones z ON z.id = h.zone_id WHERE h.user_id = ?",
        (user_id,),
    ):
        changes.record_host(tx, zone_id, zone_name, host_id, host_name)


def delete(db: Database, user_id: int) -> int:
    """Delete a user and everything that names them: ``retention.delete_account``.

    :returns: how many hosts went with them.
    :raises LimitReached: for the last admin.
    """
    from ddserver.store import retention

    return retention.delete_account(db, user_id).hosts


def count(db: Database) -> int:
    return int(db.read(lambda tx: tx.scalar("SELECT COUNT(*) FROM users")))
