"""The JSON API (``/api/v1``): what the web interface lets a user do with hosts, for scripts, authenticated by
an update or API token with the ``api`` scope (``Authorization: Bearer``).

Its checks are the web interface's own (``routes.hosts``, ``routes.tokens``: the same ``Form`` and messages);
its answers are JSON, its errors ``{"error": {"code": ..., "message": ...}}``. Failed authentications count
against the client's address as failed logins do (``limits``); a valid token is served whatever was counted.
No cookies are read, so no CSRF token is needed: a browser cannot send the bearer token on its own.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import bottle

from ddserver import validate
from ddserver.errors import DatabaseError, NotFound, ValidationError
from ddserver.interface import limits, openapi
from ddserver.interface.forms import Form
from ddserver.interface.routes import hosts as host_routes
from ddserver.interface.routes import tokens as token_routes
from ddserver.interface.web import Context, Site
from ddserver.store import hosts, records, tokens, users, zones
from ddserver.store.common import KEEP
from ddserver.store.hosts import Host
from ddserver.store.tokens import Grant, Scope

logger = logging.getLogger(__name__)

PREFIX = "/api/v1"
#: Largest request body read.
MAX_BODY = 65536
#: TXT records one name of a host may hold (what the updater's ACME hook allows too).
MAX_TXT_PER_NAME = 10
#: Extra records a host may hold through the API.
MAX_RECORDS = 50
_JSON = "application/json"


class ApiError(Exception):
    """An answer other than success: HTTP status, error code, message, and the fields at fault."""

    def __init__(self, status: int, code: str, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or {}


def error_body(code: str, message: str, fields: dict[str, str] | None = None) -> str:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return json.dumps({"error": error})


def _answer(status: int, value: Any = None) -> bottle.HTTPResponse:
    body = "" if value is None else json.dumps(value)
    response = bottle.HTTPResponse(body, status)
    if value is not None:
        response.set_header("Content-Type", _JSON)
    return response


def _invalid(form: Form) -> ApiError:
    fields = {("request" if k == "_form" else k): v for k, v in form.errors.items()}
    return ApiError(400, "invalid", next(iter(fields.values())), fields)


def _body(ctx: Context) -> dict[str, Any]:
    """The request's JSON object."""
    try:
        length = int(ctx.request.environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY:
        raise ApiError(413, "too_large", f"The request body is larger than {MAX_BODY} bytes.")
    raw = ctx.request.environ["wsgi.input"].read(length) if length > 0 else b""
    try:
        value = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested too deeply
        raise ApiError(400, "bad_json", "The request body is not JSON.")
    if not isinstance(value, dict):
        raise ApiError(400, "bad_json", "The request body is not a JSON object.")
    return value


def _text(body: dict[str, Any], key: str, *, required: bool = False) -> str:
    value = body.get(key)
    if value is None:
        if required:
            raise ApiError(400, "invalid", f"{key} is missing.", {key: "This field is required."})
        return ""
    if not isinstance(value, str) or not _is_text(value):
        raise ApiError(400, "invalid", f"{key} must be a string.", {key: "This field must be a string."})
    return value.strip()


def _is_text(value: str) -> bool:
    """JSON may escape lone surrogates (``"\\ud800"``), which are no text and no UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _strings(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and _is_text(v) for v in value):
        raise ApiError(
            400, "invalid", f"{key} must be a list of strings.", {key: "This field must be a list of strings."}
        )
    return [v.strip() for v in value]


# -- representations --------------------------------------------------------------------------------


def host_json(host: Host) -> dict[str, Any]:
    return {
        "id": host.id,
        "name": host.name,
        "zone": host.zone,
        "ipv4": host.ipv4,
        "ipv6": host.ipv6,
        "ttl": host.ttl,
        "wildcard": host.wildcard,
        "description": host.description,
        "created_at": host.created_at,
        "last_update_at": host.last_update_at,
        "address_changed_at": host.address_changed_at,
        "abuse": host.abuse,
        "blocked": host.blocked,
    }


def record_json(record: records.Record) -> dict[str, Any]:
    return {"id": record.id, "name": record.name, "content": record.content, "ttl": record.ttl}


def token_json(info: tokens.TokenInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "scopes": [s.value for s in Scope if s in info.scopes],
        "zone": info.zone,
        "hosts": None if info.hosts is None else list(info.hosts),
        "created_at": info.created_at,
        "expires_at": info.expires_at,
        "last_used_at": info.last_used_at,
    }


# -- the endpoints ----------------------------------------------------------------------------------


def _host(ctx: Context, grant: Grant, name: str) -> Host:
    """A host of the token's user that the token covers; any other name is not found (never forbidden)."""
    try:
        host = hosts.get(ctx.db, validate.hostname(name))
    except (ValidationError, NotFound):
        host = None
    if host is None or host.user_id != grant.user_id or not grant.covers(host.id, host.zone_id):
        raise ApiError(404, "not_found", f"You have no host {name} that this token covers.")
    return host


def _all_hosts(grant: Grant) -> None:
    if not grant.all_hosts:
        raise ApiError(403, "forbidden", "Only a token for all your hosts can manage tokens.")


def list_hosts(ctx: Context, grant: Grant) -> bottle.HTTPResponse:
    found = [h for h in hosts.list_for_user(ctx.db, grant.user_id) if grant.covers(h.id, h.zone_id)]
    return _answer(200, {"hosts": [host_json(h) for h in found]})


def create_host(ctx: Context, grant: Grant) -> bottle.HTTPResponse:
    body = _body(ctx)
    label, zone_name = _text(body, "label", required=True), _text(body, "zone", required=True)
    assert ctx.user is not None
    usable = {z.name: z for z in zones.usable_by(ctx.db, ctx.user.id, ctx.user.is_admin)}
    try:
        zone = usable.get(validate.hostname(zone_name))
    except ValidationError:
        zone = None
    if grant.host_ids is not None or (grant.zone_id is not None and (zone is None or zone.id != grant.zone_id)):
        raise ApiError(403, "forbidden", "This token cannot add hosts there.")
    form = Form(
        {"zone": "" if zone is None else str(zone.id), "label": label, "description": _text(body, "description")}
    )
    made = host_routes.create_host(ctx, form)
    if made is None:
        raise _invalid(form)
    host, secret = made
    return _answer(201, {"host": host_json(host), "secret": secret})


def get_host(ctx: Context, grant: Grant, name: str) -> bottle.HTTPResponse:
    host = _host(ctx, grant, name)
    txt = [record_json(r) for r in records.for_host(ctx.db, host.id) if r.type == "TXT"]
    return _answer(200, {"host": host_json(host), "txt": txt})


def set_addresses(ctx: Context, grant: Grant, name: str) -> bottle.HTTPResponse:
    host = _host(ctx, grant, name)
    body = _body(ctx)
    if not ({"ipv4", "ipv6"} & body.keys()):
        raise ApiError(400, "invalid", "Give ipv4, ipv6 or both.", {"request": "Give ipv4, ipv6 or both."})
    form = Form({"ipv4": _text(body, "ipv4"), "ipv6": _text(body, "ipv6")})
    typed = host_routes.read_addresses(form)
    if typed is None:
        raise _invalid(form)
    ipv4 = typed[0] if "ipv4" in body else KEEP
    ipv6 = typed[1] if "ipv6" in body else KEEP
    change = host_routes.save_addresses(ctx, host, ipv4, ipv6)
    return _answer(200, {"host": host_json(change.host), "changed": change.changed})


def edit_host(ctx: Context, grant: Grant, name: str) -> bottle.HTTPResponse:
    host = _host(ctx, grant, name)
    body = _body(ctx)
    if not ({"ttl", "wildcard", "description"} & body.keys()):
        message = "Give ttl, wildcard, description or several."
        raise ApiError(400, "invalid", message, {"request": message})
    ttl, wildcard = body.get("ttl", host.ttl), body.get("wildcard", host.wildcard)
    if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool)):
        raise ApiError(
            400, "invalid", "ttl must be a whole number or null.", {"ttl": "This field must be a whole number."}
        )
    if not isinstance(wildcard, bool):
        raise ApiError(
            400, "invalid", "wildcard must be true or false.", {"wildcard": "This field must be true or false."}
        )
    description = _text(body, "description")[:200] if "description" in body else None
    if "ttl" in body or "wildcard" in body:
        form = Form({"ttl": "" if ttl is None else str(ttl), "wildcard": "1" if wildcard else ""})
        saved = host_routes.save_dns(ctx, host, form)
        if saved is None:
            raise _invalid(form)
        host = saved
    if description is not None:
        host = hosts.set_properties(ctx.db, host.id, description=description)
    return _answer(200, {"host": host_json(host)})


