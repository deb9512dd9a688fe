"""Update and API tokens in the store, on each dialect: the account token made before scopes is migrated to a
token for every host with every scope; a host-limited token covers nothing once its hosts are gone."""

from __future__ import annotations

from pathlib import Path

import pytest

from ddserver import secrets
from ddserver.db import Database
from ddserver.db import migrate as migrations
from ddserver.store import hosts, tokens, users, zones
from tests import support


def test_the_old_account_token_becomes_an_all_hosts_all_scopes_token(
    dialect: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(support.new_database_url(dialect, tmp_path))
    try:
        everything = migrations.available(db.dialect)
        monkeypatch.setattr(migrations, "available", lambda d: [m for m in everything if m.version < 13])
        migrations.migrate(db)
        user = users.add(db, "alice", "alice@example.org")
        old, hashed = secrets.new_token()
        db.run(lambda tx: tx.execute(
            "INSERT INTO tokens (token_hash, kind, user_id, created_at) VALUES (?, 'update', ?, 1)", (hashed, user.id)
        ))  # fmt: skip
        monkeypatch.setattr(migrations, "available", lambda d: everything)
        assert [m.version for m in migrations.migrate(db) if m.version == 13] == [13]
        grant = tokens.grant_for(db, old)
        assert grant is not None and grant.scopes == tokens.ALL_SCOPES and grant.all_hosts
        assert grant.expires_at is None
        assert [(i.name, i.scopes) for i in tokens.list_grants(db, user.id)] == [("account token", tokens.ALL_SCOPES)]
    finally:
        if dialect == "mysql":
            db.drop_database()
        db.close_all()


def test_a_host_limited_token_covers_nothing_once_its_hosts_are_gone(db: Database) -> None:
    zone = zones.add(db, "dyn.example.org", ["ns1.example.org"], "hostmaster.example.org")
    user = users.add(db, "alice", "alice@example.org")
    home = hosts.add(db, user.id, "home.dyn.example.org", secrets.hash_host_secret("x" * 22), default_limit=-1)
    token, _ = tokens.create_grant(db, user.id, "router", [tokens.Scope.UPDATE], host_ids=[home.id])
    zone_token, _ = tokens.create_grant(db, user.id, "zone", [tokens.Scope.UPDATE], zone_id=zone.id)
    hosts.delete(db, home.id)
    grant = tokens.grant_for(db, token)
    assert grant is not None and grant.host_ids == frozenset() and not grant.covers(home.id, zone.id)
    assert [i.hosts for i in tokens.list_grants(db, user.id)] == [(), None]
    # A zone deleted takes its tokens along (never widened to every host).
    zones.delete(db, zone.id)
    assert tokens.grant_for(db, zone_token) is None
