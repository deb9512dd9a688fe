"""Login limits that no stranger can turn against a user (device cookies, one counter per account), and
answers that do the same work whether an account exists or not."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from ddserver import passwords
from ddserver.interface import mail
from ddserver.store import tokens, users
from tests.integration.interface.conftest import PASSWORD, add_user, csrf_of, form_for, log_in, log_in_as

LIMITS = {"login_failures_per_account": 4, "login_failures_per_address": 5, "mail_per_address": 100}


def _post_login(app: Any, login: str, password: str, address: str) -> Any:
    """A login from ``address`` through the trusted proxy, as a client with the app's cookies."""
    app.extra_environ = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": address}
    token = csrf_of(app.get("/login"))
    return app.post("/login", {"csrf_token": token, "login": login, "password": password}, expect_errors=True)


def _guess(app: Any, logins: list[str], count: int) -> list[int]:
    """Wrong passwords for ``logins`` in turn, each from an address of its own."""
    return [
        _post_login(app, logins[n % len(logins)], f"guess {n}", f"203.0.113.{n + 1}").status_int for n in range(count)
    ]


def test_a_browser_that_logged_in_before_is_not_locked_out_by_strangers(db, make_app) -> None:
    add_user(db, "alice")
    browser = make_app(interface=LIMITS)
    assert _post_login(browser, "alice", PASSWORD, "192.0.2.50").status_int == 303
    assert any(c.name == "ddserver_device" for c in browser.cookiejar)
    browser.post("/logout", {"csrf_token": csrf_of(browser.get("/hosts"))})
    # 12 wrong passwords from 12 addresses, by user name and by e-mail address (in either case).
    attacker = make_app(interface=LIMITS)
    answers = _guess(attacker, ["alice", "ALICE@example.org", " Alice "], 12)
    assert answers == [401] * 4 + [429] * 8
    # The browser that logged in before gets in, from its usual address and from a new one.
    assert _post_login(browser, "alice", PASSWORD, "192.0.2.50").status_int == 303
    browser.post("/logout", {"csrf_token": csrf_of(browser.get("/hosts"))})
    assert _post_login(browser, "alice@example.org", PASSWORD, "198.51.100.7").status_int == 303
    # ...and, logged in, may confirm its password (change it) although the account is locked for others.
    form = form_for(browser.get("/account"), "/account/password")
    form["current"], form["password"], form["password2"] = PASSWORD, "a new password 1", "a new password 1"
    assert form.submit().status_int == 303
    # An unknown client waits, even with the right password, and is told so just as for a wrong one.
    stranger = make_app(interface=LIMITS)
    answer = _post_login(stranger, "alice", "a new password 1", "198.51.100.8")
    assert answer.status_int == 429 and "Too many attempts" in answer.text


def test_a_device_has_its_own_counter(db, make_app) -> None:
    add_user(db, "alice")
    browser = make_app(interface=LIMITS)
    assert _post_login(browser, "alice", PASSWORD, "192.0.2.50").status_int == 303
    browser.post("/logout", {"csrf_token": csrf_of(browser.get("/hosts"))})
    # The browser's own failures lock it out after the same number of guesses...
    assert [_post_login(browser, "alice", "typo", "192.0.2.50").status_int for _ in range(4)] == [401] * 4
    # ...after which it is an unknown client: the account's counter (untouched so far) decides.
    assert _post_login(browser, "alice", PASSWORD, "192.0.2.50").status_int == 303
    browser.post("/logout", {"csrf_token": csrf_of(browser.get("/hosts"))})
    # A device cookie is worth nothing for another account, or forged.
    add_user(db, "bob")
    attacker = make_app(interface=LIMITS)
    assert _guess(attacker, ["bob"], 5) == [401] * 4 + [429]
    assert _post_login(browser, "bob", PASSWORD, "192.0.2.50").status_int == 429
    cookie = next(c for c in browser.cookiejar if c.name == "ddserver_device")
    _, nonce, signature = cookie.value.split(".")
    bob = users.get_by_name(db, "bob")
    browser.reset()
    browser.set_cookie("ddserver_device", f"{bob.id}.{nonce}.{signature}")
    assert _post_login(browser, "bob", PASSWORD, "192.0.2.50").status_int == 429


def test_a_name_and_its_email_are_one_account_and_unknown_names_one_text(db, make_app) -> None:
    add_user(db, "alice")
    attacker = make_app(interface={**LIMITS, "login_failures_per_address": 100})
    assert _guess(attacker, ["alice", "alice@example.org"], 4) == [401] * 4
    assert _post_login(attacker, "alice", PASSWORD, "198.51.100.1").status_int == 429
    assert _post_login(attacker, "Alice@Example.org", PASSWORD, "198.51.100.2").status_int == 429
    # An unknown name is counted on its normalised text, and answered like a known one.
    assert _guess(attacker, ["ghost", " GHOST", "Ghost "], 5) == [401] * 4 + [429]


