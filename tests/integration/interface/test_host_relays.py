"""Relays on the host page: add, edit and remove with CSRF and form errors; the secret sealed, never shown back;
the last result shown; other users see nothing."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ddserver import sealing
from ddserver.db import Database
from ddserver.store import relays
from tests.integration.interface.conftest import form_for, log_in_as
from tests.updater_support import Site, make_site

KEY = sealing.new_key()
SECRET = "third-party-secret-6a1f"
URL = "https://members.dyndns.org/nic/update"


@pytest.fixture
def site(db: Database) -> Site:
    return make_site(db)


@pytest.fixture
def owner(make_app: Any, site: Site) -> Any:
    app = make_app(auth={"data_key": KEY})
    log_in_as(app, site.alice)
    return app


def _add(app: Any, host_id: int, **values: str) -> Any:
    page = app.get(f"/hosts/{host_id}")
    form = form_for(page, f"/hosts/{host_id}/relays")
    fields = {"url": URL, "remote_name": "home.dyndns.org", "username": "alice-at-dyn", "secret": SECRET}
    for name, value in {**fields, **values}.items():
        form[name] = value
    return form.submit(expect_errors=True)


def test_add_show_edit_remove(db: Database, owner: Any, site: Site) -> None:
    host_id = site.home.id
    answer = _add(owner, host_id, family="ipv4")
    assert answer.status_int == 303
    page = answer.follow()
    assert "The relay is saved." in page.text
    (relay,) = relays.for_host(db, host_id)
    assert (relay.url, relay.remote_name, relay.username, relay.family) == (
        URL,
        "home.dyndns.org",
        "alice-at-dyn",
        "ipv4",
    )
    row = re.search(rf'<tr id="relay-{relay.id}">.*?</tr>', page.text, re.S)
    assert row and URL in row.group(0) and "pending" in row.group(0) and "(IPv4)" in row.group(0)
    stored = db.read(lambda tx: tx.scalar("SELECT secret FROM host_relays"))
    assert SECRET not in stored
    assert sealing.Sealer(sealing.parse_key(KEY)).unseal(stored, relays.secret_context(host_id)) == SECRET
    assert SECRET not in page.text

    # The worker's last answer is shown: a refused relay is stopped and says why.
    job = relays.claim(db, relay.id, "test", 60)
    assert job is not None
    relays.finish(db, job, "test", done=False, stop=True, result="badauth", sent="198.51.100.1")
    page = owner.get(f"/hosts/{host_id}")
    row = re.search(rf'<tr id="relay-{relay.id}">.*?</tr>', page.text, re.S)
    assert row and "stopped" in row.group(0) and "<code>badauth</code>" in row.group(0)

    # Edit: the secret is not shown back; left empty it is kept; saving tries again.
    edit = owner.get(f"/hosts/{host_id}/relays/{relay.id}")
    assert SECRET not in edit.text
    form = form_for(edit, f"/hosts/{host_id}/relays/{relay.id}")
    assert form["secret"].value == "" and form["username"].value == "alice-at-dyn"
    form["username"] = "alice2"
    form["url"] = "gopher://x.example/"
    bad = form.submit(status=400)
    assert "must begin with https://" in bad.text
    form = form_for(bad, f"/hosts/{host_id}/relays/{relay.id}")
    form["url"] = URL
    form.submit().follow()
    edited = relays.get(db, relay.id)
    assert (edited.username, edited.stopped, edited.pending) == ("alice2", False, True)
    assert db.read(lambda tx: tx.scalar("SELECT secret FROM host_relays")) == stored

    # Remove.
    page = owner.get(f"/hosts/{host_id}")
    form_for(page, f"/hosts/{host_id}/relays/{relay.id}/delete").submit().follow()
    assert relays.for_host(db, host_id) == []


def test_form_errors_csrf_limit_and_other_users(db: Database, make_app: Any, owner: Any, site: Site) -> None:
    host_id = site.home.id
    answer = _add(owner, host_id, url="ftp://x.example/", remote_name="nodot", username="", secret="")
    assert answer.status_int == 400
    for message in ("must begin with https://", "is not a full host name", "The user name is empty.", "is empty."):
        assert message in answer.text
    # A secret typed into a form with errors is not sent back.
    answer = _add(owner, host_id, url="ftp://x.example/")
    assert answer.status_int == 400 and SECRET not in answer.text
    # No CSRF token: refused.
    owner.post(f"/hosts/{host_id}/relays", {"url": URL, "remote_name": "a.example", "username": "u"}, status=403)
    assert relays.for_host(db, host_id) == []
    # The limit of relays per host.
    limited = make_app(auth={"data_key": KEY}, relay={"max_per_host": 1})
    log_in_as(limited, site.alice)
    assert _add(limited, host_id).status_int == 303
    page = limited.get(f"/hosts/{host_id}")
    assert f'action="/hosts/{host_id}/relays"' not in page.text and "at most 1 relays" in page.text
    # Another user sees and changes nothing.
    (relay,) = relays.for_host(db, host_id)
    bob = make_app(auth={"data_key": KEY})
    log_in_as(bob, site.bob)
    bob.get(f"/hosts/{host_id}/relays/{relay.id}", status=404)
    bob.get(f"/hosts/{site.other.id}/relays/{relay.id}", status=404)
    assert relays.for_host(db, host_id) == [relay]


def test_without_a_data_key_nothing_is_stored(db: Database, make_app: Any, site: Site, tmp_path: Any) -> None:
    app = make_app(auth={"data_key": "", "data_key_file": str(tmp_path / "missing.key")})
    log_in_as(app, site.alice)
    answer = _add(app, site.home.id)
    assert answer.status_int == 400 and "no data key" in answer.text
    assert relays.for_host(db, site.home.id) == []


def test_no_relays_offered(make_app: Any, site: Site) -> None:
    app = make_app(relay={"max_per_host": 0})
    log_in_as(app, site.alice)
    assert 'id="h-relays"' not in app.get(f"/hosts/{site.home.id}").text
