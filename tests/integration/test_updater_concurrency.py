"""The updater under concurrent clients on MariaDB, and with the database stopped in the middle of a run."""

from __future__ import annotations

import random
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from ddserver import secrets
from ddserver.db import Database
from ddserver.store import changes, hosts, zones
from tests import support
from tests.updater_support import ZONE, basic, make_site, write_updater_config


@dataclass(frozen=True)
class Ack:
    host: str
    address: str
    sent: float
    received: float
    body: str


def send(port: int, host: str, secret: str, address: str) -> tuple[int, str]:
    url = f"http://127.0.0.1:{port}/nic/update?hostname={host}&myip={address}"
    request = urllib.request.Request(url, headers={"Authorization": basic(host, secret)})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def start_updater(tmp_path: Path, db_url: str, threads: int = 8) -> tuple[support.Process, int]:
    port = support.free_port()
    config = write_updater_config(tmp_path / "ddserver.conf", db_url, port, threads=threads)
    process = support.Process(
        [support.console_script("ddserver-updater"), "--config", str(config)], log=tmp_path / "updater.log"
    )
    process.wait_port("127.0.0.1", port)
    return process, port


@pytest.mark.mysql
@pytest.mark.slow
@pytest.mark.parametrize("dialect", ["mysql"])
def test_concurrent_updates_final_state_is_the_last_acknowledged(db: Database, db_url: str, tmp_path: Path) -> None:
    """16 client threads update 6 hosts of one zone at random through a real updater with 8 worker threads.

    Every answer is good with the address asked; the feed and the serial count every good exactly once; each
    host ends on an address that no later-sent acknowledged update superseded.
    """
    site = make_site(db)
    # Four more hosts of alice's, so the threads collide on hosts as well as on the zone's serial.
    names = [site.home.name, site.office.name, site.other.name]
    for label in ("h1", "h2", "h3"):
        secret = secrets.new_host_secret()
        host = hosts.add(db, site.alice.id, f"{label}.{ZONE}", secrets.hash_host_secret(secret), default_limit=-1)
        site.secrets[host.name] = secret
        names.append(host.name)
    serial = zones.get(db, ZONE).serial
    feed = changes.last_id(db)
    process, port = start_updater(tmp_path, db_url)
    acks: list[Ack] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client(tag: int) -> None:
        rng = random.Random(tag)
        for n in range(25):
            host = rng.choice(names)
            address = f"10.{tag}.{n}.1"
            sent = time.monotonic()
            status, body = send(port, host, site.secrets[host], address)
            received = time.monotonic()
            with lock:
                if status == 200 and body == f"good {address}\n":
                    acks.append(Ack(host, address, sent, received, body))
                else:
                    failures.append(f"{host} {address}: {status} {body!r}")

    try:
        threads = [threading.Thread(target=client, args=(tag,)) for tag in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        process.stop()
    assert failures == []
    assert len(acks) == 16 * 25
    # Every acknowledged change is in the feed and bumped the serial, once.
    fed = [c.name for c in changes.since(db, feed) if c.name in names]
    assert len(fed) == len(acks)
    assert zones.get(db, ZONE).serial == serial + len(acks)
    by_host: dict[str, list[Ack]] = defaultdict(list)
    for ack in acks:
        by_host[ack.host].append(ack)
    for name, host_acks in by_host.items():
        final = hosts.get(db, name).ipv4
        # The last acknowledged update: one that no other update of this host was sent after it completed.
        candidates = {a.address for a in host_acks if not any(b.sent > a.received for b in host_acks)}
        assert final in candidates, (name, final, sorted(candidates))


@pytest.mark.slow
def test_database_stopped_mid_run_answers_911_and_loses_nothing(private_mariadb, tmp_path: Path) -> None:
    """Updates flow; the database stops (911, no 500, no traceback), starts again, and updates flow again.

    Every ``good`` that was answered is in the database: the final address is the last acknowledged one, and
    the feed holds a change for every good.
    """
    url = private_mariadb.url("ddupdater")
    db = support.create_database(url)
    site = make_site(db)
    host, secret = site.home.name, site.secrets[site.home.name]
    feed = changes.last_id(db)
    process, port = start_updater(tmp_path, url, threads=4)
    answers: list[tuple[str, int, str]] = []
    stop = threading.Event()

    def client() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            address = f"10.1.{n // 250}.{n % 250 + 1}"
            status, body = send(port, host, secret, address)
            answers.append((address, status, body))
            time.sleep(0.01)

    worker = threading.Thread(target=client)
    try:
        worker.start()
        support.wait_until(lambda: sum(1 for a in answers if a[2].startswith("good")) >= 20, what="good answers")
        private_mariadb.stop()
        seen = len(answers)
        support.wait_until(lambda: sum(1 for a in answers[seen:] if a[2] == "911\n") >= 5, what="911 answers")
        private_mariadb.start()
        seen = len(answers)
        support.wait_until(
            lambda: sum(1 for a in answers[seen:] if a[2].startswith("good")) >= 20, timeout=60, what="recovery"
        )
    finally:
        stop.set()
        worker.join(60)
        process.stop()
    log = (tmp_path / "updater.log").read_text()
    assert "Traceback" not in log
    assert {status for _, status, _ in answers} == {200}
    assert {body.split()[0] for _, _, body in answers} <= {"good", "911"}
    goods = [address for address, _, body in answers if body.startswith("good")]
    assert answers[-1][2] == f"good {goods[-1]}\n"
    assert hosts.get(db, host).ipv4 == goods[-1]
    # A 911 may still have committed (the answer was lost, not the change), so the feed holds at least
    # every good and at most every request.
    fed = [c for c in changes.since(db, feed) if c.name == host]
    assert len(goods) <= len(fed) <= len(answers)
    db.close_all()
