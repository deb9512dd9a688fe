"""Hosts through the WSGI app: add with limit and live check, secret shown once, manual update, delete."""

from __future__ import annotations

import json
import re

from ddserver import secrets
from ddserver.store import hosts, records, users
from tests.integration.interface.conftest import CLIENT, add_user, add_zone, csrf_of, form_for, log_in_as


def _add(client, label: str, zone_id: int, status: int = 201):
    form = form_for(client.get("/hosts/new"), "/hosts/new")
    form["label"] = label
    form["zone"] = str(zone_id)
    return form.submit(status=status)


def _secret(page) -> str:
    return re.search(r'id="secret" readonly value="([^"]+)"', page.text).group(1)


def test_add_host_shows_the_secret_once(db, client) -> None:
    alice = add_user(db, "alice", password=None)
    zone = add_zone(db)
    log_in_as(client, alice)
    page = _add(client, "Home", zone.id)
    secret = _secret(page)
    assert len(secret) >= 22 and "curl -u 'home.dyn.example.org:" + secret in page.text
    host = hosts.get(db, "home.dyn.example.org")
    assert secrets.verify_host_secret(secret, host.secret_hash).ok
    assert secret not in client.get(f"/hosts/{host.id}").text
    listing = client.get("/hosts")
    assert "home.dyn.example.org" in listing.text and "never updated" in listing.text
    # A new secret replaces the old one at once.
    page = form_for(client.get(f"/hosts/{host.id}"), f"/hosts/{host.id}/secret").submit()
    fresh = _secret(page)
    stored = hosts.get(db, "home.dyn.example.org").secret_hash
    assert secrets.verify_host_secret(fresh, stored).ok and not secrets.verify_host_secret(secret, stored).ok


def test_add_host_errors_limit_and_live_check(db, client) -> None:
    alice = add_user(db, "alice", password=None, max_hosts=2)
    zone = add_zone(db)
    log_in_as(client, alice)
    assert 'id="e-label"' in _add(client, "bad_name", zone.id, 400).text
    assert "reserved" in _add(client, "www", zone.id, 400).text
    _add(client, "one", zone.id)
    assert "is taken" in _add(client, "one", zone.id, 400).text
    check = json.loads(client.get(f"/hosts/check?zone={zone.id}&label=one").text)
    assert check == {
        "ok": False,
        "name": "one.dyn.example.org",
        "message": "one.dyn.example.org is taken; choose another name.",
    }
    check = json.loads(client.get(f"/hosts/check?zone={zone.id}&label=two").text)
    assert check["ok"] is True
    _add(client, "two", zone.id)
    page = client.get("/hosts/new")
    assert "reached your limit of 2 hosts" in page.text and 'action="/hosts/new"' not in page.text
    page = client.post(
        "/hosts/new",
        {
            "csrf_token": re.search(r'csrf_token" value="([^"]+)', page.text).group(1),
            "label": "three",
            "zone": str(zone.id),
        },
        status=400,
    )
    assert "reached your limit of 2 hosts" in page.text


def test_private_zone_only_for_chosen_users(db, client) -> None:
    alice = add_user(db, "alice", password=None)
    add_zone(db)
    private = add_zone(db, "private.example.org", is_public=False)
    log_in_as(client, alice)
    page = client.get("/hosts/new")
    assert "private.example.org" not in page.text
    answer = client.post("/hosts/new", {"csrf_token": csrf_of(page), "label": "x", "zone": str(private.id)}, status=400)
    assert "Choose one of the zones" in answer.text


