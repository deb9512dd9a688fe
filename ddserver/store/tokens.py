"""Tokens for activation, password reset, e-mail confirmation, and update and API tokens (named, with scopes and
the hosts they cover): stored hashed, with expiry."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ddserver.db import Database, Transaction
from ddserver.errors import Conflict, LimitReached, ValidationError
from ddserver.secrets import expiry, new_token, new_update_token, token_hash
from ddserver.store.common import for_update, now


@dataclass(frozen=True)
class Token:
    id: int
    kind: str
    user_id: int | None
    payload: str | None
    created_at: int
    expires_at: int | None
    used_at: int | None


_COLUMNS = "id, kind, user_id, payload, created_at, expires_at, used_at"


def create(
    db: Database,
    kind: str,
    user_id: int | None,
    lifetime: int | None,
    payload: str | None = None,
    *,
    replace: bool = False,
) -> str:
    """Make a token; only its hash is stored. ``replace`` drops the user's other tokens of that kind.

    :param lifetime: seconds until it expires, or None for a token that does not (API tokens).
    :returns: the token itself, to be given to the person once.
    """
    token, hashed = new_token()

    def run(tx: Transaction) -> None:
        if replace and user_id is not None:
            tx.execute("DELETE FROM tokens WHERE user_id = ? AND kind = ?", (user_id, kind))
        tx.execute(
            "INSERT INTO tokens (token_hash, kind, user_id, payload, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (hashed, kind, user_id, payload, now(), None if lifetime is None else expiry(lifetime)),
        )

    db.run(run)
    return token


def _valid(tx: Transaction, kind: str, token: str, lock: bool) -> Token | None:
    row = tx.one(
        f"SELECT {_COLUMNS} FROM tokens WHERE token_hash = ? AND kind = ?{for_update(tx) if lock else ''}",
        (token_hash(token), kind),
    )
    if row is None or row["used_at"] is not None:
        return None
    if row["expires_at"] is not None and row["expires_at"] < now():
        return None
    return Token(**row)


def check(db: Database, kind: str, token: str) -> Token | None:
    """The token if it is of this kind, unused and unexpired (reusable tokens, such as API tokens)."""
    return db.read(lambda tx: _valid(tx, kind, token, lock=False))


def consume(db: Database, kind: str, token: str) -> Token | None:
    """Like ``check``, and mark it used: a single-use token works once, even under concurrent requests."""

    def run(tx: Transaction) -> Token | None:
        found = _valid(tx, kind, token, lock=True)
        if found is not None:
            tx.execute("UPDATE tokens SET used_at = ? WHERE id = ? AND used_at IS NULL", (now(), found.id))
            if tx.rowcount != 1:
                return None
        return found

    return db.run(run)


def for_user(db: Database, user_id: int, kind: str) -> list[Token]:
    rows = db.read(
        lambda tx: tx.all(f"SELECT {_COLUMNS} FROM tokens WHERE user_id = ? AND kind = ? ORDER BY id", (user_id, kind))
    )
    return [Token(**row) for row in rows]


def delete_for_user(db: Database, user_id: int, kind: str) -> None:
    db.run(lambda tx: tx.execute("DELETE FROM tokens WHERE user_id = ? AND kind = ?", (user_id, kind)))


def prune(db: Database) -> int:
    """Delete expired and used tokens."""

    def run(tx: Transaction) -> int:
        tx.execute(
            "DELETE FROM tokens WHERE used_at IS NOT NULL OR (expires_at IS NOT NULL AND expires_at < ?)",
            (now(),),
        )
        return tx.rowcount

    return db.run(run)


# -- update and API tokens (kind "update") -------------------------------------------------------------

#: The token kind of update and API tokens: reusable, named, with scopes and the hosts they cover.
UPDATE = "update"
#: Tokens a user may hold at once.
MAX_PER_USER = 50
#: A token's last use is written at most this often (seconds): reading it costs no write per update.
TOUCH_INTERVAL = 60


class Scope(enum.StrEnum):
    """What a token may do."""

    #: Set and delete addresses through the dyndns2 updater (``/nic/update``, ``/nic/delete``).
    UPDATE = "update"
    #: Set and clear TXT records (the ACME DNS-01 hooks, ``/nic/acme``).
    TXT = "txt"
    #: Manage hosts, their addresses, TXT records and tokens through the JSON API.
    API = "api"


ALL_SCOPES = frozenset(Scope)


def parse_scopes(text: str | None) -> frozenset[Scope]:
    """The scopes of a stored ``scopes`` column (unknown words are ignored; NULL, from before scopes: all)."""
    if text is None:
        return ALL_SCOPES
    known = {s.value: s for s in Scope}
    return frozenset(known[word] for word in text.split() if word in known)


def format_scopes(scopes: Iterable[Scope]) -> str:
    return " ".join(s.value for s in Scope if s in set(scopes))


@dataclass(frozen=True, slots=True)
class Grant:
    """What a valid update or API token lets its holder do."""

    id: int
    user_id: int
    scopes: frozenset[Scope]
    #: The token covers the user's hosts in this zone only.
    zone_id: int | None = None
    #: The token covers these hosts only (None: not limited to listed hosts).
    host_ids: frozenset[int] | None = None
    expires_at: int | None = None
    last_used_at: int | None = None

    @property
    def all_hosts(self) -> bool:
        return self.zone_id is None and self.host_ids is None

    def covers(self, host_id: int, zone_id: int) -> bool:
        """Whether a host of the token's user is within the token's hosts."""
        if self.host_ids is not None:
            return host_id in self.host_ids
        return self.zone_id is None or self.zone_id == zone_id

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes

    def expired(self, at: int) -> bool:
        return self.expires_at is not None and self.expires_at < at

    def needs_touch(self, at: int) -> bool:
        """Whether the last use stored is older than ``TOUCH_INTERVAL``."""
        return self.last_used_at is None or at - self.last_used_at >= TOUCH_INTERVAL


@dataclass(frozen=True)
class TokenInfo:
    """An update or API token as its owner's list shows it (never the token itself)."""

    id: int
    name: str
    scopes: frozenset[Scope]
    zone: str | None
    #: Names of the hosts a host-limited token covers (None: not limited to listed hosts).
    hosts: tuple[str, ...] | None
    created_at: int
    expires_at: int | None
    last_used_at: int | None

    def expired(self, at: int) -> bool:
        return self.expires_at is not None and self.expires_at < at


