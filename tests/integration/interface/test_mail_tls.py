"""Mail over STARTTLS and over SSL (implicit TLS) to a local aiosmtpd server with a throwaway certificate
made by the ``openssl`` command; the certificate is checked, and a login travels only inside TLS."""

from __future__ import annotations

import logging
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ddserver.config import MailSection
from ddserver.interface import mail
from tests import support
from tests.integration.interface.conftest import Mailbox

controller_module = pytest.importorskip("aiosmtpd.controller")
smtp_module = pytest.importorskip("aiosmtpd.smtp")

USER, PASSWORD = "mailer", "mail password"
# aiosmtpd warns, for each connection, that a login is required without STARTTLS: with implicit TLS
# (security = ssl) the login travels inside TLS all the same.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, valid for a day: (certificate, key)."""
    openssl = support.require_binary("openssl")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", key, "-out", cert),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, smtp_module.LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    # handled=False: aiosmtpd answers the refusal itself (535).
    return smtp_module.AuthResult(success=ok, handled=False)


@pytest.fixture(params=["starttls", "ssl"])
def tls_smtp(request: pytest.FixtureRequest, certificate: tuple[Path, Path]) -> Iterator[tuple[str, int, Mailbox]]:
    """An SMTP server that speaks only TLS (STARTTLS required, or TLS from the first byte) and wants a login."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    box = Mailbox()
    port = support.free_port()
    options: dict[str, Any] = {"authenticator": _authenticate, "auth_required": True}
    if request.param == "starttls":
        options.update(tls_context=context, require_starttls=True)
    else:
        # TLS from the first byte: aiosmtpd cannot see it, so it is told that a login is safe here.
        options.update(ssl_context=context, auth_require_tls=False)
    controller = controller_module.Controller(box, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield request.param, port, box
    finally:
        controller.stop()


def _section(security: str, port: int, **values: Any) -> MailSection:
    base = {"host": "127.0.0.1", "port": port, "security": security, "sender": "ddserver@example.test"}
    return MailSection(**{**base, "username": USER, "password": PASSWORD, "timeout": 10, **values})


def test_mail_goes_over_tls_with_a_login(tls_smtp, certificate, monkeypatch) -> None:
    security, port, box = tls_smtp
    # The throwaway certificate is the only trusted one: the server's certificate is verified, not skipped.
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    section = _section(security, port)
    message = mail.build(section, "alice@example.org", "Activate your account", "Follow this link.", "ddserver")
    assert mail.send(section, message)
    received = box.wait_for("alice@example.org")[0]
    assert received["Subject"] == "Activate your account" and "Follow this link." in received.get_content()


def test_wrong_login_plain_text_or_untrusted_certificate_fail_cleanly(tls_smtp, certificate, monkeypatch, caplog):
    security, port, box = tls_smtp
    caplog.set_level(logging.INFO, logger="ddserver.interface.mail")
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    message = mail.build(_section(security, port), "bob@example.org", "Hello", "Body.")
    assert not mail.send(_section(security, port, password="wrong"), message)
    assert "SMTPAuthenticationError" in caplog.text
    if security == "starttls":
        # Plain SMTP to a server that wants STARTTLS is refused, not sent in the clear.
        assert not mail.send(_section("plain", port), message)
    # No trust in the certificate: nothing is sent, and the failure is one log line. (Last: aiosmtpd's
    # STARTTLS does not recover from a handshake the client aborts.)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[1].parent / "none.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", str(certificate[1].parent / "none"))
    assert not mail.send(_section(security, port), message)
    assert "certificate verify failed" in caplog.text
    assert not box.to("bob@example.org")
    # Our own log lines carry no traceback (aiosmtpd may log one of its own for the aborted handshake).
    ours = [r for r in caplog.records if r.name.startswith("ddserver")]
    assert ours and not any(r.exc_info or "Traceback" in r.getMessage() for r in ours)
