"""Accounts through the WSGI app: headers, sessions, CSRF, rate limits, sign-up modes, mail, reset, TOTP."""

from __future__ import annotations

import re
import time

from ddserver import passwords
from ddserver.interface import totp
from ddserver.store import accounts, sessions, tokens, users
from tests.integration.interface.conftest import CLIENT, PASSWORD, add_user, csrf_of, form_for, log_in, log_in_as
from tests.support import rows_naming


def test_every_page_has_security_headers(client) -> None:
    for response in (client.get("/"), client.get("/login"), client.get("/nowhere", status=404)):
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
    static = client.get("/static/vendor/bootstrap/bootstrap.min.css")
    assert static.headers["X-Frame-Options"] == "DENY"
    assert "<script>" not in client.get("/login").text  # no inline script anywhere


def test_login_rotates_session_and_logout_ends_it(db, client) -> None:
    add_user(db, "alice")
    answer = log_in(client, "alice")
    assert answer.status_int == 303 and answer.headers["Location"].endswith("/hosts")
    cookie = next(c for c in answer.headers.getall("Set-Cookie") if c.startswith("ddserver_session="))
    assert "ddserver_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    first = client.cookies["ddserver_session"]
    assert client.get("/hosts").status_int == 200
    # Logging in again (in the same browser) gets another session id; the old one is gone.
    token = csrf_of(client.get("/account"))
    client.post("/login", {"csrf_token": token, "login": "alice", "password": PASSWORD})
    assert client.cookies["ddserver_session"] != first
    assert sessions.load(db, first) is None
    page = client.get("/hosts")
    form_for(page, "/logout").submit()
    assert client.get("/hosts").status_int == 303


def test_login_does_not_tell_unknown_accounts_from_wrong_passwords(db, client) -> None:
    add_user(db, "alice")
    wrong = log_in(client, "alice", "not the password")
    unknown = log_in(client, "nobody", "not the password")
    assert wrong.status_int == unknown.status_int == 401
    message = "The name or the password is wrong."
    assert message in wrong.text and message in unknown.text
    assert "alice" in wrong.text  # the typed name comes back in the field, and nothing else differs


def test_keep_me_logged_in_sets_a_lasting_cookie(db, client) -> None:
    add_user(db, "alice")

    def session_cookie(answer) -> str:  # type: ignore[no-untyped-def]
        return next(c for c in answer.headers.getall("Set-Cookie") if c.startswith("ddserver_session="))

    assert "Max-Age" not in session_cookie(log_in(client, "alice"))
    client.reset()
    assert "Max-Age" in session_cookie(log_in(client, "alice", remember=True))


