"""Both address families from a browser: the updater's IPv4-only and IPv6-only names in the configuration, the
host page's "Use my IPv4 and IPv6 addresses" form post, and its fallbacks."""

from __future__ import annotations

import pytest

from ddserver.config import load_config
from ddserver.errors import ConfigError
from ddserver.store import hosts
from tests.integration.interface.conftest import CLIENT, add_host, add_user, add_zone, form_for, log_in_as

V4 = "https://ipv4.update.example.test"
V6 = "https://ipv6.update.example.test:8443"
NAMES = {"http": {"update_url_ipv4": V4, "update_url_ipv6": V6 + "/"}}


def test_the_family_urls_in_the_configuration(tmp_path) -> None:
    config = load_config(env={"DDSERVER_HTTP_UPDATE_URL_IPV4": V4, "DDSERVER_HTTP_UPDATE_URL_IPV6": V6 + "/"})
    assert config.update_url_of(4) == V4 and config.update_url_of(6) == V6
    # The browser asks the updater's /api/myip under each name, unless the interface names its own check URLs.
    assert config.address_check_url(4) == V4 + "/api/myip" and config.address_check_url(6) == V6 + "/api/myip"
    own = load_config(env={"DDSERVER_HTTP_UPDATE_URL_IPV4": V4, "DDSERVER_INTERFACE_IPV4_CHECK_URL": "https://x/ip"})
    assert own.address_check_url(4) == "https://x/ip" and own.address_check_url(6) == ""
    assert load_config(env={}).address_check_url(4) == ""
    for bad in ("ipv4.update.example.org", "ftp://ipv4.example.org", "https://x.example/?a=1"):
        with pytest.raises(ConfigError, match=r"\[http\] update_url_ipv4 = .*expected empty or an http\(s\) URL"):
            load_config(env={"DDSERVER_HTTP_UPDATE_URL_IPV4": bad})


def test_without_the_names_the_page_offers_only_the_connections_family(db, client) -> None:
    alice = add_user(db, "alice", password=None)
    add_zone(db)
    host = add_host(db, alice, "home.dyn.example.org")
    log_in_as(client, alice)
    page = client.get(f"/hosts/{host.id}")
    assert 'id="use-current"' in page.text and 'id="use-both"' not in page.text
    assert 'id="family-update-urls"' not in page.text


def test_both_addresses_in_one_post(db, make_app) -> None:
    client = make_app(**NAMES)
    alice = add_user(db, "alice", password=None)
    add_zone(db)
    host = add_host(db, alice, "home.dyn.example.org")
    log_in_as(client, alice)
    page = client.get(f"/hosts/{host.id}")
    # The button is there for the script (hidden until it runs), with the two names' address URLs, and the
    # page may ask those origins (CSP connect-src); the browser update URL is given per family too.
    assert 'id="use-both" hidden' in page.text
    assert f'data-ipv4-url="{V4}/api/myip" data-ipv6-url="{V6}/api/myip"' in page.text
    connect = next(p for p in page.headers["Content-Security-Policy"].split("; ") if p.startswith("connect-src"))
    assert connect == f"connect-src 'self' {V4} {V6}"
    assert f"{V4}/nic/update?hostname=home.dyn.example.org" in page.text
    assert f"{V6}/nic/update?hostname=home.dyn.example.org" in page.text
    start = client.get("/")
    assert f'data-ipv4-url="{V4}/api/myip" data-ipv6-url="{V6}/api/myip"' in start.text

    # What the script posts: the page's own form (its CSRF token) with both addresses it learned.
    form = form_for(page, f"/hosts/{host.id}/address")
    form["found_ipv4"], form["found_ipv6"] = "198.51.100.4", "2001:db8::6"
    answer = form.submit("use_current", value="both").follow()
    stored = hosts.get(db, host.name)
    assert (stored.ipv4, stored.ipv6, stored.last_client) == ("198.51.100.4", "2001:db8::6", CLIENT)
    assert "The addresses are saved." in answer.text and "alert-warning" not in answer.text

    # The IPv6 name did not answer: the connection's IPv4 is set, IPv6 is kept, and the page says why.
    form = form_for(answer, f"/hosts/{host.id}/address")
    form["found_ipv4"], form["found_ipv6"] = "", ""
    answer = form.submit("use_current", value="both").follow()
    stored = hosts.get(db, host.name)
    assert (stored.ipv4, stored.ipv6) == (CLIENT, "2001:db8::6")
    assert "No IPv6 address was found for this browser" in answer.text and "alert-warning" in answer.text

    # An address that is not one is a form error, and nothing changes.
    form = form_for(answer, f"/hosts/{host.id}/address")
    form["found_ipv4"], form["found_ipv6"] = "198.51.100.4", "ff02::1"
    refused = form.submit("use_current", value="both", status=400)
    assert "a multicast address" in refused.text
    assert hosts.get(db, host.name).ipv6 == "2001:db8::6"

    # Without the page's token the post is refused (CSRF).
    client.post(f"/hosts/{host.id}/address", {"use_current": "both", "found_ipv4": "192.0.2.99"}, status=403)
    assert hosts.get(db, host.name).ipv4 == CLIENT