def new_secret(ctx: Context, grant: Grant, name: str) -> bottle.HTTPResponse:
    host = _host(ctx, grant, name)
    return _answer(200, {"host": host_json(host), "secret": host_routes.new_secret(ctx, host)})


def delete_host(ctx: Context, grant: Grant, name: str) -> bottle.HTTPResponse:
    host = _host(ctx, grant, name)
    try:
        hosts.delete(ctx.db, host.id)
    except NotFound:
        raise ApiError(404, "not_found", f"You have no host {name} that this token covers.")
    ctx.log_event("host", f"host {host.name}", "deleted through the API")
    return _answer(204)


def list_txt(ctx: Context, grant: Grant, name: str) -> bottle.HTTPResponse:
    host = _host(ctx, grant, name)
    return _answer(200, {"txt": [record_json(r) for r in records.for_host(ctx.db, host.id) if r.type == "TXT"]})


def add_txt(ctx: Context, grant: Grant, name: str) -> bottle.HTTPResponse:
    host = _host(ctx, grant, name)
    body = _body(ctx)
    form = Form({"name": _text(body, "name"), "content": _text(body, "content", required=True)})
    full = form.check("name", lambda text: validate.record_name(text, host.name))
    content = form.check("content", validate.txt_value)
    if not form.ok:
        raise _invalid(form)
    existing = records.for_host(ctx.db, host.id)
    same = [r for r in existing if r.type == "TXT" and r.name == full]
    for record in same:
        if record.content == content:
            return _answer(200, {"record": record_json(record)})
    if len(same) >= MAX_TXT_PER_NAME or len(existing) >= MAX_RECORDS:
        raise ApiError(409, "limit_reached", "This host holds as many TXT records as it may: delete one first.")
    try:
        record = records.add(ctx.db, host.id, full, "TXT", content, ttl=60)
    except NotFound:
        raise ApiError(404, "not_found", f"You have no host {name} that this token covers.")
    return _answer(201, {"record": record_json(record)})


