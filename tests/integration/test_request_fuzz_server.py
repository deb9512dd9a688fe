"""Malformed requests over raw sockets to the real servers: ``ddserver-bundle`` (waitress) and ``ddserver-updater``
under granian. Every route of the apps' route tables gets bytes that are not UTF-8, control characters and
overlong values in the request line, headers, cookies and bodies: no answer is a 500 and the log holds no
traceback and no error. (tests/integration/test_request_fuzz.py sends many more requests in-process.)
"""

from __future__ import annotations

import importlib
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ddserver import passwords
from ddserver.db import Database
from ddserver.interface import web
from ddserver.interface.app import create_app as create_interface
from ddserver.store import sessions, tokens, users
from ddserver.updater.app import create_app as create_updater
from tests import support
from tests.updater_support import make_site, write_updater_config

KEY = b"test-secret-key"
WILDCARD = re.compile(r"<[^>]+>")
ANONYMOUS_CSRF = "anonymous-csrf-cookie"


def exchange(port: int, request: bytes) -> bytes:
    """Send one raw request and read the answer until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(request)
        chunks = []
        while True:
            try:
                chunk = connection.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    match = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
    assert match, answer[:200]
    return int(match.group(1))


def variants(method: str, path: bytes, cookie: bytes, token: bytes) -> Iterator[tuple[str, bytes]]:
    """Raw requests to one route, each malformed in one place."""
    form = b"csrf_token=" + token

    def request(head: bytes, headers: bytes = b"", body: bytes = b"", length: bool = True) -> bytes:
        extra = (
            b"Content-Type: application/x-www-form-urlencoded\r\n" if body and b"Content-Type" not in headers else b""
        )
        if length and body and b"Content-Length" not in headers and b"Transfer-Encoding" not in headers:
            extra += b"Content-Length: %d\r\n" % len(body)
        return (
            head
            + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nOrigin: http://127.0.0.1\r\n"
            + b"Cookie: "
            + cookie
            + b"\r\n"
            + headers
            + extra
            + b"\r\n"
            + body
        )

    verb = method.encode()
    post = form if method == "POST" else b""
    yield "Accept-Language \\xff", request(verb + b" " + path, b"Accept-Language: de\xff-DE\r\n", post)
    yield "Origin \\xff", request(verb + b" " + path, b"Origin: http://\xff.example\r\n", post)
    yield "X-CSRF-Token \\xff", request(verb + b" " + path, b"X-CSRF-Token: \xff\xfe\r\n", b"x=1" if post else b"")
    yield (
        "cookie \\xff",
        request(verb + b" " + path, b"", post).replace(b"Cookie: ", b"Cookie: ddserver_flash=\xff.\xff; ", 1),
    )
    yield (
        "CR, LF and NUL in next",
        request(verb + b" " + path + b"?next=/a%0D%0ASet-Cookie:%20x=y%00", b"", post + b"&next=/a%0d%0ab%00"),
    )
    yield "raw \\xff in the query", request(verb + b" " + path + b"?q=\xff\xfe&hostname=\xff&myip=\xff", b"", post)
    yield "\\xff in the path", request(verb + b" " + path + b"\xff%ff")
    yield "a URL as the path", request(verb + b" /http://[::1" + path)
    yield "form field \\xff", request(verb + b" " + path, b"", post + b"&next=%ff&login=\xff&language=%ff")
    yield "Content-Length not a number", request(verb + b" " + path, b"Content-Length: 1e3\r\n", post, length=False)
    yield (
        "broken chunks",
        request(verb + b" " + path, b"Transfer-Encoding: chunked\r\n", b"zz\r\n" + post + b"\r\n0\r\n\r\n"),
    )
    yield "overlong header", request(verb + b" " + path, b"X-Long: " + b"a" * 60000 + b"\r\n", post)
    yield "control characters in a header", request(verb + b" " + path, b"User-Agent: a\x01\x7fb\r\n", post)
    yield "Authorization \\xff", request(verb + b" " + path, b"Authorization: Basic \xff\xfe==\r\n", post)
    boundary = b"fuzz"
    multipart = b'--fuzz\r\nContent-Disposition: form-data; name="next"\r\n\r\n\xff\r\n--fuzz--\r\n'
    yield (
        "multipart field \\xff",
        request(verb + b" " + path, b"Content-Type: multipart/form-data; boundary=" + boundary + b"\r\n", multipart),
    )


def api_variants(method: str, path: bytes, bearer: bytes) -> Iterator[tuple[str, bytes]]:
    """Raw requests to one route of the JSON API with a valid bearer token, each malformed in one place."""

    def request(body: bytes, headers: bytes = b"", auth: bytes = b"Bearer " + bearer) -> bytes:
        return (
            method.encode() + b" " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Authorization: " + auth + b"\r\nContent-Type: application/json\r\n" + headers
            + b"Content-Length: %d\r\n\r\n" % len(body) + body
        )  # fmt: skip

    yield (
        "the right token, a plausible body",
        request(b'{"label": "x", "zone": "dyn.example.org", "ipv4": "192.0.2.1"}'),
    )
    yield "\\xff in a JSON string", request(b'{"label": "\xff\xfe", "zone": "\xff", "content": "\xff"}')
    yield "not JSON", request(b"{\xff")
    yield "a JSON list", request(b"[1, 2]")
    yield "NUL and lone surrogates", request(b'{"label": "\\u0000", "name": "\\ud800", "scopes": ["\\udfff"]}')
    yield "wrong shapes", request(b'{"label": [], "zone": {}, "ipv4": 1e999, "hosts": [null], "expires_in_days": 1e3}')
    yield "deep nesting", request(b"[" * 30000 + b"]" * 30000)
    yield "overlong body", request(b'{"label": "' + b"a" * 70000 + b'"}')
    yield "\\xff in the token", request(b"{}", auth=b"Bearer \xff\xfe")
    yield "an overlong token", request(b"{}", auth=b"Bearer " + b"a" * 60000)


def send_all(port: int, routes: list[tuple[str, str]], cookie: bytes, token: bytes) -> tuple[int, list[str]]:
    sent, failures = 0, []
    for method, rule in routes:
        path = WILDCARD.sub("1", rule).encode()
        for what, request in variants(method, path, cookie, token):
            status = status_of(exchange(port, request))
            sent += 1
            if status >= 500 and status != 503:
                failures.append(f"{method} {rule} ({what}): {status}")
    return sent, failures


def assert_clean_log(log: str) -> None:
    bad = [line for line in log.splitlines() if "Traceback" in line or " ERROR " in line or "Critical error" in line]
    assert bad == [], "\n".join(bad[:20]) + "\n--- log ---\n" + log[-3000:]


# One dialect is enough for the server path; the in-process fuzz runs on both.
@pytest.mark.parametrize("dialect", ["sqlite"])
def test_bundle_under_waitress(db: Database, db_url: str, tmp_path: Path) -> None:
    alice = users.add(db, "alice", "alice@example.org", password_hash=passwords.hash_password("a long password 1"))
    config = support.make_config(db_url, tmp_path)
    interface, updater = create_interface(config, db), create_updater(config, db)
    routes = [(r.method, r.rule) for app in (interface, updater) for r in app.routes]
    private = [(r.method, r.rule) for r in interface.routes if r.config.get("auth", web.AuthLevel.ANYONE) != "anyone"]
    port = support.free_port()
    path = support.write_config_file(
        tmp_path / "ddserver.conf", db_url, "[interface]\nreverse_dns = no\n\n[mail]\nhost =\n"
    )
    process = support.Process(
        [support.console_script("ddserver-bundle"), "--config", str(path), "--listen", f"127.0.0.1:{port}"],
        log=tmp_path / "bundle.log",
        cwd=tmp_path,
    )
    try:
        process.wait_port("127.0.0.1", port)
        # Anonymous, with a valid CSRF cookie and token, so that POSTs reach their routes.
        anonymous = web._sign(KEY, "csrf-anonymous", ANONYMOUS_CSRF)
        sent, failures = send_all(port, routes, b"ddserver_csrf=" + ANONYMOUS_CSRF.encode(), anonymous.encode())
        # Logged in, so that the routes for users run too (the admin's answer alice with 403).
        token, session = sessions.create(db, alice.id, 3600)
        signed = web._sign(KEY, "csrf-session", session.id)
        more, failed = send_all(port, private, b"ddserver_session=" + token.encode(), signed.encode())
        sent += more
        failures += failed
        # The JSON API with a valid token and malformed JSON bodies.
        bearer = tokens.create_grant(db, alice.id, "api", list(tokens.Scope))[0].encode()
        for method, rule in [r for r in routes if r[1].startswith("/api/v1/")]:
            for what, request in api_variants(method, WILDCARD.sub("1", rule).encode(), bearer):
                status = status_of(exchange(port, request))
                sent += 1
                if status >= 500 and status != 503:
                    failures.append(f"{method} {rule} ({what}): {status}")
    finally:
        process.stop()
    print(f"{sent} raw requests to ddserver-bundle")
    assert sent > 1000
    assert failures == []
    assert_clean_log(process.log())


# One dialect is enough for the server path; the in-process fuzz runs on both.
@pytest.mark.parametrize("dialect", ["sqlite"])
def test_updater_under_granian(db: Database, db_url: str, tmp_path: Path) -> None:
    try:
        importlib.import_module("granian")
    except ImportError:
        support.missing("granian is not installed (it comes with the updater extra)")
    make_site(db)
    config = support.make_config(db_url, tmp_path)
    routes = [(r.method, r.rule) for r in create_updater(config, db).routes]
    port = support.free_port()
    path = write_updater_config(tmp_path / "ddserver.conf", db_url, port, "server = granian\nworkers = 1\n", threads=2)
    process = support.Process(
        [support.console_script("ddserver-updater"), "--config", str(path)], log=tmp_path / "updater.log", cwd=tmp_path
    )
    try:
        process.wait_port("127.0.0.1", port)
        sent, failures = send_all(port, routes, b"a=b", b"")
    finally:
        process.stop()
    print(f"{sent} raw requests to ddserver-updater under granian")
    assert sent > 200
    assert failures == []
    assert_clean_log(process.log())
