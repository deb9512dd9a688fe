"""Malformed requests get a 400 or are ignored, never a 500 (tests/integration/test_request_fuzz.py tries many more)."""

from __future__ import annotations

import webtest

from ddserver.interface import totp, web
from tests.integration.interface.conftest import add_user, csrf_of, log_in_as


def test_headers_that_are_not_text_get_a_400(db, client) -> None:
    page = client.get("/", headers={"Accept-Language": "de\xff-DE"}, status=400)
    assert "<html" in page.text and "Traceback" not in page.text
    client.get("/login", headers={"User-Agent": "agent\x01"}, status=400)
    token = csrf_of(client.get("/login"))
    form = {"csrf_token": token, "language": "de", "next": "/"}
    client.post("/language", form, headers={"Origin": "http://\xff.example"}, status=400)
    client.post("/language", {"language": "de"}, headers={"X-CSRF-Token": "\xff\xfe"}, status=400)
    # Text that is not ASCII is no token: refused like a wrong one.
    client.post("/language", {"language": "de"}, headers={"X-CSRF-Token": "tök".encode().decode("latin-1")}, status=403)
    client.post("/language", {"csrf_token": "tök", "language": "de"}, status=403)
    client.post("/language", form, headers={"Origin": "http://[::1"}, status=403)  # not a URL: not this site
    assert client.post("/language", form).status_int == 303


def test_cookies_that_are_not_text_are_ignored(db, client) -> None:
    token = log_in_as(client, add_user(db, "alice", password=None))
    assert token
    session = client.cookies[web.SESSION_COOKIE]
    cookies = f"other=\xff\xfe; {web.FLASH_COOKIE}=\xff.\xff; {web.SESSION_COOKIE}={session}; {web.LANG_COOKIE}=d\x01e"
    client.cookiejar.clear()
    page = client.get("/account", headers={"Cookie": cookies})
    assert page.status_int == 200 and "alice" in page.text


def test_bodies_that_do_not_parse_get_a_400(db, client) -> None:
    token = csrf_of(client.get("/login"))
    # WebTest's own check of the request would stop at the malformed length: send it without.
    client = webtest.TestApp(client.app, extra_environ=client.extra_environ, cookiejar=client.cookiejar, lint=False)
    client.post("/language", f"csrf_token={token}", headers={"Content-Length": "1e3"}, status=400)
    body = b'--b\r\nContent-Disposition: form-data; name="language"\r\n\r\n\xff\r\n--b--\r\n'
    client.request("/language", method="POST", body=body, content_type="multipart/form-data; boundary=b", status=400)


def test_numbers_beyond_the_columns_name_nothing(db, client) -> None:
    token = log_in_as(client, add_user(db, "root", admin=True, password=None))
    client.get("/hosts/" + "9" * 30, status=404)
    client.get("/admin/users/" + "9" * 30, status=404)
    alice = add_user(db, "alice", password=None)
    for number in ("9" * 26, "-" + "9" * 20, str(10**10)):
        page = client.post(f"/admin/users/{alice.id}/limit", {"csrf_token": token, "max_hosts": number}, status=400)
        assert 'id="e-max_hosts"' in page.text


def test_paths_that_look_like_urls(db, client) -> None:
    # Bottle's fullpath reads these as URLs: the interface uses the path as it came.
    client.get("/http://[::1/x", status=404)
    page = client.get("/https://evil.example/x", status=404)
    assert 'name="next" value="/https://evil.example/x"' in page.text


def test_totp_codes_in_other_digits_are_wrong_codes() -> None:
    secret = totp.new_secret()
    assert totp.matching_step(secret, "١٢٣٤٥٦") is None  # Arabic-Indic digits: isdigit(), but no code
    assert totp.matching_step(secret, totp.code(secret)) is not None