#: The columns ``grant_from_row`` reads, prefixed with ``t.``.
GRANT_COLUMNS = "t.id, t.user_id, t.scopes, t.zone_id, t.host_scoped, t.expires_at, t.last_used_at"


def grant_from_row(tx: Transaction, row: Mapping[str, Any]) -> Grant:
    """A ``Grant`` from a row of ``GRANT_COLUMNS`` (reads the hosts of a host-limited token)."""
    host_ids = None
    if row["host_scoped"]:
        host_ids = frozenset(
            int(r[0]) for r in tx.tuples("SELECT host_id FROM token_hosts WHERE token_id = ?", (row["id"],))
        )
    return Grant(
        int(row["id"]),
        int(row["user_id"]),
        parse_scopes(row["scopes"]),
        None if row["zone_id"] is None else int(row["zone_id"]),
        host_ids,
        row["expires_at"],
        row["last_used_at"],
    )


def create_grant(
    db: Database,
    user_id: int,
    name: str,
    scopes: Iterable[Scope],
    *,
    zone_id: int | None = None,
    host_ids: Iterable[int] | None = None,
    expires_at: int | None = None,
) -> tuple[str, int]:
    """Make an update or API token for ``user_id``; only its hash is stored.

    :param zone_id: limit it to the user's hosts in this zone.
    :param host_ids: limit it to these hosts (which must be the user's).
    :returns: the token itself (to be shown once) and its id.
    :raises ValidationError: a host that is not the user's, or a zone and hosts at once.
    :raises Conflict: another token of the user has this name.
    :raises LimitReached: the user holds ``MAX_PER_USER`` tokens.
    """
    token, hashed = new_update_token()
    wanted = None if host_ids is None else sorted(set(host_ids))
    if wanted is not None and zone_id is not None:
        raise ValidationError("A token is limited to a zone or to hosts, not both.")

    def run(tx: Transaction) -> int:
        # The user's row is locked: two requests cannot both pass the count.
        tx.execute(f"SELECT id FROM users WHERE id = ?{for_update(tx)}", (user_id,))
        if tx.scalar("SELECT COUNT(*) FROM tokens WHERE user_id = ? AND kind = ?", (user_id, UPDATE)) >= MAX_PER_USER:
            raise LimitReached(f"a user holds {MAX_PER_USER} tokens at most")
        if tx.scalar(
            "SELECT COUNT(*) FROM tokens WHERE user_id = ? AND kind = ? AND name = ?", (user_id, UPDATE, name)
        ):
            raise Conflict(f"a token named {name!r} exists")
        if wanted:
            marks = ", ".join("?" for _ in wanted)
            owned = tx.scalar(f"SELECT COUNT(*) FROM hosts WHERE user_id = ? AND id IN ({marks})", (user_id, *wanted))
            if owned != len(wanted):
                raise ValidationError("A token can only cover your own hosts.")
        token_id = tx.insert(
            "INSERT INTO tokens (token_hash, kind, user_id, created_at, expires_at, name, scopes, zone_id, host_scoped) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (hashed, UPDATE, user_id, now(), expires_at, name, format_scopes(scopes), zone_id, int(wanted is not None)),
        )
        for host_id in wanted or ():
            tx.execute("INSERT INTO token_hosts (token_id, host_id) VALUES (?, ?)", (token_id, host_id))
        return token_id

    return token, db.run(run)


