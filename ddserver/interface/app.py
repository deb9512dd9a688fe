"""``create_app(config)``: the web interface as a Bottle application, with no import-time side effects."""

from __future__ import annotations

import ipaddress
import logging
import time
from pathlib import Path
from typing import Any

import bottle
import jinja2

from ddserver import logs, validate
from ddserver.config import Config
from ddserver.db import Database
from ddserver.errors import ConfigError, DatabaseError
from ddserver.interface import api, i18n, web
from ddserver.interface.metrics import UNROUTED
from ddserver.interface.routes import account, admin, hosts, pages, related, tokens, zones
from ddserver.store import updates

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATE_DIR = HERE / "templates"


def load_secret_key(config: Config) -> bytes:
    """The key that signs CSRF tokens and flashes: from the config, else from the key file.

    :raises ConfigError: when neither gives one (``ddserver init`` writes the file).
    """
    if config.auth.secret_key:
        return config.auth.secret_key.encode("utf-8")
    path = Path(config.auth.secret_key_file)
    try:
        key = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"config: [auth] secret_key_file = {str(path)!r}: cannot be read ({exc.strerror}); "
            "run 'ddserver init' or set [auth] secret_key"
        )
    if len(key) < 16:
        raise ConfigError(f"config: [auth] secret_key_file = {str(path)!r}: the key is shorter than 16 characters")
    return key.encode("utf-8")


def _current_translations() -> Any:
    catalog = i18n.rendering_catalog()
    if catalog is not None:
        return catalog
    ctx = web.current()
    return ctx.translations if ctx is not None else i18n.translations(i18n.DEFAULT)


def _gettext(message: str) -> str:
    return str(_current_translations().gettext(message))


def _ngettext(singular: str, plural: str, n: int) -> str:
    return str(_current_translations().ngettext(singular, plural, n))


def format_time(stamp: float | None) -> str:
    if not stamp:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))


