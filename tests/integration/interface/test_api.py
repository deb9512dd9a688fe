"""The JSON API against its OpenAPI document: the document and the route table agree both ways, and every
answer the tests get (errors included) matches the schema the document gives for its endpoint and status."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest

from ddserver import secrets
from ddserver.interface import api
from ddserver.store import hosts, records, tokens
from tests.integration.interface.conftest import add_host, add_user, add_zone, log_in_as
from tests.openapi_check import openapi_path, operations, problems, response_schema

ZONE = "dyn.example.org"
OTHER_ZONE = "dyn2.example.org"


@pytest.fixture
def document(client) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    answer = client.get("/api/v1/openapi.json")
    assert answer.content_type == "application/json"
    return answer.json


def call(client, document, method: str, path: str, *, token: str | None = None, body: Any = None,  # type: ignore[no-untyped-def]
         status: int, raw: bytes | None = None, **values: Any) -> Any:  # fmt: skip
    """Call ``path`` (an OpenAPI path, its {parameters} filled from ``values``), check the status and that the
    answer matches the document's schema for it; returns the JSON answer (None for 204)."""
    url = "/api/v1" + path.format(**{k: urllib.parse.quote(str(v), safe="") for k, v in values.items()})
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    if data:
        headers["Content-Type"] = "application/json"
    answer = client.request(url, method=method, headers=headers, body=data, expect_errors=True)
    assert answer.status_int == status, (method, url, answer.status_int, answer.text)
    schema = response_schema(document, method, path, status)
    if schema is None:
        assert answer.body == b""
        return None
    assert answer.content_type == "application/json"
    value = json.loads(answer.text)
    assert problems(value, schema, document) == [], (method, path, status, value)
    return value


def test_the_document_and_the_route_table_agree(client, document) -> None:  # type: ignore[no-untyped-def]
    routes = {
        (route.method, openapi_path(route.rule.removeprefix(api.PREFIX)))
        for route in client.app.routes
        if route.rule.startswith(api.PREFIX + "/")
    }
    assert routes == operations(document)
    assert document["openapi"] == "3.1.0"
    # The schema check finds what does not match.
    host_list = {"$ref": "#/components/schemas/HostList"}
    assert problems({"hosts": [{"id": "1"}]}, host_list, document)
    assert problems({"hosts": [], "extra": 1}, host_list, document)
    # Every operation names its error answers, each with the error schema.
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method != "parameters" and path != "/openapi.json":
                assert {"401", "403", "429", "503"} <= set(operation["responses"]), (method, path)


