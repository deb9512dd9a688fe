"""The OpenAPI 3.1 description of the JSON API (``interface.api``), served at ``/api/v1/openapi.json``.

A test checks it against the real route table, both ways, and every answer of the API tests against its schema.
"""

from __future__ import annotations

from typing import Any

from ddserver.store.tokens import Scope

_NULLABLE_STRING = {"type": ["string", "null"]}
_NULLABLE_INT = {"type": ["integer", "null"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


SCHEMAS: dict[str, Any] = {
    "Error": _object(
        {
            "error": _object(
                {
                    "code": {
                        "type": "string",
                        "enum": [
                            "bad_json",
                            "invalid",
                            "unauthorized",
                            "forbidden",
                            "not_found",
                            "method_not_allowed",
                            "too_large",
                            "limit_reached",
                            "rate_limited",
                            "unavailable",
                            "bad_request",
                            "server_error",
                        ],
                    },
                    "message": {"type": "string"},
                    "fields": {
                        "type": "object",
                        "description": "The field at fault -> what is wrong with it (the web form's message).",
                        "additionalProperties": {"type": "string"},
                    },
                },
                ["code", "message"],
            )
        }
    ),
    "Host": _object(
        {
            "id": {"type": "integer"},
            "name": {"type": "string", "description": "Fully qualified, IDNA A-labels, no trailing dot."},
            "zone": {"type": "string"},
            "ipv4": _NULLABLE_STRING,
            "ipv6": _NULLABLE_STRING,
            "ttl": {**_NULLABLE_INT, "description": "null: the zone's TTL."},
            "wildcard": {"type": "boolean"},
            "description": {"type": "string"},
            "created_at": {"type": "integer", "description": "Unix time."},
            "last_update_at": _NULLABLE_INT,
            "address_changed_at": _NULLABLE_INT,
            "abuse": {"type": "boolean", "description": "Flagged for abuse by the updater: out of DNS."},
            "blocked": {"type": "boolean", "description": "Blocked by an administrator: out of DNS."},
        }
    ),
    "HostList": _object({"hosts": {"type": "array", "items": _ref("Host")}}),
    "HostDetail": _object({"host": _ref("Host"), "txt": {"type": "array", "items": _ref("TxtRecord")}}),
    "NewHost": _object(
        {
            "label": {"type": "string", "description": "The name's first label, such as home."},
            "zone": {"type": "string", "description": "A zone you may use, such as dyn.example.org."},
            "description": {"type": "string", "maxLength": 200},
        },
        ["label", "zone"],
    ),
    "HostCreated": _object(
        {
            "host": _ref("Host"),
            "secret": {"type": "string", "description": "The host's update secret, shown only in this answer."},
        }
    ),
    "Addresses": _object(
        {
            "ipv4": {**_NULLABLE_STRING, "description": "Absent: kept; null or empty: removed."},
            "ipv6": {**_NULLABLE_STRING, "description": "Absent: kept; null or empty: removed."},
        },
        [],
    ),
    "HostChanges": _object(
        {
            "ttl": {**_NULLABLE_INT, "description": "Within the zone's range; null: the zone's TTL."},
            "wildcard": {"type": "boolean", "description": "Only where the zone allows wildcards."},
            "description": {"type": "string", "maxLength": 200},
        },
        [],
    ),
    "HostOnly": _object({"host": _ref("Host")}),
    "AddressesSet": _object({"host": _ref("Host"), "changed": {"type": "boolean"}}),
    "TxtRecord": _object(
        {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "content": {"type": "string"},
            "ttl": _NULLABLE_INT,
        }
    ),
    "TxtList": _object({"txt": {"type": "array", "items": _ref("TxtRecord")}}),
    "NewTxt": _object(
        {
            "name": {
                "type": "string",
                "description": "Below the host, such as _acme-challenge; empty or @: the host's own name.",
            },
            "content": {"type": "string", "minLength": 1, "maxLength": 255},
        },
        ["content"],
    ),
    "TxtAdded": _object({"record": _ref("TxtRecord")}),
    "Token": _object(
        {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "scopes": {"type": "array", "items": {"type": "string", "enum": [s.value for s in Scope]}},
            "zone": {**_NULLABLE_STRING, "description": "Limited to your hosts in this zone."},
            "hosts": {
                "type": ["array", "null"],
                "items": {"type": "string"},
                "description": "Limited to these hosts (null: not limited to listed hosts).",
            },
            "created_at": {"type": "integer"},
            "expires_at": _NULLABLE_INT,
            "last_used_at": {**_NULLABLE_INT, "description": "Written at most once a minute."},
        }
    ),
    "TokenList": _object({"tokens": {"type": "array", "items": _ref("Token")}}),
    "NewToken": _object(
        {
            "name": {"type": "string", "maxLength": 64},
            "scopes": {"type": "array", "items": {"type": "string", "enum": [s.value for s in Scope]}},
            "zone": {**_NULLABLE_STRING, "description": "Limit it to your hosts in this zone."},
            "hosts": {"type": ["array", "null"], "items": {"type": "string"}, "description": "Limit it to these."},
            "expires_in_days": {**_NULLABLE_INT, "minimum": 1, "maximum": 3650},
        },
        ["name", "scopes"],
    ),
    "TokenCreated": _object(
        {"token": _ref("Token"), "secret": {"type": "string", "description": "The token, shown only in this answer."}}
    ),
}


def _json(schema: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": _ref(schema)}}}


def _errors(*statuses: int) -> dict[str, Any]:
    texts = {
        400: "Malformed JSON or a value the web form would refuse too.",
        401: "No valid token.",
        403: "The token lacks the api scope, or does not cover what is asked.",
        404: "No such host (or not covered by the token), record or token.",
        409: "A limit is reached.",
        413: "The body is too large.",
        429: "Too many failed authentications from this address.",
        503: "The database cannot be reached.",
    }
    return {str(s): {"description": texts[s], **_json("Error")} for s in (401, 403, 429, 503, *statuses)}


def _op(summary: str, ok: dict[str, Any], *errors: int, body: str | None = None, **extra: Any) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": {**ok, **_errors(*errors)}, **extra}
    if body is not None:
        operation["requestBody"] = {"required": True, **_json(body)}
        operation["responses"].update(_errors(400, 413))
    return operation


_HOST = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}, "description": "Host name"}


def _int_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


def document(base_url: str = "") -> dict[str, Any]:
    """The OpenAPI document of the API at ``base_url``."""
    no_content = {"204": {"description": "Done."}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ddserver API",
            "version": "1",
            "description": "Manage your hosts, their addresses and TXT records, and your tokens. Authenticate "
            "with a token that has the api scope: Authorization: Bearer TOKEN. Errors are "
            '{"error": {"code": ..., "message": ..., "fields": {...}}}.',
        },
        "servers": [{"url": base_url.rstrip("/") + "/api/v1"}],
        "security": [{"token": []}],
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
        },
        "paths": {
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "The OpenAPI document.", "content": {"application/json": {}}}},
                }
            },
            "/hosts": {
                "get": _op("Your hosts that the token covers", {"200": {"description": "Hosts", **_json("HostList")}}),
                "post": _op(
                    "Add a host (all-hosts tokens, or zone tokens in their zone)",
                    {"201": {"description": "Added", **_json("HostCreated")}},
                    body="NewHost",
                ),
            },
            "/hosts/{name}": {
                "parameters": [_HOST],
                "get": _op("A host and its TXT records", {"200": {"description": "Host", **_json("HostDetail")}}, 404),
                "patch": _op(
                    "Change a host's TTL, wildcard or description (what is left out is kept)",
                    {"200": {"description": "Changed", **_json("HostOnly")}},
                    404,
                    body="HostChanges",
                ),
                "delete": _op("Delete a host", no_content, 404),
            },
            "/hosts/{name}/secret": {
                "parameters": [_HOST],
                "post": _op(
                    "Give a host a new update secret (the old one stops working)",
                    {"200": {"description": "The new secret, shown only in this answer", **_json("HostCreated")}},
                    404,
                ),
            },
            "/hosts/{name}/addresses": {
                "parameters": [_HOST],
                "put": _op(
                    "Set a host's addresses",
                    {"200": {"description": "Set", **_json("AddressesSet")}},
                    404,
                    body="Addresses",
                ),
            },
            "/hosts/{name}/txt": {
                "parameters": [_HOST],
                "get": _op("A host's TXT records", {"200": {"description": "Records", **_json("TxtList")}}, 404),
                "post": _op(
                    "Add a TXT record (an existing equal one is answered with 200)",
                    {
                        "200": {"description": "It was there", **_json("TxtAdded")},
                        "201": {"description": "Added", **_json("TxtAdded")},
                    },
                    404,
                    409,
                    body="NewTxt",
                ),
            },
            "/hosts/{name}/txt/{record_id}": {
                "parameters": [_HOST, _int_param("record_id")],
                "delete": _op("Delete a TXT record", no_content, 404),
            },
            "/tokens": {
                "get": _op(
                    "Your tokens (all-hosts tokens only)", {"200": {"description": "Tokens", **_json("TokenList")}}
                ),
                "post": _op(
                    "Make a token, which may do no more and last no longer than the one asking",
                    {"201": {"description": "Made", **_json("TokenCreated")}},
                    body="NewToken",
                ),
            },
            "/tokens/{token_id}": {
                "parameters": [_int_param("token_id")],
                "delete": _op("Revoke a token", no_content, 404),
            },
        },
    }
