"""Malformed requests to every route of the interface, the updater and the bundle: a 4xx or an answer, never a 500.

Routes come from the apps' own route tables (new routes are covered without editing this file), with their
path parameters filled in; parameter and form field names are those the apps read, found by watching a first
round of requests. Each request then carries invalid UTF-8, control characters, overlong values or values of
the wrong shape in a header, a query parameter, a form field, a cookie, the body or a path parameter. The
run is seeded (the same requests every time). Nothing may answer 500, leave a traceback in ``wsgi.errors``,
log an error, or send a header that a server would refuse to write.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import random
import re
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bottle
import pytest

from ddserver import passwords, secrets
from ddserver.bundle import Bundle
from ddserver.config import Config
from ddserver.db import Database
from ddserver.errors import NotFound
from ddserver.interface import web
from ddserver.interface.app import create_app as create_interface
from ddserver.store import hosts, sessions, tokens, updates, users, zones
from ddserver.updater import app as updater_app
from tests import support

ZONE = "dyn.example.org"
HOST = f"home.{ZONE}"
PASSWORD = "correct horse battery staple"
TRUSTED = "127.0.0.1"

#: Byte strings that are not what a field expects: invalid UTF-8, controls, overlong, other shapes.
FUZZ: list[bytes] = [
    # not UTF-8
    b"\xff",
    b"\xfe\xff",
    b"\xc3\x28",
    b"\xe2\x82",
    b"\xed\xa0\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\x80abc",
    b"de\xff-DE,en;q=0.5",
    b"https://\xffevil.example",
    # control characters
    b"\r",
    b"\n",
    b"\r\nX-Injected: 1",
    b"/hosts\r\nSet-Cookie: a=b",
    b"\x00",
    b"a\x00b",
    b"\x1b[31m",
    b"\x7f",
    b"\t",
    b"\x0b\x0c",
    "\u2028".encode(),
    "\u0085".encode(),
    "\u202e".encode(),
    # overlong
    b"a" * 5000,
    b"9" * 5000,
    b"/" * 3000,
    b"%" * 1000,
    b"%ff" * 2000,
    b"a," * 5000,
    "é".encode() * 5000,
    # wrong types and shapes
    b"",
    b" ",
    b"-1",
    b"0",
    b"99999999999999999999999999",
    b"1e309",
    b"NaN",
    b"true",
    b"[]",
    b"{}",
    b"null",
    b'{"a": [1, 2]}',
    b"1.5",
    b"=",
    b"&=&=",
    b"%",
    b"%zz",
    b"%ff",
    b"%c0%af",
    b"%00",
    b"%0d%0a",
    b"+",
    b"..%2f..%2f",
    b"../../../../etc/passwd",
    b"\\",
    b"//evil.example",
    b"/\t/evil.example",
    b"*",
    b"'\"<>",
    b"' OR 1=1 --",
    "ü😀".encode(),
    "١٢٣٤٥٦".encode(),  # digits to isdigit(), not to int() everywhere
    "\ufffd".encode(),
    b"xn--",
    b"xn--zz.dyn.example.org",
    b"null",
    b"[::1",
    b"http://[::1",
    b"https://a:99999999",
    b"300.1.1.1",
    b"::ffff:1.2.3.4",
    b"Basic",
    b"Basic !!!",
    b"Basic " + base64.b64encode(b"\xff:\xff"),
    b"Basic " + base64.b64encode(b"no colon"),
    b"Basic " + base64.b64encode(b"home.dyn.example.org:" + b"\x00" * 10),
    b"Basic " + b"A" * 10000,
    b"Bearer x",
    b"bytes=0-1,5-",
    b"bytes=99999999999999999999-",
    b"Mon, 99 Foo 9999 99:99:99 GMT",
]
#: Headers the apps or Bottle read, and one they do not.
HEADERS = [
    "Host",
    "Accept-Language",
    "Origin",
    "Referer",
    "X-CSRF-Token",
    "Cookie",
    "Authorization",
    "User-Agent",
    "X-Forwarded-For",
    "X-Forwarded-Proto",
    "X-Forwarded-Host",
    "X-Real-IP",
    "Content-Type",
    "Content-Length",
    "Transfer-Encoding",
    "Range",
    "If-Modified-Since",
    "If-None-Match",
    "Accept",
    "Accept-Encoding",
    "X-Requested-With",
    "Forwarded",
    "X-Anything",
]
METHODS = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "G\xffT", ""]
#: Plausible values of the fields the apps read, so a request passes the checks before the fuzzed field.
PLAUSIBLE: dict[str, str] = {
    "login": "alice",
    "password": PASSWORD,
    "password2": PASSWORD,
    "current": PASSWORD,
    "next": "/hosts",
    "back": "/admin/hosts",
    "language": "de",
    "remember": "1",
    "username": "carol",
    "email": "carol@example.org",
    "label": "new",
    "description": "a host",
    "ipv4": "192.0.2.7",
    "ipv6": "2001:db8::7",
    "hostname": HOST,
    "myip": "192.0.2.8",
    "myipv6": "2001:db8::8",
    "q": "home",
    "page": "1",
    "flagged": "1",
    "code": "123456",
    "max_hosts": "5",
    "reason": "spam",
    "txt": "a" * 43,
    "action": "set",
}
#: The JSON API's routes (in the interface's table): a bearer token and a JSON body instead of a session and
#: a form.
API = "/api/v1/"
#: Plausible values of the JSON fields the API reads.
API_PLAUSIBLE: dict[str, Any] = {
    "label": "new",
    "zone": ZONE,
    "description": "a host",
    "ipv4": "192.0.2.9",
    "ipv6": "2001:db8::9",
    "name": "_acme-challenge",
    "content": "a" * 43,
    "scopes": ["update", "txt"],
    "hosts": [HOST],
    "expires_in_days": 30,
    "ttl": 300,
    "wildcard": False,
}
#: JSON values of the wrong shape for a field.
JSON_SHAPES: list[Any] = [None, True, -1, 10**30, 1.5, [], {}, [None, 1], {"a": [1]}, "x" * 5000, "\u0000", "\ud800"]
#: Cookie names: the interface's own (its ``*_COOKIE`` names, with the ``__Host-`` prefix too) and a stranger.
COOKIES = sorted(
    {value for name, value in vars(web).items() if name.endswith("_COOKIE") and isinstance(value, str)}
    | {web.HOST_PREFIX + value for name, value in vars(web).items() if name.endswith("_COOKIE")}
    | {"other"}
)


@dataclass
class Identity:
    """Who sends a request: a session cookie and the CSRF token bound to it (anonymous: a CSRF cookie)."""

    name: str
    cookie: str = ""
    token: str = ""
    csrf_cookie: str = ""


@dataclass
class Site:
    """The apps over one database, with users, a zone, a host and tokens to fill requests with."""

    config: Config
    db: Database
    interface: Any
    updater: Any
    bundle: Bundle
    key: bytes
    ids: dict[str, list[str]] = field(default_factory=dict)
    identities: dict[str, Identity] = field(default_factory=dict)
    host_secret: str = ""
    update_token: str = ""
    #: Alice's token with every scope, for the JSON API.
    api_token: str = ""

    def basic(self, account: bool = False) -> bytes:
        """Credentials the updater takes: the host's secret, or (``account``) alice's account update token."""
        login, secret = ("alice", self.update_token) if account else (HOST, self.host_secret)
        return b"Basic " + base64.b64encode(f"{login}:{secret}".encode())

    def ensure(self) -> None:
        """Put back what fuzzed requests may have changed: the users, their sessions, the zone and the host."""
        found = {}
        for name, admin in (("alice", False), ("root", True)):
            user = users.find_login(self.db, name)
            if user is None:
                user = users.add(
                    self.db,
                    name,
                    f"{name}@example.org",
                    password_hash=passwords.hash_password(PASSWORD),
                    is_admin=admin,
                )
            if (user.is_admin, user.is_active, user.is_approved, user.is_disabled, user.totp_secret) != (
                admin,
                True,
                True,
                False,
                None,
            ):
                users.set_flags(self.db, user.id, is_admin=admin, is_active=True, is_approved=True, is_disabled=False)
                users.set_totp_secret(self.db, user.id, None)
            found[name] = user
            identity = self.identities.get(name)
            if identity is None or sessions.load(self.db, identity.cookie) is None:
                token, session = sessions.create(self.db, user.id, 3600)
                self.identities[name] = Identity(name, token, web._sign(self.key, "csrf-session", session.id))
        try:
            zone = zones.get(self.db, ZONE)
        except NotFound:  # deleted by a fuzzed admin request
            zone = zones.add(self.db, ZONE, ["ns1.example.org"], "hostmaster.example.org")
        try:
            host = hosts.get(self.db, HOST)
        except NotFound:
            self.host_secret = secrets.new_host_secret()
            host = hosts.add(
                self.db, found["alice"].id, HOST, secrets.hash_host_secret(self.host_secret), default_limit=-1
            )
        if not tokens.for_user(self.db, found["alice"].id, updates.UPDATE_TOKEN):
            self.update_token = tokens.create(self.db, updates.UPDATE_TOKEN, found["alice"].id, None)
        if not self.api_token or tokens.grant_for(self.db, self.api_token) is None:
            for info in tokens.list_grants(self.db, found["alice"].id):
                if info.name in ("api", "spare"):
                    tokens.revoke(self.db, found["alice"].id, info.id)
            self.api_token = tokens.create_grant(self.db, found["alice"].id, "api", list(tokens.Scope))[0]
        spare = [i.id for i in tokens.list_grants(self.db, found["alice"].id) if i.name == "spare"]
        if not spare:
            spare = [tokens.create_grant(self.db, found["alice"].id, "spare", [tokens.Scope.TXT])[1]]
        self.ids["token_id"] = [str(spare[0]), "999999"]
        self.ids["name"] = [HOST, "nothing.example.org"]
        self.ids["record_id"] = ["1", "999999"]
        anonymous = "anonymous-csrf-cookie-value"
        self.identities["anonymous"] = Identity(
            "anonymous", "", web._sign(self.key, "csrf-anonymous", anonymous), anonymous
        )
        if not self.ids.get("token"):
            self.ids["token"] = [tokens.create(self.db, "reset", found["alice"].id, 3600), "unknown-token"]
        self.ids["host_id"] = [str(host.id)]
        self.ids["user_id"] = [str(found["alice"].id), str(found["root"].id)]
        self.ids["zone_id"] = [str(zone.id)]


@pytest.fixture
def site(db: Database, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    # Logins check passwords on many requests: a cheap argon2 keeps the run short (the hash is not under test).
    from passlib.context import CryptContext

    cheap = CryptContext(
        schemes=["argon2"], argon2__type="ID", argon2__memory_cost=8, argon2__parallelism=1, argon2__rounds=1
    )
    monkeypatch.setattr(passwords, "_context", lambda: cheap)
    config = support.make_config(
        db_url,
        tmp_path,
        http={"base_url": "http://ddserver.example.test", "trusted_proxies": (TRUSTED,)},
        mail={"host": ""},
        interface={"reverse_dns": False},
        signup={"mode": "automatic"},
        updater={"min_interval": 0, "nochg_interval": 0, "host_cache": 0, "metrics_allow": (TRUSTED,)},
    )
    interface = create_interface(config, db)
    updater = updater_app.create_app(config, db)
    made = Site(config, db, interface, updater, Bundle(interface, updater), interface.config["ddserver.site"].key)
    made.ensure()
    return made


# -- calling an app as a server would ----------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    errors: str


def call(app: Callable[..., Any], environ: dict[str, Any]) -> Reply:
    """Run one request through a WSGI app and read the whole answer."""
    errors = io.StringIO()
    environ["wsgi.errors"] = errors
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., Any]:
        started.append((status, headers))
        return lambda data: None

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    assert len(started) == 1
    status, headers = started[0]
    return Reply(int(status.split()[0]), headers, body, errors.getvalue())


def base_environ(method: str, path: str, query: str, remote: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "ddserver.example.test",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": remote,
        "HTTP_HOST": "ddserver.example.test",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def native(data: bytes) -> str:
    """Bytes as WSGI hands them to an app: each byte one character (latin-1)."""
    return data.decode("latin-1")


# -- routes and the names they read ----------------------------------------------------------------------


WILDCARD = re.compile(r"<([^>:]+)(?::([^>:]*)(?::[^>]*)?)?>")


@dataclass(frozen=True)
class Route:
    app: str  # "interface" or "updater"
    method: str
    rule: str


def routes(site: Site) -> list[Route]:
    found = [Route("interface", r.method, r.rule) for r in site.interface.routes]
    found += [Route("updater", r.method, r.rule) for r in site.updater.routes]
    return found


def fill(rule: str, site: Site, rng: random.Random, fuzz: bool) -> str:
    """The rule with each wildcard filled: a real id or token, or (with ``fuzz``) a malformed value."""

    def one(match: re.Match[str]) -> str:
        name, kind = match.group(1), match.group(2) or ""
        if fuzz and rng.random() < 0.5:
            return rng.choice([native(rng.choice(FUZZ)), "0", "999999", "-1", "9" * 30])
        if kind == "path":
            return rng.choice(["ddserver.css", "vendor/bootstrap/bootstrap.min.css", "nothing.js"])
        return rng.choice(site.ids.get(name, site.ids["token"]))

    return WILDCARD.sub(one, rule)


class Watched(dict):  # type: ignore[type-arg]
    """The updater's parameters, noting every name looked up."""

    seen: set[str] = set()

    def get(self, key: Any, default: Any = None) -> Any:
        self.seen.add(key)
        return super().get(key, default)

    def __getitem__(self, key: Any) -> Any:
        self.seen.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: Any) -> bool:
        self.seen.add(key)
        return super().__contains__(key)