def test_manual_update_and_use_my_address(db, client) -> None:
    alice = add_user(db, "alice", password=None)
    zone = add_zone(db)
    log_in_as(client, alice)
    _add(client, "home", zone.id)
    host = hosts.get(db, "home.dyn.example.org")
    page = client.get(f"/hosts/{host.id}")
    form = form_for(page, f"/hosts/{host.id}/address")
    form["ipv4"], form["ipv6"] = "192.0.2.1", "2001:DB8::1"
    form.submit()
    host = hosts.get(db, host.name)
    assert (host.ipv4, host.ipv6) == ("192.0.2.1", "2001:db8::1")
    form = form_for(client.get(f"/hosts/{host.id}"), f"/hosts/{host.id}/address")
    form["ipv4"] = "300.1.1.1"
    assert 'id="e-ipv4"' in form.submit(status=400).text
    form = form_for(client.get(f"/hosts/{host.id}"), f"/hosts/{host.id}/address")
    form["ipv4"], form["ipv6"] = "0.0.0.0", "ff02::1"
    page = form.submit(status=400)
    assert "the unspecified address" in page.text and "a multicast address" in page.text
    assert hosts.get(db, host.name).ipv4 == "192.0.2.1"
    form = form_for(client.get(f"/hosts/{host.id}"), f"/hosts/{host.id}/address")
    form.submit("use_current")
    host = hosts.get(db, host.name)
    assert host.ipv4 == CLIENT and host.ipv6 == "2001:db8::1" and host.last_client == CLIENT
    page = client.get(f"/hosts/{host.id}")
    assert CLIENT in page.text and "updated" in page.text


def test_status_txt_abuse_description_and_delete(db, client) -> None:
    alice = add_user(db, "alice", password=None)
    zone = add_zone(db)
    log_in_as(client, alice)
    _add(client, "home", zone.id)
    host = hosts.get(db, "home.dyn.example.org")
    records.add(db, host.id, "_acme-challenge.home.dyn.example.org", "TXT", "token-value-123")
    hosts.set_flags(db, host.id, abuse=True)
    page = client.get(f"/hosts/{host.id}")
    assert "token-value-123" in page.text and "flagged for abuse" in page.text
    form_for(page, f"/hosts/{host.id}/clear-faults").submit()
    assert not hosts.get(db, host.name).abuse
    form = form_for(client.get(f"/hosts/{host.id}"), f"/hosts/{host.id}/description")
    form["description"] = "<script>alert(1)</script>"
    form.submit()
    page = client.get("/hosts")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert" not in page.text
    for setup in ("ddclient", "inadyn", "Fritz!Box", "OpenWrt", "pfSense", "wget"):
        assert setup in client.get(f"/hosts/{host.id}").text
    form_for(client.get(f"/hosts/{host.id}/delete"), f"/hosts/{host.id}/delete").submit()
    assert hosts.count_for_user(db, alice.id) == 0
    assert users.get(db, alice.id)


def test_myip_endpoint_answers_the_visitors_address(db, make_app) -> None:
    client = make_app(interface={"reverse_dns": False})
    answer = client.get("/api/myip")
    assert answer.content_type == "application/json" and answer.headers["Cache-Control"] == "no-store"
    assert answer.json == {"address": CLIENT, "family": "ipv4", "reverse": ""}
    assert "Access-Control-Allow-Origin" not in answer.headers
    assert client.get("/api/myip", extra_environ={"REMOTE_ADDR": "2001:db8::5"}).json["family"] == "ipv6"
    # Behind a trusted proxy the forwarded client counts; from anyone else the header is ignored.
    forwarded = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7"}
    behind = client.get("/api/myip", headers=forwarded, extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    assert behind.json["address"] == "198.51.100.7"
    assert client.get("/api/myip", headers=forwarded).json["address"] == CLIENT
    # The start page of the site's other address family asks with CORS: only the site's own origin may read.
    page = client.get("/api/myip", headers={"Origin": "http://ddserver.example.test"})
    assert page.headers["Access-Control-Allow-Origin"] == "http://ddserver.example.test"
    assert page.headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Origin" not in client.get("/api/myip", headers={"Origin": "http://evil.example"})
    # With reverse DNS on, the name comes from the system's resolver (127.0.0.1 is localhost in /etc/hosts).
    named = make_app().get("/api/myip", extra_environ={"REMOTE_ADDR": "127.0.0.1"}).json
    assert named == {"address": "127.0.0.1", "family": "ipv4", "reverse": "localhost"}
    start = make_app().get("/", extra_environ={"REMOTE_ADDR": "127.0.0.1"}).text
    assert '<code id="ipv4">127.0.0.1</code>' in start and "localhost" in start