def test_hosts_txt_and_tokens_through_the_api(db, client, document) -> None:  # type: ignore[no-untyped-def]
    alice = add_user(db, "alice")
    add_zone(db, ZONE)
    token, _ = tokens.create_grant(db, alice.id, "script", list(tokens.Scope))
    do = lambda *args, **kw: call(client, document, *args, token=token, **kw)  # noqa: E731
    assert do("GET", "/hosts", status=200) == {"hosts": []}
    made = do("POST", "/hosts", body={"label": "home", "zone": ZONE, "description": "router"}, status=201)
    name = made["host"]["name"]
    assert name == f"home.{ZONE}" and len(made["secret"]) >= 22
    assert hosts.get(db, name).description == "router"
    # The same checks and messages as the web form.
    error = do("POST", "/hosts", body={"label": "home", "zone": ZONE}, status=400)["error"]
    assert error == {"code": "invalid", "message": f"{name} is taken; choose another name.",
                     "fields": {"label": f"{name} is taken; choose another name."}}  # fmt: skip
    error = do("POST", "/hosts", body={"label": "-x", "zone": ZONE}, status=400)["error"]
    assert set(error["fields"]) == {"label"}
    error = do("POST", "/hosts", body={"label": "x", "zone": "nope.example"}, status=400)["error"]
    assert error["fields"] == {"zone": "Choose one of the zones."}
    assert do("POST", "/hosts", body={"zone": ZONE}, status=400)["error"]["fields"] == {
        "label": "This field is required."
    }
    assert do("POST", "/hosts", raw=b"{nope", status=400)["error"]["code"] == "bad_json"
    # A lone surrogate is valid JSON but no text.
    lone = do("POST", "/hosts", raw=b'{"label": "x", "zone": "' + ZONE.encode() + b'", "description": "\\ud800"}',
              status=400)  # fmt: skip
    assert lone["error"]["fields"] == {"description": "This field must be a string."}
    assert do("POST", "/hosts", body=["label"], status=400)["error"]["code"] == "bad_json"
    # Addresses: absent keeps, null removes, a bad one is refused with the form's message.
    set_ = do("PUT", "/hosts/{name}/addresses", name=name, body={"ipv4": "198.51.100.7"}, status=200)
    assert (set_["host"]["ipv4"], set_["changed"]) == ("198.51.100.7", True)
    set_ = do("PUT", "/hosts/{name}/addresses", name=name, body={"ipv6": "2001:db8::7"}, status=200)
    assert (set_["host"]["ipv4"], set_["host"]["ipv6"]) == ("198.51.100.7", "2001:db8::7")
    set_ = do("PUT", "/hosts/{name}/addresses", name=name, body={"ipv4": None}, status=200)
    assert (set_["host"]["ipv4"], set_["host"]["ipv6"]) == (None, "2001:db8::7")
    bad = do("PUT", "/hosts/{name}/addresses", name=name, body={"ipv4": "300.1.1.1"}, status=400)["error"]
    assert set(bad["fields"]) == {"ipv4"}
    assert do("PUT", "/hosts/{name}/addresses", name=name, body={}, status=400)["error"]["code"] == "invalid"
    # TTL, wildcard and description, within the zone's rules.
    edited = do("PATCH", "/hosts/{name}", name=name, body={"ttl": 300, "description": "nas"}, status=200)["host"]
    assert (edited["ttl"], edited["description"], edited["wildcard"]) == (300, "nas", False)
    assert do("PATCH", "/hosts/{name}", name=name, body={"wildcard": True}, status=200)["host"]["wildcard"]
    bad = do("PATCH", "/hosts/{name}", name=name, body={"ttl": 5}, status=400)["error"]
    assert set(bad["fields"]) == {"ttl"} and hosts.get(db, name).ttl == 300
    assert do("PATCH", "/hosts/{name}", name=name, body={"ttl": "5"}, status=400)["error"]["fields"] == {
        "ttl": "This field must be a whole number."
    }
    assert do("PATCH", "/hosts/{name}", name=name, body={"ttl": None}, status=200)["host"]["ttl"] is None
    # A new secret: the old one is replaced.
    renewed = do("POST", "/hosts/{name}/secret", name=name, status=200)
    assert (
        renewed["secret"] != made["secret"]
        and secrets.verify_host_secret(renewed["secret"], hosts.get(db, name).secret_hash).ok
    )
    # TXT records.
    added = do("POST", "/hosts/{name}/txt", name=name, body={"name": "_acme-challenge", "content": "abc"}, status=201)
    assert added["record"]["name"] == f"_acme-challenge.{name}"
    again = do("POST", "/hosts/{name}/txt", name=name, body={"name": "_acme-challenge", "content": "abc"}, status=200)
    assert again == added
    bad = do("POST", "/hosts/{name}/txt", name=name, body={"name": "a b", "content": 'q"'}, status=400)["error"]
    assert set(bad["fields"]) == {"name", "content"}
    detail = do("GET", "/hosts/{name}", name=name, status=200)
    assert detail["host"]["ipv6"] == "2001:db8::7" and detail["txt"] == [added["record"]]
    assert do("GET", "/hosts/{name}/txt", name=name, status=200) == {"txt": [added["record"]]}
    record_id = added["record"]["id"]
    do("DELETE", "/hosts/{name}/txt/{record_id}", name=name, record_id=record_id, status=204)
    do("DELETE", "/hosts/{name}/txt/{record_id}", name=name, record_id=record_id, status=404)
    assert records.for_host(db, hosts.get(db, name).id) == []
    # Tokens: made (shown once), listed without the secret, revoked.
    made_token = do("POST", "/tokens", body={"name": "acme", "scopes": ["txt"], "hosts": [name],
                                             "expires_in_days": 30}, status=201)  # fmt: skip
    assert made_token["token"]["hosts"] == [name] and made_token["token"]["scopes"] == ["txt"]
    listed = do("GET", "/tokens", status=200)["tokens"]
    assert [t["name"] for t in listed] == ["script", "acme"] and made_token["secret"] not in json.dumps(listed)
    assert listed[0]["last_used_at"] is not None
    bad = do("POST", "/tokens", body={"name": "", "scopes": ["root"]}, status=400)["error"]
    assert set(bad["fields"]) == {"name", "scopes"}
    bad = do("POST", "/tokens", body={"name": "x", "scopes": ["txt"], "expires_in_days": "soon"}, status=400)
    assert bad["error"]["fields"] == {"expires_in_days": "This field must be a whole number."}
    do("DELETE", "/tokens/{token_id}", token_id=made_token["token"]["id"], status=204)
    do("DELETE", "/tokens/{token_id}", token_id=made_token["token"]["id"], status=404)
    assert tokens.grant_for(db, made_token["secret"]) is None
    do("DELETE", "/hosts/{name}", name=name, status=204)
    do("GET", "/hosts/{name}", name=name, status=404)
    assert do("GET", "/hosts", status=200) == {"hosts": []}


