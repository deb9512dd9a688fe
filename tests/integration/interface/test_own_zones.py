"""Users' own zones through the WSGI app, with BIND as the parent ``example.com``: add one (checked at once),
see why it is not served, "check now", the limit, approval by an admin, other users by name, delete."""

from __future__ import annotations

from typing import Any

import pytest

from ddserver.store import hosts, ownzones, zones
from tests.integration.interface.conftest import add_host, add_user, form_for, log_in_as
from tests.named import SERVICE_NS, NamedServer, parent, set_delegation  # noqa: F401 (fixture)


@pytest.fixture
def app_for(make_app: Any, parent: NamedServer) -> Any:  # noqa: F811
    def build(**zone_settings: Any) -> Any:
        settings = {"nameservers": SERVICE_NS, "delegation_resolver": (parent.server,), "check_timeout": 2.0}
        return make_app(zones={**settings, **zone_settings})

    return build


def _add(client: Any, name: str, status: int = 303) -> Any:
    form = form_for(client.get("/zones"), "/zones")
    form["name"] = name
    return form.submit(status=status)


def test_a_user_adds_a_zone_and_hosts_in_it(db, app_for, parent: NamedServer) -> None:  # noqa: F811
    client = app_for()
    alice = add_user(db, "alice", password=None)
    add_user(db, "bob", password=None)
    log_in_as(client, alice)
    assert "Your zones" in client.get("/hosts").text
    page = _add(client, "dyn.example.com").follow()
    assert "served" in page.text and "dyn.example.com. IN NS ns1.example.org." in page.text
    zone = zones.get(db, "dyn.example.com")
    assert zone.served and zone.owner_id == alice.id

    # Hosts in it as in any zone.
    form = form_for(client.get("/hosts/new"), "/hosts/new")
    form["label"] = "home"
    form["zone"] = str(zone.id)
    form.submit(status=201)
    assert hosts.get(db, "home.dyn.example.com").user_id == alice.id

    # Delegated elsewhere: pending, and the owner reads why; "check now" after the parent is fixed.
    page = _add(client, "other.example.com").follow()
    assert "pending delegation" in page.text and "ns.elsewhere.example.net" in page.text
    other = zones.get(db, "other.example.com")
    assert not other.served
    assert f'value="{other.id}"' not in client.get("/hosts/new").text  # not offered for hosts yet
    set_delegation(parent, "other.example.com", SERVICE_NS)
    check = form_for(client.get(f"/zones/{other.id}"), f"/zones/{other.id}/check")
    assert "Checked a moment ago" in check.submit().follow().text  # checked when added, seconds ago
    assert not zones.get(db, "other.example.com").served
    db.run(
        lambda tx: tx.execute(
            "UPDATE zones SET delegation_checked_at = delegation_checked_at - 60 WHERE id = ?", (other.id,)
        )
    )
    page = check.submit().follow()
    assert "The delegation is in place." in page.text and zones.get(db, "other.example.com").served

    # The limit (2 by default), bad names and overlaps.
    assert "limit of 2 zones" in _add(client, "third.example.com", 400).text
    assert 'id="e-name"' in _add(client, "no_such..zone", 400).text


def test_the_owner_lets_other_users_add_hosts_and_deletes_the_zone(db, app_for) -> None:
    client = app_for()
    alice = add_user(db, "alice", password=None)
    bob = add_user(db, "bob", password=None)
    log_in_as(client, alice)
    _add(client, "dyn.example.com")
    zone_id = zones.get(db, "dyn.example.com").id
    page = client.get(f"/zones/{zone_id}")
    form = form_for(page, f"/zones/{zone_id}/users")
    form["username"] = "nobody"
    assert "There is no user nobody." in form.submit(status=400).text
    form["username"] = "bob"
    assert "bob may add hosts here now." in form.submit().follow().text
    host = add_host(db, bob, "bobs.dyn.example.com")
    assert host.zone_id == zone_id

    # Bob cannot open the zone's page; the owner removes him (his host stays) and deletes the zone.
    other = app_for()
    log_in_as(other, bob)
    assert other.get(f"/zones/{zone_id}", expect_errors=True).status_int == 404
    form_for(client.get(f"/zones/{zone_id}"), f"/zones/{zone_id}/users/{bob.id}/remove").submit()
    assert ownzones.grantees(db, zone_id) == []
    page = client.get(f"/zones/{zone_id}/delete")
    assert "1 host goes with it" in page.text
    form = form_for(page, f"/zones/{zone_id}/delete")
    form["confirm"] = "wrong"
    assert "Type the zone" in form.submit(status=400).text
    form["confirm"] = "dyn.example.com"
    assert "The zone dyn.example.com is deleted." in form.submit().follow().text
    assert ownzones.owned_by(db, alice.id) == [] and hosts.search(db, limit=10)[0] == []


def test_an_admin_approves_or_rejects_a_users_zone(db, app_for) -> None:
    client = app_for(approval=True)
    alice = add_user(db, "alice", password=None)
    admin = add_user(db, "root", admin=True, password=None)
    log_in_as(client, alice)
    assert "awaiting approval" in _add(client, "dyn.example.com").follow().text
    _add(client, "other.example.com")
    zone = zones.get(db, "dyn.example.com")
    assert not zone.served and zone.delegation_ok_at is not None  # delegated, but not approved yet

    client.reset()
    log_in_as(client, admin)
    listing = client.get("/admin/zones")
    assert "alice" in listing.text and listing.text.count("Approve") == 2
    form = form_for(listing, f"/admin/zones/{zone.id}/approval")
    assert "is approved" in form.submit("action", value="approve").follow().text
    assert zones.get(db, "dyn.example.com").served
    rejected = zones.get(db, "other.example.com")
    form = form_for(client.get("/admin/zones"), f"/admin/zones/{rejected.id}/approval")
    assert "rejected and deleted" in form.submit("action", value="reject").follow().text
    assert [z.name for z in ownzones.all_owned(db)] == ["dyn.example.com"]


def test_no_own_zones_without_nameservers(db, make_app) -> None:
    client = make_app()
    alice = add_user(db, "alice", password=None)
    log_in_as(client, alice)
    assert "Your zones" not in client.get("/hosts").text
    assert "does not take zones of users" in client.get("/zones").text