def discover_names(site: Site, monkeypatch: pytest.MonkeyPatch) -> dict[Route, set[str]]:
    """The query and form names each route reads, from two rounds of plausible requests by every identity."""
    read: set[str] = set()
    original_get, original_getitem = bottle.MultiDict.get, bottle.MultiDict.__getitem__

    # Query, form and cookie values are FormsDicts; response headers are MultiDicts too, and are not read here.
    def get(self: Any, key: str, *args: Any, **kwargs: Any) -> Any:
        if isinstance(self, bottle.FormsDict):
            read.add(key)
        return original_get(self, key, *args, **kwargs)

    def getitem(self: Any, key: str) -> Any:
        if isinstance(self, bottle.FormsDict):
            read.add(key)
        return original_getitem(self, key)

    names: dict[Route, set[str]] = {}
    with monkeypatch.context() as patch:
        patch.setattr(bottle.MultiDict, "get", get)
        patch.setattr(bottle.MultiDict, "__getitem__", getitem)
        original_params = updater_app._params
        patch.setattr(updater_app, "_params", lambda environ: Watched(original_params(environ)))
        rng = random.Random(1)
        for _ in range(2):
            for route in routes(site):
                for who in site.identities:
                    read.clear()
                    Watched.seen = set()
                    known = names.get(route, set())
                    params = [(n.encode(), PLAUSIBLE.get(n, "1").encode()) for n in sorted(known)]
                    path = fill(route.rule, site, rng, False)
                    request = Request(route, route.method, path, who, params, in_query=route.method == "GET")
                    if route.app == "updater":
                        request.headers["Authorization"] = site.basic()
                    environ = request.environ(site)
                    call(site.bundle, environ)
                    if route.method != "GET":
                        site.ensure()
                    names[route] = known | {n for n in read | Watched.seen if isinstance(n, str)}
    # Cookies are read through the same kind of dict; the CSRF field is sent (and fuzzed) apart.
    apart = {*COOKIES, web.CSRF_FIELD, "_method"}
    return {route: found - apart for route, found in names.items()}


