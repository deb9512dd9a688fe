"""Administration through the WSGI app: users, zones, hosts and the audit view."""

from __future__ import annotations

from ddserver.store import audit, hosts, users, zones
from tests.integration.interface.conftest import add_host, add_user, add_zone, form_for, log_in_as


def test_user_search_pagination_and_flags(db, client) -> None:
    admin = add_user(db, "root", admin=True, password=None)
    for i in range(60):
        add_user(db, f"user{i:02d}", password=None)
    token = log_in_as(client, admin)
    page = client.get("/admin/users")
    assert "61 users" in page.text and "1 / 2" in page.text
    assert "user59" in client.get("/admin/users?page=2").text
    page = client.get("/admin/users?q=user1")
    assert "10 users" in page.text and "user22" not in page.text
    user = users.get_by_name(db, "user05")
    client.post(f"/admin/users/{user.id}/flags", {"csrf_token": token, "action": "disable"})
    assert users.get(db, user.id).is_disabled
    client.post(f"/admin/users/{user.id}/limit", {"csrf_token": token, "max_hosts": "-1"})
    assert users.get(db, user.id).max_hosts == -1
    page = client.post(f"/admin/users/{user.id}/limit", {"csrf_token": token, "max_hosts": "many"}, status=400)
    assert 'id="e-max_hosts"' in page.text
    client.post(f"/admin/users/{user.id}/limit", {"csrf_token": token, "max_hosts": ""})
    assert users.get(db, user.id).max_hosts is None
    kinds = [(e.subject, e.detail, e.actor) for e in audit.recent(db)]
    assert ("user user05", "disable", "root") in kinds


def test_last_admin_cannot_be_removed(db, client) -> None:
    admin = add_user(db, "root", admin=True, password=None)
    token = log_in_as(client, admin)
    page = client.post(f"/admin/users/{admin.id}/flags", {"csrf_token": token, "action": "remove-admin"}).follow()
    assert "last administrator" in page.text and users.get(db, admin.id).is_admin
    page = client.post(f"/admin/users/{admin.id}/delete", {"csrf_token": token}).follow()
    assert "last administrator" in page.text


def test_zone_add_edit_delete_with_host_count(db, client) -> None:
    admin = add_user(db, "root", admin=True, password=None)
    bob = add_user(db, "bob", password=None)
    log_in_as(client, admin)
    form = form_for(client.get("/admin/zones/new"), "/admin/zones/new")
    form["name"], form["nameservers"], form["hostmaster"] = "dyn.example.net", "ns1.example.net ns2.example.net", "x"
    assert 'id="e-hostmaster"' in form.submit(status=400).text
    form = form_for(client.get("/admin/zones/new"), "/admin/zones/new")
    form["name"], form["nameservers"] = "dyn.example.net", "ns1.example.net ns2.example.net"
    form["hostmaster"], form["ttl"] = "hostmaster@example.net", "120"
    form["is_public"] = False
    form["allowed_users"] = "bob"
    form.submit()
    zone = zones.get(db, "dyn.example.net")
    assert zone.nameservers == ("ns1.example.net", "ns2.example.net") and zone.ttl == 120 and not zone.is_public
    assert zones.allowed_users(db, zone.id) == [bob.id]
    form = form_for(client.get(f"/admin/zones/{zone.id}"), f"/admin/zones/{zone.id}")
    form["ttl"] = "300"
    form.submit()
    assert zones.get(db, zone.name).ttl == 300
    add_host(db, bob, "a.dyn.example.net")
    add_host(db, bob, "b.dyn.example.net")
    page = client.get(f"/admin/zones/{zone.id}/delete")
    assert "2 hosts go with it" in page.text
    form = form_for(page, f"/admin/zones/{zone.id}/delete")
    form["confirm"] = "wrong"
    form.submit(status=400)
    form = form_for(client.get(f"/admin/zones/{zone.id}/delete"), f"/admin/zones/{zone.id}/delete")
    form["confirm"] = "dyn.example.net"
    form.submit()
    assert not zones.list_all(db) and hosts.count_for_user(db, bob.id) == 0
    details = [(e.subject, e.detail) for e in audit.recent(db)]
    assert ("zone dyn.example.net", "deleted with 2 hosts") in details and ("zone dyn.example.net", "added") in details


def test_hosts_across_users_block_and_clear(db, client) -> None:
    admin = add_user(db, "root", admin=True, password=None)
    bob = add_user(db, "bob", password=None)
    add_zone(db)
    host = add_host(db, bob, "home.dyn.example.org")
    add_host(db, bob, "other.dyn.example.org")
    hosts.set_flags(db, host.id, abuse=True)
    token = log_in_as(client, admin)
    page = client.get("/admin/hosts?flagged=1")
    assert "1 host" in page.text and "home.dyn.example.org" in page.text and "other.dyn" not in page.text
    client.post(f"/admin/hosts/{host.id}", {"csrf_token": token, "action": "clear-abuse"})
    client.post(f"/admin/hosts/{host.id}", {"csrf_token": token, "action": "block", "reason": "spam"})
    host = hosts.get(db, host.name)
    assert not host.abuse and host.blocked and host.blocked_reason == "spam"
    assert "spam" in client.get("/admin/hosts?q=home").text
    client.post(f"/admin/hosts/{host.id}", {"csrf_token": token, "action": "unblock"})
    assert not hosts.get(db, host.name).blocked
    page = client.get("/admin/audit")
    assert "host home.dyn.example.org" in page.text and "block" in page.text and "root" in page.text