def test_cookies_are_secure_behind_a_tls_proxy(db, client) -> None:
    add_user(db, "alice")
    page = client.get("/login", extra_environ={"REMOTE_ADDR": "127.0.0.1"}, headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in page.headers["Set-Cookie"]
    # An untrusted peer cannot claim TLS.
    client.reset()
    page = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" not in page.headers["Set-Cookie"]


def test_secure_cookies_have_the_host_prefix(db, make_app) -> None:
    add_user(db, "alice")
    client = make_app()
    client.extra_environ = {"REMOTE_ADDR": CLIENT, "wsgi.url_scheme": "https", "HTTP_HOST": "ddserver.example.test"}
    page = client.get("/login")
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith("__Host-ddserver_csrf=") and "Secure" in cookie and "Path=/" in cookie
    assert "Domain" not in cookie
    answer = log_in(client, "alice")
    assert answer.status_int == 303
    cookie = next(c for c in answer.headers.getall("Set-Cookie") if "ddserver_session" in c)
    assert cookie.startswith("__Host-ddserver_session=") and "Secure" in cookie and "Path=/" in cookie
    assert "Domain" not in cookie
    assert client.get("/hosts").status_int == 200
    # Over TLS a cookie without the prefix (as a sibling host could set one) is not a session.
    token = client.cookies["__Host-ddserver_session"]
    client.reset()
    client.set_cookie("ddserver_session", token)
    assert client.get("/hosts").status_int == 303
    # Forced on by [interface] secure_cookies = yes; plain names where cookies are not Secure.
    forced = make_app(interface={"secure_cookies": "yes"})
    assert forced.get("/login").headers["Set-Cookie"].startswith("__Host-ddserver_csrf=")
    plain = make_app(interface={"secure_cookies": "no"})
    plain.extra_environ = {"REMOTE_ADDR": CLIENT, "wsgi.url_scheme": "https"}
    assert plain.get("/login").headers["Set-Cookie"].startswith("ddserver_csrf=")


def test_post_without_csrf_token_is_refused(db, client) -> None:
    add_user(db, "alice")
    answer = client.post("/login", {"login": "alice", "password": PASSWORD}, status=403)
    assert "ddserver_session" not in answer.headers.get("Set-Cookie", "")
    log_in(client, "alice")
    page = client.get("/account")
    token = csrf_of(page)
    fields = {"name": "router", "scopes": "update"}
    client.post("/tokens", fields, status=403)
    client.post("/tokens", {**fields, "csrf_token": "x" + token[1:]}, status=403)
    client.post("/tokens", {**fields, "csrf_token": token}, headers={"Origin": "http://evil.example"}, status=403)
    assert client.post("/tokens", {**fields, "csrf_token": token}).status_int == 201


def test_login_rate_limits_per_account_and_address(db, make_app) -> None:
    client = make_app(interface={"login_failures_per_account": 3, "login_failures_per_address": 5})
    add_user(db, "alice")
    for _ in range(3):
        assert log_in(client, "alice", "wrong password!").status_int == 401
    # Even the right password waits now, and the answer is the same for an unknown account.
    limited = log_in(client, "alice")
    assert limited.status_int == 429 and "Too many attempts" in limited.text
    for _ in range(2):
        log_in(client, "ghost", "wrong password!")
    add_user(db, "bob")
    assert log_in(client, "bob").status_int == 429  # the address is over its limit
    elsewhere = make_app(interface={"login_failures_per_account": 3, "login_failures_per_address": 5})
    elsewhere.extra_environ = {"REMOTE_ADDR": "192.0.2.99"}
    assert log_in(elsewhere, "bob").status_int == 303


def test_login_states_and_legacy_hash_upgrade(db, client) -> None:
    add_user(db, "newbie", is_active=False)
    assert "not activated" in log_in(client, "newbie").text
    add_user(db, "waiting", is_approved=False)
    assert "approval" in log_in(client, "waiting").text
    from passlib.hash import sha512_crypt

    legacy = users.add(db, "old", "old@example.org", password_hash=sha512_crypt.hash(PASSWORD))
    assert log_in(client, "old").status_int == 303
    assert users.get(db, legacy.id).password_hash.startswith("$argon2id$")


def test_signup_automatic_with_activation_mail(db, make_app, mailbox) -> None:
    client = make_app(signup={"mode": "automatic"})
    page = client.get("/signup")
    form = form_for(page, "/signup")
    form["username"], form["email"] = "carol", "Carol@Example.ORG"
    form["password"] = form["password2"] = PASSWORD
    done = form.submit()
    assert "Check your mail" in done.text
    message = mailbox.wait_for("carol@example.org")[0]
    link = mailbox.link(message, "/activate/")
    assert log_in(client, "carol").status_int == 403  # not yet activated
    activated = form_for(client.get(link), link).submit()
    assert "Your account is active" in activated.text
    assert log_in(client, "carol").status_int == 303
    # The link works once.
    assert "not valid" in client.get(link).text


def test_signup_errors_are_next_to_fields(db, make_app) -> None:
    client = make_app(signup={"mode": "automatic", "allowed_email_domains": ("example.org",)})
    add_user(db, "taken")
    form = form_for(client.get("/signup"), "/signup")
    form["username"], form["email"] = "bad name!", "x@elsewhere.net"
    form["password"], form["password2"] = "short", "other"
    page = form.submit(status=400)
    assert 'id="e-username"' in page.text and 'id="e-email"' in page.text and 'id="e-password"' in page.text
    assert "elsewhere" in page.text and 'value="short"' not in page.text  # passwords are never sent back
    form = form_for(page, "/signup")
    form["username"], form["email"] = "taken", "new@example.org"
    form["password"] = form["password2"] = PASSWORD
    assert "This name is taken" in form.submit(status=400).text


def test_signup_with_a_known_address_does_not_reveal_it(db, make_app, mailbox) -> None:
    client = make_app(signup={"mode": "automatic"})
    add_user(db, "alice")
    form = form_for(client.get("/signup"), "/signup")
    form["username"], form["email"] = "alice2", "alice@example.org"
    form["password"] = form["password2"] = PASSWORD
    assert "Check your mail" in form.submit().text
    message = mailbox.wait_for("alice@example.org")[0]
    assert "already has an account" in message.get_content()


def test_signup_semi_automatic_needs_approval(db, make_app, mailbox) -> None:
    client = make_app(signup={"mode": "semi-automatic"})
    admin = add_user(db, "root", admin=True)
    form = form_for(client.get("/signup"), "/signup")
    form["username"], form["email"] = "dave", "dave@example.org"
    form["password"] = form["password2"] = PASSWORD
    form.submit()
    link = mailbox.link(mailbox.wait_for("dave@example.org")[0], "/activate/")
    assert "approve" in form_for(client.get(link), link).submit().text
    assert "/admin/users/" in mailbox.wait_for(admin.email)[0].get_content()
    assert "approval" in log_in(client, "dave").text
    dave = users.get_by_name(db, "dave")
    token = log_in_as(client, admin)
    client.post(f"/admin/users/{dave.id}/flags", {"csrf_token": token, "action": "approve"})
    assert "approved" in mailbox.wait_for("dave@example.org", 2)[1].get_content()
    client.reset()
    assert log_in(client, "dave").status_int == 303


def test_approval_mail_reaches_every_admin_however_many_users(db, make_app, mailbox) -> None:
    client = make_app(signup={"mode": "semi-automatic"})
    stamp = int(time.time())
    # More than a page of 1,000 users sort before the admins (rows inserted in bulk: hashing is slow).
    rows = [(f"a{i:04d}", f"a{i:04d}@example.org", stamp) for i in range(1005)]
    db.run(
        lambda tx: tx.executemany(
            "INSERT INTO users (username, email, is_active, is_approved, created_at) VALUES (?, ?, 1, 1, ?)", rows
        )
    )
    admins = [add_user(db, name, admin=True, password=None) for name in ("zadmin", "zroot")]
    add_user(db, "zoff", admin=True, password=None, is_approved=True)
    users.set_flags(db, users.get_by_name(db, "zoff").id, is_disabled=True)
    assert [u.username for u in accounts.admins(db)] == ["zadmin", "zroot"]
    form = form_for(client.get("/signup"), "/signup")
    form["username"], form["email"] = "dave", "dave@example.org"
    form["password"] = form["password2"] = PASSWORD
    form.submit()
    link = mailbox.link(mailbox.wait_for("dave@example.org")[0], "/activate/")
    form_for(client.get(link), link).submit()
    for admin in admins:
        assert "/admin/users/" in mailbox.wait_for(admin.email)[0].get_content()
    assert not mailbox.to("zoff@example.org")


def test_manual_mode_closes_signup_and_admin_creates_users(db, make_app, mailbox) -> None:
    client = make_app(signup={"mode": "manual"})
    assert "does not take sign-ups" in client.get("/signup").text
    client.post("/signup", {"csrf_token": csrf_of(client.get("/login"))}, status=403)
    admin = add_user(db, "root", admin=True)
    log_in_as(client, admin)
    form = form_for(client.get("/admin/users/new"), "/admin/users/new")
    form["username"], form["email"] = "erin", "erin@example.org"
    form.submit().follow()
    link = mailbox.link(mailbox.wait_for("erin@example.org")[0], "/password/reset/")
    client.reset()
    form = form_for(client.get(link), link)
    form["password"] = form["password2"] = PASSWORD
    form.submit()
    assert log_in(client, "erin").status_int == 303


def test_password_reset_is_single_use_and_does_not_enumerate(db, client, mailbox) -> None:
    add_user(db, "alice")
    for login in ("alice", "nobody@example.org"):
        form = form_for(client.get("/password/forgot"), "/password/forgot")
        form["login"] = login
        assert "If an active account has this name" in form.submit().text
    link = mailbox.link(mailbox.wait_for("alice@example.org")[0], "/password/reset/")
    assert len(mailbox.messages) == 1
    form = form_for(client.get(link), link)
    form["password"] = form["password2"] = "a brand new password"
    assert form.submit().status_int == 303
    assert log_in(client, "alice", "a brand new password").status_int == 303
    assert "not valid" in client.get(link).text
    # An expired token is refused too.
    alice = users.get_by_name(db, "alice")
    expired = tokens.create(db, "reset", alice.id, 60)
    db.run(
        lambda tx: tx.execute("UPDATE tokens SET expires_at = ? WHERE user_id = ?", (int(time.time()) - 1, alice.id))
    )
    assert "not valid" in client.get(f"/password/reset/{expired}").text


def test_change_password_email_and_delete_account(db, client, mailbox) -> None:
    alice = add_user(db, "alice")
    log_in(client, "alice")
    page = client.get("/account")
    form = form_for(page, "/account/password")
    form["current"], form["password"], form["password2"] = "wrong", "another password 1", "another password 1"
    assert 'id="e-current"' in form.submit(status=400).text
    form = form_for(client.get("/account"), "/account/password")
    form["current"], form["password"], form["password2"] = PASSWORD, "another password 1", "another password 1"
    form.submit()
    assert passwords.verify_password("another password 1", users.get(db, alice.id).password_hash).ok

    form = form_for(client.get("/account"), "/account/email")
    form["email"], form["current"] = "alice@new.example.org", "another password 1"
    form.submit()
    link = mailbox.link(mailbox.wait_for("alice@new.example.org")[0], "/email/confirm/")
    assert users.get(db, alice.id).email == "alice@example.org"
    form_for(client.get(link), link).submit()
    assert users.get(db, alice.id).email == "alice@new.example.org"

    assert client.get("/.well-known/change-password").headers["Location"].endswith("/account#password")
    form = form_for(client.get("/account/delete"), "/account/delete")
    form["current"] = "wrong"
    form.submit(status=400)
    form = form_for(client.get("/account/delete"), "/account/delete")
    form["current"] = "another password 1"
    form.submit()
    assert users.find_login(db, "alice") is None
    # No row names the account any more: its name, addresses, id, or the address it used.
    assert rows_naming(db, ["alice", f"user:{alice.id}", CLIENT], [alice.id]) == []


def test_totp_second_factor(db, client) -> None:
    alice = add_user(db, "alice")
    log_in(client, "alice")
    page = client.get("/account/totp")
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text).group(1)
    form = form_for(page, "/account/totp")
    form["code"] = "000000" if totp.code(secret) != "000000" else "111111"
    form.submit(status=400)
    form = form_for(client.get("/account/totp"), "/account/totp")
    form["code"] = totp.code(secret)
    form.submit()
    assert users.get(db, alice.id).totp_secret == secret
    client.reset()
    answer = log_in(client, "alice")
    assert answer.headers["Location"].startswith("/login/totp")
    assert client.get("/hosts").headers["Location"] == "/login/totp"  # half logged in reaches nothing
    form = form_for(client.get("/login/totp"), "/login/totp")
    form["code"] = "123456" if totp.code(secret) != "123456" else "654321"
    form.submit(status=401)
    form = form_for(client.get("/login/totp"), "/login/totp")
    # The setup code's step is spent; the next step's code is within the window.
    form["code"] = totp.code(secret, step_offset=1)
    assert form.submit().status_int == 303
    assert client.get("/hosts").status_int == 200