# -- requests --------------------------------------------------------------------------------------------


@dataclass
class Request:
    route: Route
    method: str
    path: str
    who: str
    params: list[tuple[bytes, bytes]]
    in_query: bool = True
    raw: bool = False
    headers: dict[str, bytes] = field(default_factory=dict)
    cookies: list[tuple[bytes, bytes]] = field(default_factory=list)
    cookie_header: bytes | None = None
    body: bytes | None = None
    content_type: str | None = None
    content_length: str | None = None
    csrf: bytes | None = None
    remote: str = "192.0.2.10"
    scheme: str = "http"
    token_header: bool = False
    #: The JSON body of an API request (sent unless ``body`` is set).
    json_body: dict[str, Any] | None = None

    def encode(self, pairs: list[tuple[bytes, bytes]]) -> bytes:
        if self.raw:
            return b"&".join(k + b"=" + v for k, v in pairs)
        return b"&".join(
            urllib.parse.quote_from_bytes(k, safe="").encode()
            + b"="
            + urllib.parse.quote_from_bytes(v, safe="").encode()
            for k, v in pairs
        )

    def environ(self, site: Site) -> dict[str, Any]:
        identity = site.identities[self.who]
        post = self.method not in ("GET", "HEAD")
        token = self.csrf if self.csrf is not None else identity.token.encode()
        # Parameters in the query or in a form body; the CSRF token of a POST in the body (or a header).
        query = self.encode(self.params) if self.in_query or not post else b""
        environ = base_environ(self.method, self.path, native(query), self.remote)
        environ["wsgi.url_scheme"] = self.scheme
        body = self.body
        if body is None and self.json_body is not None:
            body = json.dumps(self.json_body).encode()
            environ["CONTENT_TYPE"] = "application/json"
        if body is None and post:
            form = [] if self.in_query else list(self.params)
            if not self.token_header:
                form.append((b"csrf_token", token))
            body = self.encode(form)
            environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
        if self.token_header and post:
            environ["HTTP_X_CSRF_TOKEN"] = native(token)
        if body is not None:
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        if self.content_type is not None:
            environ["CONTENT_TYPE"] = self.content_type
        if self.content_length is not None:
            environ["CONTENT_LENGTH"] = self.content_length
        cookies = []
        if identity.cookie:
            cookies.append((web.SESSION_COOKIE.encode(), identity.cookie.encode()))
        if identity.csrf_cookie:
            cookies.append((web.CSRF_COOKIE.encode(), identity.csrf_cookie.encode()))
        cookies += self.cookies
        header = self.cookie_header if self.cookie_header is not None else b"; ".join(k + b"=" + v for k, v in cookies)
        if header:
            environ["HTTP_COOKIE"] = native(header)
        if post:
            environ["HTTP_ORIGIN"] = "http://ddserver.example.test"
        for name, value in self.headers.items():
            key = name.upper().replace("-", "_")
            key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key
            environ[key] = native(value)
        return environ


