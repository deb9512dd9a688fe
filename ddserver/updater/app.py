"""The updater's Bottle shell: turns HTTP requests into ``UpdateRequest``s and answers into plain-text replies.

``create_app(config, db)`` gives a WSGI application for any server (waitress by default, see ``main``) and for
the bundle. Every failure ends as a dyndns2 code: never a 500 page or a traceback.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

import bottle

from ddserver import logs
from ddserver.config import Config
from ddserver.db import Database
from ddserver.errors import DatabaseError
from ddserver.store import updates as store
from ddserver.updater import protocol
from ddserver.updater.metrics import Metrics
from ddserver.updater.protocol import Answer, Code
from ddserver.updater.service import Updater, UpdateRequest

logger = logging.getLogger(__name__)

#: Paths that update, as clients and routers call them (see docs/updater.md).
UPDATE_PATHS = (
    "/nic/update",  # dyndns2: ddclient, inadyn, Fritz!Box, OpenWrt, pfSense, routers at large
    "/v3/update",  # dyn.com's later name for the same call
    "/nic/dyndns",  # dyndns "system=dyndns" as older clients spell it
    "/nic/statdns",  # dyndns "system=statdns"
    "/update",  # short form some router templates use
    "/api/update",
)
DELETE_PATHS = ("/nic/delete",)
IP_PATHS = ("/nic/ip", "/nic/myip", "/myip", "/ip")
#: The visitor's address as JSON, for the interface's pages (CORS for the interface's origin).
MYIP_JSON_PATH = "/api/myip"
ACME_PATHS = ("/nic/acme",)
_MAX_BODY = 65536
_TEXT = "text/plain; charset=utf-8"


def _params(environ: dict[str, Any]) -> dict[str, str]:
    """Query and form parameters, names lower-cased, the first value of each name kept.

    Parsed here rather than by Bottle so that bytes that are not UTF-8 become replacement characters
    (and so a bad hostname) instead of an exception.
    """
    pairs = urllib.parse.parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True, errors="replace")
    if environ.get("REQUEST_METHOD") == "POST" and environ.get("CONTENT_TYPE", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        try:
            length = min(int(environ.get("CONTENT_LENGTH") or 0), _MAX_BODY)
        except ValueError:
            length = 0
        if length > 0:
            body = environ["wsgi.input"].read(length).decode("utf-8", "replace")
            pairs += urllib.parse.parse_qsl(body, keep_blank_values=True)
    params: dict[str, str] = {}
    for key, value in pairs:
        params.setdefault(key.strip().lower(), value)
    return params


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _text(body: str, status: int = 200, **headers: str) -> bottle.HTTPResponse:
    response = bottle.HTTPResponse(body, status)
    response.set_header("Content-Type", _TEXT)
    response.set_header("Cache-Control", "no-store")
    for name, value in headers.items():
        response.set_header(name.replace("_", "-"), value)
    return response


def _wsgi_reply(answers: Sequence[Answer]) -> tuple[int, list[tuple[str, str]], bytes]:
    """The answers as an HTTP status, headers and body (byte for byte what Bottle sends for ``_reply``)."""
    status, body = protocol.render(answers)
    data = body.encode()
    headers = [("Content-Type", _TEXT), ("Cache-Control", "no-store")]
    if status == 401:
        headers.append(("Www-Authenticate", f'Basic realm="{protocol.REALM}"'))
    headers.append(("Content-Length", str(len(data))))
    return status, headers, data


def _reply(answers: Sequence[Answer]) -> bottle.HTTPResponse:
    """The answers as Bottle's response (Bottle sets the length itself)."""
    status, headers, data = _wsgi_reply(answers)
    response = bottle.HTTPResponse(data, status)
    for name, value in headers:
        if name != "Content-Length":
            response.set_header(name, value)
    return response


