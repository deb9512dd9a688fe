"""Retention of personal data on both databases: what prune deletes and keeps, and that deleting an account
leaves no row naming it (every table is scanned, so tables added later are covered too)."""

from __future__ import annotations

import time

import pytest

from ddserver import secrets
from ddserver.cli import retention_ages
from ddserver.config import Config
from ddserver.db import Database
from ddserver.errors import LimitReached
from ddserver.store import changes, events, hosts, records, recursor, retention, sessions, tokens, users, zones
from tests.support import rows_naming

DAY = 86400


def _age(db: Database, table: str, column: str, seconds: float, where: str, params: tuple) -> None:
    """Make rows look ``seconds`` old."""
    db.run(lambda tx: tx.execute(f"UPDATE {table} SET {column} = ? WHERE {where}", (time.time() - seconds, *params)))


def _count(db: Database, sql: str, params: tuple = ()) -> int:
    return int(db.read(lambda tx: tx.scalar(sql, params)))


@pytest.fixture
def zone(db):
    return zones.add(db, "dyn.example.org", ["ns1.example.org"], "hostmaster.example.org")


def test_prune_deletes_what_is_past_its_age_and_keeps_the_rest(db, zone, monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 2)  # events go in several transactions
    ages = retention_ages(Config())
    live = users.add(db, "livia", "livia@example.org")
    # Sessions: one expired, one live.
    _, old_session = sessions.create(db, live.id, 60, client="198.51.100.1")
    _, new_session = sessions.create(db, live.id, 3600, client="198.51.100.2")
    db.run(lambda tx: tx.execute("UPDATE sessions SET expires_at = 1 WHERE id = ?", (old_session.id,)))
    # Audit entries (a year and a day old, and recent) and rate-limit facts (eight days old, and recent).
    for kind, subject in (("account", "user livia"), ("admin", "user livia"), ("host-abuse", "x.dyn.example.org")):
        events.add(db, kind, subject, client="198.51.100.3", detail="old")
        events.add(db, kind, subject, client="198.51.100.3", detail="new")
    for kind in events.RATE_LIMIT_KINDS:
        events.add(db, kind, "address:198.51.100.4", client="198.51.100.4", detail="old")
        events.add(db, kind, "address:198.51.100.4", client="198.51.100.4", detail="new")
    _age(db, "events", "created_at", 366 * DAY, "detail = ? AND kind IN ('account', 'admin', 'host-abuse')", ("old",))
    _age(db, "events", "created_at", 8 * DAY, "detail = ? AND kind IN ('login-failure', 'mail-request')", ("old",))
    # The updater's failure counters: one whose window passed long ago, one current.
    db.run(
        lambda tx: tx.execute(
            "INSERT INTO rate_limits (name, window_start, hits) VALUES (?, ?, 3), (?, ?, 2)",
            ("client:198.51.100.5/32", int(time.time()) - 7 * DAY, "client:198.51.100.6/32", int(time.time())),
        )
    )
    # Sign-ups never activated: one past unactivated_days, one recent; and an old active account stays.
    stale = users.add(db, "stale", "stale@example.org", is_active=False)
    users.add(db, "fresh", "fresh@example.org", is_active=False)
    # One that has a host was set up by an admin or an import: it stays.
    imported = users.add(db, "imported", "imported@example.org", is_active=False)
    hosts.add(db, imported.id, "imp.dyn.example.org", secrets.hash_host_secret("s"), default_limit=5)
    stamps = (1, stale.id, live.id, imported.id)
    db.run(lambda tx: tx.execute("UPDATE users SET created_at = ? WHERE id IN (?, ?, ?)", stamps))
    tokens.create(db, "activate", stale.id, 60)

    done = dict((what, count) for what, count in retention.prune(db, ages))

    assert done["expired sessions"] == 1 and done["accounts never activated"] == 1
    assert done["audit entries"] == 3 and done["login-failure and mail-request events"] == 2
    assert done["update-login failure counters"] == 1
    assert [s for (s,) in db.read(lambda tx: tx.tuples("SELECT id FROM sessions"))] == [new_session.id]
    assert sorted(db.read(lambda tx: tx.tuples("SELECT kind, detail FROM events WHERE detail <> ''"))) == sorted(
        [(kind, "new") for kind in ("account", "admin", "host-abuse", *events.RATE_LIMIT_KINDS)]
        + [("account", "deleted with 0 hosts; never activated: deleted by prune")]
    )
    assert [n for (n,) in db.read(lambda tx: tx.tuples("SELECT name FROM rate_limits"))] == ["client:198.51.100.6/32"]
    assert {u.username for u in users.list_all(db)} == {"livia", "fresh", "imported"}
    assert _count(db, "SELECT COUNT(*) FROM tokens") == 0


def test_rate_limit_facts_outlive_the_windows_that_count_them(db):
    """events_days = 0 still keeps failed logins for login_window and mail requests for their hour."""
    config = Config().replace("retention", events_days=0).replace("interface", login_window=7200)
    ages = retention_ages(config)
    assert ages.events == 7200
    assert retention_ages(Config().replace("retention", events_days=0)).events == 3600
    for detail, age in (("within", 7000), ("past", 7300)):
        events.add(db, "login-failure", "address:192.0.2.9", detail=detail)
        _age(db, "events", "created_at", age, "detail = ?", (detail,))
    retention.prune(db, ages)
    assert [d for (d,) in db.read(lambda tx: tx.tuples("SELECT detail FROM events"))] == ["within"]


