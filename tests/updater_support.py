"""Helpers for the updater's tests: a zone with users and hosts, and a WSGI call without a server."""

from __future__ import annotations

import base64
import contextlib
import io
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ddserver import secrets
from ddserver.config import Config
from ddserver.db import Database
from ddserver.store import hosts, tokens, updates, users, zones

ZONE = "dyn.example.org"


@dataclass
class Site:
    """A zone, two users and their hosts, with the secrets in clear."""

    db: Database
    zone: zones.Zone
    alice: users.User
    bob: users.User
    home: hosts.Host
    office: hosts.Host
    other: hosts.Host
    secrets: dict[str, str]
    token: str


def make_site(db: Database, pepper: str = "") -> Site:
    """``alice`` owns home and office, ``bob`` owns other; alice also has an account update token."""
    db.run(lambda tx: tx.execute("DELETE FROM rate_limits"))
    zone = zones.add(db, ZONE, ["ns1.example.org"], "hostmaster.example.org")
    alice = users.add(db, "alice", "alice@example.org")
    bob = users.add(db, "bob", "bob@example.org")
    made: dict[str, str] = {}

    def host(user: users.User, label: str) -> hosts.Host:
        secret = secrets.new_host_secret()
        name = f"{label}.{ZONE}"
        made[name] = secret
        return hosts.add(db, user.id, name, secrets.hash_host_secret(secret, pepper), default_limit=-1)

    home, office, other = host(alice, "home"), host(alice, "office"), host(bob, "other")
    token = tokens.create(db, updates.UPDATE_TOKEN, alice.id, None)
    return Site(db, zone, alice, bob, home, office, other, made, token)


def basic(login: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{secret}".encode()).decode()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: str

    @property
    def lines(self) -> list[str]:
        return self.body.splitlines()


def call(
    app: Any,
    path: str,
    params: dict[str, str] | str | None = None,
    *,
    auth: tuple[str, str] | None = None,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    remote: str = "192.0.2.10",
    form: dict[str, str] | None = None,
    scheme: str = "http",
) -> Reply:
    """Call a WSGI app in-process, as a server would."""
    query = params if isinstance(params, str) else urllib.parse.urlencode(params or {})
    body = urllib.parse.urlencode(form).encode() if form else b""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": remote,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/x-www-form-urlencoded" if form else "",
    }
    if auth is not None:
        environ["HTTP_AUTHORIZATION"] = basic(*auth)
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    captured: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        captured["status"] = int(status.split()[0])
        captured["headers"] = {k.lower(): v for k, v in response_headers}

    chunks = app(environ, start_response)
    try:
        text = b"".join(chunks).decode()
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    return Reply(captured["status"], captured["headers"], text)


def host_row(db: Database, name: str) -> dict[str, Any]:
    row = db.read(lambda tx: tx.one("SELECT * FROM hosts WHERE name = ?", (name,)))
    assert row is not None
    return row


def updater_config(config: Config, **values: Any) -> Config:
    """Limits off unless a test sets them, so repeated requests in a test are not faults; and no host cache,
    so that what a test writes to the database directly is seen at once (test_updater_cache.py has it on)."""
    defaults: dict[str, Any] = {"min_interval": 0, "nochg_interval": 0, "host_cache": 0}
    defaults.update(values)
    return config.replace("updater", **defaults)


def write_updater_config(path: Path, db_url: str, port: int, extra: str = "", threads: int = 4) -> Path:
    path.write_text(
        f"[database]\nurl = {db_url}\n\n[auth]\nsecret_key = test-secret-key\n\n"
        f"[updater]\nlisten = 127.0.0.1:{port}\nthreads = {threads}\nmin_interval = 0\nnochg_interval = 0\n{extra}\n"
    )
    return path


@contextlib.contextmanager
def running_updater(folder: Path, db_url: str, extra: str = "") -> Iterator[tuple[int, Path]]:
    """A ``ddserver-updater`` process on a free port with the configuration of ``write_updater_config`` in
    ``folder`` (its log beside it), stopped afterwards: yields its port and configuration file."""
    from tests import support

    port = support.free_port()
    config = write_updater_config(folder / "ddserver.conf", db_url, port, extra)
    updater = support.Process(
        [support.console_script("ddserver-updater"), "--config", str(config)], log=folder / "updater.log"
    )
    try:
        updater.wait_port("127.0.0.1", port)
        yield port, config
    finally:
        updater.stop()
