"""The sign-up captcha against a local fake siteverify endpoint, and the bundle's dispatch."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse
from collections.abc import Iterator

import pytest

from ddserver.bundle import Bundle, create_bundle
from ddserver.config import CaptchaSection
from ddserver.interface import captcha
from ddserver.store import users
from tests.integration.interface.conftest import CLIENT, PASSWORD, form_for, webtest


class FakeVerify(http.server.BaseHTTPRequestHandler):
    """Answers like a siteverify endpoint: the response "good" passes, with the score the server was given."""

    posted: list[dict[str, str]]
    score: float = 0.9

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        fields = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        self.server.posted.append(fields)  # type: ignore[attr-defined]
        answer = {"success": fields.get("response") == "good", "score": self.server.score}  # type: ignore[attr-defined]
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_verify() -> Iterator[http.server.HTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeVerify)
    server.posted = []  # type: ignore[attr-defined]
    server.score = 0.9  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _url(server: http.server.HTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/siteverify"


@pytest.mark.parametrize("provider", ["recaptcha", "hcaptcha", "turnstile"])
def test_signup_captcha_is_verified_on_the_server(db, make_app, fake_verify, provider: str) -> None:
    client = make_app(
        signup={"mode": "automatic"},
        captcha={
            "provider": provider,
            "site_key": "site-key",
            "secret_key": "captcha-secret",
            "verify_url": _url(fake_verify),
        },
    )
    page = client.get("/signup")
    assert 'data-provider="' + provider in page.text
    field = captcha.PROVIDERS[captcha.Provider(provider)].field
    csp = page.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp
    for answer, status in (("", 400), ("bad", 400), ("good", 200)):
        form = form_for(client.get("/signup"), "/signup")
        form["username"], form["email"] = "carol", "carol@example.org"
        form["password"] = form["password2"] = PASSWORD
        response = client.post("/signup", {**dict(form.submit_fields()), field: answer}, status=status)
        if status == 400:
            assert 'id="e-captcha"' in response.text
    assert users.get_by_name(db, "carol")
    # The empty answer never reached the provider; the others did, with the secret and the client's address.
    assert [p["response"] for p in fake_verify.posted] == ["bad", "good"]
    assert fake_verify.posted[-1]["secret"] == "captcha-secret" and fake_verify.posted[-1]["remoteip"] == CLIENT


def test_recaptcha_v3_score_and_unreachable_provider(fake_verify) -> None:
    section = CaptchaSection(provider="recaptcha-v3", secret_key="s", verify_url=_url(fake_verify), min_score=0.5)
    assert captcha.verify(section, "good")
    fake_verify.score = 0.1
    assert not captcha.verify(section, "good")
    gone = CaptchaSection(provider="turnstile", secret_key="s", verify_url="http://127.0.0.1:9/siteverify")
    assert not captcha.verify(gone, "good", timeout=2)
    assert captcha.verify(CaptchaSection(provider="none"), "")


def test_bundle_dispatches_by_path(db, config) -> None:
    bundle = create_bundle(config, db)
    assert isinstance(bundle, Bundle)
    app = webtest.TestApp(bundle, extra_environ={"REMOTE_ADDR": CLIENT})
    assert "<!doctype html>" in app.get("/login").text
    assert "<!doctype html>" in app.get("/").text  # the updater's own "/" is hidden behind the interface's
    if bundle.updater is None:
        pytest.skip("the updater is not installed")
    answer = app.get("/nic/update?hostname=x.example.org", expect_errors=True)
    assert answer.status_int == 401 and "badauth" in answer.text
    assert app.get("/nic/ip").text.strip() == CLIENT
    # Without the updater the interface alone is served.
    alone = webtest.TestApp(Bundle(bundle.interface, None))
    assert alone.get("/nic/update", expect_errors=True).status_int == 404