def grant_for(db: Database, token: str) -> Grant | None:
    """The grant of a presented update or API token (a bearer token: no user name), if valid and unexpired."""

    def run(tx: Transaction) -> Grant | None:
        row = tx.one(
            f"SELECT {GRANT_COLUMNS} FROM tokens t WHERE t.token_hash = ? AND t.kind = ? AND t.used_at IS NULL",
            (token_hash(token), UPDATE),
        )
        if row is None:
            return None
        grant = grant_from_row(tx, row)
        return None if grant.expired(now()) else grant

    return db.read(run)


def touch(db: Database, grant: Grant, at: int | None = None) -> bool:
    """Record the token's use, when the last one recorded is older than ``TOUCH_INTERVAL`` (one write a
    minute per token at most, whichever process answers).

    :returns: whether it wrote.
    """
    stamp = now() if at is None else at
    if not grant.needs_touch(stamp):
        return False

    def run(tx: Transaction) -> bool:
        tx.execute(
            "UPDATE tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)",
            (stamp, grant.id, stamp - TOUCH_INTERVAL),
        )
        return tx.rowcount > 0

    return db.run(run)


def list_grants(db: Database, user_id: int) -> list[TokenInfo]:
    """The user's update and API tokens, oldest first."""

    def run(tx: Transaction) -> list[TokenInfo]:
        rows = tx.all(
            "SELECT t.id, t.name, t.scopes, z.name AS zone, t.host_scoped, t.created_at, t.expires_at, t.last_used_at "
            "FROM tokens t LEFT JOIN zones z ON z.id = t.zone_id WHERE t.user_id = ? AND t.kind = ? ORDER BY t.id",
            (user_id, UPDATE),
        )
        names: dict[int, list[str]] = {}
        for token_id, host in tx.tuples(
            "SELECT th.token_id, h.name FROM token_hosts th JOIN hosts h ON h.id = th.host_id "
            "JOIN tokens t ON t.id = th.token_id WHERE t.user_id = ? ORDER BY h.name",
            (user_id,),
        ):
            names.setdefault(int(token_id), []).append(str(host))
        return [
            TokenInfo(
                int(row["id"]),
                row["name"] or "",
                parse_scopes(row["scopes"]),
                row["zone"],
                tuple(names.get(int(row["id"]), ())) if row["host_scoped"] else None,
                int(row["created_at"]),
                row["expires_at"],
                row["last_used_at"],
            )
            for row in rows
        ]

    return db.read(run)


def revoke(db: Database, user_id: int, token_id: int) -> bool:
    """Delete one of the user's update and API tokens; the next request with it is refused.

    :returns: whether there was such a token.
    """

    def run(tx: Transaction) -> bool:
        tx.execute("DELETE FROM token_hosts WHERE token_id IN (SELECT id FROM tokens WHERE id = ? AND user_id = ?)",
                   (token_id, user_id))  # fmt: skip
        tx.execute("DELETE FROM tokens WHERE id = ? AND user_id = ? AND kind = ?", (token_id, user_id, UPDATE))
        return tx.rowcount > 0

    return db.run(run)
