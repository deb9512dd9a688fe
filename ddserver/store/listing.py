"""Lean reads for the interface's longest pages: a user's 1,000 hosts, the admin's list of 100,000 users.

A user's list of 1,000 hosts read through ``hosts.search`` builds 1,000 full ``Host`` rows (23 columns,
two joins); with pymysql every column of every row is decoded in Python, which cost more than rendering.
"""

from __future__ import annotations

from typing import NamedTuple

from ddserver.db import Database, Transaction
from ddserver.store.common import like_pattern
from ddserver.store.users import _COLUMNS as _USER_COLUMNS
from ddserver.store.users import User


class HostRow(NamedTuple):
    """One line of a user's host list."""

    id: int
    name: str
    ipv4: str | None
    ipv6: str | None
    description: str
    last_update_at: int | None
    abuse: int
    blocked: int
    #: Its related names (listed on its page, not here).
    related_count: int = 0


def hosts_of_user(db: Database, user_id: int) -> list[HostRow]:
    """Every (main) host of a user, by name, with what the host list shows."""
    rows = db.read(
        lambda tx: tx.tuples(
            "SELECT id, name, ipv4, ipv6, description, last_update_at, abuse, blocked, related_count FROM hosts "
            "WHERE user_id = ? AND parent_id IS NULL ORDER BY name",
            (user_id,),
        )
    )
    return [HostRow._make(row) for row in rows]


def users_page(db: Database, text: str = "", *, offset: int = 0, limit: int = 50) -> tuple[list[User], int]:
    """One page of users whose name or e-mail contains ``text``, by name, and the number of matches
    (what ``users.search`` answers, cheaper over 100,000 users).

    Without ``text`` the page's ids come from the name index alone (a deep page skips index entries,
    not whole rows). With ``text`` (a substring: every row is read) one scan gives the page and, by a
    window count, the total.
    """
    if not text:

        def run(tx: Transaction) -> tuple[list[User], int]:
            total = int(tx.scalar("SELECT COUNT(*) FROM users"))
            rows = tx.all(
                f"SELECT {_user_columns('u')} FROM users u JOIN (SELECT id FROM users ORDER BY username "
                "LIMIT ? OFFSET ?) page ON page.id = u.id ORDER BY u.username",
                (limit, offset),
            )
            return [User.from_row(row) for row in rows], total

        return db.read(run)
    pattern = like_pattern(text.strip().lower())

    def search(tx: Transaction) -> tuple[list[User], int]:
        rows = tx.all(
            f"SELECT {_user_columns('u')}, COUNT(*) OVER () AS matches FROM users u "
            "WHERE u.username LIKE ? ESCAPE '!' OR u.email LIKE ? ESCAPE '!' ORDER BY u.username LIMIT ? OFFSET ?",
            (pattern, pattern, limit, offset),
        )
        if rows:
            total = int(rows[0]["matches"])
        else:  # past the last page (or nothing matches): count apart
            total = int(
                tx.scalar(
                    "SELECT COUNT(*) FROM users WHERE username LIKE ? ESCAPE '!' OR email LIKE ? ESCAPE '!'",
                    (pattern, pattern),
                )
            )
        found = []
        for row in rows:
            row = dict(row)
            del row["matches"]
            found.append(User.from_row(row))
        return found, total

    return db.read(search)


def _user_columns(alias: str) -> str:
    return ", ".join(f"{alias}.{column.strip()}" for column in _USER_COLUMNS.split(","))
