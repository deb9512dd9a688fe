"""Route-by-role matrix: every route of the interface, as anonymous, its owner, another user and an admin.

The table below must name every route the app has, so a new route cannot go in without saying who may
reach it.
"""

from __future__ import annotations

import itertools
import re

import pytest

from ddserver.interface import web
from ddserver.store import ownzones, related, relays, tokens
from tests.integration.interface.conftest import add_host, add_user, add_zone, log_in_as

PUBLIC, USER, OWNER, ADMIN = "public", "user", "owner", "admin"
#: The owner's alone: another user and an admin get a 404 (a user's tokens).
SELF = "self"
#: The JSON API: a bearer token only; a session is no credential there (401, or 429 once failures add up).
BEARER = "bearer"

ROUTES = {
    ("GET", "/"): PUBLIC,
    ("GET", "/api/myip"): PUBLIC,
    ("GET", "/static/<path:path>"): PUBLIC,
    ("GET", "/health"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,  # no login: [interface] metrics_allow decides (a 403 from elsewhere)
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("GET", "/login/totp"): PUBLIC,
    ("POST", "/login/totp"): PUBLIC,
    ("POST", "/logout"): PUBLIC,
    ("GET", "/signup"): PUBLIC,
    ("POST", "/signup"): PUBLIC,
    ("GET", "/activate/<token>"): PUBLIC,
    ("POST", "/activate/<token>"): PUBLIC,
    ("GET", "/password/forgot"): PUBLIC,
    ("POST", "/password/forgot"): PUBLIC,
    ("GET", "/password/reset/<token>"): PUBLIC,
    ("POST", "/password/reset/<token>"): PUBLIC,
    ("GET", "/email/confirm/<token>"): PUBLIC,
    ("POST", "/email/confirm/<token>"): PUBLIC,
    ("POST", "/language"): PUBLIC,
    ("GET", "/.well-known/change-password"): PUBLIC,
    ("GET", "/account"): USER,
    ("POST", "/account/password"): USER,
    ("POST", "/account/email"): USER,
    ("GET", "/account/delete"): USER,
    ("POST", "/account/delete"): USER,
    ("GET", "/account/totp"): USER,
    ("POST", "/account/totp"): USER,
    ("POST", "/account/totp/disable"): USER,
    ("GET", "/tokens"): USER,
    ("POST", "/tokens"): USER,
    ("POST", "/tokens/<token_id:int>/revoke"): SELF,
    ("GET", "/hosts"): USER,
    ("GET", "/hosts/new"): USER,
    ("POST", "/hosts/new"): USER,
    ("GET", "/hosts/check"): USER,
    ("GET", "/hosts/<host_id:int>"): OWNER,
    ("POST", "/hosts/<host_id:int>/address"): OWNER,
    ("POST", "/hosts/<host_id:int>/description"): OWNER,
    ("POST", "/hosts/<host_id:int>/dns"): OWNER,
    ("POST", "/hosts/<host_id:int>/secret"): OWNER,
    ("POST", "/hosts/<host_id:int>/clear-faults"): OWNER,
    ("POST", "/hosts/<host_id:int>/keep"): OWNER,
    ("GET", "/hosts/keep/<token>"): PUBLIC,
    ("POST", "/hosts/keep/<token>"): PUBLIC,
    ("POST", "/hosts/<host_id:int>/relays"): OWNER,
    ("GET", "/hosts/<host_id:int>/relays/<relay_id:int>"): OWNER,
    ("POST", "/hosts/<host_id:int>/relays/<relay_id:int>"): OWNER,
    ("POST", "/hosts/<host_id:int>/relays/<relay_id:int>/delete"): OWNER,
    ("GET", "/hosts/<host_id:int>/delete"): OWNER,
    ("POST", "/hosts/<host_id:int>/delete"): OWNER,
    ("GET", "/zones"): USER,
    ("POST", "/zones"): USER,
    ("GET", "/zones/<zone_id:int>"): OWNER,
    ("POST", "/zones/<zone_id:int>/check"): OWNER,
    ("POST", "/zones/<zone_id:int>/users"): OWNER,
    ("POST", "/zones/<zone_id:int>/users/<user_id:int>/remove"): OWNER,
    ("GET", "/zones/<zone_id:int>/delete"): OWNER,
    ("POST", "/zones/<zone_id:int>/delete"): OWNER,
    ("POST", "/hosts/<host_id:int>/related"): OWNER,
    ("GET", "/hosts/<host_id:int>/related/<related_id:int>"): OWNER,
    ("POST", "/hosts/<host_id:int>/related/<related_id:int>"): OWNER,
    ("POST", "/hosts/<host_id:int>/related/<related_id:int>/delete"): OWNER,
    ("GET", "/admin"): ADMIN,
    ("GET", "/admin/users"): ADMIN,
    ("GET", "/admin/users/new"): ADMIN,
    ("POST", "/admin/users/new"): ADMIN,
    ("GET", "/admin/users/<user_id:int>"): ADMIN,
    ("POST", "/admin/users/<user_id:int>/flags"): ADMIN,
    ("POST", "/admin/users/<user_id:int>/limit"): ADMIN,
    ("GET", "/admin/users/<user_id:int>/delete"): ADMIN,
    ("POST", "/admin/users/<user_id:int>/delete"): ADMIN,
    ("GET", "/admin/zones"): ADMIN,
    ("GET", "/admin/zones/new"): ADMIN,
    ("POST", "/admin/zones/new"): ADMIN,
    ("GET", "/admin/zones/<zone_id:int>"): ADMIN,
    ("POST", "/admin/zones/<zone_id:int>"): ADMIN,
    ("GET", "/admin/zones/<zone_id:int>/delete"): ADMIN,
    ("POST", "/admin/zones/<zone_id:int>/delete"): ADMIN,
    ("GET", "/admin/zones/<zone_id:int>/dnssec"): ADMIN,
    ("POST", "/admin/zones/<zone_id:int>/dnssec"): ADMIN,
    ("POST", "/admin/zones/<zone_id:int>/transfer-keys"): ADMIN,
    ("POST", "/admin/zones/<zone_id:int>/transfer-keys/remove"): ADMIN,
    ("POST", "/admin/zones/<zone_id:int>/approval"): ADMIN,
    ("GET", "/admin/hosts"): ADMIN,
    ("POST", "/admin/hosts/<host_id:int>"): ADMIN,
    ("GET", "/admin/audit"): ADMIN,
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    ("GET", "/api/v1/hosts"): BEARER,
    ("POST", "/api/v1/hosts"): BEARER,
    ("GET", "/api/v1/hosts/<name>"): BEARER,
    ("DELETE", "/api/v1/hosts/<name>"): BEARER,
    ("PATCH", "/api/v1/hosts/<name>"): BEARER,
    ("POST", "/api/v1/hosts/<name>/secret"): BEARER,
    ("PUT", "/api/v1/hosts/<name>/addresses"): BEARER,
    ("GET", "/api/v1/hosts/<name>/txt"): BEARER,
    ("POST", "/api/v1/hosts/<name>/txt"): BEARER,
    ("DELETE", "/api/v1/hosts/<name>/txt/<record_id:int>"): BEARER,
    ("GET", "/api/v1/tokens"): BEARER,
    ("POST", "/api/v1/tokens"): BEARER,
    ("DELETE", "/api/v1/tokens/<token_id:int>"): BEARER,
}
ROLES = ("anonymous", "owner", "other", "admin")


@pytest.fixture
def client(make_app):
    # "Check now" of a user's zone asks the (absent) resolver: do not wait long for it.
    return make_app(zones={"check_timeout": 0.2})


_names = itertools.count()


def test_the_table_names_every_route(client) -> None:
    routes = {(route.method, route.rule) for route in client.app.routes}
    assert routes == set(ROUTES), f"unclassified: {routes - set(ROUTES)}; gone: {set(ROUTES) - routes}"


def _url(rule: str, values: dict[str, object]) -> str:
    return re.sub(r"<(\w+)(?::[^>]+)?>", lambda m: str(values[m.group(1)]), rule)


@pytest.mark.parametrize("role", ROLES)
def test_route_by_role(db, client, role: str) -> None:
    failures = []
    for (method, rule), level in ROUTES.items():
        n = next(_names)
        owner = add_user(db, f"owner{n}", password=None)
        other = add_user(db, f"other{n}", password=None)
        admin = add_user(db, f"admin{n}", admin=True, password=None)
        zone = add_zone(db, f"z{n}.example.org")
        host = add_host(db, owner, f"home.z{n}.example.org")
        relay = relays.add(
            db, host.id, url="https://x.example/nic/update", remote_name="h.x.example", username="u",
            sealed_secret="sealed1:x:y", family="both", limit=3,
        )  # fmt: skip
        if rule.startswith("/zones/"):  # a zone the owner brought
            zone = ownzones.add(
                db, owner.id, f"own{n}.example.net", ["ns1.example.org"], "h.example.net", limit=-1, approved=True
            )
        _secret, token_id = tokens.create_grant(db, owner.id, "router", [tokens.Scope.UPDATE])
        values = {
            "host_id": host.id,
            "relay_id": relay.id,
            "user_id": owner.id,
            "zone_id": zone.id,
            "token_id": token_id,
            "name": host.name,
            "record_id": 1,
            "token": "x" * 32,
            "path": "ddserver.css",
            "related_id": related.add(db, host.id, f"nas.{host.name}", "::1", limit=-1).id,
        }
        url = _url(rule, values)
        client.reset()
        if role == "anonymous":
            page = client.get("/login")
            token = re.search(r'csrf_token" value="([^"]+)', page.text).group(1)
        else:
            token = log_in_as(client, {"owner": owner, "other": other, "admin": admin}[role])
        if method == "GET":
            answer = client.get(url, expect_errors=True)
        elif method == "POST":
            answer = client.post(url, {web.CSRF_FIELD: token}, expect_errors=True)
        else:
            answer = client.request(url, method=method, headers={"X-CSRF-Token": token}, expect_errors=True)
        status, location = answer.status_int, answer.headers.get("Location", "")
        to_login = status == 303 and location.startswith("/login")
        reached = status in (200, 201, 303, 400, 409) and not to_login
        if level == BEARER:
            expected, ok = "401 or 429 in JSON", status in (401, 429) and answer.content_type == "application/json"
        elif level == PUBLIC:
            # Reached: a page, a redirect, or the route's own refusal (wrong password, sign-up closed).
            expected, ok = "an answer of the route", status < 500 and status not in (404, 405)
        elif role == "anonymous":
            expected, ok = "redirect to /login", to_login
        elif level == ADMIN and role != "admin":
            expected, ok = "403", status == 403
        elif (level == OWNER and role == "other") or (level == SELF and role != "owner"):
            expected, ok = "404", status == 404
        else:
            expected, ok = "reached", reached
        if not ok:
            failures.append(f"{role} {method} {url}: expected {expected}, got {status} {location}")
    assert not failures, "\n".join(failures)