class UpdaterApp(bottle.Bottle):
    """Bottle, except for GET requests to the update and delete paths, what routers send thousands of times
    a second: those are answered without Bottle's routing, request and response objects (a quarter of the
    CPU time of a ``nochg`` in-process), with the same status, headers and body."""

    def __init__(self, json_logs: bool = False) -> None:
        super().__init__()
        #: Exact path -> the answers to a GET request to it.
        self.fast: dict[str, Callable[[dict[str, Any]], list[Answer]]] = {}
        self.json_logs = json_logs

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        # Every request has an id (X-Request-Id in and out, in the lines it logs).
        return logs.serve_with_request_id(self._answer, environ, start_response)

    def _answer(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self.json_logs:
            environ["wsgi.errors"] = logs.ErrorStream(logger)
        if environ.get("REQUEST_METHOD") == "GET":
            handler = self.fast.get(environ.get("PATH_INFO", ""))
            if handler is not None:
                status, headers, data = _wsgi_reply(handler(environ))
                start_response(f"{status} {bottle.HTTP_CODES[status]}", headers)
                return [data]
        return self.wsgi(environ, start_response)


def create_app(config: Config, db: Database | None = None, *, metrics_dir: str | None = None) -> UpdaterApp:
    """The updater as a WSGI application.

    :param db: the database to use; by default one is opened from ``config`` (on first use).
    :param metrics_dir: a folder shared by the worker processes of one server, so that ``/metrics`` sums them
        all (see ``Metrics``); without it, the metrics are this process's own.
    """
    database = db if db is not None else Database.from_config(config, serving=True)
    metrics = Metrics(metrics_dir)
    updater = Updater(config, database, on_batch=metrics.observe_batch)
    trusted = protocol.parse_networks(config.http.trusted_proxies)
    metrics_allow = protocol.parse_networks(config.updater.metrics_allow)
    app = UpdaterApp(json_logs=config.logging.format == "json")
    log_requests = config.logging.requests
    app.config["json.enable"] = False
    app.config["ddserver.metrics"] = metrics
    app.config["ddserver.updater"] = updater

    def request_of(environ: dict[str, Any]) -> UpdateRequest:
        peer = protocol.normalise_client(environ.get("REMOTE_ADDR") or "")
        client = protocol.client_address(
            environ.get("REMOTE_ADDR"),
            environ.get("HTTP_X_FORWARDED_FOR"),
            environ.get("HTTP_X_REAL_IP"),
            trusted,
        )
        tls = protocol.forwarded_tls(
            protocol.in_networks(peer, trusted),
            environ.get("wsgi.url_scheme", "http"),
            environ.get("HTTP_X_FORWARDED_PROTO"),
        )
        return UpdateRequest(
            _params(environ),
            environ.get("HTTP_AUTHORIZATION"),
            client,
            tls,
            environ.get("HTTP_USER_AGENT"),
        )

    def answering(
        endpoint: str, handler: Callable[[UpdateRequest], list[Answer]]
    ) -> Callable[[dict[str, Any]], list[Answer]]:
        def answer(environ: dict[str, Any]) -> list[Answer]:
            started = time.perf_counter()
            request: UpdateRequest | None = None
            try:
                request = request_of(environ)
                logs.set_fields(client=request.client_text, host=request.params.get("hostname", "")[:300])
                answers = handler(request)
            except DatabaseError as exc:
                logger.error("%s: %s", endpoint, exc)
                answers = [Answer(Code.SERVER_ERROR)]
            except Exception:  # the one place an unexpected error becomes 911, logged in full
                logger.exception("%s: unexpected error", endpoint)
                answers = [Answer(Code.SERVER_ERROR)]
            seconds = time.perf_counter() - started
            metrics.observe(endpoint, (a.code for a in answers), seconds)
            if log_requests:
                result = ",".join(a.code.value for a in answers)
                logger.info(
                    "%s %s: %s",
                    environ.get("REQUEST_METHOD", "")[:16],
                    endpoint,
                    result,
                    extra={
                        "result": result,
                        "method": environ.get("REQUEST_METHOD", "")[:16],
                        "route": environ.get("PATH_INFO", "")[:100],
                        "status": protocol.render(answers)[0],
                        "duration_ms": round(seconds * 1000, 1),
                    },
                )
            return answers

        return answer

    def served(answer: Callable[[dict[str, Any]], list[Answer]]) -> Callable[[], bottle.HTTPResponse]:
        return lambda: _reply(answer(bottle.request.environ))

    update_answer = answering("update", updater.update)
    delete_answer = answering("delete", lambda request: updater.update(request, delete=True))
    update, delete = served(update_answer), served(delete_answer)
    app.fast.update({path: update_answer for path in UPDATE_PATHS})
    app.fast.update({path: delete_answer for path in DELETE_PATHS})

    def acme_handler(request: UpdateRequest) -> list[Answer]:
        action = request.params.get("action", "set").strip().lower()
        if action not in ("set", "add", "present", "clear", "delete", "cleanup"):
            return [Answer(Code.BADAGENT)]
        return [updater.acme(request, clear=action in ("clear", "delete", "cleanup"))]

    acme = served(answering("acme", acme_handler))
    for path in UPDATE_PATHS:
        app.route(path, ["GET", "POST"], update)
    for path in DELETE_PATHS:
        app.route(path, ["GET", "POST"], delete)
    for path in ACME_PATHS:
        app.route(path, ["GET", "POST"], acme)

    def client_ip(family: int | None) -> Callable[[], bottle.HTTPResponse]:
        def callback() -> bottle.HTTPResponse:
            client = request_of(bottle.request.environ).client
            if client is None:
                return _text("unknown\n", 500)
            if family is not None and client.version != family:
                return _text(f"this request came over IPv{client.version}, not IPv{family}\n", 404)
            return _text(f"{client}\n")

        return callback

    for path in IP_PATHS:
        app.route(path, ["GET"], client_ip(None))

    interface_origin = _origin(config.http.base_url)

    @app.route(MYIP_JSON_PATH, ["GET"])
    def client_ip_json() -> bottle.HTTPResponse:
        # What the interface's pages ask the updater's IPv4-only and IPv6-only names (docs/interface.md): only
        # the interface's own origin may read the answer, so no other site learns the visitor's other address.
        client = request_of(bottle.request.environ).client
        body = {"address": str(client) if client else "", "family": f"ipv{client.version}" if client else ""}
        response = bottle.HTTPResponse(json.dumps(body), 200 if client else 500)
        response.set_header("Content-Type", "application/json")
        response.set_header("Cache-Control", "no-store")
        response.set_header("Vary", "Origin")
        # Read raw (not through Bottle, which fails on bytes that are not UTF-8): compared, never decoded.
        if interface_origin and bottle.request.environ.get("HTTP_ORIGIN") == interface_origin:
            response.set_header("Access-Control-Allow-Origin", interface_origin)
        return response

    app.route("/nic/ip4", ["GET"], client_ip(4))
    app.route("/nic/ip6", ["GET"], client_ip(6))

    @app.route("/metrics")
    def metrics_page() -> bottle.HTTPResponse:
        if not config.updater.metrics:
            return _text("not found\n", 404)
        client = request_of(bottle.request.environ).client
        if not protocol.in_networks(client, metrics_allow):
            return _text("forbidden\n", 403)
        response = _text(metrics.render())
        response.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        return response

    @app.route("/health")
    def health() -> bottle.HTTPResponse:
        try:
            store.ping(database)
        except DatabaseError as exc:
            logger.error("health: %s", exc)
            return _text("911\n", 503)
        return _text("ok\n")

    @app.route("/")
    def index() -> bottle.HTTPResponse:
        return _text("ddserver dyndns2 updater: GET /nic/update?hostname=NAME&myip=ADDRESS with Basic auth\n")

    def error_page(error: bottle.HTTPError) -> str:
        # Bottle's own errors (unknown path, wrong method) in plain text, as clients read them.
        bottle.response.content_type = _TEXT
        if error.status_code == 405:
            return "badagent\n"
        if error.status_code >= 500:
            logger.error("unexpected error: %s", error.exception or error.body)
            return "911\n"
        return f"{error.status_line}\n"

    for status in (400, 404, 405, 413, 500):
        app.error_handler[status] = error_page
    return app