def delete_txt(ctx: Context, grant: Grant, name: str, record_id: int) -> bottle.HTTPResponse:
    host = _host(ctx, grant, name)
    try:
        deleted = records.delete(ctx.db, host.id, rtype="TXT", record_id=record_id)
    except NotFound:
        deleted = 0
    if not deleted:
        raise ApiError(404, "not_found", f"{name} has no TXT record {record_id}.")
    return _answer(204)


def list_tokens(ctx: Context, grant: Grant) -> bottle.HTTPResponse:
    _all_hosts(grant)
    return _answer(200, {"tokens": [token_json(t) for t in tokens.list_grants(ctx.db, grant.user_id)]})


def create_token(ctx: Context, grant: Grant) -> bottle.HTTPResponse:
    _all_hosts(grant)
    body = _body(ctx)
    days = body.get("expires_in_days")
    if days is not None and (not isinstance(days, int) or isinstance(days, bool)):
        raise ApiError(400, "invalid", "expires_in_days must be a whole number.",
                       {"expires_in_days": "This field must be a whole number."})  # fmt: skip
    zone, names = _text(body, "zone"), _strings(body, "hosts")
    form = Form(
        {
            "name": _text(body, "name", required=True),
            "scopes": _strings(body, "scopes"),
            "target": "hosts" if "hosts" in body and body["hosts"] is not None else ("zone" if zone else "all"),
            "zone": zone,
            "hosts": names,
            "expires_days": "" if days is None else str(days),
        }
    )
    wanted = token_routes.read_token_form(ctx, form, limit=grant)
    made = token_routes.make_token(ctx, form, wanted) if wanted is not None else None
    if made is None:
        form.errors = {{"expires_days": "expires_in_days"}.get(k, k): v for k, v in form.errors.items()}
        raise _invalid(form)
    info = next(t for t in tokens.list_grants(ctx.db, grant.user_id) if t.id == made[1])
    return _answer(201, {"token": token_json(info), "secret": made[0]})