def multipart(pairs: list[tuple[bytes, bytes]], boundary: bytes = b"fuzzboundary") -> bytes:
    parts = [
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="' + k + b'"\r\n\r\n' + v + b"\r\n"
        for k, v in pairs
    ]
    return b"".join(parts) + b"--" + boundary + b"--\r\n"


def mutate(request: Request, rng: random.Random) -> str:
    """Make one part of the request malformed; returns what was changed, for failure messages."""
    value = rng.choice(FUZZ)
    kind = rng.choice(
        ["param", "param", "param", "name", "repeat", "header", "header", "cookie", "cookie", "body", "csrf", "raw"]
    )
    if kind == "param" and request.params:
        index = rng.randrange(len(request.params))
        request.params[index] = (request.params[index][0], value)
    elif kind == "name":
        request.params.append((value, rng.choice(FUZZ)))
    elif kind == "repeat" and request.params:
        name = rng.choice(request.params)[0]
        request.params.append((name, value))
    elif kind == "header":
        request.headers[rng.choice(HEADERS)] = value
    elif kind == "cookie":
        choice = rng.random()
        if choice < 0.2:
            request.cookie_header = value
        elif choice < 0.3:
            request.cookie_header = b'a="unterminated; ' + value + b"=; ;;=" + value
        else:
            request.cookies.append((rng.choice(COOKIES).encode(), value))
    elif kind == "body":
        choice = rng.randrange(6)
        if choice == 0:
            request.body = multipart([*request.params, (b"csrf_token", request.csrf or b"")])
            request.content_type = "multipart/form-data; boundary=fuzzboundary"
            request.params[:] = []
        elif choice == 1:
            request.body = multipart([(b"x", value)])[: rng.randrange(1, 60)]
            request.content_type = rng.choice(["multipart/form-data; boundary=fuzzboundary", "multipart/form-data"])
        elif choice == 2:
            request.body = b'{"login": ' + value + b"}"
            request.content_type = "application/json"
        elif choice == 3:
            request.in_query = False
            request.content_length = native(rng.choice([b"abc", b"-5", b"99999999999", b"1e3", b"", b"\xff", value]))
        elif choice == 4:
            request.body = value
            request.headers["Transfer-Encoding"] = b"chunked"
        else:
            request.in_query = False
            request.content_type = native(value)
    elif kind == "csrf" and request.json_body is not None:
        # An API request: a JSON field of the wrong shape, or a body that is not JSON.
        choice = rng.random()
        if choice < 0.6:
            key = rng.choice([*API_PLAUSIBLE, "other"])
            request.json_body[key] = rng.choice([*JSON_SHAPES, native(value)])
        elif choice < 0.8:
            request.body = json.dumps(request.json_body).encode()[: rng.randrange(1, 40)] + value
        else:
            request.headers["Authorization"] = b"Bearer " + value
        kind = "json"
    elif kind == "csrf":
        request.csrf = value
    elif kind == "raw":
        request.raw = True
        if request.params:
            index = rng.randrange(len(request.params))
            request.params[index] = (request.params[index][0], value)
    else:
        request.headers[rng.choice(HEADERS)] = value
        kind = "header"
    return f"{kind}: {value[:60]!r}"


