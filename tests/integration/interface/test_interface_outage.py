"""The interface as a real process while its database goes away: a clear 503 page, no traceback, and
pages work again once the database is back, without restarting the interface."""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from ddserver import secrets
from ddserver.store import hosts, sessions
from tests import support
from tests.integration.interface.conftest import add_user, add_zone


def fetch(port: int, path: str, cookie: str = "", data: dict[str, str] | None = None) -> tuple[int, str, Any]:
    """GET (or POST ``data``) a page; returns the status, the body and the headers."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers={"Cookie": cookie})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read().decode(), answer.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers


def test_database_down_gives_a_503_page_and_pages_come_back(private_mariadb, tmp_path: Path) -> None:
    url = private_mariadb.url("ddinterface")
    db = support.create_database(url)
    alice = add_user(db, "alice", admin=True)
    zone = add_zone(db)
    hosts.add(db, alice.id, f"home.{zone.name}", secrets.hash_host_secret("x" * 22), default_limit=5)
    token, _ = sessions.create(db, alice.id, 3600)
    db.close_all()
    session = f"ddserver_session={token}"
    port = support.free_port()
    config = tmp_path / "ddserver.conf"
    config.write_text(
        f"[database]\nurl = {url}\nconnect_timeout = 2\n\n[auth]\nsecret_key = test-secret-key\n\n"
        "[interface]\nthreads = 4\n"
    )
    process = support.Process(
        [support.console_script("ddserver-interface"), "--config", config, "--listen", f"127.0.0.1:{port}"],
        log=tmp_path / "interface.log",
    )
    try:
        process.wait_port("127.0.0.1", port)
        assert fetch(port, "/hosts", session)[0] == 200
        assert fetch(port, "/health")[:2] == (200, "ok\n")
        status, page, headers = fetch(port, "/login")
        csrf_cookie = headers["Set-Cookie"].split(";")[0]
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

        private_mariadb.stop()
        for path in ("/hosts", "/", "/account", "/admin/users", f"/hosts/{1}"):
            status, page, headers = fetch(port, path, session)
            assert status == 503 and headers["Retry-After"] == "60", (path, status)
            assert "Temporarily unavailable" in page and "database cannot be reached" in page, path
            assert "Traceback" not in page
        status, page, _ = fetch(port, "/login", csrf_cookie, {"csrf_token": csrf, "login": "alice", "password": "x"})
        assert status == 503 and "Temporarily unavailable" in page
        # Load balancers see it.
        assert fetch(port, "/health")[:2] == (503, "unavailable\n")
        # What needs no database still answers.
        assert fetch(port, "/static/ddserver.css")[0] == 200
        assert fetch(port, "/login")[0] == 200

        private_mariadb.start()
        support.wait_until(lambda: fetch(port, "/hosts", session)[0] == 200, timeout=30, what="pages again")
        status, page, _ = fetch(port, "/hosts", session)
        assert f"home.{zone.name}" in page
        assert fetch(port, "/admin/users", session)[0] == 200
        assert fetch(port, "/health")[:2] == (200, "ok\n")
    finally:
        process.stop()
    log = (tmp_path / "interface.log").read_text()
    assert "Traceback" not in log and "Can't connect to MySQL server" in log