def revoke_token(ctx: Context, grant: Grant, token_id: int) -> bottle.HTTPResponse:
    _all_hosts(grant)
    if not tokens.revoke(ctx.db, grant.user_id, token_id):
        raise ApiError(404, "not_found", f"You have no token {token_id}.")
    assert ctx.user is not None
    ctx.log_event("account", f"user {ctx.user.username}", f"token {token_id} revoked through the API")
    return _answer(204)


# -- the shell --------------------------------------------------------------------------------------

Handler = Callable[..., bottle.HTTPResponse]


def _bearer(ctx: Context) -> str | None:
    scheme, _, token = str(ctx.request.headers.get("Authorization", "")).strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 256 or not token.isascii():
        return None
    return token


def _authenticate(ctx: Context) -> Grant:
    """The grant of the request's bearer token, checked before any failure counter."""
    token = _bearer(ctx)
    grant = tokens.grant_for(ctx.db, token) if token is not None else None
    if grant is None:
        guard = limits.Guard(((f"address:{ctx.client}", ctx.config.interface.login_failures_per_address),))
        if guard.blocked(ctx):
            raise ApiError(429, "rate_limited", "Too many failed attempts from your address. Wait a few minutes.")
        guard.failed(ctx)
        raise ApiError(401, "unauthorized", "Send a valid token: Authorization: Bearer TOKEN.")
    try:
        user = users.get(ctx.db, grant.user_id)
    except NotFound:
        raise ApiError(401, "unauthorized", "Send a valid token: Authorization: Bearer TOKEN.")
    if not user.can_log_in:
        raise ApiError(403, "forbidden", "This account cannot log in.")
    if not grant.allows(Scope.API):
        raise ApiError(403, "forbidden", "This token may not use the API: make one with the api scope.")
    ctx.user = user
    try:
        tokens.touch(ctx.db, grant)
    except DatabaseError as exc:
        logger.warning("could not record the use of a token: %s", exc)
    return grant


def endpoint(site: Site, handler: Handler) -> Callable[..., bottle.HTTPResponse]:
    def run(**kwargs: Any) -> bottle.HTTPResponse:
        ctx = Context(site, bottle.request, bottle.response)
        try:
            grant = _authenticate(ctx)
            return handler(ctx, grant, **kwargs)
        except ApiError as error:
            answer = bottle.HTTPResponse(error_body(error.code, error.message, error.fields), error.status)
            answer.set_header("Content-Type", _JSON)
            if error.status == 401:
                answer.set_header("WWW-Authenticate", 'Bearer realm="ddserver"')
            if error.status == 429:
                answer.set_header("Retry-After", "60")
            return answer
        except DatabaseError as exc:
            logger.error("api: %s", exc)
            answer = bottle.HTTPResponse(error_body("unavailable", "The database cannot be reached; try again."), 503)
            answer.set_header("Content-Type", _JSON)
            answer.set_header("Retry-After", "60")
            return answer

    return run


#: (method, Bottle rule, handler): the route table, which the OpenAPI document describes.
ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/hosts", list_hosts),
    ("POST", "/hosts", create_host),
    ("GET", "/hosts/<name>", get_host),
    ("PATCH", "/hosts/<name>", edit_host),
    ("DELETE", "/hosts/<name>", delete_host),
    ("POST", "/hosts/<name>/secret", new_secret),
    ("PUT", "/hosts/<name>/addresses", set_addresses),
    ("GET", "/hosts/<name>/txt", list_txt),
    ("POST", "/hosts/<name>/txt", add_txt),
    ("DELETE", "/hosts/<name>/txt/<record_id:int>", delete_txt),
    ("GET", "/tokens", list_tokens),
    ("POST", "/tokens", create_token),
    ("DELETE", "/tokens/<token_id:int>", revoke_token),
)


def register(app: bottle.Bottle, site: Site) -> None:
    document = json.dumps(openapi.document(site.config.http.base_url))

    def describe() -> bottle.HTTPResponse:
        answer = bottle.HTTPResponse(document, 200)
        answer.set_header("Content-Type", _JSON)
        return answer

    app.route(PREFIX + "/openapi.json", "GET", describe, raw=True)
    for method, rule, handler in ROUTES:
        app.route(PREFIX + rule, method, endpoint(site, handler), raw=True)