def base_request(site: Site, names: dict[Route, set[str]], route: Route, rng: random.Random) -> Request:
    """A request that would pass: the route's fields with plausible values, sent by a random identity."""
    params = [(n.encode(), PLAUSIBLE.get(n, "1").encode()) for n in sorted(names.get(route, set()))]
    request = Request(
        route,
        route.method,
        fill(route.rule, site, rng, fuzz=False),
        rng.choice(list(site.identities)),
        params,
        in_query=rng.random() < 0.5,
        remote=rng.choice([TRUSTED, "192.0.2.10", "198.51.100.77", "2001:db8::10"]),
        scheme=rng.choice(["http", "http", "https"]),
        token_header=rng.random() < 0.2,
    )
    if route.app == "updater" and rng.random() < 0.7:
        request.headers["Authorization"] = site.basic(account=rng.random() < 0.3)
    if route.rule.startswith(API):
        if rng.random() < 0.8:
            request.headers["Authorization"] = b"Bearer " + site.api_token.encode()
        if route.method in ("POST", "PUT", "PATCH"):
            request.json_body = dict(API_PLAUSIBLE)
    return request


#: What the sweep puts in every header, parameter, field and cookie: bytes that are not UTF-8, control
#: characters (CR, LF, NUL), and an overlong value.
SWEEP = [b"\xff\xfe", b"a\r\nb\x00c", b"%ff%0d%0a" + b"9" * 5000]
#: And in every parameter, field, cookie and path: text of the wrong shape (numbers too large for any
#: column, digits that are not ASCII, a list, a URL a parser refuses).
SHAPES = [b"99999999999999999999999999", b"-99999999999999999999", "١٢٣".encode(), b"[]", b"http://[::1"]
#: And in the headers that are parsed: what their parsers may choke on.
HEADER_SHAPES = {
    "Origin": [b"http://[::1", b"http://a]b", b"null", b"https://a:99999999"],
    "Referer": [b"http://[::1"],
    "Host": [b"[::1", b"a:99999999", b""],
    "X-Forwarded-Host": [b"[::1", b"a, b"],
    "X-Forwarded-For": [b"[::1], 192.0.2.1", b"192.0.2.1, unknown", b",,,"],
    "X-Real-IP": [b"[::1]", b"unknown"],
    "X-Forwarded-Proto": [b"HTTPS, http"],
    "Range": [b"bytes=99999999999999999999-", b"bytes=5-1", b"bytes=-0"],
    "If-Modified-Since": [b"Mon, 99 Foo 9999 99:99:99 GMT", b"0"],
    "Authorization": [b"Basic " + base64.b64encode(b"\xff:\xff"), b"Basic =", b"Digest x"],
    "Accept-Language": [b"de;q=1e999, en;q=nan", b"*;q=-1", b";;,,"],
    "Content-Length": [b"-1", b"99999999999", b"+5"],
    "Content-Type": [b"multipart/form-data", b"multipart/form-data; boundary=", b"application/json"],
    "Transfer-Encoding": [b"chunked", b"gzip, chunked"],
}


