"""A host's page shows its recent updates and the failed logins against its name, as the real updater app
recorded them, to its owner (and admins) only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from ddserver.config import Config
from ddserver.db import Database
from ddserver.updater.app import create_app as create_updater
from tests.integration.interface.conftest import add_user, form_for, log_in_as
from tests.updater_support import ZONE, Site, call, make_site, updater_config

HOME = f"home.{ZONE}"


@pytest.fixture
def site(db: Database) -> Site:
    return make_site(db)


@pytest.fixture
def updater(config: Config, db: Database, site: Site) -> Iterator[Any]:
    app = create_updater(updater_config(config, auth_failures_per_client=2), db)
    yield app
    app.config["ddserver.updater"].close()


def _section(page: Any, table_id: str) -> str:
    found = re.search(rf'<table[^>]*id="{table_id}".*?</table>', page.text, re.S)
    assert found, f"no table {table_id} on the page"
    return found.group(0)


def test_the_owner_sees_updates_and_guesses(db: Database, client: Any, site: Site, updater: Any) -> None:
    auth = (HOME, site.secrets[HOME])
    proxy = {"remote": "127.0.0.1", "headers": {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}}
    assert call(updater, "/nic/update", {"myip": "198.51.100.1,2001:db8::1"}, auth=auth, **proxy).body.startswith(
        "good"
    )
    # Someone guesses the secret from two addresses; the second failure of each reaches its limit, the third
    # is answered abuse and not listed.
    for n in range(6):
        reply = call(updater, "/nic/update", {}, auth=(HOME, f"guess-{n}"), remote=f"198.51.100.{50 + n % 2}")
        assert reply.body == ("badauth\n" if n < 4 else "abuse\n")

    log_in_as(client, site.alice)
    page = client.get(f"/hosts/{site.home.id}")
    updates = _section(page, "history")
    assert "<code>203.0.113.7</code>" in updates and "<code>good</code>" in updates
    assert "<code>198.51.100.1</code>, <code>2001:db8::1</code>" in updates
    assert re.search(r"<td>yes</td>\s*<td><code>good</code>", updates)
    failures = _section(page, "auth-failures")
    assert failures.count("<tr>") == 1 + 4  # the header and four failures
    assert "<code>198.51.100.50</code>" in failures and "<code>198.51.100.51</code>" in failures
    assert "wrong secret</td>" in failures and "reached its limit" in failures
    assert "someone is guessing" in page.text
    assert "guess-" not in page.text
    # An address set by hand enters the history too.
    form = form_for(page, f"/hosts/{site.home.id}/address")
    form["ipv4"] = "198.51.100.9"
    form.submit().follow()
    updates = _section(client.get(f"/hosts/{site.home.id}"), "history")
    assert updates.index("set here") < updates.index("<code>good</code>")  # newest first
    # The owner's other host has neither.
    page = client.get(f"/hosts/{site.office.id}")
    assert 'id="history"' not in page.text and 'id="auth-failures"' not in page.text
    assert "No update yet." in page.text and "None recently." in page.text


def test_other_users_cannot_see_a_hosts_trail(db: Database, make_app: Any, site: Site, updater: Any) -> None:
    assert call(updater, "/nic/update", {}, auth=(HOME, "wrong"), remote="198.51.100.50").body == "badauth\n"
    bob = make_app()
    log_in_as(bob, site.bob)
    assert bob.get(f"/hosts/{site.home.id}", status=404)
    assert "198.51.100.50" not in bob.get(f"/hosts/{site.other.id}").text
    # An admin may open any host, its trail included.
    admin = make_app()
    log_in_as(admin, add_user(db, "root", admin=True, password=None))
    assert "<code>198.51.100.50</code>" in _section(admin.get(f"/hosts/{site.home.id}"), "auth-failures")


def test_no_lists_when_nothing_is_kept(db: Database, make_app: Any, site: Site) -> None:
    owner = make_app(updater={"history_kept": 0, "auth_trail_kept": 0})
    log_in_as(owner, site.alice)
    page = owner.get(f"/hosts/{site.home.id}")
    assert "Recent updates" not in page.text and "Failed logins" not in page.text
