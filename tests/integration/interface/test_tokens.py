"""The Tokens page: make a token (shown once, stored hashed) with scopes, hosts or a zone and an expiry,
list them with their last use, revoke one (CSRF-checked), and the form's errors."""

from __future__ import annotations

import re

from ddserver.store import tokens
from tests.integration.interface.conftest import add_host, add_user, add_zone, csrf_of, log_in_as

ZONE = "dyn.example.org"


def _made(page) -> str:  # type: ignore[no-untyped-def]
    found = re.search(r'id="new-token" readonly value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def test_make_list_and_revoke(db, client) -> None:  # type: ignore[no-untyped-def]
    alice = add_user(db, "alice")
    add_zone(db, ZONE)
    home = add_host(db, alice, f"home.{ZONE}")
    add_host(db, alice, f"office.{ZONE}")
    csrf = log_in_as(client, alice)
    assert "You have no tokens yet." in client.get("/tokens").text
    page = client.post(
        "/tokens",
        {"csrf_token": csrf, "name": "router", "scopes": ["update", "txt"], "target": "hosts",
         "hosts": [home.name], "expires_days": "30"},
        status=201,
    )  # fmt: skip
    secret = _made(page)
    assert len(secret) == 32 and secret.isalnum()
    grant = tokens.grant_for(db, secret)
    assert grant is not None and grant.user_id == alice.id
    assert grant.scopes == {tokens.Scope.UPDATE, tokens.Scope.TXT} and grant.host_ids == {home.id}
    assert grant.expires_at is not None
    # Shown once: neither the list nor the database holds it.
    listed = client.get("/tokens").text
    assert secret not in listed and "router" in listed and home.name in listed
    assert secret not in str(db.read(lambda tx: tx.all("SELECT * FROM tokens")))
    # A zone token without expiry, listed with "never".
    page = client.post("/tokens", {"csrf_token": csrf, "name": "acme", "scopes": "txt", "target": "zone",
                                   "zone": ZONE}, status=201)  # fmt: skip
    assert tokens.grant_for(db, _made(page)).zone_id is not None
    infos = tokens.list_grants(db, alice.id)
    assert [(i.name, i.zone, i.hosts) for i in infos] == [("router", None, (home.name,)), ("acme", ZONE, None)]
    # Revoke: CSRF checked, then gone.
    client.post(f"/tokens/{infos[0].id}/revoke", {}, status=403)
    client.post(f"/tokens/{infos[0].id}/revoke", {"csrf_token": csrf}, status=303)
    assert tokens.grant_for(db, secret) is None
    assert [i.name for i in tokens.list_grants(db, alice.id)] == ["acme"]


def test_form_errors_and_other_users(db, client) -> None:  # type: ignore[no-untyped-def]
    alice, bob = add_user(db, "alice"), add_user(db, "bob")
    add_zone(db, ZONE)
    theirs = add_host(db, bob, f"bob.{ZONE}")
    _secret, bobs = tokens.create_grant(db, bob.id, "bob's", [tokens.Scope.UPDATE])
    csrf = log_in_as(client, alice)
    cases = [
        ({"name": "", "scopes": "update"}, "Give the token a name."),
        ({"name": "x", "scopes": "root"}, "Choose what the token may do."),
        ({"name": "x"}, "Choose what the token may do."),
        ({"name": "x", "scopes": "update", "target": "hosts", "hosts": theirs.name}, "Choose among your own hosts."),
        ({"name": "x", "scopes": "update", "target": "hosts"}, "Choose at least one host."),
        ({"name": "x", "scopes": "update", "target": "zone", "zone": "nope.example"}, "Choose one of the zones."),
        ({"name": "x", "scopes": "update", "expires_days": "0"}, "Give a number of days from 1 to 3650"),
        ({"name": "x" * 65, "scopes": "update"}, "Use at most 64 printable characters."),
    ]
    for fields, message in cases:
        page = client.post("/tokens", {"csrf_token": csrf, **fields}, status=400)
        assert message in page.text, fields
    assert tokens.list_grants(db, alice.id) == []
    client.post("/tokens", {"csrf_token": csrf, "name": "same", "scopes": "api"}, status=201)
    page = client.post("/tokens", {"csrf_token": csrf, "name": "same", "scopes": "api"}, status=400)
    assert "You have a token of this name already." in page.text
    # Bob's token cannot be revoked by alice (404, as for a token that does not exist).
    client.post(f"/tokens/{bobs}/revoke", {"csrf_token": csrf}, status=404)
    assert [i.id for i in tokens.list_grants(db, bob.id)] == [bobs]
    assert csrf_of(client.get("/tokens")) == csrf
