"""The ddserver-recursor process itself: imports without web dependencies, survives garbage on every
protocol, serves metrics, and keeps answering from memory while the database is away."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import typing
import urllib.request
from pathlib import Path

import pytest

from ddserver.store import hosts, zones
from tests import support
from tests.integration.test_recursor import ZONE, populate

BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("bottle", "jinja2", "passlib", "argon2", "waitress"):
            raise ImportError(f"{name} is blocked in this test")
sys.meta_path.insert(0, Block())
from ddserver.recursor.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, object, dict]:
    url = support.new_database_url("sqlite", tmp_path)
    db = support.create_database(url)
    data = populate(db)
    config = support.write_config_file(tmp_path / "ddserver.conf", url, "[recursor]\npurge = none\n")
    return config, db, data


def _pipe(config: Path, lines: list[bytes], env: dict[str, str] | None = None, blocked: bool = False) -> bytes:
    argv = [sys.executable, "-c", BLOCKER] if blocked else [support.console_script("ddserver-recursor")]
    environment = dict(os.environ, DDSERVER_RECURSOR_SNAPSHOT_DIR=str(config.parent / "snap"), **(env or {}))
    result = subprocess.run(
        [*argv, "--config", str(config), "--pipe"],
        input=b"".join(line + b"\n" for line in lines),
        capture_output=True,
        timeout=60,
        env=environment,
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def test_recursor_runs_without_bottle_jinja2_or_passlib(setup) -> None:  # type: ignore[no-untyped-def]
    config, _, _ = setup
    out = _pipe(config, [b"HELO\t1", b"Q\thome.dyn.example.org\tIN\tA\t-1\t127.0.0.1"], blocked=True)
    assert out.decode().splitlines()[1:] == ["DATA\thome.dyn.example.org\tIN\tA\t60\t1\t192.0.2.1", "END"]


@pytest.mark.parametrize("mode", ["--pipe", "--remote-pipe"])
def test_handshake_answered_before_the_daemon_loads(mode: str, tmp_path: Path) -> None:
    """PowerDNS stops for good when a coprocess it starts with does not answer its handshake within
    pipe-timeout: the handshake comes first, even before the configuration is read (here: a missing one)."""
    first = b"HELO\t5\n" if mode == "--pipe" else b'{"method": "initialize", "parameters": {}}\n'
    result = subprocess.run(
        [support.console_script("ddserver-recursor"), "--config", str(tmp_path / "missing.conf"), mode],
        input=first,
        capture_output=True,
        timeout=60,
    )
    assert result.stdout in (b"OK\tddserver recursor (ABI 5)\n", b'{"result":true}\n')
    assert result.returncode == 1 and b"missing.conf" in result.stderr and b"Traceback" not in result.stderr


def test_pipe_process_answers_garbage_and_keeps_going(setup) -> None:  # type: ignore[no-untyped-def]
    config, _, _ = setup
    rng = random.Random(4)
    garbage = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))).replace(b"\n", b"") for _ in range(200)]
    garbage += [b"x" * 100000, b"Q\t\t\t\t\t", b"AXFR\t-5", b"CMD\tstats", b"\r"]
    query = b"Q\thome.dyn.example.org\tIN\tAAAA\t-1\t127.0.0.1"
    out = _pipe(config, [b"HELO\t1", *garbage, query]).decode("latin-1")
    answers = out.split("\n")
    assert answers[0].startswith("OK\t")
    # One END or FAIL per request line, and the last query still answered properly.
    assert sum(1 for a in answers if a in ("END", "FAIL")) == len(garbage) + 1
    assert "DATA\thome.dyn.example.org\tIN\tAAAA\t60\t1\t2001:db8::1" in answers[-4:]


def test_coprocess_stuck_on_an_answer_exits(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """With PowerDNS's pipe-timeout at 0 the coprocess guards itself: idle for longer than
    coprocess_timeout it stays; stuck on one answer that long (here: a PowerDNS that stops reading while
    the coprocess writes 150 KB of answers) it logs one line and exits, and PowerDNS would start another."""
    config, _, _ = setup
    env = dict(
        os.environ,
        DDSERVER_RECURSOR_SNAPSHOT_DIR=str(tmp_path / "snap"),
        DDSERVER_RECURSOR_COPROCESS_TIMEOUT="2",
    )
    query = b"Q\thome.dyn.example.org\tIN\tA\t-1\t127.0.0.1\n"
    with open(tmp_path / "stderr", "wb") as stderr:
        process = subprocess.Popen(
            [support.console_script("ddserver-recursor"), "--config", str(config), "--pipe"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
        )
        try:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(b"HELO\t1\n" + query)
            process.stdin.flush()
            assert process.stdout.readline().startswith(b"OK\t")
            assert process.stdout.readline().startswith(b"DATA\thome.dyn.example.org")
            assert process.stdout.readline() == b"END\n"
            time.sleep(3)  # waiting for PowerDNS for longer than the timeout
            assert process.poll() is None
            # 3,000 questions at once, their answers never read: the write blocks when the pipe is full.
            writer = threading.Thread(target=_write_ignoring_errors, args=(process.stdin, query * 3000), daemon=True)
            writer.start()
            assert process.wait(30) == 3
        finally:
            process.kill()
            process.wait()
    log = (tmp_path / "stderr").read_text()
    assert "no answer after" in log and "Traceback" not in log


def _write_ignoring_errors(stream: typing.IO[bytes], data: bytes) -> None:
    with contextlib.suppress(OSError):
        stream.write(data)
        stream.flush()


def _ask(sock: socket.socket, message: bytes) -> dict:
    sock.sendall(message + b"\n")
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        assert chunk, "the recursor closed the connection"
        data += chunk
    return json.loads(data)


def test_socket_server_garbage_metrics_and_signals(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config, db, data = setup
    path = tmp_path / "r.sock"
    port = support.free_port()
    recursor = support.Process(
        [support.console_script("ddserver-recursor"), "--config", str(config), "--remote-socket", str(path),
         "--metrics", f"127.0.0.1:{port}"],
        log=tmp_path / "recursor.log",
    )  # fmt: skip
    try:
        recursor.wait_for(path.exists, 30, "the socket")
        socks = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(3)]
        for s in socks:
            s.settimeout(10)
            s.connect(str(path))
        lookup = b'{"method":"lookup","parameters":{"qtype":"A","qname":"home.dyn.example.org.","zone-id":1}}'
        assert _ask(socks[0], lookup)["result"][0]["content"] == "192.0.2.1"
        for bad in (b"nonsense", b"{}", b'{"method":"dropTables","parameters":{}}', b"[1,2]", b"\xff" * 10):
            answer = _ask(socks[1], bad)
            assert answer["result"] is False and answer["log"]
        assert _ask(socks[2], b"{" * 70000)["result"] is False  # oversized: refused, connection kept
        assert _ask(socks[2], lookup)["result"][0]["content"] == "192.0.2.1"
        socks[1].close()  # a connection going away does not disturb the others
        assert _ask(socks[0], lookup)["result"][0]["content"] == "192.0.2.1"
        # A lookup as PowerDNS writes it: read in one step, then from the cache; counted both times.
        params = {"local": "192.0.2.53", "qname": "home.dyn.example.org.", "qtype": "ANY",
                  "real-remote": "127.0.0.1/32", "remote": "127.0.0.1", "zone-id": 1}  # fmt: skip
        plain = json.dumps({"method": "lookup", "parameters": params}, sort_keys=True).encode()
        for s in (socks[0], socks[2]):
            assert _ask(s, plain)["result"][0]["content"] == "192.0.2.1"
        # The metrics.
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        assert 'ddserver_recursor_queries_total{qtype="A",result="answer"} 3' in text
        assert 'ddserver_recursor_queries_total{qtype="ANY",result="answer"} 2' in text
        assert "ddserver_recursor_reloads_total 1" in text and "ddserver_recursor_hosts 6" in text
        # A change is followed and counted.
        hosts.set_addresses(db, data["home"].id, ipv4="203.0.113.5")
        support.wait_until(lambda: _ask(socks[0], lookup)["result"][0]["content"] == "203.0.113.5", 10)
        last = zones.get(db, ZONE).serial
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        assert "ddserver_recursor_changes_applied_total 1" in text
        assert _ask(socks[0], b'{"method":"getAllDomains","parameters":{}}')["result"][0]["serial"] == last
        # SIGTERM: a clean exit that removes the socket.
        recursor.signal(signal.SIGTERM)
        recursor.proc.wait(10)
        assert recursor.proc.returncode == 0 and not path.exists()
    finally:
        recursor.stop()


def _lines(sock: socket.socket, message: bytes, count: int) -> list[str]:
    """Send ``message`` and read the lines of ``count`` whole answers (each ends with END, FAIL or OK)."""
    sock.sendall(message)
    data = b""

    def ends() -> int:
        return sum(1 for line in data.split(b"\n")[:-1] if line in (b"END", b"FAIL") or line.startswith(b"OK\t"))

    while ends() < count:
        chunk = sock.recv(65536)
        assert chunk, "the recursor closed the connection"
        data += chunk
    return data.decode("latin-1").splitlines()


def test_pipe_socket_sessions_and_garbage(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """--pipe-socket: each connection has its own handshake and ABI; garbage gets FAIL, never silence."""
    config, _, _ = setup
    path = tmp_path / "p.sock"
    recursor = support.Process(
        [support.console_script("ddserver-recursor"), "--config", str(config), "--pipe-socket", str(path)],
        log=tmp_path / "recursor.log",
    )
    try:
        recursor.wait_for(path.exists, 30, "the socket")
        old, new, early = (socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(3))
        for s in (old, new, early):
            s.settimeout(10)
            s.connect(str(path))
        # A query before any handshake fails; the connection stays usable.
        assert _lines(early, b"Q\thome.dyn.example.org\tIN\tA\t-1\t127.0.0.1\n", 1)[-1] == "FAIL"
        assert _lines(old, b"HELO\t1\n", 1)[0].startswith("OK\t")
        assert _lines(new, b"HELO\t3\n", 1)[0].startswith("OK\t")
        v1 = _lines(old, b"Q\thome.dyn.example.org\tIN\tA\t-1\t127.0.0.1\n", 1)
        assert v1 == ["DATA\thome.dyn.example.org\tIN\tA\t60\t1\t192.0.2.1", "END"]
        v3 = _lines(new, b"Q\thome.dyn.example.org\tIN\tA\t-1\t127.0.0.1\t0.0.0.0\t0.0.0.0/0\n", 1)
        assert v3 == ["DATA\t0\t1\thome.dyn.example.org\tIN\tA\t60\t1\t192.0.2.1", "END"]
        rng = random.Random(5)
        garbage = [
            bytes(rng.randrange(256) for _ in range(rng.randrange(1, 100))).replace(b"\n", b"") for _ in range(50)
        ]
        garbage += [b"x" * 100000, b"Q\t\t\t\t\t", b"AXFR\t-5", b"\r"]
        answers = _lines(new, b"".join(g + b"\n" for g in garbage), len(garbage))
        assert len([a for a in answers if a in ("END", "FAIL")]) == len(garbage)
        # Both connections still answer in their own layout.
        assert _lines(old, b"Q\thome.dyn.example.org\tIN\tA\t-1\t127.0.0.1\n", 1) == v1
        assert _lines(new, b"Q\thome.dyn.example.org\tIN\tA\t-1\t127.0.0.1\t0.0.0.0\t0.0.0.0/0\n", 1) == v3
        recursor.signal(signal.SIGTERM)
        recursor.proc.wait(10)
        assert recursor.proc.returncode == 0 and not path.exists()
        assert "Traceback" not in recursor.log()
    finally:
        recursor.stop()