def make_environment() -> jinja2.Environment:
    """The Jinja2 environment: autoescaping on for every template, gettext through the request."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        # Every page is escaped; only the plain-text mail templates (.txt) are not HTML.
        autoescape=jinja2.select_autoescape(disabled_extensions=("txt",), default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["time"] = format_time
    # Decoding IDNA is slow; only names with an A-label need it (a list of 1,000 hosts renders per request).
    env.filters["unicode_name"] = lambda name: validate.to_unicode(name) if "xn--" in name else name
    env.globals["languages"] = i18n.LANGUAGES
    env.globals["csrf_field"] = web.CSRF_FIELD
    return env


class InterfaceApp(bottle.Bottle):
    """Bottle, with a request id for every request (``X-Request-Id``, in every log line it makes), counted
    in the metrics by route and status, and logged with ``[logging] requests``."""

    def __init__(self, site: web.Site) -> None:
        super().__init__(catchall=True)
        self.site = site

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return logs.serve_with_request_id(self._measured, environ, start_response)

    def _measured(self, environ: dict[str, Any], start_response: Any) -> Any:
        started = time.perf_counter()
        seen: dict[str, int] = {}
        if self.site.config.logging.format == "json":
            environ["wsgi.errors"] = logs.ErrorStream(logger)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen["status"] = int(status.split(" ", 1)[0])
            return (
                start_response(status, headers, exc_info) if exc_info is not None else start_response(status, headers)
            )

        try:
            return self.wsgi(environ, start)
        finally:
            seconds = time.perf_counter() - started
            route = environ.get("bottle.route")
            rule = str(route.rule) if route is not None else UNROUTED
            method = str(environ.get("REQUEST_METHOD", ""))
            status = seen.get("status", 500)
            self.site.metrics.observe(method, rule, status, seconds)
            if self.site.config.logging.requests:
                logger.info(
                    "%s %s %d %.1f ms",
                    method[:16],
                    rule,
                    status,
                    seconds * 1000,
                    extra={
                        "method": method[:16],
                        "route": rule,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 1),
                    },
                )


def create_app(config: Config, db: Database | None = None) -> bottle.Bottle:
    """Build the web interface.

    :param config: the loaded configuration.
    :param db: the database to use; by default one is opened from ``config`` (connections are made lazily).
    :raises ConfigError: when no secret key is configured.
    """
    db = db if db is not None else Database.from_config(config, serving=True)
    env = make_environment()
    env.globals["site_name"] = config.interface.site_name
    # Users may bring zones of their own ("Your zones" in the menu).
    env.globals["own_zones"] = bool(config.zones.nameservers) and config.zones.max_per_user != 0
    env.globals["captcha"] = config.captcha
    static_version = str(int(max(p.stat().st_mtime for p in STATIC_DIR.rglob("*") if p.is_file())))
    env.globals["static_version"] = static_version

    def render(name: str, **values: Any) -> str:
        return env.get_template(name).render(**values)

    site = web.Site(
        config=config,
        db=db,
        key=load_secret_key(config),
        render_template=render,
        trusted=tuple(ipaddress.ip_network(n, strict=False) for n in config.http.trusted_proxies),
        headers=web.security_headers(config),
    )
    app = InterfaceApp(site)
    app.config["ddserver.site"] = site
    app.install(web.WebPlugin(site))

    def add_headers() -> None:
        for name, value in site.headers.items():
            bottle.response.set_header(name, value)
        if "Cache-Control" not in bottle.response.headers:
            # Pages carry CSRF tokens, secrets shown once and personal data: nothing is cached.
            bottle.response.set_header("Cache-Control", "no-store")

    app.add_hook("before_request", web.check_request)
    app.add_hook("after_request", add_headers)

    def static(path: str) -> Any:
        answer = bottle.static_file(path, root=str(STATIC_DIR))
        answer.set_header("Cache-Control", "public, max-age=86400")
        return answer

    app.route("/static/<path:path>", "GET", static, raw=True)

    def health() -> bottle.HTTPResponse:
        # For load balancers and monitoring: no session, no page, one trivial read.
        try:
            updates.ping(db)
        except DatabaseError as exc:
            logger.error("health: %s", exc)
            return bottle.HTTPResponse("unavailable\n", 503, {"Content-Type": "text/plain; charset=utf-8"})
        return bottle.HTTPResponse("ok\n", 200, {"Content-Type": "text/plain; charset=utf-8"})

    app.route("/health", "GET", health, raw=True)
    metrics_allow = tuple(ipaddress.ip_network(n, strict=False) for n in config.interface.metrics_allow)

    def metrics_page() -> bottle.HTTPResponse:
        plain = {"Content-Type": "text/plain; charset=utf-8"}
        if not config.interface.metrics:
            return bottle.HTTPResponse("not found\n", 404, plain)
        client = web.Context(site, bottle.request, bottle.response).client
        try:
            allowed = any(ipaddress.ip_address(client) in network for network in metrics_allow)
        except ValueError:
            allowed = False
        if not allowed:
            return bottle.HTTPResponse("forbidden\n", 403, plain)
        return bottle.HTTPResponse(
            site.metrics.render(), 200, {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
        )

    app.route("/metrics", "GET", metrics_page, raw=True)

    def error_page(error: bottle.HTTPError) -> str:
        add_headers()
        if (bottle.request.path + "/").startswith(api.PREFIX + "/"):
            # The API's clients read JSON, also for a path or method it does not have.
            codes = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
            code = error.status_code
            bottle.response.status = code
            bottle.response.content_type = "application/json"
            if code >= 500:
                logger.error("api: unexpected error: %s", error.exception or error.body)
            message = "Something went wrong; the failure has been logged." if code >= 500 else str(error.body or "")
            return api.error_body(codes.get(code, "server_error"), message or error.status_line)
        ctx = web.current() or web.Context(site, bottle.request, bottle.response)
        titles = {
            404: ctx.gettext("Not found"),
            405: ctx.gettext("Method not allowed"),
            500: ctx.gettext("Something went wrong"),
        }
        messages = {
            404: ctx.gettext("There is no such page here."),
            405: ctx.gettext("This page does not take that kind of request."),
            500: ctx.gettext("The server failed to answer. The failure has been logged."),
        }
        code = error.status_code
        bottle.response.status = code
        return render(
            "error.html",
            ctx=ctx,
            title=titles.get(code, error.status_line),
            message=messages.get(code, str(error.body or "")),
        )

    for code in (400, 403, 404, 405, 413, 500):
        app.error(code)(error_page)

    for module in (pages, account, hosts, related, tokens, zones, admin):
        module.register(app)
    api.register(app, site)
    return app
