"""The interface's /metrics through the WSGI app: logins, sign-ups, requests by route and status, who may read
it; and the request id of every answer."""

from __future__ import annotations

from tests.integration.interface.conftest import PASSWORD, add_user, form_for, log_in


def test_metrics_count_logins_signups_and_routes(db, make_app, mailbox) -> None:
    client = make_app(signup={"mode": "automatic"})
    add_user(db, "alice")
    assert log_in(client, "alice").status_int == 303
    client.reset()
    assert log_in(client, "alice", "wrong password 123").status_int == 401
    client.reset()
    form = form_for(client.get("/signup"), "/signup")
    form["username"], form["email"] = "carol", "carol@example.org"
    form["password"] = form["password2"] = PASSWORD
    form.submit()
    mailbox.wait_for("carol@example.org")
    client.get("/no/such/page", status=404)
    # Only from [interface] metrics_allow (127.0.0.1 and ::1 by default); the tests' client is 192.0.2.10.
    assert client.get("/metrics", status=403).text == "forbidden\n"
    text = client.get("/metrics", extra_environ={"REMOTE_ADDR": "127.0.0.1"}).text
    assert 'ddserver_interface_logins_total{result="ok"} 1' in text
    assert 'ddserver_interface_logins_total{result="failed"} 1' in text
    assert "ddserver_interface_signups_total 1" in text
    assert 'ddserver_interface_requests_total{method="POST",route="/login",status="401"} 1' in text
    assert 'ddserver_interface_requests_total{method="GET",route="(none)",status="404"} 1' in text
    assert "/no/such/page" not in text
    off = make_app(interface={"metrics": False})
    off.get("/metrics", extra_environ={"REMOTE_ADDR": "127.0.0.1"}, status=404)


def test_every_answer_has_a_request_id(client) -> None:
    assert client.get("/", headers={"X-Request-Id": "edge-42"}).headers["X-Request-Id"] == "edge-42"
    made = client.get("/nope", status=404, headers={"X-Request-Id": "x" * 300}).headers["X-Request-Id"]
    assert len(made) == 16
    assert len(client.get("/static/ddserver.css").headers["X-Request-Id"]) == 16


def test_request_lines_carry_client_host_and_request_id(db, make_app) -> None:
    import io
    import json
    import logging

    from ddserver import logs
    from tests.integration.interface.conftest import CLIENT, add_host, add_zone, log_in_as

    client = make_app(logging={"requests": True})
    alice = add_user(db, "alice", password=None)
    add_zone(db)
    host = add_host(db, alice, "home.dyn.example.org")
    log_in_as(client, alice)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter("ddserver-interface"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        client.get(f"/hosts/{host.id}", headers={"X-Request-Id": "page-7"})
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    line = next(json.loads(text) for text in stream.getvalue().splitlines() if '"page-7"' in text)
    assert (line["client"], line["host"], line["route"], line["status"]) == (
        CLIENT,
        "home.dyn.example.org",
        "/hosts/<host_id:int>",
        200,
    )
    assert line["message"].startswith("GET /hosts/<host_id:int> 200 ")
