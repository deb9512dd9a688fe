"""Fixtures of the interface tests: the app through WebTest, a local SMTP server, users, sessions, zones."""

from __future__ import annotations

import email
import email.policy
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from ddserver import passwords, secrets, validate
from ddserver.config import Config
from ddserver.db import Database
from ddserver.interface import web
from ddserver.interface.app import create_app
from ddserver.store import hosts, sessions, users, zones
from ddserver.store.users import User
from tests import support

webtest = pytest.importorskip("webtest")

PASSWORD = "correct horse battery staple"
CLIENT = "192.0.2.10"


@dataclass
class Mailbox:
    """Messages received by the local aiosmtpd server."""

    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]

    def wait_for(self, address: str, count: int = 1) -> list[EmailMessage]:
        support.wait_until(lambda: len(self.to(address)) >= count, timeout=10, what=f"mail to {address}")
        return self.to(address)

    @staticmethod
    def link(message: EmailMessage, path: str) -> str:
        body = message.get_content()
        found = re.search(r"https?://\S+(" + re.escape(path) + r"\S+)", body)
        assert found, body
        return found.group(1)


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    controller_module = pytest.importorskip("aiosmtpd.controller")
    box = Mailbox()
    port = support.free_port()
    controller = controller_module.Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture
def mailbox(smtp: tuple[Mailbox, int]) -> Mailbox:
    return smtp[0]


def interface_config(db_url: str, folder: Path, smtp_port: int, **sections: dict[str, Any]) -> Config:
    values: dict[str, dict[str, Any]] = {
        "mail": {"host": "127.0.0.1", "port": smtp_port, "sender": "ddserver@example.test"},
        "http": {"base_url": "http://ddserver.example.test", "trusted_proxies": ("127.0.0.1",)},
    }
    for name, extra in sections.items():
        values[name] = {**values.get(name, {}), **extra}
    return support.make_config(db_url, folder, **values)


@pytest.fixture
def make_app(db: Database, db_url: str, tmp_path: Path, smtp: tuple[Mailbox, int]) -> Any:
    """Build the app with some config sections changed: ``make_app(signup={"mode": "automatic"})``."""

    def build(**sections: dict[str, Any]) -> Any:
        config = interface_config(db_url, tmp_path, smtp[1], **sections)
        app = create_app(config, db)
        return webtest.TestApp(app, extra_environ={"REMOTE_ADDR": CLIENT})

    return build


@pytest.fixture
def client(make_app: Any) -> Any:
    return make_app()


def add_user(db: Database, name: str, *, admin: bool = False, password: str | None = PASSWORD, **flags: Any) -> User:
    hashed = passwords.hash_password(password) if password else None
    return users.add(db, name, f"{name}@example.org", password_hash=hashed, is_admin=admin, **flags)


def add_zone(db: Database, name: str = "dyn.example.org", **options: Any) -> zones.Zone:
    return zones.add(db, name, ["ns1.example.org"], validate.hostmaster("hostmaster@example.org"), **options)


def add_host(db: Database, user: User, name: str, limit: int = 5) -> hosts.Host:
    return hosts.add(db, user.id, name, secrets.hash_host_secret("unused-secret-123456789"), default_limit=limit)


def log_in_as(app: Any, user: User) -> str:
    """Give the test client a session of ``user`` without the slow password check; returns its CSRF token."""
    token, session = sessions.create(app.app.config["ddserver.site"].db, user.id, 3600)
    app.set_cookie(web.SESSION_COOKIE, token)
    return web._sign(app.app.config["ddserver.site"].key, "csrf-session", session.id)


def form_for(page: Any, action: str) -> Any:
    """The form of a page that posts to ``action``."""
    found = [f for f in page.forms.values() if f.action == action]
    assert found, f"no form posting to {action}"
    return found[0]


def log_in(app: Any, login: str, password: str = PASSWORD, remember: bool = False) -> Any:
    page = app.get("/login")
    form = form_for(page, "/login")
    form["login"] = login
    form["password"] = password
    if remember:
        form["remember"] = True
    return form.submit(expect_errors=True)


def csrf_of(page: Any) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, "no CSRF token on the page"
    return found.group(1)
