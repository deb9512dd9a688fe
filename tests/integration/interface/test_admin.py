"""Administration through the WSGI app: users, zones, hosts and the audit view."""

from __future__ import annotations

import base64
import time

from ddserver.store import audit, changes, hosts, listing, rfc2136, users, zones
from tests.integration.interface.conftest import add_host, add_user, add_zone, form_for, log_in_as
from tests.support import rows_naming


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


SECRET = base64.b64encode(b"a TSIG secret of 32 bytes, base64").decode()


def _zone_form(client, url: str, **fields: str):
    form = form_for(client.get(url), url)
    for name, value in fields.items():
        form[name] = value
    return form


def test_zone_form_rfc2136_settings(db, client) -> None:
    admin = add_user(db, "root", admin=True, password=None)
    log_in_as(client, admin)
    base = {"name": "dyn.example.net", "nameservers": "ns1.example.net", "hostmaster": "hostmaster@example.net"}
    for fields, error in [
        ({"rfc2136_server": "ns1.example.net"}, "e-rfc2136_server"),  # a name: the worker sends to addresses
        ({"rfc2136_server": "192.0.2.1:99999"}, "e-rfc2136_server"),
        ({"tsig_name": "key", "tsig_secret": SECRET}, "e-rfc2136_server"),  # a key without a server
        ({"rfc2136_server": "192.0.2.1", "tsig_name": "key", "tsig_secret": "not base64!"}, "e-tsig_secret"),
        ({"rfc2136_server": "192.0.2.1", "tsig_name": "key"}, "e-tsig_secret"),
        ({"rfc2136_server": "192.0.2.1", "tsig_secret": SECRET}, "e-tsig_name"),
    ]:
        page = _zone_form(client, "/admin/zones/new", **base, **fields).submit(status=400)
        assert f'id="{error}"' in page.text, fields
        assert SECRET not in page.text  # never sent back, not even after an error
    form = _zone_form(
        client,
        "/admin/zones/new",
        **base,
        rfc2136_server="192.0.2.53",
        rfc2136_transport="tcp",
        tsig_name="Ddserver-Key",
        tsig_algorithm="hmac-sha512",
        tsig_secret=SECRET,
    )
    form.submit()
    zone = zones.get(db, "dyn.example.net")
    assert (zone.rfc2136_server, zone.rfc2136_transport) == ("192.0.2.53:53", "tcp")
    assert (zone.tsig_name, zone.tsig_algorithm, zone.tsig_secret) == ("ddserver-key", "hmac-sha512", SECRET)
    listing = client.get("/admin/zones").text
    assert "192.0.2.53:53" in listing and "ddserver-key" in listing and "pending" in listing
    assert SECRET[:8] not in listing
    page = client.get(f"/admin/zones/{zone.id}")
    assert SECRET not in page.text and f"Stored: {SECRET[:4]}…" in page.text
    assert 'value="hmac-sha512" selected' in page.text

    # Saved again with the secret left empty: the secret stays, the worker is asked for a full comparison.
    form = form_for(page, f"/admin/zones/{zone.id}")
    form["rfc2136_transport"] = "udp"
    form.submit()
    zone = zones.get(db, zone.name)
    assert (zone.rfc2136_transport, zone.tsig_secret) == ("udp", SECRET)
    assert rfc2136.get_lease(db, zone.id).full_sync
    rfc2136.clear_full_sync(db, zone.id)
    # Other settings only: no comparison asked for.
    form = form_for(client.get(f"/admin/zones/{zone.id}"), f"/admin/zones/{zone.id}")
    form["description"] = "for routers"
    form.submit()
    assert not rfc2136.get_lease(db, zone.id).full_sync
    # A new secret replaces the old one; the audit trail says so without showing either.
    other = base64.b64encode(b"another secret").decode()
    form = form_for(client.get(f"/admin/zones/{zone.id}"), f"/admin/zones/{zone.id}")
    form["tsig_secret"] = other
    form.submit()
    assert zones.get(db, zone.name).tsig_secret == other and rfc2136.get_lease(db, zone.id).full_sync
    details = " ".join(e.detail for e in audit.recent(db))
    assert "192.0.2.53:53 udp key ddserver-key (hmac-sha512), new secret" in details
    assert SECRET not in details and other not in details

    # The worker's state, as it records it.
    zones.set_rfc2136_state(db, zone.id, ok=True)
    listing = client.get("/admin/zones").text
    assert "in step" in listing and "Last success: " in listing
    zones.set_rfc2136_state(db, zone.id, error="192.0.2.53:53: the server refused the update (REFUSED)")
    for text in (client.get("/admin/zones").text, client.get(f"/admin/zones/{zone.id}").text):
        stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(zones.get(db, zone.name).rfc2136_error_at))
        assert "the server refused the update (REFUSED)" in text and stamp in text and "Last success: " in text

    german = client.get(f"/admin/zones/{zone.id}", headers={"Accept-Language": "de"}).text
    assert "Primärer Server" in german and "Letzter Erfolg: " in german and f"Gespeichert: {other[:4]}…" in german

    # Not pushed any more: server and key go; the key fields alone are refused.
    form = form_for(client.get(f"/admin/zones/{zone.id}"), f"/admin/zones/{zone.id}")
    form["rfc2136_server"], form["tsig_name"] = "", ""
    form.submit()
    zone = zones.get(db, zone.name)
    assert (zone.rfc2136_server, zone.tsig_name, zone.tsig_secret) == (None, None, None)
    # Pushed again (an IPv6 primary, unsigned): it starts at the feed's end, after a full comparison.
    rfc2136.clear_full_sync(db, zone.id)
    add_host(db, admin, "late.dyn.example.net")
    form = form_for(client.get(f"/admin/zones/{zone.id}"), f"/admin/zones/{zone.id}")
    form["rfc2136_server"] = "[2001:DB8::53]:5353"
    form.submit()
    zone = zones.get(db, zone.name)
    assert zone.rfc2136_server == "[2001:db8::53]:5353" and zone.tsig_name is None
    assert zone.rfc2136_position == changes.last_id(db) and rfc2136.get_lease(db, zone.id).full_sync


