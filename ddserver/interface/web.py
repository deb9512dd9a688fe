"""The request context of the interface: client address, session, user, CSRF, language, flashes, rendering.

``WebPlugin`` (a Bottle api-2 plugin) builds a ``Context`` for every route, enforces the route's
``auth`` level and the CSRF check of state-changing requests, and sets the security headers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import re
import secrets as _random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import bottle

from ddserver import logs
from ddserver.config import Config
from ddserver.db import Database
from ddserver.errors import DatabaseError, NotFound
from ddserver.interface import i18n
from ddserver.interface.metrics import InterfaceMetrics
from ddserver.store import sessions, users
from ddserver.store.sessions import Session
from ddserver.store.users import User

logger = logging.getLogger(__name__)

SESSION_COOKIE = "ddserver_session"
CSRF_COOKIE = "ddserver_csrf"
#: Over TLS the session and CSRF cookies carry this prefix: the browser then takes them only with Secure,
#: Path=/ and no Domain, so a host under a user's control (a sibling name) cannot set or shadow them.
HOST_PREFIX = "__Host-"
FLASH_COOKIE = "ddserver_flash"
LANG_COOKIE = "ddserver_lang"
CSRF_FIELD = "csrf_token"
# A session's "last seen" is written at most this often, so that reading pages costs no write.
TOUCH_INTERVAL = 300
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

CAPTCHA_SOURCES = {
    "recaptcha": ("https://www.google.com/recaptcha/", "https://www.gstatic.com/recaptcha/"),
    "recaptcha-v3": ("https://www.google.com/recaptcha/", "https://www.gstatic.com/recaptcha/"),
    "hcaptcha": ("https://js.hcaptcha.com", "https://*.hcaptcha.com", "https://hcaptcha.com"),
    "turnstile": ("https://challenges.cloudflare.com",),
}


class AuthLevel:
    """Who may reach a route (the ``auth`` key of a route's config)."""

    ANYONE = "anyone"
    USER = "user"
    ADMIN = "admin"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def content_security_policy(config: Config) -> str:
    """The CSP of every page: no inline scripts or styles, no framing, forms post only to this site."""
    connect = ["'self'"] + [_origin(config.address_check_url(family)) for family in (4, 6)]
    script = ["'self'"]
    frame = ["'none'"]
    sources = CAPTCHA_SOURCES.get(config.captcha.provider)
    if sources:
        script += list(sources)
        frame = list(sources)
        connect += list(sources)
    return "; ".join(
        [
            "default-src 'self'",
            "script-src " + " ".join(script),
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src " + " ".join(c for c in connect if c),
            "frame-src " + " ".join(frame),
            "frame-ancestors 'none'",
            "form-action 'self'",
            "base-uri 'none'",
            "object-src 'none'",
        ]
    )


def security_headers(config: Config) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(config),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        # Reset and activation links carry tokens: never send them to another site.
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    }


#: Characters no header value may hold (a tab may: it is whitespace there).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
#: A cookie the interface reads: printable ASCII (RFC 6265 allows less; the interface's own hold less still).
_COOKIE_TEXT = re.compile(r"[\x20-\x7e]*")
_CGI_HEADERS = ("CONTENT_TYPE", "CONTENT_LENGTH")
#: Largest id a path may carry (a signed 64-bit column): larger numbers name nothing.
MAX_ID = 2**63 - 1


def check_request() -> None:
    """Bottle's ``before_request`` hook: refuse or clean what the rest of the interface assumes is text.

    WSGI hands header bytes over as Latin-1 characters, and Bottle decodes them as UTF-8 when they are read,
    so a byte that is not UTF-8 would fail wherever a header is read. Here, before any route runs: a header
    that is not UTF-8 text without control characters, or a body length that is not a number, gets a 400;
    cookies that are not printable ASCII are dropped one by one (a cookie that another application of the
    domain set must not lock anyone out). Form and query values stay Bottle's: ``getunicode`` gives None
    for bytes that are not UTF-8, and each form checks its values.

    :raises bottle.HTTPError: 400 for a malformed request.
    """
    environ = bottle.request.environ
    cookies = environ.get("HTTP_COOKIE")
    if cookies is not None:
        kept = [c for c in str(cookies).split(";") if _COOKIE_TEXT.fullmatch(c)]
        environ["HTTP_COOKIE"] = ";".join(kept)
    headers = (value for key, value in environ.items() if key.startswith("HTTP_") or key in _CGI_HEADERS)
    if not all(isinstance(value, str) and _is_text(value) for value in headers):
        raise bottle.HTTPError(400, "A request header is not valid text.")
    length = environ.get("CONTENT_LENGTH") or ""
    if length and not (length.isascii() and length.isdigit()):
        raise bottle.HTTPError(400, "The Content-Length header is not a number.")
    if environ.get("CONTENT_TYPE", "").lower().startswith("multipart/"):
        # Bottle decodes multipart fields and their headers as it parses them: parse now, where a part that
        # is not UTF-8 or a name with a control character can still be answered (the form is kept for the route).
        try:
            bottle.request.POST  # noqa: B018
        except ValueError:  # UnicodeDecodeError is one
            raise bottle.HTTPError(400, "A form field is not valid text.")


