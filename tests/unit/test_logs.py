"""Log lines (text and JSON), request ids, the scrubbing of secrets, and the metrics texts of the interface,
the RFC 2136 worker and the coprocesses' textfiles."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from ddserver import exposition, logs
from ddserver.interface.metrics import InterfaceMetrics
from ddserver.rfc2136.metrics import WorkerMetrics


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("ddserver.test", logging.WARNING, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return record


@pytest.mark.parametrize("incoming", ["3f2a9c", "0b8e5a0c-9b1e-4c1e-8f7e-2a1d5b3c4d5e", "lb.1:2@x_y-z"])
def test_a_sane_request_id_is_kept(incoming: str) -> None:
    assert logs.request_id(incoming) == incoming


@pytest.mark.parametrize("incoming", [None, "", "a" * 129, "x\ny", "-leading", 'quote"', "sp ace", "ü"])
def test_any_other_request_id_is_replaced(incoming: str | None) -> None:
    made = logs.request_id(incoming)
    assert made != incoming and len(made) == 16 and int(made, 16) >= 0


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("GET /nic/update?hostname=h&password=hunter2hunter2", "hunter2hunter2"),
        ("form: login=alice&password=Sw0rdfish!&next=/", "Sw0rdfish!"),
        ("Authorization: Basic aG9tZTpzZWNyZXRzZWNyZXQ=", "aG9tZTpzZWNyZXRzZWNyZXQ="),
        ("header {'HTTP_AUTHORIZATION': 'Bearer abcdef0123456789'}", "abcdef0123456789"),
        ("fetching https://home.dyn.example.org:Zx81secret@update.example.org/nic/update", "Zx81secret"),
        ("mysql://ddserver:dbpass99@db.example.org/ddserver unreachable", "dbpass99"),
        ("token=tok_abcdef012345 given", "tok_abcdef012345"),
    ],
)
def test_secrets_are_scrubbed(text: str, secret: str) -> None:
    scrubbed = logs.scrub(text)
    assert secret not in scrubbed and "(secret)" in scrubbed
    line = json.loads(logs.JsonFormatter("ddserver-test").format(_record("%s", text)))
    assert secret not in json.dumps(line)


def test_plain_text_is_left_alone() -> None:
    text = "basic settings of home.dyn.example.org: good 192.0.2.1 (key rollover next week)"
    assert logs.scrub(text) == text


def test_a_json_line_carries_the_request_context() -> None:
    formatter = logs.JsonFormatter("ddserver-updater")
    seen: dict[str, object] = {}

    def app(environ: dict, start_response):  # type: ignore[no-untyped-def]
        logs.set_fields(client="192.0.2.7", host="home.dyn.example.org")
        seen["line"] = json.loads(formatter.format(_record("update: %s", "good", result="good")))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"good\n"]

    started: list = []
    body = logs.serve_with_request_id(app, {"HTTP_X_REQUEST_ID": "abc-123"}, lambda s, h: started.append(h))
    assert list(body) == [b"good\n"] and ("X-Request-Id", "abc-123") in started[0]
    line = seen["line"]
    assert isinstance(line, dict)
    assert line["component"] == "ddserver-updater" and line["level"] == "warning" and line["pid"] == os.getpid()
    assert line["message"] == "update: good" and line["logger"] == "ddserver.test"
    assert line["ts"].endswith("Z") and line["ts"][10] == "T"
    assert (line["request_id"], line["client"], line["host"], line["result"]) == (
        "abc-123",
        "192.0.2.7",
        "home.dyn.example.org",
        "good",
    )
    # Outside a request: no context, and setting fields does nothing.
    logs.set_fields(client="192.0.2.8")
    outside = json.loads(formatter.format(_record("idle")))
    assert "request_id" not in outside and "client" not in outside
    # The text format names the request too.
    text = logs.TextFormatter("ddserver-updater").format(_record("x", request_id="abc-123"))
    assert text.endswith("ddserver.test: x [abc-123]")


def test_an_exception_is_one_json_line() -> None:
    try:
        raise ValueError("password=oops-a-secret")
    except ValueError:
        import sys

        record = logging.LogRecord("ddserver.x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    text = logs.JsonFormatter("ddserver").format(record)
    assert "\n" not in text
    line = json.loads(text)
    assert "ValueError" in line["exception"] and "oops-a-secret" not in line["exception"]


def test_interface_metrics_text() -> None:
    metrics = InterfaceMetrics()
    metrics.observe("GET", "/hosts/<host_id:int>", 200, 0.004)
    metrics.observe("GET", "/hosts/<host_id:int>", 200, 0.2)
    metrics.observe("PROPFIND", "(none)", 405, 0.001)
    metrics.login(True)
    metrics.login(False)
    metrics.login(False)
    metrics.signup()
    text = metrics.render()
    assert 'ddserver_interface_requests_total{method="GET",route="/hosts/<host_id:int>",status="200"} 2' in text
    assert 'ddserver_interface_requests_total{method="other",route="(none)",status="405"} 1' in text
    assert 'ddserver_interface_logins_total{result="ok"} 1' in text
    assert 'ddserver_interface_logins_total{result="failed"} 2' in text
    assert "ddserver_interface_signups_total 1" in text
    assert 'ddserver_interface_request_seconds_bucket{le="0.005"} 2' in text
    assert "ddserver_interface_request_seconds_count 3" in text


def test_rfc2136_metrics_text() -> None:
    metrics = WorkerMetrics()
    metrics.sent("dyn.example.org", 3)
    metrics.sent("dyn.example.org", 2)
    metrics.failed("other.example.org")
    metrics.pending("other.example.org", 1000.0)
    metrics.pending("other.example.org", 1005.0)  # not older: the oldest stays
    metrics.pass_done(42)
    text = metrics.render(now=1010.0)
    assert 'ddserver_rfc2136_updates_total{zone="dyn.example.org"} 2' in text
    assert 'ddserver_rfc2136_names_pushed_total{zone="dyn.example.org"} 5' in text
    assert 'ddserver_rfc2136_failures_total{zone="other.example.org"} 1' in text
    assert 'ddserver_rfc2136_lag_seconds{zone="other.example.org"} 10' in text
    assert 'ddserver_rfc2136_lag_seconds{zone="dyn.example.org"} 0' in text
    assert "ddserver_rfc2136_feed_position 42" in text and "ddserver_rfc2136_passes_total 1" in text
    metrics.pending("other.example.org", None)
    assert 'ddserver_rfc2136_lag_seconds{zone="other.example.org"} 0' in metrics.render(now=1010.0)


def test_textfiles_are_labelled_per_process_and_replaced_whole(tmp_path: Path) -> None:
    text = '# HELP a_total A.\n# TYPE a_total counter\na_total 3\nb{x="1"} 2\n'
    assert exposition.labelled(text, "process", "77") == (
        '# HELP a_total A.\n# TYPE a_total counter\na_total{process="77"} 3\nb{x="1",process="77"} 2\n'
    )
    exposition.write_textfile(tmp_path, "ddserver-recursor-1", "a 1\n")
    (tmp_path / "ddserver-recursor-999999999.prom").write_text("a 1\n")  # a process that is gone
    assert exposition.remove_stale_textfiles(tmp_path, "ddserver-recursor-", lambda pid: pid == 1) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddserver-recursor-1.prom"]


def test_the_error_that_ends_a_process_is_a_json_line_too(capsys: pytest.CaptureFixture[str]) -> None:
    from ddserver import console
    from ddserver.config import load_config
    from ddserver.errors import DDServerError

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def body(kind: str) -> int:
        console.setup_logging(load_config(env={"DDSERVER_LOGGING_FORMAT": kind}), "ddserver-test")
        raise DDServerError("database: mysql://ddserver:pw-123456@db/x cannot be reached")

    try:
        assert console.run(lambda: body("json"), "ddserver-test") == 1
        line = json.loads(capsys.readouterr().err)
        assert line["level"] == "error" and line["component"] == "ddserver-test"
        assert line["message"] == "database: mysql://ddserver:(secret)@db/x cannot be reached"
        assert console.run(lambda: body("text"), "ddserver-test") == 1
        assert capsys.readouterr().err.startswith("ddserver-test: database: ")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        console._errors_as_json[:] = [False]
