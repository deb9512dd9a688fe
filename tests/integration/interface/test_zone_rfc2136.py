"""The admin's zone form drives a real BIND 9 primary: settings entered in the browser form are what
ddserver-rfc2136 pushes with, and what it records comes back on the zone list."""

from __future__ import annotations

from ddserver.rfc2136.worker import Worker
from ddserver.store import hosts, zones
from ddserver.store import rfc2136 as rfc2136_store
from tests import named as named_support
from tests import support
from tests.integration.interface.conftest import add_user, form_for, log_in_as
from tests.named import make_secret

named = named_support.named  # the fixture
ZONE = "dyn.example.org"


def test_zone_added_in_the_form_is_pushed_and_errors_are_shown(db, db_url, tmp_path, client, named) -> None:
    admin = add_user(db, "root", admin=True, password=None)
    log_in_as(client, admin)
    form = form_for(client.get("/admin/zones/new"), "/admin/zones/new")
    form["name"], form["nameservers"], form["hostmaster"] = ZONE, f"ns1.{ZONE}", "hostmaster@example.org"
    form["rfc2136_server"], form["tsig_name"], form["tsig_secret"] = named.server, named.key_name, named.secret
    form.submit()
    zone = zones.get(db, ZONE)
    hosts.add(db, admin.id, f"home.{ZONE}", "h", default_limit=-1, ipv4="192.0.2.7")
    config = support.make_config(db_url, tmp_path, rfc2136={"timeout": 3})
    worker = Worker(db, config)
    result = worker.run_pass(force=True)
    assert not result.errors, result
    assert named.query(f"home.{ZONE}") == ["192.0.2.7"]
    assert "in step" in client.get("/admin/zones").text

    # A wrong secret typed in the form: the worker compares in full, fails, and the list says why.
    form = form_for(client.get(f"/admin/zones/{zone.id}"), f"/admin/zones/{zone.id}")
    form["tsig_secret"] = make_secret("wrong")
    form.submit()
    assert rfc2136_store.get_lease(db, zone.id).full_sync
    result = worker.run_pass(force=True)
    assert "BADSIG" in result.errors[ZONE]
    page = client.get("/admin/zones").text
    assert "BADSIG" in page and "secret differs" in page and "Last success: " in page
    assert make_secret("wrong") not in page and named.secret not in page