def sweep(
    site: Site, names: dict[Route, set[str]], table: list[Route], values: list[bytes], headers: bool = True
) -> Iterator[tuple[Request, str]]:
    """Each route with each value in each header, each of its parameters (query or form), each cookie, the
    CSRF token and the path, one at a time: every field is reached, whatever the random draws do."""
    rng = random.Random(7)
    for route in table:
        slots = [("header", h, values + HEADER_SHAPES.get(h, [])) for h in HEADERS] if headers else []
        slots += [("parameter", n, values + SHAPES) for n in sorted(names.get(route, set()))]
        slots += [("cookie", c, values + SHAPES) for c in COOKIES]
        slots += [("csrf", "", values), ("path", "", values + SHAPES)]
        if route.rule.startswith(API) and route.method in ("POST", "PUT", "PATCH"):
            shapes = [native(v) for v in values] + JSON_SHAPES
            slots += [("json", key, shapes) for key in API_PLAUSIBLE]  # type: ignore[misc]
        for kind, name, tried in slots:
            for value in tried:
                request = base_request(site, names, route, rng)
                if kind == "header":
                    request.headers[name] = value
                elif kind == "parameter":
                    request.params = [(k, value if k == name.encode() else v) for k, v in request.params]
                elif kind == "cookie":
                    request.cookies.append((name.encode(), value))
                elif kind == "csrf":
                    request.csrf = value
                elif kind == "json":
                    assert request.json_body is not None
                    request.json_body[name] = value
                    value = repr(value).encode()
                else:
                    wildcard = "<" in route.rule
                    request.path = WILDCARD.sub(native(value), route.rule) if wildcard else "/" + native(value)
                yield request, f"{kind} {name} = {value[:40]!r}"