def test_lean_lists_answer_what_the_full_queries_answer(db) -> None:
    stamp = int(time.time())
    rows = [(f"u{i:03d}", f"{'x' if i % 7 else 'seven'}{i}@example.org", stamp) for i in range(130)]
    db.run(
        lambda tx: tx.executemany(
            "INSERT INTO users (username, email, is_active, is_approved, created_at) VALUES (?, ?, 1, 1, ?)", rows
        )
    )
    for text in ("", "u1", "seven", "nobody", "u_", "5%"):
        for offset in (0, 50, 100, 150):
            assert listing.users_page(db, text, offset=offset, limit=50) == users.search(
                db, text, offset=offset, limit=50
            ), (text, offset)
    owner = users.get_by_name(db, "u007")
    add_zone(db)
    for label in ("b", "a", "c"):
        add_host(db, owner, f"{label}.dyn.example.org")
    hosts.set_flags(db, hosts.get(db, "c.dyn.example.org").id, abuse=True)
    lean = listing.hosts_of_user(db, owner.id)
    full = hosts.list_for_user(db, owner.id)
    assert [
        (h.id, h.name, h.ipv4, h.ipv6, h.description, h.last_update_at, bool(h.abuse), bool(h.blocked)) for h in lean
    ] == [(h.id, h.name, h.ipv4, h.ipv6, h.description, h.last_update_at, h.abuse, h.blocked) for h in full]


def test_admin_deletes_a_user_and_the_audit_keeps_a_pseudonym(db, client) -> None:
    admin = add_user(db, "root", admin=True, password=None)
    add_zone(db)
    victor = add_user(db, "victor")
    host = add_host(db, victor, "vhome.dyn.example.org")
    token = log_in_as(client, admin)
    client.post(f"/admin/users/{victor.id}/flags", {"csrf_token": token, "action": "disable"})
    position = changes.last_id(db)
    page = client.post(f"/admin/users/{victor.id}/delete", {"csrf_token": token}).follow()
    assert "victor is deleted" in page.text
    assert rows_naming(db, ["victor", f"user:{victor.id}"], [victor.id]) == []
    assert host.name in {c.name for c in changes.since(db, position)}
    entries = [(e.subject, e.detail, e.actor) for e in audit.recent(db)]
    pseudonym = entries[0][0]
    assert pseudonym.startswith("user deleted-") and entries[:2] == [
        (pseudonym, "deleted with 1 hosts", "root"),
        (pseudonym, "disable", "root"),
    ]


