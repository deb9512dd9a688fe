"""Scoped tokens at the updater, on each database dialect: the hosts and zone a token covers, its scopes
(addresses, TXT records), expiry, revocation with the host cache on, the old account token, and its last use
written at most once a minute; a right token is never refused for failures counted before."""

from __future__ import annotations

import pytest

from ddserver.config import Config
from ddserver.db import Database
from ddserver.store import tokens, zones
from ddserver.updater.app import create_app
from tests.updater_support import ZONE, Site, call, make_site, updater_config

HOME = f"home.{ZONE}"
OFFICE = f"office.{ZONE}"
OTHER = f"other.{ZONE}"
SECOND = "dyn2.example.org"


@pytest.fixture
def site(db: Database) -> Site:
    return make_site(db)


def _token(site: Site, *scopes: tokens.Scope, **limits) -> str:  # type: ignore[no-untyped-def]
    token, _id = tokens.create_grant(site.db, site.alice.id, f"t{len(tokens.list_grants(site.db, site.alice.id))}",
                                     scopes or (tokens.Scope.UPDATE,), **limits)  # fmt: skip
    return token


@pytest.mark.parametrize("cached", [False, True])
def test_hosts_zone_and_scopes(config: Config, db: Database, site: Site, cached: bool) -> None:
    app = create_app(updater_config(config, host_cache=1000 if cached else 0), db)
    from ddserver import secrets
    from ddserver.store import hosts

    zones.add(db, SECOND, ["ns1.example.org"], "hostmaster.example.org")
    away = hosts.add(db, site.alice.id, f"away.{SECOND}", secrets.hash_host_secret("x" * 22), default_limit=-1)
    only_home = _token(site, host_ids=[site.home.id])
    zone_two = _token(site, zone_id=zones.get(db, SECOND).id)
    txt_only = _token(site, tokens.Scope.TXT)
    both = f"{HOME},{OFFICE},{away.name},{OTHER}"
    reply = call(app, "/nic/update", {"hostname": both, "myip": "198.51.100.1"}, auth=("alice", only_home))
    assert (reply.status, reply.lines) == (200, ["good 198.51.100.1", "nohost", "nohost", "nohost"])
    reply = call(app, "/nic/update", {"hostname": both, "myip": "198.51.100.2"}, auth=("alice", zone_two))
    assert reply.lines == ["nohost", "nohost", "good 198.51.100.2", "nohost"]
    # A token without the addresses' scope: nohost for every name (Dyn: not in the service asked for).
    reply = call(app, "/nic/update", {"hostname": HOME, "myip": "198.51.100.3"}, auth=("alice", txt_only))
    assert reply.lines == ["nohost"]
    assert call(app, "/nic/acme", {"hostname": HOME, "txt": "abc"}, auth=("alice", txt_only)).body == "good\n"
    # ...and an addresses token sets no TXT record.
    assert call(app, "/nic/acme", {"hostname": HOME, "txt": "abd"}, auth=("alice", only_home)).body == "nohost\n"
    # The old account token (no scopes stored: from before scopes) does everything to every host.
    reply = call(app, "/nic/update", {"hostname": f"{HOME},{away.name}", "myip": "198.51.100.4"},
                 auth=("alice", site.token))  # fmt: skip
    assert reply.lines == ["good 198.51.100.4", "good 198.51.100.4"]
    assert call(app, "/nic/acme", {"hostname": OFFICE, "txt": "t"}, auth=("alice", site.token)).body == "good\n"
    # A token is for its own user name only.
    assert call(app, "/nic/update", {"hostname": OTHER}, auth=("bob", only_home)).body == "badauth\n"


@pytest.mark.parametrize("cached", [False, True])
def test_expired_and_revoked_tokens_are_refused_at_once(config: Config, db: Database, site: Site, cached: bool) -> None:
    app = create_app(updater_config(config, host_cache=1000 if cached else 0), db)
    token, token_id = tokens.create_grant(db, site.alice.id, "router", [tokens.Scope.UPDATE])
    # Host logins fill the cache; the token is answered all the same.
    call(app, "/nic/update", {"myip": "192.0.2.1"}, auth=(HOME, site.secrets[HOME]))
    assert call(app, "/nic/update", {"hostname": HOME, "myip": "192.0.2.2"}, auth=("alice", token)).body == (
        "good 192.0.2.2\n"
    )
    assert tokens.revoke(db, site.alice.id, token_id)
    reply = call(app, "/nic/update", {"hostname": HOME, "myip": "192.0.2.3"}, auth=("alice", token))
    assert (reply.status, reply.body) == (401, "badauth\n")
    expiring, expiring_id = tokens.create_grant(db, site.alice.id, "short", [tokens.Scope.UPDATE],
                                                expires_at=tokens.now() + 3600)  # fmt: skip
    assert call(app, "/nic/update", {"hostname": HOME, "myip": "192.0.2.4"}, auth=("alice", expiring)).body == (
        "good 192.0.2.4\n"
    )
    db.run(lambda tx: tx.execute("UPDATE tokens SET expires_at = ? WHERE id = ?", (tokens.now() - 1, expiring_id)))
    assert call(app, "/nic/update", {"hostname": HOME, "myip": "192.0.2.5"}, auth=("alice", expiring)).body == (
        "badauth\n"
    )


def test_last_use_is_written_at_most_once_a_minute(config: Config, db: Database, site: Site) -> None:
    app = create_app(updater_config(config), db)
    token, token_id = tokens.create_grant(db, site.alice.id, "router", [tokens.Scope.UPDATE])

    def last_used() -> int | None:
        return db.read(lambda tx: tx.scalar("SELECT last_used_at FROM tokens WHERE id = ?", (token_id,)))

    assert last_used() is None
    call(app, "/nic/update", {"hostname": HOME, "myip": "192.0.2.1"}, auth=("alice", token))
    first = last_used()
    assert first is not None and abs(first - tokens.now()) < 5
    # Within the minute: no write (a marker value stays).
    db.run(lambda tx: tx.execute("UPDATE tokens SET last_used_at = ? WHERE id = ?", (first - 30, token_id)))
    call(app, "/nic/update", {"hostname": HOME, "myip": "192.0.2.1"}, auth=("alice", token))
    assert last_used() == first - 30
    # Past it: written again.
    db.run(lambda tx: tx.execute("UPDATE tokens SET last_used_at = ? WHERE id = ?", (first - 61, token_id)))
    call(app, "/nic/update", {"hostname": HOME, "myip": "192.0.2.1"}, auth=("alice", token))
    assert last_used() >= first
    assert [i.last_used_at for i in tokens.list_grants(db, site.alice.id) if i.id == token_id] == [last_used()]


def test_a_scoped_token_is_served_past_every_failure_limit(config: Config, db: Database, site: Site) -> None:
    app = create_app(updater_config(config, auth_failures_per_client=3, auth_failures_per_account=5), db)
    token = _token(site, host_ids=[site.office.id])
    for n in range(12):
        call(app, "/nic/update", {"hostname": OFFICE}, auth=("alice", f"wrong-{n}"), remote="203.0.113.7")
    assert call(app, "/nic/update", {"hostname": OFFICE}, auth=("alice", "wrong"), remote="203.0.113.7").body == (
        "abuse\n"
    )
    # The right token from the very address over its limit.
    reply = call(app, "/nic/update", {"hostname": OFFICE, "myip": "192.0.2.9"}, auth=("alice", token),
                 remote="203.0.113.7")  # fmt: skip
    assert reply.body == "good 192.0.2.9\n"