class _Hashes:
    """Counts the password hashes spent (real checks and dummy ones)."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.spent = 0

    def verify_and_update(self, *args: Any) -> Any:
        self.spent += 1
        return self.context.verify_and_update(*args)

    def dummy_verify(self, *args: Any) -> Any:
        self.spent += 1
        return self.context.dummy_verify(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.context, name)


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Hashes]:
    counter = _Hashes(passwords._context())
    monkeypatch.setattr(passwords, "_context", lambda: counter)
    yield counter


def test_every_login_spends_one_password_hash(db, client, hashes: _Hashes) -> None:
    add_user(db, "alice")
    for login, password in [
        ("alice", "wrong password"),
        ("alice", ""),
        ("nobody", "wrong password"),
        ("nobody", ""),
        ("", ""),
        ("alice", PASSWORD),
    ]:
        client.reset()
        before = hashes.spent
        log_in(client, login, password)
        assert hashes.spent - before == 1, (login, password)


class _Spy:
    """Records on which threads the work that depends on an account's existence is done."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.here: list[str] = []
        self.elsewhere: list[str] = []
        self.request_thread = threading.current_thread()
        for module, name in ((users, "find_login"), (tokens, "create"), (mail, "send")):
            self.wrap(monkeypatch, module, name)

    def wrap(self, monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> None:
        real = getattr(module, name)

        def spy(*args: Any, **kwargs: Any) -> Any:
            (self.here if threading.current_thread() is self.request_thread else self.elsewhere).append(name)
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)

    def on_request(self) -> list[str]:
        """What the request path did since the last call."""
        taken, self.here = self.here, []
        return taken


def test_forgot_password_does_the_same_work_either_way(db, client, mailbox, monkeypatch) -> None:
    add_user(db, "alice")
    spy = _Spy(monkeypatch)
    seen = []
    for login in ("alice", "nobody@example.org", "alice@example.org", "nobody"):
        form = form_for(client.get("/password/forgot"), "/password/forgot")
        form["login"] = login
        assert "If an active account has this name" in form.submit().text
        seen.append(spy.on_request())
    # Nothing that depends on the account is done while the request waits: the lookup, the token and the
    # mail are made by the background sender.
    assert seen == [[]] * 4
    assert len(mailbox.wait_for("alice@example.org", 2)) == 2
    assert set(spy.elsewhere) == {"find_login", "create", "send"}


def test_signup_does_the_same_work_for_a_known_address(db, make_app, mailbox, monkeypatch) -> None:
    client = make_app(signup={"mode": "automatic"})
    add_user(db, "alice")
    spy = _Spy(monkeypatch)
    seen = []
    for username, email in (("carol", "carol@example.org"), ("alice2", "alice@example.org")):
        form = form_for(client.get("/signup"), "/signup")
        form["username"], form["email"] = username, email
        form["password"] = form["password2"] = PASSWORD
        assert "Check your mail" in form.submit().text
        seen.append([name for name in spy.on_request() if name != "find_login"])
    assert seen == [[], []]
    assert "/activate/" in mailbox.wait_for("carol@example.org")[0].get_content()
    assert "already has an account" in mailbox.wait_for("alice@example.org")[0].get_content()


def test_signup_with_taken_names_is_limited_like_logins(db, make_app) -> None:
    client = make_app(signup={"mode": "automatic"}, interface=LIMITS)
    for name in ("alice", "bob", "carol", "dave", "erin", "frank"):
        add_user(db, name)
    answers = []
    for name in ("alice", "bob", "carol", "dave", "erin", "frank"):
        form = form_for(client.get("/signup"), "/signup")
        form["username"], form["email"] = name, f"new-{name}@example.net"
        form["password"] = form["password2"] = PASSWORD
        answer = form.submit(expect_errors=True)
        answers.append((answer.status_int, "This name is taken" in answer.text))
    assert answers == [(400, True)] * 5 + [(429, False)]


def test_logged_in_password_checks_count_per_session(db, make_app) -> None:
    client = make_app(interface=LIMITS)
    alice = add_user(db, "alice")
    token = log_in_as(client, alice)
    for _ in range(4):
        answer = client.post(
            "/account/password",
            {"csrf_token": token, "current": "wrong", "password": "x" * 12, "password2": "x" * 12},
            expect_errors=True,
        )
        assert "This is not your current password" in answer.text
    answer = client.post(
        "/account/password",
        {"csrf_token": token, "current": PASSWORD, "password": "x" * 12, "password2": "x" * 12},
        expect_errors=True,
    )
    assert "Too many attempts" in answer.text
    # Another session of the same account (another browser of its owner) is not held by this one's failures.
    other = log_in_as(client, alice)
    answer = client.post(
        "/account/password",
        {"csrf_token": other, "current": PASSWORD, "password": "y" * 12, "password2": "y" * 12},
    )
    assert answer.status_int == 303