def test_totp_code_is_refused_once_used(db, client) -> None:
    alice = add_user(db, "alice")
    secret = totp.new_secret()
    accounts.set_totp(db, alice.id, secret, None)
    code = totp.code(secret)

    def second_step(code: str) -> int:
        log_in(client, "alice")
        form = form_for(client.get("/login/totp"), "/login/totp")
        form["code"] = code
        return form.submit(expect_errors=True).status_int

    assert second_step(code) == 303
    client.reset()
    # The same code again, within its window: refused, as is an older one still inside the window.
    assert second_step(code) == 401
    client.reset()
    assert second_step(totp.code(secret, step_offset=-1)) == 401
    client.reset()
    later = totp.code(secret, step_offset=1)
    assert second_step(later) == 303
    # Turning the factor off needs an unused code too.
    token = csrf_of(client.get("/account"))
    page = client.post("/account/totp/disable", {"csrf_token": token, "current": PASSWORD, "code": later}, status=400)
    assert 'id="e-code"' in page.text and users.get(db, alice.id).totp_secret == secret


def test_totp_verify_names_the_matching_step() -> None:
    secret = totp.new_secret()
    at = 1_700_000_000.0
    assert totp.matching_step(secret, totp.code(secret, at), at) == totp.step(at)
    assert totp.matching_step(secret, totp.code(secret, at, -1), at) == totp.step(at) - 1
    assert totp.matching_step(secret, totp.code(secret, at, 2), at) is None
    assert totp.matching_step(secret, "12345", at) is None and totp.matching_step("", "123456", at) is None


def test_language_from_browser_and_choice(db, client) -> None:
    assert "Anmelden" in client.get("/login", headers={"Accept-Language": "de-DE,de;q=0.9"}).text
    page = client.get("/login")
    assert "Log in" in page.text
    form = form_for(page, "/language")
    form["language"] = "de"
    form.submit()
    assert "Anmelden" in client.get("/login").text