def randomised(
    site: Site, names: dict[Route, set[str]], table: list[Route], count: int, seed: int
) -> Iterator[tuple[Request, str]]:
    """Requests with one to three malformed parts drawn at random (seeded): values of the wrong shape,
    repeated and strange names, broken bodies, wrong methods, malformed path parameters."""
    rng = random.Random(seed)
    every_name = sorted(set().union(*names.values()))
    for number in range(count):
        route = table[number % len(table)]
        request = base_request(site, names, route, rng)
        request.params += [(n.encode(), PLAUSIBLE.get(n, "1").encode()) for n in rng.sample(every_name, 2)]
        if rng.random() < 0.15:
            request.path = fill(route.rule, site, rng, fuzz=True)
        if rng.random() < 0.1:
            request.method = rng.choice(METHODS)
        what = [mutate(request, rng) for _ in range(rng.choice([1, 1, 2, 3]))]
        yield request, "; ".join(what)


# -- the checks ------------------------------------------------------------------------------------------


FORBIDDEN_IN_HEADERS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def problems(reply: Reply, path: str = "") -> list[str]:
    """What is wrong with an answer: a 500, a traceback, a header no server can send, or an answer of the
    JSON API that is not JSON."""
    found = []
    if path.startswith(API) and reply.body:
        content_type = next((v for k, v in reply.headers if k.lower() == "content-type"), "")
        try:
            json.loads(reply.body)
        except ValueError:
            found.append(f"an API answer that is not JSON: {reply.body[:80]!r}")
        if not content_type.startswith("application/json"):
            found.append(f"an API answer of type {content_type!r}")
    if reply.status >= 500 and reply.status != 503:
        found.append(f"status {reply.status}")
    if reply.errors:
        found.append(f"wsgi.errors: {reply.errors[-300:]}")
    if b"Traceback" in reply.body or b"Critical error" in reply.body:
        found.append("a traceback in the body")
    for name, value in reply.headers:
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            found.append(f"header {name} is not Latin-1")
        if FORBIDDEN_IN_HEADERS.search(name + value):
            found.append(f"control character in header {name}: {value[:80]!r}")
    return found