def test_zone_dnssec_page_signs_shows_the_ds_and_turns_off_only_when_confirmed(db, make_app) -> None:
    from ddserver.store import dnssec as dnssec_store

    client = make_app(auth={"data_key": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="})
    admin = add_user(db, "root", admin=True, password=None)
    zone = add_zone(db)
    log_in_as(client, admin)
    url = f"/admin/zones/{zone.id}/dnssec"
    assert url in client.get(f"/admin/zones/{zone.id}").text
    page = client.get(url)
    assert "not signed" in page.text
    form = form_for(page, url)
    form["algorithm"] = "ed25519"
    page = form.submit().follow()
    on, _, keys = dnssec_store.state(db, zone.name)
    assert on and {k.algorithm for k in keys} == {15}
    assert "dyn.example.org. IN DS " in page.text and "PrivateKey" not in page.text
    assert "NSEC3 in narrow mode" in page.text
    zones.update(db, zone.id, also_notify=["192.0.2.53"])  # a secondary: NSEC3 with a chain
    page = client.get(url)
    assert "NSEC3 with a chain of hashed names" in page.text
    assert client.post(url, {"state": "off"}, status=403)  # no CSRF token
    form = form_for(page, url)
    page = form.submit(status=400)
    assert "Remove the DS records" in page.text and dnssec_store.state(db, zone.name)[0]
    form = form_for(page, url)
    form["ds_removed"] = True
    assert "not signed" in form.submit().follow().text
    assert dnssec_store.state(db, zone.name) == (False, "1 0 0 -", [])
    assert ("zone dyn.example.org", "DNSSEC on", "root") in [(e.subject, e.detail, e.actor) for e in audit.recent(db)]


def test_zone_form_secondaries_and_transfer_keys(db, make_app) -> None:
    """also-notify addresses in the zone form; transfer keys added (a new secret shown on that answer only,
    stored sealed) and removed, each form with its CSRF token."""
    from ddserver import sealing
    from ddserver.dns import remote

    data_key = sealing.new_key()
    client = make_app(auth={"data_key": data_key})
    admin = add_user(db, "root", admin=True, password=None)
    token = log_in_as(client, admin)
    zone = add_zone(db)
    url = f"/admin/zones/{zone.id}"
    page = _zone_form(client, url, also_notify="192.0.2.7 ns2.example.org").submit(status=400)
    assert 'id="e-also_notify"' in page.text and "ns2.example.org is not an IP address" in page.text
    serial = zones.get(db, zone.name).serial
    _zone_form(client, url, also_notify="192.0.2.7, [2001:DB8::7]:5300").submit()
    zone = zones.get(db, zone.name)
    assert zone.also_notify == ("192.0.2.7", "[2001:db8::7]:5300") and zone.serial > serial  # in the feed
    assert 'value="192.0.2.7 [2001:db8::7]:5300"' in client.get(url).text

    page = client.post(f"{url}/transfer-keys", {"csrf_token": token, "key_name": "XFR.example.org",
                                                "key_algorithm": "hmac-sha256", "key_secret": ""})  # fmt: skip
    secret = page.html.find(id="transfer-secret")["value"]
    assert len(base64.b64decode(secret)) == 32 and "shown only now" in page.text
    (key,) = zones.transfer_keys(db, zone.id)
    assert key.name == "xfr.example.org" and secret not in key.secret
    assert (
        sealing.Sealer(sealing.parse_key(data_key)).unseal(key.secret, remote.transfer_key_context(key.name)) == secret
    )
    page = client.get(url)
    assert "xfr.example.org" in page.text and secret not in page.text  # shown once
    for fields, error in [({"key_name": "xfr.example.org"}, "exists already"),
                          ({"key_name": "k2.example.org", "key_secret": "not base64!"}, "e-key_secret"),
                          ({"key_name": "bad name!"}, "e-key_name")]:  # fmt: skip
        page = client.post(f"{url}/transfer-keys", {"csrf_token": token, **fields}, status=400)
        assert error in page.text, fields
        assert "not base64!" not in page.text
    client.post(f"{url}/transfer-keys", {"key_name": "k3.example.org"}, status=403)  # no CSRF token
    given = base64.b64encode(b"a given secret of some length").decode()
    page = client.post(f"{url}/transfer-keys", {"csrf_token": token, "key_name": "k2.example.org",
                                                "key_algorithm": "hmac-sha512", "key_secret": given}).follow()  # fmt: skip
    assert given not in page.text and 'id="transfer-secret"' not in page.text
    assert "The transfer key k2.example.org is added." in page.text
    assert [k.name for k in zones.transfer_keys(db, zone.id)] == ["k2.example.org", "xfr.example.org"]
    client.post(f"{url}/transfer-keys/remove", {"csrf_token": token, "key_name": "k2.example.org"}).follow()
    assert [k.name for k in zones.transfer_keys(db, zone.id)] == ["xfr.example.org"]
    gone = client.post(f"{url}/transfer-keys/remove", {"csrf_token": token, "key_name": "k2.example.org"}).follow()
    assert "no such transfer key" in gone.text
    details = [e.detail for e in audit.recent(db)]
    assert "transfer key xfr.example.org added" in details and "transfer key k2.example.org removed" in details
    assert not rows_naming(db, [secret, given])  # sealed: neither secret is in the database as typed
