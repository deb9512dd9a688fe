"""End to end: a real ddserver-updater (granian, two workers, group commit, host cache) behind a trusted proxy
records every change of concurrent clients in each host's history, no fresh nochg, and each wrong secret."""

from __future__ import annotations

import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ddserver import secrets
from ddserver.db import Database
from ddserver.store import history, hosts
from tests import support
from tests.updater_support import ZONE, basic, make_site, write_updater_config

HOSTS = 24
ROUNDS = 3


def _get(url: str, login: str, secret: str, client: str, tls: bool) -> str:
    headers = {
        "Authorization": basic(login, secret),
        "X-Forwarded-For": client,
        "X-Forwarded-Proto": "https" if tls else "http",
    }
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=20) as reply:
            return reply.read().decode().strip()
    except urllib.error.HTTPError as error:
        return error.read().decode().strip()


def test_concurrent_updates_enter_the_history(db: Database, db_url: str, tmp_path: Path) -> None:
    site = make_site(db)
    made = {}
    for n in range(HOSTS):
        secret = secrets.new_host_secret()
        host = hosts.add(db, site.alice.id, f"h{n}.{ZONE}", secrets.hash_host_secret(secret), default_limit=-1)
        made[host.name] = (host.id, secret)
    port = support.free_port()
    config = write_updater_config(
        tmp_path / "ddserver.conf", db_url, port, "workers = 2\nauth_failures_per_client = 0\n", threads=8
    )
    updater = support.Process(
        [support.console_script("ddserver-updater"), "--config", str(config)], log=tmp_path / "updater.log"
    )
    base = f"http://127.0.0.1:{port}/nic/update"

    def one(name: str, n: int) -> str:
        _, secret = made[name]
        return _get(f"{base}?hostname={name}&myip=198.51.100.{n + 1}", name, secret, f"203.0.113.{n + 1}", n % 2 == 0)

    try:
        updater.wait_port("127.0.0.1", port)
        with ThreadPoolExecutor(16) as pool:
            for n in range(ROUNDS):
                # Every host changes once per round, all at once: the group commit writes them in batches.
                answers = list(pool.map(lambda name, n=n: one(name, n), made))
                assert answers == [f"good 198.51.100.{n + 1}"] * HOSTS
            # The same again: nochg, answered while the status is fresh, recorded nowhere.
            answers = list(pool.map(lambda name: one(name, ROUNDS - 1), made))
            assert answers == [f"nochg 198.51.100.{ROUNDS}"] * HOSTS
            guesses = list(pool.map(lambda name: _get(base, name, "guess", "192.0.2.99", True), made))
            assert guesses == ["badauth"] * HOSTS
    finally:
        updater.stop()

    for name, (host_id, _) in made.items():
        entries = history.recent_updates(db, host_id, 100)
        assert [(e.result, e.client, e.tls, e.ipv4) for e in entries] == [
            ("good", f"203.0.113.{n + 1}", n % 2 == 0, f"198.51.100.{n + 1}") for n in reversed(range(ROUNDS))
        ], name
        assert entries[0].created_at == hosts.get(db, name).last_update_at
        failures = history.recent_auth_failures(db, host_id, 100)
        assert [(f.client, f.tls, f.reason) for f in failures] == [("192.0.2.99", True, "wrong-secret")], name
