"""The interface while its database link goes silent (nothing refused, nothing answered): a 503 page within
the [database] timeouts, on the session lookup of an open connection and of a new one, and pages again
once the link is back."""

from __future__ import annotations

from pathlib import Path

import pytest

from ddserver.db import Database
from ddserver.interface import web
from ddserver.interface.app import create_app
from ddserver.store import sessions
from tests import support
from tests.blackhole import BlackholeProxy, Threads, finishes
from tests.integration.interface.conftest import add_host, add_user, add_zone, webtest

pytestmark = [pytest.mark.mysql, pytest.mark.parametrize("dialect", ["mysql"])]


def test_interface_answers_503_while_the_link_is_silent(
    db: Database, db_url: str, blackhole: BlackholeProxy, threads: Threads, tmp_path: Path
) -> None:
    alice = add_user(db, "alice")
    add_host(db, alice, f"home.{add_zone(db).name}")
    token, _ = sessions.create(db, alice.id, 3600)
    timeouts = {"connect_timeout": 1, "read_timeout": 2}
    config = support.make_config(blackhole.url(db_url), tmp_path, database=timeouts)
    app = webtest.TestApp(create_app(config), extra_environ={"REMOTE_ADDR": "192.0.2.1"})
    app.set_cookie(web.SESSION_COOKIE, token)

    def page(path: str) -> tuple[int, str, str | None]:
        answer = app.get(path, expect_errors=True)
        return answer.status_int, answer.text, answer.headers.get("Retry-After")

    pool = threads.new()
    status, text, _ = finishes(pool, page, "/hosts")
    assert status == 200 and "home.dyn.example.org" in text
    blackhole.blackhole()
    # The session lookup on this thread's open connection, then on a new one, then on this thread again.
    for pages in (pool, threads.new(), pool):
        for path in ("/hosts", "/account"):
            status, text, retry = finishes(pages, page, path)
            assert (status, retry) == (503, "60"), path
            assert "Temporarily unavailable" in text and "Traceback" not in text
    blackhole.restore()
    for pages in (pool, threads.new()):
        status, text, _ = finishes(pages, page, "/hosts")
        assert status == 200 and "home.dyn.example.org" in text
