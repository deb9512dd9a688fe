"""Redirect targets in Chromium: whatever ``safe_next`` lets through stays on the site, by the browser's own parser.

tests/whatwg.py models the WHATWG URL parser; here Chromium resolves the same values (``new URL`` against a page
of the site, and real 303 answers followed by the browser), so the model and the rule are checked against
what a browser does, not only against what we think it does.
"""

from __future__ import annotations

import http.server
import threading
from typing import Any

import pytest

from ddserver.interface.routes import safe_next
from tests import whatwg
from tests.e2e.conftest import chromium

SITE = f"{whatwg.BASE[0]}://{whatwg.BASE[1]}"
RESOLVE = """values => values.map(value => {
    try {
        const url = new URL(value, "SITE/");
        return [url.protocol.slice(0, -1), url.hostname];
    } catch (error) {
        return null;
    }
})""".replace("SITE", SITE)


def _same_site(found: Any) -> bool:
    return found is not None and tuple(found) == whatwg.BASE


def test_chromium_agrees_with_the_model_and_keeps_accepted_targets_on_the_site(browser: Any) -> None:
    values = [*whatwg.LEAVING, *whatwg.REFUSED, *whatwg.LOCAL, *whatwg.combinations(whatwg.PIECES, 3)]
    page = browser.new_page()
    resolved = page.evaluate(RESOLVE, values)
    disagree = [
        v for v, found in zip(values, resolved, strict=True) if _same_site(found) != (whatwg.origin(v) == whatwg.BASE)
    ]
    assert disagree == []
    leaving = [v for v, found in zip(values, resolved, strict=True) if not _same_site(found)]
    assert len(leaving) > 5000  # the values do try to leave
    accepted = {v for v in values if safe_next(v, "/default") == v}
    assert len(accepted) > 1000
    escaped = [v for v, found in zip(values, resolved, strict=True) if v in accepted and not _same_site(found)]
    assert escaped == []


class _Redirects(http.server.BaseHTTPRequestHandler):
    """``/redirect/N`` answers 303 to the Nth value, as it is; any other request lands."""

    values: list[str] = []

    def do_GET(self) -> None:
        folder, _, number = self.path.rpartition("/")
        if folder == "/redirect" and number.isdigit():
            self.send_response(303)
            self.send_header("Location", self.values[int(number)])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "6")
        self.end_headers()
        self.wfile.write(b"landed")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_chromium_follows_redirects_to_the_site_only() -> None:
    # Real 303 answers with the value as Location, from a server every host name resolves to. Header values
    # cannot hold CR, LF, NUL or characters beyond Latin-1: those values are left to the test above.
    sync_api = pytest.importorskip("playwright.sync_api")
    values = [v for v in [*whatwg.LEAVING, *whatwg.LOCAL] if v.isascii() and not any(c in v for c in "\r\n\x00")]
    base = ("http", "site.example")
    handler = type("Handler", (_Redirects,), {"values": values})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with chromium(f"--host-resolver-rules=MAP * 127.0.0.1:{server.server_port}") as browser:
            landed = {}
            for index, value in enumerate(values):
                # A page for each value: a failed navigation (TLS to this plain server) must not spill over.
                page = browser.new_page()
                try:
                    page.goto(f"http://site.example/redirect/{index}")
                    landed[value] = page.url
                except sync_api.Error as exc:  # a scheme the browser does not follow (javascript:, data:)
                    landed[value] = f"not followed: {exc}"
                page.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    for value in values:
        on_site = landed[value].startswith("http://site.example/")
        assert on_site == (whatwg.origin(value, base) == base), (value, landed[value])
        if safe_next(value, "/default") == value:
            assert on_site, (value, landed[value])
    assert sum(not landed[v].startswith("http://site.example/") for v in values) >= 15