def run_fuzz(site: Site, caplog: pytest.LogCaptureFixture, made: Iterator[tuple[Request, str]]) -> dict[int, int]:
    """Send the requests, alternately to the route's own app and to the bundle; every answer is checked."""
    statuses: dict[int, int] = {}
    failures: list[str] = []
    apps = {"interface": [site.interface, site.bundle], "updater": [site.updater, site.bundle]}
    for number, (request, what) in enumerate(made):
        app = apps[request.route.app][number % 2]
        environ = request.environ(site)
        reply = call(app, environ)
        statuses[reply.status] = statuses.get(reply.status, 0) + 1
        if request.route.rule.startswith(API):
            API_STATUSES[reply.status] = API_STATUSES.get(reply.status, 0) + 1
        for problem in problems(reply, environ["PATH_INFO"]):
            failures.append(f"{request.method} {request.route.rule} as {request.who} ({what}): {problem}")
        if request.method != "GET":
            site.ensure()
    logged = [
        f"{r.levelname} {r.name}: {r.getMessage()[:200]}"
        for r in caplog.records
        if r.levelno >= logging.ERROR or r.exc_info
    ]
    count = sum(statuses.values())
    print(f"{count} requests, answers {dict(sorted(statuses.items()))}")
    assert failures == [], f"{len(failures)} bad answers of {count}:\n" + "\n".join(_distinct(failures)[:40])
    assert logged == [], f"{len(logged)} errors logged:\n" + "\n".join(logged[:40])
    return statuses


#: The answers of the JSON API's routes in this process (to check that fuzzed requests get through to it).
API_STATUSES: dict[int, int] = {}


def _distinct(failures: list[str]) -> list[str]:
    """One failure per distinct last line (the exception), so that one cause does not hide the others."""
    seen: dict[str, str] = {}
    for failure in failures:
        seen.setdefault(failure.strip().splitlines()[-1][-120:], failure)
    return list(seen.values())


_NAMES: dict[Route, set[str]] = {}


@pytest.fixture
def names(site: Site, monkeypatch: pytest.MonkeyPatch) -> dict[Route, set[str]]:
    """The names each route reads (found once per test process: they depend on the code, not the data)."""
    if not _NAMES:
        _NAMES.update(discover_names(site, monkeypatch))
    # The discovery must see what the apps read, or the fuzz would miss their fields.
    assert {"login", "password", "next"} <= _NAMES[Route("interface", "POST", "/login")]
    assert {"hostname", "myip"} <= _NAMES[Route("updater", "GET", "/nic/update")]
    return _NAMES


#: MariaDB gets a share of the requests (its answers differ from SQLite's only where the database does).
SHARE = {"sqlite": 1.0, "mysql": 0.25}
PARTS = 3


def _part(site: Site, app: str, part: int) -> list[Route]:
    table = [r for r in routes(site) if r.app == app]
    return table[part::PARTS]


@pytest.mark.parametrize("part", range(PARTS))
@pytest.mark.parametrize("app", ["interface", "updater"])
def test_every_field_of_every_route(site: Site, names, caplog, dialect: str, app: str, part: int) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.WARNING)
    # Headers do not reach the database: MariaDB gets the fields that do.
    sqlite = dialect == "sqlite"
    values = SWEEP if sqlite else SWEEP[2:]
    statuses = run_fuzz(site, caplog, sweep(site, names, _part(site, app, part), values, headers=sqlite))
    assert sum(statuses.values()) > 100


@pytest.mark.parametrize("app", ["interface", "updater"])
def test_random_malformed_requests(site: Site, names, caplog, dialect: str, app: str) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.WARNING)
    table = [r for r in routes(site) if r.app == app]
    count = int(2500 * SHARE[dialect])
    statuses = run_fuzz(site, caplog, randomised(site, names, table, count, seed=100 if app == "interface" else 200))
    assert sum(statuses.values()) == count
    # Requests get through to answers, not only to refusals.
    assert any(s < 400 for s in statuses) and any(400 <= s < 500 for s in statuses)
    if app == "interface":
        # The API's too: it is reached with its token, and refuses what is malformed.
        print(f"API answers {dict(sorted(API_STATUSES.items()))}")
        assert any(s < 300 for s in API_STATUSES) and API_STATUSES.get(400, 0) > 0
