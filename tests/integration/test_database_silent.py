"""A database link that goes silent (a partition drops the packets, nothing is refused), through a proxy of
the test's own: every wait ends within the [database] timeouts (911 from the updater, a 503 page from the
interface), and the next request once the link is back is served on a new connection."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from ddserver.db import Database
from ddserver.errors import DatabaseError, DatabaseTimeout
from ddserver.recursor.follower import Follower
from ddserver.rfc2136.worker import Worker
from ddserver.store import hosts
from ddserver.updater.app import create_app as create_updater
from tests import support
from tests.blackhole import BOUND, BlackholeProxy, Threads, finishes
from tests.updater_support import ZONE, basic, call, make_site, updater_config

pytestmark = [pytest.mark.mysql, pytest.mark.parametrize("dialect", ["mysql"])]

HOME = f"home.{ZONE}"
#: Short timeouts, so that a test waits little (``BOUND`` is what a call may take with them).
TIMEOUTS = {"connect_timeout": 1, "read_timeout": 2, "job_read_timeout": 2}


def test_a_silent_connection_fails_once_and_is_replaced(
    db: Database, db_url: str, blackhole: BlackholeProxy, threads: Threads
) -> None:
    silent = Database(blackhole.url(db_url), connect_timeout=1, read_timeout=2)
    pool = threads.new()

    def echo(value: int) -> tuple[int, int]:
        return silent.read(lambda tx: (tx.scalar("SELECT ?", (value,)), tx.scalar("SELECT CONNECTION_ID()")))

    def echo_query(value: int) -> int:
        return silent.query(lambda tx: tx.scalar("SELECT ?", (value,)))

    def timeouts() -> tuple[float, float]:
        conn = silent._connection()
        return conn._read_timeout, conn._write_timeout

    first = finishes(pool, echo, 1)
    assert first[0] == 1
    # Set after the login, which waits connect_timeout (pymysql names these attributes as private).
    assert finishes(pool, timeouts) == (2, 2)
    opened = blackhole.accepted
    blackhole.blackhole()
    # The thread's open connection goes silent: one wait, and no second one on a new connection.
    with pytest.raises(DatabaseTimeout, match="did not answer"):
        finishes(pool, echo, 2)
    assert blackhole.accepted == opened
    # Then a new connection into the silent link, in a transaction and outside one.
    with pytest.raises(DatabaseTimeout, match="did not answer"):
        finishes(pool, echo, 3)
    support.wait_until(lambda: blackhole.accepted == opened + 1, timeout=5, what="the new connection")
    with pytest.raises(DatabaseTimeout, match="did not answer"):
        finishes(pool, echo_query, 4)
    support.wait_until(lambda: blackhole.accepted == opened + 2, timeout=5, what="the new connection")
    blackhole.restore()
    # Served on a new connection: no answer meant for a statement sent into the silence is read as this one's.
    value, connection = finishes(pool, echo, 5)
    assert value == 5 and connection != first[1]
    assert finishes(pool, echo_query, 6) == 6
    silent.close_all()


@pytest.mark.parametrize("cache", [0, 1000], ids=["host-cache-off", "host-cache-on"])
def test_updater_answers_911_while_the_link_is_silent(
    db: Database, db_url: str, blackhole: BlackholeProxy, threads: Threads, tmp_path: Path, cache: int
) -> None:
    site = make_site(db)
    config = support.make_config(blackhole.url(db_url), tmp_path, database=TIMEOUTS)
    app = create_updater(updater_config(config, host_cache=cache, host_cache_poll=0.2))

    def update(address: str) -> str:
        reply = call(app, "/nic/update", {"hostname": HOME, "myip": address}, auth=(HOME, site.secrets[HOME]))
        assert reply.status == 200
        return reply.body

    pool = threads.new()
    assert finishes(pool, update, "198.51.100.1") == "good 198.51.100.1\n"
    assert finishes(pool, update, "198.51.100.1") == "nochg 198.51.100.1\n"
    blackhole.blackhole()
    # Connections open in this thread (and the committer's), then new ones from another thread.
    assert finishes(pool, update, "198.51.100.2") == "911\n"
    assert finishes(threads.new(), update, "198.51.100.3") == "911\n"
    assert finishes(pool, update, "198.51.100.4") == "911\n"
    blackhole.restore()
    assert finishes(pool, update, "198.51.100.5") == "good 198.51.100.5\n"
    assert finishes(threads.new(), update, "198.51.100.6") == "good 198.51.100.6\n"
    app.config["ddserver.updater"].close()


def test_updater_process_answers_911_and_logs_one_line(
    db: Database, db_url: str, blackhole: BlackholeProxy, threads: Threads, tmp_path: Path
) -> None:
    site = make_site(db)
    port = support.free_port()
    config = tmp_path / "ddserver.conf"
    config.write_text(
        f"[database]\nurl = {blackhole.url(db_url)}\nconnect_timeout = 1\nread_timeout = 2\n\n"
        "[auth]\nsecret_key = test-secret-key\n\n"
        f"[updater]\nlisten = 127.0.0.1:{port}\nthreads = 2\nmin_interval = 0\nnochg_interval = 0\n"
    )

    def update(address: str) -> str:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/nic/update?hostname={HOME}&myip={address}",
            headers={"Authorization": basic(HOME, site.secrets[HOME])},
        )
        with urllib.request.urlopen(request, timeout=BOUND + 5) as reply:
            return reply.read().decode()

    log = tmp_path / "updater.log"
    with support.Process([support.console_script("ddserver-updater"), "--config", config], log=log) as process:
        process.wait_port("127.0.0.1", port)
        pool = threads.new()
        assert finishes(pool, update, "198.51.100.1") == "good 198.51.100.1\n"
        blackhole.blackhole()
        for address in ("198.51.100.2", "198.51.100.3", "198.51.100.4"):
            assert finishes(pool, update, address) == "911\n"
        blackhole.restore()
        assert finishes(pool, update, "198.51.100.5") == "good 198.51.100.5\n"
        assert finishes(pool, update, "198.51.100.5") == "nochg 198.51.100.5\n"
    text = log.read_text()
    assert "Traceback" not in text and "did not answer" in text, text[-3000:]


def test_follower_and_rfc2136_worker_give_up_and_recover(
    db: Database, db_url: str, blackhole: BlackholeProxy, threads: Threads, tmp_path: Path
) -> None:
    """Not on a request path, they wait job_read_timeout (short here) and retry, rather than hang."""
    site = make_site(db)
    config = support.make_config(blackhole.url(db_url), tmp_path, database=TIMEOUTS)
    follower = Follower(Database.from_config(config), poll_interval=0.1)
    worker = Worker(Database.from_config(config), config)
    pool = threads.new()
    finishes(pool, follower.load)
    finishes(pool, worker.run_pass)
    blackhole.blackhole()
    hosts.set_addresses(db, site.home.id, ipv4="198.51.100.7")
    with pytest.raises(DatabaseError):
        finishes(pool, follower.poll)
    with pytest.raises(DatabaseError):
        finishes(pool, worker.run_pass)
    blackhole.restore()
    assert finishes(pool, follower.poll) >= 1
    assert follower.index is not None and "198.51.100.7" in str(follower.index.hosts[HOME])
    finishes(pool, worker.run_pass)
    follower.db.close_all()
    worker.db.close_all()