def test_scopes_and_limits_of_tokens(db, client, document) -> None:  # type: ignore[no-untyped-def]
    alice, bob = add_user(db, "alice"), add_user(db, "bob")
    add_zone(db, ZONE)
    second = add_zone(db, OTHER_ZONE)
    home, office = add_host(db, alice, f"home.{ZONE}"), add_host(db, alice, f"office.{OTHER_ZONE}")
    theirs = add_host(db, bob, f"bob.{ZONE}")
    only_home, _ = tokens.create_grant(db, alice.id, "home", [tokens.Scope.API], host_ids=[home.id])
    zone_two, _ = tokens.create_grant(db, alice.id, "zone", [tokens.Scope.API], zone_id=second.id)
    no_api, _ = tokens.create_grant(db, alice.id, "router", [tokens.Scope.UPDATE])
    expiring, _ = tokens.create_grant(db, alice.id, "short", [tokens.Scope.API, tokens.Scope.TXT],
                                      expires_at=tokens.now() + 86400)  # fmt: skip

    def do(token: str | None, *args: Any, **kw: Any) -> Any:
        return call(client, document, *args, token=token, **kw)

    assert [h["name"] for h in do(only_home, "GET", "/hosts", status=200)["hosts"]] == [home.name]
    assert [h["name"] for h in do(zone_two, "GET", "/hosts", status=200)["hosts"]] == [office.name]
    # Hosts the token does not cover are not found, whoever's they are.
    for name in (office.name, theirs.name, "nope.example.org", "-bad-"):
        do(only_home, "GET", "/hosts/{name}", name=name, status=404)
        do(only_home, "DELETE", "/hosts/{name}", name=name, status=404)
    assert do(no_api, "GET", "/hosts", status=403)["error"]["code"] == "forbidden"
    # Adding hosts: a zone token in its zone only; a host token never.
    do(zone_two, "POST", "/hosts", body={"label": "new", "zone": OTHER_ZONE}, status=201)
    do(zone_two, "POST", "/hosts", body={"label": "new", "zone": ZONE}, status=403)
    do(only_home, "POST", "/hosts", body={"label": "new2", "zone": ZONE}, status=403)
    # Tokens are managed by all-hosts tokens, which make none that may do more or last longer.
    do(only_home, "GET", "/tokens", status=403)
    do(only_home, "POST", "/tokens", body={"name": "x", "scopes": ["api"]}, status=403)
    bad = do(expiring, "POST", "/tokens", body={"name": "x", "scopes": ["update"]}, status=400)["error"]["fields"]
    assert bad == {"scopes": "A token cannot make a token that may do more than itself.",
                   "expires_in_days": "A token cannot make a token that lasts longer than itself."}  # fmt: skip
    made = do(expiring, "POST", "/tokens", body={"name": "x", "scopes": ["txt"], "expires_in_days": 1}, status=201)
    assert made["token"]["expires_at"] <= tokens.grant_for(db, expiring).expires_at


def test_errors_are_json_and_failures_are_limited(db, make_app, document) -> None:  # type: ignore[no-untyped-def]
    client = make_app(interface={"login_failures_per_address": 3})
    alice = add_user(db, "alice")
    token, _ = tokens.create_grant(db, alice.id, "script", [tokens.Scope.API])
    assert call(client, document, "GET", "/hosts", status=401)["error"]["code"] == "unauthorized"
    for wrong in ("x" * 32, "y" * 32):
        call(client, document, "GET", "/hosts", token=wrong, status=401)
    assert call(client, document, "GET", "/hosts", token="z" * 32, status=429)["error"]["code"] == "rate_limited"
    # The right token is served all the same.
    call(client, document, "GET", "/hosts", token=token, status=200)
    # Paths and methods it does not have, and a session cookie, which the API does not read.
    answer = client.get("/api/v1/nothing", expect_errors=True)
    assert answer.status_int == 404 and answer.json["error"]["code"] == "not_found"
    answer = client.request("/api/v1/hosts", method="PATCH", expect_errors=True)
    assert answer.status_int == 405 and answer.json["error"]["code"] == "method_not_allowed"
    log_in_as(client, alice)
    assert client.get("/api/v1/hosts", expect_errors=True).status_int == 429
    answer = client.get("/api/v1/hosts", headers={"Authorization": "Basic YWxpY2U6eA=="}, expect_errors=True)
    assert answer.status_int == 429 and answer.headers["Retry-After"] == "60"