def test_unactivated_accounts_wait_at_least_for_their_link():
    config = Config().replace("retention", unactivated_days=0)
    assert retention_ages(config).unactivated == 0
    config = Config().replace("retention", unactivated_days=1).replace("auth", token_lifetime=3 * DAY)
    assert retention_ages(config).unactivated == 3 * DAY


def test_deleting_an_account_leaves_no_row_naming_it(db, zone):
    name, email, mine = "quentin7", "q.ueue@example.net", ["198.51.100.77", "2001:db8:77::7", "192.0.2.177"]
    user = users.add(db, name, email, password_hash="x")
    other = users.add(db, "olga", "olga@example.org", password_hash="x")
    admin = users.add(db, "root", "root@example.org", is_admin=True)
    db.run(lambda tx: tx.execute("INSERT INTO zone_users (zone_id, user_id) VALUES (?, ?)", (zone.id, user.id)))
    host = hosts.add(db, user.id, "h1.dyn.example.org", secrets.hash_host_secret("s"), default_limit=5)
    hosts.set_addresses(db, host.id, ipv4=mine[2], client=mine[0], result="good")
    records.add(db, host.id, "_acme-challenge.h1.dyn.example.org", "TXT", "token")
    kept_host = hosts.add(db, other.id, "h2.dyn.example.org", secrets.hash_host_secret("s"), default_limit=5)
    _, session = sessions.create(db, user.id, 3600, client=mine[1])
    tokens.create(db, "email", user.id, 3600, payload="new-" + email)
    tokens.create(db, "update", user.id, None)
    # Events: its own actions, failed logins by its name, e-mail, id and session, an abuse flag of its host,
    # an admin's actions about it, its own admin action about another, and another's action from its address.
    events.add(db, "account", f"user {name}", actor_id=user.id, client=mine[0], detail="password changed")
    events.add(db, "host", f"host {host.name}", actor_id=user.id, client=mine[1], detail="secret regenerated")
    for subject in (f"user:{user.id}", f"name:{name}", f"name:{email}", f"session:{session.id}"):
        events.add(db, "login-failure", subject, client=mine[0])
    events.add(db, "host-abuse", host.name, client=mine[0], detail="flagged by the updater: badagent")
    events.add(db, "admin", f"user {name}", actor_id=admin.id, client="203.0.113.9", detail=f"approved {email}")
    events.add(db, "admin", f"host {host.name}", actor_id=admin.id, client="203.0.113.9", detail="blocked")
    events.add(db, "admin", "user olga", actor_id=user.id, client=mine[0], detail="host limit set to 3")
    events.add(db, "account", "user olga", actor_id=other.id, client=mine[0], detail="password changed")
    # Facts counted against its address: kept until their window passes (see delete_account).
    events.add(db, "login-failure", f"address:{mine[0]}", client=mine[0])
    db.run(
        lambda tx: tx.execute(
            "INSERT INTO rate_limits (name, window_start, hits) VALUES (?, ?, 1), (?, ?, 1)",
            (f"weak:{host.name}", int(time.time()), f"client:{mine[0]}/32", int(time.time())),
        )
    )
    position = changes.last_id(db)

    with pytest.raises(LimitReached):
        retention.delete_account(db, admin.id)
    deleted = retention.delete_account(db, user.id, actor_id=admin.id, client="203.0.113.9")

    assert deleted.hosts == 1
    exceptions = rows_naming(db, [name, email, f"user:{user.id}", host.name, *mine], [user.id])
    # What still names its host or an address: the change feed (so DNS drops the name, pruned after
    # change_retention) and the counters of its address, not tied to the account.
    assert set(exceptions) == {
        ("changes", "name", host.name),
        ("changes", "name", "_acme-challenge.h1.dyn.example.org"),
        ("events", "subject", f"address:{mine[0]}"),
        ("events", "client", mine[0]),
        ("rate_limits", "name", f"client:{mine[0]}/32"),
    }, exceptions
    # The audit trail keeps the admin actions, under the pseudonym.
    audit = db.read(lambda tx: tx.tuples("SELECT subject, actor_id, client, detail FROM events WHERE kind = 'admin'"))
    pseudonym = deleted.pseudonym
    assert sorted(audit) == sorted(
        [
            (f"user {pseudonym}", admin.id, "203.0.113.9", f"approved {pseudonym}"),
            (f"host of user {pseudonym}", admin.id, "203.0.113.9", "blocked"),
            ("user olga", None, None, f"host limit set to 3 (by {pseudonym})"),
            (f"user {pseudonym}", admin.id, "203.0.113.9", "deleted with 1 hosts"),
        ]
    )
    assert db.read(lambda tx: tx.tuples("SELECT subject, client FROM events WHERE kind = 'account'")) == [
        ("user olga", None)
    ]
    # Its host left DNS: gone from what the recursor serves, and announced in the change feed.
    assert db.read(lambda tx: recursor.host_rows(tx, [host.name, "_acme-challenge.h1.dyn.example.org"])) == ([], [])
    assert host.name in {change.name for change in changes.since(db, position)}
    assert hosts.get(db, kept_host.name).user_id == other.id


def test_every_delete_path_uses_the_one_function(db, zone):
    user = users.add(db, "paula", "paula@example.org")
    assert users.delete(db, user.id) == 0
    assert db.read(lambda tx: tx.tuples("SELECT kind, subject FROM events"))[0][1].startswith("user deleted-")
