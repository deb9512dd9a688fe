"""Logs and metrics of the real processes: with ``[logging] format = json`` every line each process writes
(the ``ddserver`` command, the interface, the updater, the bundle, a pipe-mode recursor, the RFC 2136 worker)
is one JSON object with its fields; request ids come back; a secret sent in a request is never in a log; the
metrics pages are scraped, and the coprocesses' textfiles are read by node-exporter's textfile collector."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from ddserver import passwords, secrets
from ddserver.store import hosts, users, zones
from tests import named as named_support
from tests import support
from tests.integration.test_recursor import populate

named = named_support.named  # the fixture

#: What a test sends as passwords and secrets: it must appear in no log.
SECRET = "Leak-Me-Not-7f3a9c21e0"
JSON_ENV = {"DDSERVER_LOGGING_FORMAT": "json", "DDSERVER_LOGGING_REQUESTS": "yes"}


def json_lines(text: str, component: str) -> list[dict[str, Any]]:
    """Every line of ``text`` as a JSON object with the fields every line carries (a line that is not one
    fails the test)."""
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert lines, f"{component} logged nothing"
    for line in lines:
        assert {"ts", "level", "component", "logger", "pid", "message"} <= set(line), line
        assert line["component"] == component and line["level"] in ("debug", "info", "warning", "error")
    return lines


def _get(url: str, headers: dict[str, str] | None = None, data: bytes | None = None) -> tuple[int, dict, str]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def _env(**extra: str) -> dict[str, str]:
    return dict(os.environ, **JSON_ENV, **extra)


def _server(tmp_path: Path, name: str, config: Path, port: int, **env: str) -> support.Process:
    process = support.Process(
        [support.console_script(name), "--config", config, "--listen", f"127.0.0.1:{port}"],
        log=tmp_path / f"{name}.log",
        cwd=tmp_path,
        env=_env(**env),
    )
    process.wait_port("127.0.0.1", port)
    return process


def test_the_command_and_the_web_processes(tmp_path: Path) -> None:
    url = support.new_database_url("sqlite", tmp_path)
    config = support.write_config_file(tmp_path / "ddserver.conf", url, "[updater]\nserver = waitress\nthreads = 2\n")
    # The ddserver command: init applies the migrations, a line each.
    init = subprocess.run(
        [support.console_script("ddserver"), "--config", str(config), "init"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=_env(),
    )
    assert init.returncode == 0, init.stderr
    assert any("applying migration" in line["message"] for line in json_lines(init.stderr, "ddserver"))

    db = support.create_database(url)
    try:
        zones.add(db, "dyn.example.org", ["ns1.example.org"], "hostmaster.example.org")
        alice = users.add(db, "alice", "alice@example.org", password_hash=passwords.hash_password("x" * 12))
        secret = secrets.new_host_secret()
        hosts.add(db, alice.id, "home.dyn.example.org", secrets.hash_host_secret(secret), default_limit=-1)
        _updater(tmp_path, config, secret)
        _interface(tmp_path, config)
        _bundle(tmp_path, config)
    finally:
        db.close_all()


def _updater(tmp_path: Path, config: Path, secret: str) -> None:
    port = support.free_port()
    updater = _server(tmp_path, "ddserver-updater", config, port)
    try:
        base = f"http://127.0.0.1:{port}"
        auth = "Basic " + base64.b64encode(f"home.dyn.example.org:{secret}".encode()).decode()
        status, headers, body = _get(
            f"{base}/nic/update?hostname=home.dyn.example.org&myip=192.0.2.5",
            {"Authorization": auth, "X-Request-Id": "router-req-1"},
        )
        assert (status, body) == (200, "good 192.0.2.5\n") and headers["X-Request-Id"] == "router-req-1"
        # A wrong secret, in the header and in the URL as some routers send it: an id is made for it.
        wrong = "Basic " + base64.b64encode(f"home.dyn.example.org:{SECRET}".encode()).decode()
        query = urllib.parse.urlencode({"hostname": "home.dyn.example.org", "password": SECRET, "myip": "192.0.2.6"})
        status, headers, body = _get(
            f"{base}/nic/update?{query}", {"Authorization": wrong, "X-Request-Id": "not sane; " * 3}
        )
        assert body == "badauth\n" and len(headers["X-Request-Id"]) == 16
        support.wait_until(lambda: "badauth" in updater.log(), 10)
    finally:
        updater.stop()
    log = updater.log()
    assert SECRET not in log and secret not in log
    lines = json_lines(log, "ddserver-updater")
    good = next(line for line in lines if line.get("request_id") == "router-req-1")
    assert (good["client"], good["host"], good["result"], good["status"]) == (
        "127.0.0.1",
        "home.dyn.example.org",
        "good",
        200,
    )
    bad = next(line for line in lines if line.get("result") == "badauth")
    assert bad["request_id"] == headers["X-Request-Id"] and bad["status"] == 401


def _interface(tmp_path: Path, config: Path) -> None:
    port = support.free_port()
    interface = _server(tmp_path, "ddserver-interface", config, port)
    try:
        base = f"http://127.0.0.1:{port}"
        # A login with a wrong password (the form without its CSRF token is refused before it is read, so
        # take the page's token and cookie first).
        status, headers, page = _get(f"{base}/login", {"X-Request-Id": "web-1"})
        assert status == 200 and headers["X-Request-Id"] == "web-1"
        token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        cookie = headers["Set-Cookie"].split(";", 1)[0]
        form = urllib.parse.urlencode({"csrf_token": token, "login": "alice", "password": SECRET}).encode()
        status, _, _ = _get(f"{base}/login", {"Cookie": cookie, "X-Request-Id": "web-2"}, form)
        assert status == 401
        status, _, metrics = _get(f"{base}/metrics")
        assert status == 200
        assert 'ddserver_interface_logins_total{result="failed"} 1' in metrics
        assert 'ddserver_interface_requests_total{method="POST",route="/login",status="401"} 1' in metrics
        assert 'ddserver_interface_requests_total{method="GET",route="/login",status="200"} 1' in metrics
        support.wait_until(lambda: "web-2" in interface.log(), 10)
    finally:
        interface.stop()
    log = interface.log()
    assert SECRET not in log
    lines = json_lines(log, "ddserver-interface")
    login = next(line for line in lines if line.get("request_id") == "web-2")
    assert (login["client"], login["method"], login["route"], login["status"]) == ("127.0.0.1", "POST", "/login", 401)


def _bundle(tmp_path: Path, config: Path) -> None:
    port = support.free_port()
    bundle = _server(tmp_path, "ddserver-bundle", config, port)
    try:
        base = f"http://127.0.0.1:{port}"
        assert _get(f"{base}/nic/ip")[2] == "127.0.0.1\n"
        status, headers, metrics = _get(f"{base}/metrics", {"X-Request-Id": "scrape-1"})
        # One page with the interface's metrics and the updater's.
        assert status == 200 and headers["X-Request-Id"] == "scrape-1"
        assert "ddserver_interface_requests_total" in metrics and "ddserver_updater_requests_total" in metrics
    finally:
        bundle.stop()
    lines = json_lines(bundle.log(), "ddserver-bundle")
    assert any(line["message"].startswith("ddserver-bundle listening") for line in lines)


def test_pipe_coprocesses_write_textfiles_that_node_exporter_reads(tmp_path: Path) -> None:
    exporter_bin = support.require_binary("prometheus-node-exporter")
    url = support.new_database_url("sqlite", tmp_path)
    db = support.create_database(url)
    populate(db)
    db.close_all()
    config = support.write_config_file(tmp_path / "ddserver.conf", url, "[recursor]\npurge = none\n")
    textfiles = tmp_path / "textfiles"
    textfiles.mkdir()
    env = _env(
        DDSERVER_RECURSOR_METRICS_TEXTFILE_DIR=str(textfiles),
        DDSERVER_RECURSOR_METRICS_TEXTFILE_INTERVAL="0.2",
        DDSERVER_RECURSOR_SNAPSHOT_DIR=str(tmp_path / "snap"),
    )
    # Two coprocesses, as PowerDNS starts one per backend thread.
    coprocesses = [
        subprocess.Popen(
            [support.console_script("ddserver-recursor"), "--config", str(config), "--pipe"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for _ in range(2)
    ]
    port = support.free_port()
    exporter = support.Process(
        [exporter_bin, f"--web.listen-address=127.0.0.1:{port}", "--collector.disable-defaults",
         "--collector.textfile", f"--collector.textfile.directory={textfiles}"],
        log=tmp_path / "node-exporter.log",
    )  # fmt: skip
    try:
        for n, coprocess in enumerate(coprocesses):
            assert coprocess.stdin is not None and coprocess.stdout is not None
            coprocess.stdin.write(b"HELO\t1\n")
            for _ in range(n + 1):
                coprocess.stdin.write(b"Q\thome.dyn.example.org\tIN\tA\t-1\t127.0.0.1\n")
            coprocess.stdin.flush()
            assert coprocess.stdout.readline().startswith(b"OK")
        files = [textfiles / f"ddserver-recursor-{c.pid}.prom" for c in coprocesses]

        def counted() -> bool:
            texts = [f.read_text() if f.exists() else "" for f in files]
            return all(
                f'result="answer",process="{c.pid}"}} {n + 1}' in t
                for n, (c, t) in enumerate(zip(coprocesses, texts, strict=True))
            )

        support.wait_until(counted, 30, what="the coprocesses' metrics files")
        exporter.wait_port("127.0.0.1", port)
        _, _, scraped = _get(f"http://127.0.0.1:{port}/metrics")
        # node-exporter took both files (a file it cannot parse would set its scrape error to 1).
        assert "node_textfile_scrape_error 0" in scraped
        for n, coprocess in enumerate(coprocesses):
            sample = f'ddserver_recursor_queries_total{{process="{coprocess.pid}",qtype="A",result="answer"}} {n + 1}'
            assert sample in scraped, scraped[-3000:]
            assert f'ddserver_recursor_hosts{{process="{coprocess.pid}"}} 6' in scraped
        # PowerDNS closes the pipe: the coprocess leaves and removes its file; its log lines are JSON.
        for coprocess in coprocesses:
            _, err = coprocess.communicate(timeout=30)
            assert coprocess.returncode == 0, err.decode()
            lines = json_lines(err.decode(), "ddserver-recursor")
            assert any(line["message"].startswith(("loaded", "started from the snapshot")) for line in lines)
        assert not any(f.exists() for f in files)
    finally:
        exporter.stop()
        for coprocess in coprocesses:
            if coprocess.poll() is None:
                coprocess.kill()
                coprocess.wait(10)


def _metric(text: str, sample: str) -> float:
    """The value of one sample (``name{labels}``) of an exposition text, or -1 when it is not there."""
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return -1.0


def test_rfc2136_worker_metrics_and_json_logs(db, db_url: str, tmp_path: Path, named, monkeypatch) -> None:
    from ddserver import cli

    config = support.write_config_file(
        tmp_path / "ddserver.conf", db_url, "[rfc2136]\ntimeout = 2\nretry_min = 0.2\nretry_max = 1\n"
    )
    monkeypatch.setenv("DDSERVER_AUTH_SECRET_KEY_FILE", str(tmp_path / "secret"))
    added = cli.main(
        ["--config", str(config), "zone", "add", "dyn.example.org", "--ns", "ns1.dyn.example.org",
         "--hostmaster", "hostmaster@example.org", "--rfc2136", named.server, "--tsig-name", named.key_name,
         "--tsig-secret-file", str(named.folder / "secret")]
    )  # fmt: skip
    assert added == 0
    alice = users.add(db, "alice", "alice@example.org")
    home = hosts.add(db, alice.id, "home.dyn.example.org", "x" * 64, default_limit=-1)
    port = support.free_port()
    worker = support.Process(
        [support.console_script("ddserver-rfc2136"), "--config", config],
        log=tmp_path / "rfc2136.log",
        env=_env(DDSERVER_RFC2136_METRICS=f"127.0.0.1:{port}"),
    )
    zone = 'zone="dyn.example.org"'
    try:
        worker.wait_port("127.0.0.1", port)
        hosts.set_addresses(db, home.id, ipv4="192.0.2.77")
        support.wait_until(lambda: named.query("home.dyn.example.org") == ["192.0.2.77"], 30)

        def scraped() -> str:
            return _get(f"http://127.0.0.1:{port}/metrics")[2]

        support.wait_until(lambda: _metric(scraped(), f"ddserver_rfc2136_updates_total{{{zone}}}") >= 1, 10)
        text = scraped()
        assert _metric(text, f"ddserver_rfc2136_names_pushed_total{{{zone}}}") >= 1
        assert _metric(text, f"ddserver_rfc2136_lag_seconds{{{zone}}}") == 0
        assert _metric(text, "ddserver_rfc2136_feed_position") >= 1 and "ddserver_rfc2136_database_up 1" in text
        # The nameserver goes away: the change waits, counted as failures, and its lag grows.
        named.stop()
        hosts.set_addresses(db, home.id, ipv4="192.0.2.78")
        support.wait_until(lambda: _metric(scraped(), f"ddserver_rfc2136_failures_total{{{zone}}}") >= 2, 30)
        support.wait_until(lambda: _metric(scraped(), f"ddserver_rfc2136_lag_seconds{{{zone}}}") > 0, 10)
    finally:
        worker.stop()
    log = worker.log()
    assert named.secret not in log
    lines = json_lines(log, "ddserver-rfc2136")
    assert any("pushed" in line["message"] for line in lines)
    assert any(line["level"] == "error" for line in lines)
