"""In Debian's Chromium: an owner adds a relay on the host page, the real updater's change is relayed by the
bundle's relay worker (to the bundle's own updater, as a third party would be), and the page shows the answer.

Screenshots go to the test's folder, or (from the SQLite run) to docs/screenshots/ with DDSERVER_SCREENSHOTS=1.
"""

from __future__ import annotations

import base64
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ddserver import passwords, sealing, secrets, validate
from ddserver.store import hosts, relays, users, zones
from tests import support

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "grace's long password"
RELAYED, TARGET = "castle.dyn.example.org", "target.dyn.example.org"


@pytest.fixture
def site(tmp_path: Path, dialect: str) -> Iterator[dict[str, Any]]:
    url = support.new_database_url(dialect, tmp_path)
    db = support.create_database(url)
    grace = users.add(db, "grace", "grace@example.org", password_hash=passwords.hash_password(PASSWORD))
    zones.add(db, "dyn.example.org", ["ns1.example.org"], validate.hostmaster("hostmaster@example.org"))
    made = {}
    for name in (RELAYED, TARGET):
        made[name] = secrets.new_host_secret()
        hosts.add(db, grace.id, name, secrets.hash_host_secret(made[name]), default_limit=-1)
    port = support.free_port()
    base = f"http://127.0.0.1:{port}"
    config = support.write_config_file(
        tmp_path / "ddserver.conf",
        url,
        f"data_key = {sealing.new_key()}\n\n[http]\nbase_url = {base}\n\n[interface]\nreverse_dns = no\n\n"
        "[updater]\nmin_interval = 0\n\n[relay]\npoll_interval = 0.1\n",
    )
    process = support.Process(
        [support.console_script("ddserver-bundle"), "--config", str(config), "--listen", f"127.0.0.1:{port}"],
        log=tmp_path / "bundle.log",
        cwd=tmp_path,
    )
    try:
        process.wait_port("127.0.0.1", port)
        yield {"base": base, "db": db, "process": process, "dialect": dialect, "secrets": made}
    finally:
        process.stop()
        if dialect == "mysql":
            db.drop_database()
        db.close_all()


def shot(page: Any, name: str, folder: Path, dialect: str) -> None:
    docs = os.environ.get("DDSERVER_SCREENSHOTS") == "1" and dialect == "sqlite"
    where = SHOTS if docs else folder
    where.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(where / f"{name}.png"), full_page=True)


def test_a_relay_added_in_the_browser_forwards_an_update(browser: Any, site: dict[str, Any], tmp_path: Path) -> None:
    base, db, made = site["base"], site["db"], site["secrets"]
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(base + "/login")
    page.get_by_label("User name or e-mail address").fill("grace")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(base + "/hosts")
    page.get_by_role("link", name=RELAYED).click()

    page.get_by_text("Add a relay").click()
    page.get_by_label("Update URL").fill(f"{base}/nic/update")
    page.get_by_label("Host name there").fill(TARGET)
    page.get_by_label("User name there").fill(TARGET)
    page.get_by_label("Password or update token there").fill(made[TARGET])
    page.get_by_label("Addresses to send").select_option("ipv4")
    page.get_by_role("button", name="Add relay").click()
    page.get_by_text("The relay is saved.").wait_for()

    # The real updater changes the host; the bundle's relay worker sends it on.
    request = urllib.request.Request(f"{base}/nic/update?hostname={RELAYED}&myip=192.0.2.77,2001:db8::77")
    credentials = base64.b64encode(f"{RELAYED}:{made[RELAYED]}".encode()).decode()
    request.add_header("Authorization", "Basic " + credentials)
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.read().decode().strip() == "good 192.0.2.77,2001:db8::77"
    support.wait_until(lambda: hosts.get(db, TARGET).ipv4 == "192.0.2.77", what="the relayed address")
    assert hosts.get(db, TARGET).ipv6 is None  # IPv4 only was chosen
    (relay,) = relays.for_host(db, hosts.get(db, RELAYED).id)
    support.wait_until(lambda: relays.get(db, relay.id).last_result == "good", what="the relay's answer filed")

    page.reload()
    state = page.locator(f"#relay-{relay.id} .relay-state").inner_text()
    assert "sent" in state and "good" in state and "192.0.2.77" in state
    assert made[TARGET] not in page.content()
    page.locator("#h-relays").scroll_into_view_if_needed()
    shot(page, "host-relays", tmp_path, site["dialect"])
    page.get_by_role("link", name="Edit").click()
    assert page.get_by_label("Password or update token there").input_value() == ""
    assert made[TARGET] not in page.content()
    shot(page, "host-relay-edit", tmp_path, site["dialect"])
    assert not errors, errors
    assert made[TARGET] not in site["process"].log()
