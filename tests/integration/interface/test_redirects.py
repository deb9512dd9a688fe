"""Every redirect target that comes from the request, through the routes: a path on this site or the default page.

The values come from tests/whatwg.py (checked against the URL parser browsers apply); controls such as CR and
NUL must not reach the Location header either (they used to end in a 500).
"""

from __future__ import annotations

import pytest

from ddserver.interface import totp
from ddserver.store import accounts
from tests.integration.interface.conftest import PASSWORD, add_host, add_user, add_zone, csrf_of, log_in_as
from tests.whatwg import LEAVING, LOCAL, REFUSED

#: The form and query readers strip surrounding whitespace first: values that are still bad after that.
BAD = [value for value in LEAVING + REFUSED if value == value.strip()]
#: The issue's own examples, for the routes where each try costs a password check.
FEW = ["//evil.example", "/\\evil.example", "/\t/evil.example", "\\/evil.example", "/%2F/evil.example", "/a\r\nb"]


def test_login_page_of_a_logged_in_user(db, client) -> None:
    token = log_in_as(client, add_user(db, "alice", password=None))
    assert token
    for value in BAD:
        assert client.get("/login", {"next": value}).headers["Location"] == "/hosts", repr(value)
    for value in LOCAL:
        assert client.get("/login", {"next": value}).headers["Location"] == value


def test_login_form(db, client) -> None:
    add_user(db, "alice")
    for value in [*FEW, "/account"]:
        client.reset()
        token = csrf_of(client.get("/login"))
        answer = client.post("/login", {"csrf_token": token, "login": "alice", "password": PASSWORD, "next": value})
        assert answer.headers["Location"] == ("/account" if value == "/account" else "/hosts"), repr(value)


def test_login_with_a_second_factor_passes_next_on_safely(db, client) -> None:
    alice = add_user(db, "alice")
    secret = totp.new_secret()
    accounts.set_totp(db, alice.id, secret, None)
    token = csrf_of(client.get("/login"))
    answer = client.post(
        "/login", {"csrf_token": token, "login": "alice", "password": PASSWORD, "next": "/\t/evil.example"}
    )
    assert answer.headers["Location"] == "/login/totp?next=/hosts"
    token = csrf_of(client.get("/login/totp"))
    answer = client.post("/login/totp", {"csrf_token": token, "code": totp.code(secret), "next": "/\\evil.example"})
    assert answer.headers["Location"] == "/hosts"


@pytest.mark.parametrize("logged_in", [False, True])
def test_language_switch(db, client, logged_in: bool) -> None:
    if logged_in:
        log_in_as(client, add_user(db, "alice", password=None))
    token = csrf_of(client.get("/login" if not logged_in else "/account"))
    for value in BAD:
        answer = client.post("/language", {"csrf_token": token, "language": "de", "next": value})
        assert answer.headers["Location"] == "/", repr(value)
    for value in LOCAL:
        answer = client.post("/language", {"csrf_token": token, "language": "en", "next": value})
        assert answer.headers["Location"] == value


def test_admin_host_action_goes_back_only_to_an_admin_page(db, client) -> None:
    admin = add_user(db, "root", admin=True, password=None)
    add_zone(db)
    host = add_host(db, admin, "home.dyn.example.org")
    token = log_in_as(client, admin)
    broken = ["/admin/hosts" + tail for tail in ("\r\nSet-Cookie: a=b", "\x00", "%0d%0aSet-Cookie:%20a=b", "/\t/x")]
    for value in [*BAD, *broken, "/hosts"]:
        answer = client.post(f"/admin/hosts/{host.id}", {"csrf_token": token, "action": "unblock", "back": value})
        assert answer.headers["Location"] == "/admin/hosts", repr(value)
    back = "/admin/hosts?q=home&page=1"
    answer = client.post(f"/admin/hosts/{host.id}", {"csrf_token": token, "action": "unblock", "back": back})
    assert answer.headers["Location"] == back
