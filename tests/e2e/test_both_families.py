"""One click sets both addresses: Chromium, the interface and the updater as real processes on loopback, the
updater's "IPv4-only" name mapped to 127.0.0.1 and its "IPv6-only" name to ::1 (Chromium's host resolver rules).

Also what the page does when the IPv6 name does not answer, and without JavaScript.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ddserver import passwords, validate
from ddserver.db import Database
from ddserver.store import hosts, users, zones
from tests import support
from tests.e2e.conftest import chromium

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "alice's long password"
HOST = "home.dyn.example.org"
V4_NAME, V6_NAME = "ipv4.update.example.test", "ipv6.update.example.test"


def _port_free_on_both() -> int:
    for _ in range(50):
        port = support.free_port()
        if _bindable("::1", port):
            return port
    raise RuntimeError("no port free on both 127.0.0.1 and ::1")


def _bindable(host: str, port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


@pytest.fixture
def site(db: Database, db_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    alice = users.add(db, "alice", "alice@example.org", password_hash=passwords.hash_password(PASSWORD))
    zones.add(db, "dyn.example.org", ["ns1.example.org"], validate.hostmaster("hostmaster@example.org"))
    host = hosts.add(db, alice.id, HOST, "x" * 64, default_limit=5)
    hosts.set_addresses(db, host.id, ipv4="192.0.2.1", ipv6="2001:db8::1")
    web_port, update_port = support.free_port(), _port_free_on_both()
    base = f"http://127.0.0.1:{web_port}"
    config = support.write_config_file(
        tmp_path / "ddserver.conf",
        db_url,
        f"[http]\nbase_url = {base}\nupdate_url_ipv4 = http://{V4_NAME}:{update_port}\n"
        f"update_url_ipv6 = http://{V6_NAME}:{update_port}\n\n[interface]\nreverse_dns = no\n\n"
        "[updater]\nserver = waitress\nthreads = 2\n",
    )
    started: dict[str, support.Process] = {}
    try:
        started["interface"] = support.Process(
            [support.console_script("ddserver-interface"), "--config", config, "--listen", f"127.0.0.1:{web_port}"],
            log=tmp_path / "interface.log",
            cwd=tmp_path,
        )
        # One updater a family, on the same port: what the two names reach.
        for family, listen in (("4", f"127.0.0.1:{update_port}"), ("6", f"[::1]:{update_port}")):
            started["updater" + family] = support.Process(
                [support.console_script("ddserver-updater"), "--config", config, "--listen", listen],
                log=tmp_path / f"updater{family}.log",
                cwd=tmp_path,
            )
        started["interface"].wait_port("127.0.0.1", web_port)
        started["updater4"].wait_port("127.0.0.1", update_port)
        started["updater6"].wait_port("::1", update_port)
        yield {"base": base, "db": db, "host": host, "processes": started, "tmp": tmp_path}
    finally:
        for process in started.values():
            process.stop()


def _log_in_and_open_the_host(page: Any, site: dict[str, Any]) -> None:
    page.goto(site["base"] + "/login")
    page.get_by_label("User name or e-mail address").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    page.goto(f"{site['base']}/hosts/{site['host'].id}")


def test_one_click_sets_both_addresses(site: dict[str, Any]) -> None:
    db = site["db"]
    rules = f"--host-resolver-rules=MAP {V4_NAME} 127.0.0.1, MAP {V6_NAME} [::1]"
    with chromium(rules) as browser:
        page = browser.new_page()
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        _log_in_and_open_the_host(page, site)
        page.get_by_role("button", name="Use my IPv4 and IPv6 addresses").click()
        page.locator(".alert-success").wait_for()
        stored = hosts.get(db, HOST)
        assert (stored.ipv4, stored.ipv6) == ("127.0.0.1", "::1")
        assert page.locator("#status-ipv4").inner_text() == "127.0.0.1"
        assert page.locator("#status-ipv6").inner_text() == "::1"
        assert page.locator(".alert-warning").count() == 0
        assert not errors, errors  # no CSP violation, no failed request
        docs = os.environ.get("DDSERVER_SCREENSHOTS") == "1" and db.dialect == "sqlite"
        shots = ROOT / "docs" / "screenshots" if docs else site["tmp"]
        page.locator("#h-status").scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "host-both-families.png"))

        # The IPv6 name stops answering: the IPv4 address is still set, IPv6 is kept, and the page says so.
        site["processes"]["updater6"].stop()
        hosts.set_addresses(db, site["host"].id, ipv4="192.0.2.1", ipv6="2001:db8::1")
        page.reload()
        page.get_by_role("button", name="Use my IPv4 and IPv6 addresses").click()
        warning = page.locator(".alert-warning")
        warning.wait_for()
        assert "No IPv6 address was found for this browser" in warning.inner_text()
        stored = hosts.get(db, HOST)
        assert (stored.ipv4, stored.ipv6) == ("127.0.0.1", "2001:db8::1")

        # Without JavaScript: no such button, a note, and "Use my current address" sets the connection's family.
        hosts.set_addresses(db, site["host"].id, ipv4="192.0.2.1", ipv6="2001:db8::1")
        context = browser.new_context(java_script_enabled=False)
        plain = context.new_page()
        _log_in_and_open_the_host(plain, site)
        assert not plain.locator("#use-both").is_visible()
        assert "one button sets both" in plain.content()
        plain.locator("#use-current").click()
        plain.locator(".alert-success").wait_for()
        stored = hosts.get(db, HOST)
        assert (stored.ipv4, stored.ipv6) == ("127.0.0.1", "2001:db8::1")
        context.close()
