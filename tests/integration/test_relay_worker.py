"""The relay worker's HTTP shell against a small real HTTP server: what it sends, how it reads answers, errors,
redirects (never followed) and a refused connection."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from ddserver import relay
from ddserver.config import load_config
from ddserver.relay import Verdict
from ddserver.updater.relay import RelayWorker
from tests import support

ANSWERS = {
    "/good": (200, {}, b"good 192.0.2.1\n"),
    "/badauth": (401, {"WWW-Authenticate": 'Basic realm="x"'}, b"badauth\n"),
    "/busy": (502, {}, b"<html>bad gateway</html>"),
    "/moved": (301, {"Location": "https://user:pw@elsewhere.example/nic/update?hostname=x"}, b""),
}


@pytest.fixture
def server() -> Iterator[tuple[int, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            seen.append({"path": self.path, "headers": dict(self.headers)})
            status, headers, body = ANSWERS[path]
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1], seen
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _worker() -> RelayWorker:
    return RelayWorker(load_config(env={}).replace("relay", timeout=5.0), None)  # type: ignore[arg-type]


def test_answers_through_http(server: tuple[int, list[dict[str, Any]]]) -> None:
    port, seen = server
    worker = _worker()

    def fetch(path: str) -> relay.Outcome:
        return worker.fetch(relay.request(f"http://127.0.0.1:{port}{path}", "h.example", "bob", "pw", "192.0.2.1"))

    assert fetch("/good") == relay.Outcome(Verdict.DONE, "good", "192.0.2.1")
    sent = seen[-1]
    assert sent["path"] == "/good?hostname=h.example&myip=192.0.2.1"
    assert sent["headers"]["Authorization"] == "Basic Ym9iOnB3"
    assert sent["headers"]["User-Agent"] == relay.USER_AGENT
    assert (fetch("/badauth").verdict, fetch("/badauth").code) == (Verdict.STOP, "badauth")
    assert (fetch("/busy").verdict, fetch("/busy").code) == (Verdict.RETRY, "http-502")
    moved = fetch("/moved")
    assert (moved.verdict, moved.code) == (Verdict.STOP, "http-301")
    assert moved.detail == "redirected to https://elsewhere.example/nic/update: use that URL"
    assert len(seen) == 6  # the redirect was not followed


def test_a_refused_connection_is_retried() -> None:
    port = support.free_port()
    outcome = _worker().fetch(relay.request(f"http://127.0.0.1:{port}/nic/update", "h.example", "u", "p", "1.2.3.4"))
    assert outcome == relay.Outcome(Verdict.RETRY, "error", "connection refused")
