"""ddserver-updater under gunicorn and granian ([updater] server), with several worker processes on MariaDB:
the same answers as under waitress, forwarded headers read by the app alone, concurrent changes all committed,
and a clean stop."""

from __future__ import annotations

import importlib
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ddserver import secrets
from ddserver.db import Database
from ddserver.store import changes, hosts
from tests import support
from tests.updater_support import ZONE, basic, host_row, make_site, write_updater_config

HOME = f"home.{ZONE}"


def get(port: int, query: str, auth: tuple[str, str] | None, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/nic/update?{query}", headers=headers or {})
    if auth is not None:
        request.add_header("Authorization", basic(*auth))
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.mysql
@pytest.mark.slow
@pytest.mark.parametrize("dialect", ["mysql"])
@pytest.mark.parametrize("server", ["gunicorn", "granian"])
def test_updater_with_worker_processes(server: str, db: Database, db_url: str, tmp_path: Path) -> None:
    try:
        importlib.import_module(server)
    except ImportError:
        support.missing(f"{server} is not installed (it comes with the updater extra)")
    site = make_site(db)
    names = []
    for n in range(8):
        secret = secrets.new_host_secret()
        host = hosts.add(db, site.alice.id, f"w{n}.{ZONE}", secrets.hash_host_secret(secret), default_limit=-1)
        site.secrets[host.name] = secret
        names.append(host.name)
    port = support.free_port()
    config = write_updater_config(
        tmp_path / "ddserver.conf", db_url, port, f"server = {server}\nworkers = 2\n", threads=4
    )
    process = support.Process(
        [support.console_script("ddserver-updater"), "--config", str(config)], log=tmp_path / "updater.log"
    )
    try:
        process.wait_port("127.0.0.1", port)
        auth = (HOME, site.secrets[HOME])
        support.wait_until(lambda: get(port, "myip=198.51.100.1", auth)[0] == 200, what=f"{server} workers")
        assert get(port, "myip=198.51.100.1", auth) == (200, "nochg 198.51.100.1\n")
        assert get(port, "myip=198.51.100.2", auth) == (200, "good 198.51.100.2\n")
        status, body = get(port, "myip=198.51.100.3", (HOME, "wrong"))
        assert (status, body) == (401, "badauth\n")
        # The app reads forwarded headers itself (127.0.0.1 is a trusted proxy by default); the server must
        # pass them through untouched and not rewrite the scheme or the address on its own.
        forwarded = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
        assert get(port, "", auth, forwarded) == (200, "good 203.0.113.7\n")
        row = host_row(db, HOME)
        assert (row["last_client"], row["last_tls"]) == ("203.0.113.7", 1)

        # Concurrent changes through both workers (each with its own committer): every good is committed.
        feed = changes.last_id(db)
        failures: list[str] = []
        last: dict[str, str] = {}

        def client(tag: int) -> None:
            name = names[tag]
            for n in range(10):
                address = f"10.{tag}.{n}.1"
                answer = get(port, f"hostname={name}&myip={address}", (name, site.secrets[name]))
                if answer != (200, f"good {address}\n"):
                    failures.append(f"{name}: {answer}")
                last[name] = address

        threads = [threading.Thread(target=client, args=(tag,)) for tag in range(len(names))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert failures == []
        assert {name: hosts.get(db, name).ipv4 for name in names} == last
        assert len([c for c in changes.since(db, feed) if c.name in names]) == 10 * len(names)

        # /metrics, whichever worker answers it, counts the answers of both (shared about once a second).
        def metrics() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
                return reply.read().decode()

        goods = 3 + 10 * len(names)
        support.wait_until(
            lambda: all(f'ddserver_updater_answers_total{{code="good"}} {goods}\n' in metrics() for _ in range(4)),
            what="metrics of both workers",
        )
        # Each worker shares its counters about once a second: wait for the badauth line as for the goods, and
        # show the last page read if it never comes.
        seen: list[str] = []

        def badauth_counted() -> bool:
            seen.append(metrics())
            return 'ddserver_updater_answers_total{code="badauth"} 1\n' in seen[-1]

        try:
            support.wait_until(badauth_counted, timeout=10, what="the badauth answer in the metrics")
        except TimeoutError:
            raise AssertionError(seen[-1] if seen else "no metrics read") from None
    finally:
        returncode = process.stop()
    assert returncode == 0, process.log_path.read_text()[-3000:]
    assert "Traceback" not in process.log_path.read_text()