def _is_text(value: str) -> bool:
    try:
        text = value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return False
    return _CONTROL.search(text) is None


def _sign(key: bytes, purpose: str, value: str) -> str:
    return hmac.new(key, f"{purpose}|{value}".encode(), hashlib.sha256).hexdigest()


@dataclass
class Site:
    """What every request of one interface app shares: configuration, database, templates, keys."""

    config: Config
    db: Database
    key: bytes
    render_template: Callable[..., str]
    trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    metrics: InterfaceMetrics = field(default_factory=InterfaceMetrics)


class Context:
    """One request: who asks, from where, in which language; helpers to answer."""

    def __init__(self, site: Site, request: bottle.BaseRequest, response: bottle.BaseResponse) -> None:
        self.site = site
        self.config = site.config
        self.db = site.db
        self.request = request
        self.response = response
        self.client = self._client_address()
        logs.set_fields(client=self.client)
        self.https = self._is_https()
        self.session: Session | None = None
        self.session_token: str | None = None
        self.user: User | None = None
        self.mfa_pending = False
        self._csrf_cookie = request.get_cookie(self.csrf_cookie) or ""
        self.lang = i18n.DEFAULT
        self.translations = i18n.translations(i18n.DEFAULT)
        self._flashes = self._read_flashes()

    # -- where the request comes from ---------------------------------------------------------------

    @property
    def path(self) -> str:
        """The path asked for (with the mount point). Not Bottle's ``fullpath``: that joins the path to the mount
        point as a URL, so ``/https://evil.example/`` becomes another site and ``/http://[x`` an exception."""
        return str(self.request.script_name) + str(self.request.path).lstrip("/")

    def _trusted_peer(self) -> bool:
        try:
            peer = ipaddress.ip_address(self.request.environ.get("REMOTE_ADDR", ""))
        except ValueError:
            return False
        return any(peer in network for network in self.site.trusted)

    def _client_address(self) -> str:
        environ = self.request.environ
        remote = str(environ.get("REMOTE_ADDR", ""))
        if not self._trusted_peer():
            return remote
        forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            # The nearest untrusted hop is the client: walk back from the proxy's end of the list.
            for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
                try:
                    address = ipaddress.ip_address(hop)
                except ValueError:
                    return remote
                if not any(address in network for network in self.site.trusted):
                    return str(address)
        real = environ.get("HTTP_X_REAL_IP", "").strip()
        if real:
            try:
                return str(ipaddress.ip_address(real))
            except ValueError:
                pass
        return remote

    def _is_https(self) -> bool:
        environ = self.request.environ
        if environ.get("wsgi.url_scheme") == "https":
            return True
        if self._trusted_peer():
            return environ.get("HTTP_X_FORWARDED_PROTO", "").lower() == "https"
        return False

    @property
    def secure_cookies(self) -> bool:
        mode = self.config.interface.secure_cookies
        if mode == "auto":
            return self.https or self.config.http.base_url.startswith("https:")
        return mode == "yes"

    @property
    def session_cookie(self) -> str:
        """The session cookie's name: with the ``__Host-`` prefix when cookies are Secure."""
        return HOST_PREFIX + SESSION_COOKIE if self.secure_cookies else SESSION_COOKIE

    @property
    def csrf_cookie(self) -> str:
        """The name of the cookie that anonymous CSRF tokens are bound to (prefixed as the session's)."""
        return HOST_PREFIX + CSRF_COOKIE if self.secure_cookies else CSRF_COOKIE

    # -- cookies ------------------------------------------------------------------------------------

    def set_cookie(self, name: str, value: str, max_age: int | None = None, http_only: bool = True) -> None:
        options: dict[str, Any] = {"path": "/", "httponly": http_only, "samesite": "lax"}
        if self.secure_cookies:
            options["secure"] = True
        if max_age is not None:
            options["max_age"] = max_age
        # A cookie set twice in one response (deleted, then set anew at login) must not keep old attributes.
        cookies = self.response._cookies
        if cookies is not None and name in cookies:
            del cookies[name]
        self.response.set_cookie(name, value, **options)

    def delete_cookie(self, name: str) -> None:
        self.set_cookie(name, "", max_age=0)

    # -- session and user ---------------------------------------------------------------------------

    def load_session(self) -> None:
        token = self.request.get_cookie(self.session_cookie)
        if not token:
            return
        session = sessions.load(self.db, token)
        if session is None:
            self.delete_cookie(self.session_cookie)
            return
        try:
            user = users.get(self.db, session.user_id)
        except NotFound:
            return
        if not user.can_log_in:
            sessions.delete(self.db, session.id)
            self.delete_cookie(self.session_cookie)
            return
        self.session, self.session_token = session, token
        if session.data.get("mfa") == "pending":
            self.mfa_pending = True
            return
        self.user = user
        if time.time() - session.last_seen_at > TOUCH_INTERVAL:
            lifetime = self.config.auth.remember_lifetime if session.remember else self.config.auth.session_lifetime
            sessions.touch(self.db, session.id, lifetime)
            if session.remember:
                self.set_cookie(self.session_cookie, token, max_age=lifetime)

    def start_session(self, user: User, *, remember: bool = False, mfa_pending: bool = False) -> None:
        """Log a user in with a new session id (never reuse one from before the login)."""
        self.end_session()
        lifetime = self.config.auth.remember_lifetime if remember else self.config.auth.session_lifetime
        if mfa_pending:
            lifetime = min(lifetime, 600)
        token, session = sessions.create(
            self.db,
            user.id,
            lifetime,
            remember=remember,
            client=self.client,
            data={"mfa": "pending"} if mfa_pending else {},
        )
        self.session, self.session_token = session, token
        self.user = None if mfa_pending else user
        self.mfa_pending = mfa_pending
        self.set_cookie(self.session_cookie, token, max_age=lifetime if remember else None)
        # A fresh anonymous CSRF cookie too, so a token seen before the login is worth nothing after it.
        self._csrf_cookie = ""

    def end_session(self) -> None:
        if self.session is not None:
            sessions.delete(self.db, self.session.id)
        self.session = None
        self.session_token = None
        self.user = None
        self.mfa_pending = False
        if self.request.get_cookie(self.session_cookie):
            self.delete_cookie(self.session_cookie)

    # -- CSRF ---------------------------------------------------------------------------------------

    @property
    def csrf_token(self) -> str:
        """The token every state-changing form carries: bound to the session, else to a random cookie."""
        if self.session is not None:
            return _sign(self.site.key, "csrf-session", self.session.id)
        if not self._csrf_cookie:
            self._csrf_cookie = _random.token_urlsafe(24)
            self.set_cookie(self.csrf_cookie, self._csrf_cookie)
        return _sign(self.site.key, "csrf-anonymous", self._csrf_cookie)

    def csrf_valid(self) -> bool:
        presented = self.request.forms.get(CSRF_FIELD) or self.request.headers.get("X-CSRF-Token") or ""
        if not presented or not presented.isascii():
            # compare_digest takes ASCII strings only; a token is never anything else.
            return False
        candidates = []
        if self.session is not None:
            candidates.append(_sign(self.site.key, "csrf-session", self.session.id))
        if self._csrf_cookie:
            candidates.append(_sign(self.site.key, "csrf-anonymous", self._csrf_cookie))
        return any(hmac.compare_digest(presented, c) for c in candidates)

    def origin_valid(self) -> bool:
        """A browser's Origin header, when sent, must be this site (defence in depth beside the token)."""
        origin = self.request.headers.get("Origin")
        if not origin or origin == "null":
            return origin != "null"
        try:
            parts = urlsplit(origin)
        except ValueError:  # "http://[::1": not a URL, so not this site
            return False
        host = self.request.headers.get("X-Forwarded-Host") if self._trusted_peer() else None
        host = host or self.request.environ.get("HTTP_HOST", "")
        return parts.netloc == host or _origin(self.config.http.base_url) == origin

    # -- flashes ------------------------------------------------------------------------------------

    def _read_flashes(self) -> list[tuple[str, str]]:
        raw = self.request.get_cookie(FLASH_COOKIE)
        if not raw:
            return []
        payload, _, signature = raw.rpartition(".")
        if not signature.isascii() or not hmac.compare_digest(_sign(self.site.key, "flash", payload), signature):
            return []
        try:
            items = json.loads(base64.urlsafe_b64decode(payload.encode()))
            return [(str(kind), str(text)) for kind, text in items][:10]
        except (ValueError, TypeError):
            return []

    def flash(self, text: str, kind: str = "success") -> None:
        """A message shown once on the next page (kept in a signed cookie: no database write)."""
        self._pending_flashes = [*getattr(self, "_pending_flashes", []), (kind, text)]
        payload = base64.urlsafe_b64encode(json.dumps(self._pending_flashes).encode()).decode()
        self.set_cookie(FLASH_COOKIE, f"{payload}.{_sign(self.site.key, 'flash', payload)}")

    def take_flashes(self) -> list[tuple[str, str]]:
        flashes, self._flashes = self._flashes, []
        if flashes and not getattr(self, "_pending_flashes", None):
            self.delete_cookie(FLASH_COOKIE)
        return flashes

    # -- answers ------------------------------------------------------------------------------------

    def gettext(self, message: str, **values: Any) -> str:
        text = self.translations.gettext(message)
        return text % values if values else text

    def render(self, template: str, status: int = 200, **values: Any) -> str:
        self.response.status = status
        return self.site.render_template(template, ctx=self, **values)

    def redirect(self, url: str, flash: str | None = None, kind: str = "success") -> str:
        """Answer with a 303 to ``url`` (a POST is followed by a GET); cookies set so far are kept."""
        if flash:
            self.flash(flash, kind)
        self.response.status = 303
        self.response.set_header("Location", url)
        return ""

    def log_event(self, kind: str, subject: str, detail: str = "") -> None:
        """An audit fact (admin and account actions), with who did it and from where."""
        from ddserver.store import events

        events.add(
            self.db,
            kind,
            subject,
            actor_id=self.user.id if self.user else None,
            client=self.client,
            detail=detail,
        )

    def form(self, name: str, default: str = "") -> str:
        value = self.request.forms.getunicode(name)
        return default if value is None else value.strip()

    def query(self, name: str, default: str = "") -> str:
        value = self.request.query.getunicode(name)
        return default if value is None else value.strip()


