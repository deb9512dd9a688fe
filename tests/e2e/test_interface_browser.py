"""End to end in Debian's Chromium: sign up, activate from the mail, approval, a host updated by the real updater.

The bundle (interface + updater) runs as a real process on SQLite and on MariaDB; mail goes to a local
aiosmtpd. Screenshots of the main pages go to the test's folder, or (from the SQLite run) to
docs/screenshots/ with DDSERVER_SCREENSHOTS=1.
"""

from __future__ import annotations

import base64
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ddserver import passwords, validate
from ddserver.store import users, zones
from tests import support
from tests.integration.interface.conftest import Mailbox

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"
ADMIN_PASSWORD = "admin password 12345"
TSIG_SECRET = base64.b64encode(b"the zone's TSIG secret, 32 bytes").decode()
PASSWORD = "frank's long password"


@pytest.fixture
def site(tmp_path: Path, dialect: str) -> Iterator[dict[str, Any]]:
    controller_module = pytest.importorskip("aiosmtpd.controller")
    # A database of the test's own in either dialect (the bundle process connects to it by URL).
    url = support.new_database_url(dialect, tmp_path)
    db = support.create_database(url)
    box = Mailbox()
    smtp_port = support.free_port()
    smtp = controller_module.Controller(box, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    users.add(db, "admin", "admin@example.org", password_hash=passwords.hash_password(ADMIN_PASSWORD), is_admin=True)
    zones.add(db, "dyn.example.org", ["ns1.example.org"], validate.hostmaster("hostmaster@example.org"))
    port = support.free_port()
    base = f"http://127.0.0.1:{port}"
    config = support.write_config_file(
        tmp_path / "ddserver.conf",
        url,
        f"[signup]\nmode = semi-automatic\n\n[mail]\nhost = 127.0.0.1\nport = {smtp_port}\n"
        f"sender = ddserver@example.org\n\n[http]\nbase_url = {base}\n\n[interface]\nreverse_dns = no\n"
        # Users may bring zones; the resolver does not answer here, so a new zone stays pending.
        f"\n[zones]\nnameservers = ns1.example.org, ns2.example.org\n"
        f"delegation_resolver = 127.0.0.1:{support.free_port()}\ncheck_timeout = 0.3\n",
    )
    process = support.Process(
        [support.console_script("ddserver-bundle"), "--config", str(config), "--listen", f"127.0.0.1:{port}"],
        log=tmp_path / "bundle.log",
        cwd=tmp_path,
    )
    try:
        process.wait_port("127.0.0.1", port)
        yield {"base": base, "mail": box, "db": db, "process": process, "dialect": dialect}
    finally:
        process.stop()
        smtp.stop()
        if dialect == "mysql":
            db.drop_database()
        db.close_all()


def shot(page: Any, name: str) -> None:
    docs = os.environ.get("DDSERVER_SCREENSHOTS") == "1" and page.context.dialect == "sqlite"
    folder = SHOTS if docs else Path(page.context.shots_folder)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def log_in(page: Any, base: str, login: str, password: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("User name or e-mail address").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_signup_activate_approve_host_update(browser: Any, site: dict[str, Any], tmp_path: Path) -> None:
    base, box = site["base"], site["mail"]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.shots_folder, context.dialect = tmp_path / "screenshots", site["dialect"]
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)

    page.goto(base + "/")
    assert page.locator("#ipv4").inner_text() == "127.0.0.1"
    shot(page, "start")

    # Sign up and activate from the mail.
    page.goto(base + "/signup")
    page.get_by_label("User name").fill("frank")
    page.get_by_label("E-mail address").fill("frank@example.org")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    shot(page, "signup")
    page.get_by_role("button", name="Sign up").click()
    page.get_by_text("Check your mail").first.wait_for()
    link = box.link(box.wait_for("frank@example.org")[0], "/activate/")
    page.goto(base + link)
    page.get_by_role("button", name="Activate my account").click()
    page.get_by_text("An administrator will approve").wait_for()

    # The admin approves the user and adds a zone.
    admin_context = browser.new_context(viewport={"width": 1280, "height": 900})
    admin_context.shots_folder, admin_context.dialect = tmp_path / "screenshots", site["dialect"]
    admin = admin_context.new_page()
    log_in(admin, base, "admin", ADMIN_PASSWORD)
    admin.goto(base + "/admin/users")
    shot(admin, "admin-users")
    admin.get_by_role("link", name="frank").click()
    admin.get_by_role("button", name="Approve").click()
    admin.get_by_text("Saved.").wait_for()
    assert "approved" in box.wait_for("frank@example.org", 2)[1].get_content()
    admin.goto(base + "/admin/zones/new")
    admin.get_by_label("Zone name").fill("home.example.net")
    admin.get_by_label("Nameservers").fill("ns1.example.net ns2.example.net")
    admin.get_by_label("Hostmaster").fill("hostmaster@example.net")
    admin.get_by_label("Primary server").fill("192.0.2.53")
    admin.get_by_label("TSIG key name").fill("ddserver-key")
    admin.get_by_label("Algorithm").select_option("hmac-sha512")
    admin.get_by_label("TSIG secret").fill(TSIG_SECRET)
    admin.get_by_label("Highest TTL owners may choose (seconds)").fill("3600")
    shot(admin, "admin-zone-form")
    admin.get_by_role("button", name="Add the zone").click()
    admin.get_by_text("The zone home.example.net is added.").wait_for()
    assert "192.0.2.53:53" in admin.content() and TSIG_SECRET not in admin.content()
    shot(admin, "admin-zones")
    admin.goto(base + "/admin/audit")
    assert "approve" in admin.content()
    shot(admin, "admin-audit")

    # The user logs in, adds a host in the new zone, copies its secret.
    log_in(page, base, "frank", PASSWORD)
    page.wait_for_url(base + "/hosts")
    page.get_by_role("link", name="Add a host").first.click()
    page.get_by_label("Name").fill("castle")
    page.get_by_label("Zone").select_option(label=".home.example.net")
    page.locator("#label-status").get_by_text("castle.home.example.net is free.").wait_for()
    shot(page, "host-add")
    page.get_by_role("button", name="Add the host").click()
    page.locator("#new-secret").wait_for()
    page.get_by_role("button", name="Copy").first.click()
    secret = page.evaluate("navigator.clipboard.readText()")
    assert re.fullmatch(r"[A-Za-z0-9]{22,}", secret), secret
    assert secret == page.locator("#secret").input_value()
    shot(page, "host-new-secret")

    # The real updater takes the secret.
    request = urllib.request.Request(f"{base}/nic/update?hostname=castle.home.example.net&myip=192.0.2.55")
    credentials = base64.b64encode(f"castle.home.example.net:{secret}".encode()).decode()
    request.add_header("Authorization", "Basic " + credentials)
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.read().decode().strip() == "good 192.0.2.55"
    # Someone guesses: the host's page lists the failed login (never the secret tried).
    request = urllib.request.Request(f"{base}/nic/update?hostname=castle.home.example.net")
    request.add_header("Authorization", "Basic " + base64.b64encode(b"castle.home.example.net:guess-1").decode())
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401

    page.goto(base + "/hosts")
    page.get_by_text("192.0.2.55").wait_for()
    shot(page, "hosts")
    page.get_by_role("link", name="castle.home.example.net").click()
    assert page.locator("#status-ipv4").inner_text() == "192.0.2.55"
    assert page.locator("#status-last-update").inner_text() != "–"
    # TTL and wildcard, within the zone's range.
    page.get_by_label("TTL (seconds)").fill("7200")
    page.get_by_role("button", name="Save TTL and wildcard").click()
    page.get_by_text("The TTL must be between 60 and 3600 seconds.").wait_for()
    # The refused form comes with status 400, which Chromium logs; nothing else may be logged.
    assert errors == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"], errors
    errors.clear()
    page.get_by_label("TTL (seconds)").fill("300")
    page.get_by_label("Wildcard:").check()
    page.get_by_role("button", name="Save TTL and wildcard").click()
    page.get_by_text("The TTL and wildcard are saved.").wait_for()
    assert page.get_by_label("TTL (seconds)").input_value() == "300" and page.get_by_label("Wildcard:").is_checked()
    assert "192.0.2.55" in page.locator("#history").inner_text()
    assert "wrong secret" in page.locator("#auth-failures").inner_text()
    assert "guess-1" not in page.content()
    shot(page, "host")

    # Related names: the router's update moves them; a bad identifier is a form error.
    request = urllib.request.Request(
        f"{base}/nic/update?hostname=castle.home.example.net&myip=192.0.2.55,2001:db8:55:1::1"
        "&ip6lanprefix=2001:db8:77:5500::/56"
    )
    request.add_header("Authorization", "Basic " + credentials)
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.read().decode().strip() == "good 192.0.2.55,2001:db8:55:1::1"
    page.reload()
    related = page.locator("#related-form")
    related.get_by_label("Name").fill("nas")
    related.get_by_label("Interface identifier").fill("::211:32ff:fe12:3456")
    related.get_by_role("button", name="Add related name").click()
    page.get_by_text("nas.castle.home.example.net is added.").wait_for()
    assert "2001:db8:77:5500:211:32ff:fe12:3456" in page.locator("#related").inner_text()
    related = page.locator("#related-form")
    related.get_by_label("Name").fill("printer")
    related.get_by_label("Where").select_option("zone")
    related.get_by_label("Interface identifier").fill("::12:34:56:78:9a")
    related.get_by_label("Give it this host's IPv4 address too").check()
    related.get_by_role("button", name="Add related name").click()
    page.get_by_text("is longer than the 64 bits").wait_for()
    assert errors == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"], errors
    errors.clear()
    page.locator("#h-related").scroll_into_view_if_needed()
    shot(page, "host-related")
    page.goto(base + "/account")
    shot(page, "account")

    # A zone of the user's own: pending until its parent delegates it here, and the page says why.
    page.get_by_role("link", name="Your zones").click()
    page.get_by_label("Zone name").fill("dyn.example.com")
    page.get_by_role("button", name="Add the zone").click()
    page.get_by_text("The zone dyn.example.com is added.").wait_for()
    assert "pending delegation" in page.content() and "could not be checked" in page.content()
    shot(page, "zone")
    page.goto(base + "/zones")
    shot(page, "zones")
    # Tokens: one for the router (this host, addresses), one for an ACME hook (TXT records, 90 days).
    page.get_by_role("link", name="Tokens").first.click()
    page.get_by_label("Name", exact=True).fill("router")
    page.get_by_label("these hosts only:").check()
    page.get_by_label("castle.home.example.net").check()
    page.get_by_role("button", name="Make the token").click()
    page.locator("#new-token").wait_for()
    page.get_by_role("button", name="Copy").first.click()
    router = page.evaluate("navigator.clipboard.readText()")
    assert re.fullmatch(r"[A-Za-z0-9]{32}", router), router
    page.get_by_label("Name", exact=True).fill("acme-hook")
    page.get_by_label("update addresses (/nic/update)").uncheck()
    page.get_by_label("set TXT records (ACME DNS-01, /nic/acme)").check()
    page.get_by_label("Expires after (days)").fill("90")
    page.get_by_role("button", name="Make the token").click()
    page.locator("#new-token").wait_for()
    request = urllib.request.Request(f"{base}/nic/update?hostname=castle.home.example.net&myip=192.0.2.56")
    request.add_header("Authorization", "Basic " + base64.b64encode(f"frank:{router}".encode()).decode())
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.read().decode().strip() == "good 192.0.2.56,2001:db8:55:1::1"  # the IPv6 address kept
    page.goto(base + "/tokens")
    assert router not in page.content()
    rows = page.locator("tbody tr")
    assert rows.count() == 2 and "–" not in rows.nth(0).locator("td").nth(4).inner_text()
    shot(page, "tokens")
    page.get_by_role("button", name="Revoke acme-hook").click()
    page.get_by_text("The token is revoked.").wait_for()
    assert page.locator("tbody tr").count() == 1
    assert not errors, errors
