"""Related names on the host page: listed, added, edited and removed through the forms, with form errors for
bad identifiers, taken or bad names and the limit; nobody else's and never a page of their own."""

from __future__ import annotations

from typing import Any

from ddserver.db import Database
from ddserver.store import hosts, related
from tests.integration.interface.conftest import add_host, add_user, add_zone, form_for, log_in_as

ZONE = "dyn.example.org"
HOME = f"home.{ZONE}"
NAS = f"nas.{HOME}"


def _add(page: Any, host_id: int, **values: Any) -> Any:
    form = form_for(page, f"/hosts/{host_id}/related")
    for key, value in {"place": "host", "prefix_len": "64", "follow_ipv4": False, **values}.items():
        form[key] = value
    return form.submit(expect_errors=True)


def test_related_names_through_the_host_page(db: Database, make_app: Any) -> None:
    add_zone(db)
    alice = add_user(db, "alice")
    home = add_host(db, alice, HOME)
    add_host(db, alice, f"office.{ZONE}")
    hosts.set_addresses(db, home.id, ipv4="192.0.2.1", ipv6="2001:db8:1:2::1")
    app = make_app(dns={"max_related_per_host": 2})
    log_in_as(app, alice)
    page = app.get(f"/hosts/{home.id}")
    assert "Related names" in page.text and 'id="related"' not in page.text

    # Form errors: a bad identifier, one too long for its prefix length, a name with a dot, a taken name,
    # a reserved one in the zone.
    for values, field, message in (
        ({"label": "nas", "ifid": "nope"}, "ifid", "is not an interface identifier"),
        ({"label": "nas", "ifid": "1::1"}, "ifid", "longer than the 64 bits"),
        ({"label": "nas", "ifid": "::1", "prefix_len": "200"}, "prefix_len", "from 8 to 127"),
        ({"label": "a.b", "ifid": "::1"}, "label", "contains a dot"),
        ({"label": "office", "place": "zone", "ifid": "::1"}, "label", f"office.{ZONE} is taken"),
        ({"label": "www", "place": "zone", "ifid": "::1"}, "label", "is reserved"),
    ):
        reply = _add(page, home.id, **values)
        assert reply.status_int == 400, values
        assert f'id="e-{field}"' in reply.text and message in reply.text, values
    assert related.of(db, home.id) == []

    reply = _add(page, home.id, label="nas", ifid="::1:2:3:4")
    assert reply.status_int == 303
    page = app.get(f"/hosts/{home.id}")
    assert NAS in page.text and "2001:db8:1:2:1:2:3:4" in page.text
    reply = _add(page, home.id, label="tv", place="zone", ifid="5", prefix_len="56", follow_ipv4=True)
    assert reply.status_int == 303
    tv = hosts.get(db, f"tv.{ZONE}")
    assert (tv.ipv4, tv.ipv6, tv.parent_id) == ("192.0.2.1", "2001:db8:1::5", home.id)
    # At the limit the form is gone; the host list still shows main hosts only.
    page = app.get(f"/hosts/{home.id}")
    assert f"/hosts/{home.id}/related" not in [f.action for f in page.forms.values()]
    listed = app.get("/hosts").text
    assert NAS not in listed and "related names: 2" in listed

    # Edit: errors stay on the page, a good identifier moves the address at once.
    nas = hosts.get(db, NAS)
    edit = app.get(f"/hosts/{home.id}/related/{nas.id}")
    form = form_for(edit, f"/hosts/{home.id}/related/{nas.id}")
    form["ifid"] = "zz"
    reply = form.submit(expect_errors=True)
    assert reply.status_int == 400 and 'id="e-ifid"' in reply.text
    form = form_for(reply, f"/hosts/{home.id}/related/{nas.id}")
    form["ifid"] = "::9"
    form["follow_ipv4"] = True
    assert form.submit().status_int == 303
    assert (hosts.get(db, NAS).ipv4, hosts.get(db, NAS).ipv6) == ("192.0.2.1", "2001:db8:1:2::9")

    # The host's address change takes them along.
    form = form_for(app.get(f"/hosts/{home.id}"), f"/hosts/{home.id}/address")
    form["ipv4"], form["ipv6"] = "198.51.100.4", "2001:db8:7:7::1"
    assert form.submit().status_int == 303
    assert hosts.get(db, NAS).ipv6 == "2001:db8:7:7::9" and hosts.get(db, f"tv.{ZONE}").ipv4 == "198.51.100.4"

    # A related name has no page of its own; remove it from its host's page.
    assert app.get(f"/hosts/{nas.id}", expect_errors=True).status_int == 404
    page = app.get(f"/hosts/{home.id}")
    assert form_for(page, f"/hosts/{home.id}/related/{nas.id}/delete").submit().status_int == 303
    assert [r.name for r in related.of(db, home.id)] == [f"tv.{ZONE}"]


def test_nobody_else_sees_or_changes_them(db: Database, make_app: Any) -> None:
    add_zone(db)
    alice, mallory = add_user(db, "alice"), add_user(db, "mallory")
    home = add_host(db, alice, HOME)
    nas = related.add(db, home.id, NAS, "::4", limit=5)
    app = make_app()
    csrf = log_in_as(app, mallory)
    assert app.get(f"/hosts/{home.id}/related/{nas.id}", expect_errors=True).status_int == 404
    for path in (f"/hosts/{home.id}/related/{nas.id}/delete", f"/hosts/{home.id}/related"):
        reply = app.post(path, {"csrf_token": csrf, "label": "x", "ifid": "::1"}, expect_errors=True)
        assert reply.status_int == 404
    # A name that falls into another zone (one below the host, delegated as a zone of its own) is a form error.
    add_zone(db, "home.dyn.example.org")
    log_in_as(app, alice)
    reply = _add(app.get(f"/hosts/{home.id}"), home.id, label="pc", ifid="::1")
    assert reply.status_int == 400 and "is not in the zone dyn.example.org" in reply.text
    # Its owner without the CSRF token: refused too.
    assert app.post(f"/hosts/{home.id}/related/{nas.id}/delete", expect_errors=True).status_int == 403
    assert [r.name for r in related.of(db, home.id)] == [NAS]