class WebPlugin:
    """Builds the context, checks access and CSRF, renders errors and sets the security headers."""

    name = "ddserver-web"
    api = 2

    def __init__(self, site: Site) -> None:
        self.site = site

    def apply(self, callback: Callable[..., Any], route: bottle.Route) -> Callable[..., Any]:
        level = route.config.get("auth", AuthLevel.ANYONE)
        csrf = route.config.get("csrf", True)
        allow_pending = route.config.get("mfa_pending", False)
        raw = route.config.get("raw", False)
        site = self.site

        def wrapper(**kwargs: Any) -> Any:
            if any(isinstance(value, int) and not -MAX_ID <= value <= MAX_ID for value in kwargs.values()):
                raise bottle.HTTPError(404)
            if raw:
                return callback(**kwargs)
            ctx = Context(site, bottle.request, bottle.response)
            bottle.request.environ["ddserver.ctx"] = ctx
            try:
                ctx.load_session()
                i18n.choose(ctx)
                unsafe = bottle.request.method not in SAFE_METHODS
                if unsafe and csrf and not (ctx.origin_valid() and ctx.csrf_valid()):
                    return ctx.render(
                        "error.html",
                        status=403,
                        title=ctx.gettext("Form expired"),
                        message=ctx.gettext(
                            "This form has expired or did not come from this site. Go back, reload the "
                            "page and try again."
                        ),
                    )
                if level != AuthLevel.ANYONE:
                    if ctx.mfa_pending and not allow_pending:
                        return ctx.redirect("/login/totp")
                    if ctx.user is None and not (allow_pending and ctx.mfa_pending):
                        target = ctx.path
                        query = bottle.request.query_string
                        back = target + ("?" + query if query else "")
                        return ctx.redirect("/login?next=" + bottle.urlquote(back, safe="/"))
                    if level == AuthLevel.ADMIN and not (ctx.user and ctx.user.is_admin):
                        return ctx.render(
                            "error.html",
                            status=403,
                            title=ctx.gettext("Not allowed"),
                            message=ctx.gettext("This page is for administrators."),
                        )
                return callback(ctx, **kwargs)
            except bottle.HTTPResponse:
                raise
            except DatabaseError as exc:
                logger.error("%s", exc)
                ctx.response.set_header("Retry-After", "60")
                return ctx.render(
                    "error.html",
                    status=503,
                    title=ctx.gettext("Temporarily unavailable"),
                    message=ctx.gettext("The database cannot be reached right now. Please try again in a minute."),
                )

        return wrapper


def current() -> Context | None:
    """The context of the request being handled (for error pages)."""
    return bottle.request.environ.get("ddserver.ctx")
