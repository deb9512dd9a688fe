"""The database layer against real servers: reconnection after a restart, concurrent writers."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest

from ddserver.db import Database
from ddserver.db import migrate as migrations
from ddserver.errors import DatabaseUnavailable
from ddserver.store import changes, hosts, users, zones


def test_reconnects_after_mariadb_restart(private_mariadb):
    db = Database(private_mariadb.url("ddserver"))
    migrations.migrate(db)
    zone = zones.add(db, "dyn.example.org", ["ns1.example.org"], "hostmaster.example.org")
    private_mariadb.stop()
    with pytest.raises(DatabaseUnavailable):
        zones.get_by_id(db, zone.id)
    private_mariadb.start()
    # No new Database object and no process restart: the next call reconnects.
    assert zones.get_by_id(db, zone.id).name == "dyn.example.org"
    private_mariadb.kill()
    with pytest.raises(DatabaseUnavailable):
        zones.list_all(db)
    private_mariadb.start()
    assert [z.name for z in zones.list_all(db)] == ["dyn.example.org"]
    db.close_all()


def hammer(url: str, host_ids: list[int], rounds: int, tag: int) -> list[tuple[int, str]]:
    """Update each host ``rounds`` times with distinct addresses; return the acknowledged (host, address)."""
    db = Database(url)
    acked = []
    for round_ in range(rounds):
        for host_id in host_ids:
            address = f"10.{tag}.{round_ // 250}.{round_ % 250 + 1}"
            result = hosts.set_addresses(db, host_id, ipv4=address)
            assert result.changed
            acked.append((host_id, address))
    db.close_all()
    return acked


@pytest.mark.mysql
@pytest.mark.parametrize("dialect", ["mysql"])
def test_concurrent_writers_lose_nothing(db, db_url):
    """Threads and two processes update hosts of one zone: every update lands, serials never repeat."""
    zone = zones.add(db, "dyn.example.org", ["ns1.example.org"], "hostmaster.example.org")
    owner = users.add(db, "alice", "alice@example.org", max_hosts=-1)
    ids = [hosts.add(db, owner.id, f"h{i}.dyn.example.org", "h", default_limit=-1).id for i in range(16)]
    start_serial = zones.get(db, zone.name).serial
    start_change = changes.last_id(db)

    # Two processes own hosts 0-3 and 4-7; eight threads own two hosts each of 8-15.
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys, json; from tests.integration.test_database import hammer; "
                f"print(json.dumps(hammer(sys.argv[1], {ids[4 * p : 4 * p + 4]}, 25, {p + 1})))",
                db_url,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for p in range(2)
    ]
    results: list[list[tuple[int, str]]] = []
    threads = [
        threading.Thread(target=lambda t=t: results.append(hammer(db_url, ids[8 + 2 * t : 10 + 2 * t], 25, 10 + t)))
        for t in range(4)
    ]
    for thread in threads:
        thread.start()
    for proc in procs:
        out, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0
        results.append([tuple(item) for item in json.loads(out)])
    for thread in threads:
        thread.join(240)
    acked = [item for result in results for item in result]
    assert len(acked) == 16 * 25
    expected_last = {}
    for host_id, address in acked:
        expected_last[host_id] = address  # each host has one writer, so its acks are in order
    for host_id, address in expected_last.items():
        assert hosts.get_by_id(db, host_id).ipv4 == address
    feed = changes.since(db, start_change, limit=100000)
    assert len(feed) == len(acked)
    assert zones.get(db, zone.name).serial == start_serial + len(acked)


@pytest.mark.mysql
@pytest.mark.parametrize("dialect", ["mysql", "sqlite"])
def test_host_limit_holds_under_concurrency(db, db_url):
    zones.add(db, "dyn.example.org", ["ns1.example.org"], "hostmaster.example.org")
    owner = users.add(db, "alice", "alice@example.org")
    outcomes: list[str] = []

    def add(i: int) -> None:
        worker = Database(db_url)  # own connections, as separate requests would have
        try:
            hosts.add(worker, owner.id, f"h{i}.dyn.example.org", "h", default_limit=5)
            outcomes.append("ok")
        except Exception as exc:  # noqa: BLE001 - the test counts the refusals
            outcomes.append(type(exc).__name__)
        finally:
            worker.close_all()

    threads = [threading.Thread(target=add, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outcomes.count("ok") == 5
    assert set(outcomes) == {"ok", "LimitReached"}
    assert hosts.count_for_user(db, owner.id) == 5


@pytest.mark.parametrize("multi", [False, True], ids=["plain", "multi-statements"])
def test_script_runs_statements_in_order_and_commits_or_rolls_back(db, multi):
    """``Transaction.script``: one round trip on a multi-statement MySQL connection (opening and COMMIT
    included), one statement after another elsewhere; the same results and the same atomicity."""
    writer = db.with_multi_statements() if multi else db
    try:
        zone = zones.add(db, "script.example.org", ["ns1.example.org"], "hostmaster.example.org")
        statements = [
            ("UPDATE zones SET refresh = ? WHERE id = ?", [1234, zone.id]),
            ("SELECT name, refresh FROM zones WHERE id = ?", [zone.id]),
            ("SELECT name FROM zones WHERE id = ?", [-1]),
        ]
        results = writer.run(lambda tx: (tx.execute("SELECT 1"), tx.script(statements, commit=True))[1])
        assert results == [[], [("script.example.org", 1234)], []]
        assert zones.get(db, "script.example.org").refresh == 1234

        def failing(tx):  # type: ignore[no-untyped-def]
            tx.script(
                [
                    ("UPDATE zones SET refresh = ? WHERE id = ?", [999, zone.id]),
                    # A duplicate name: the statement fails, and the update before it goes with it.
                    ("INSERT INTO zones (name, nameservers, hostmaster, serial, created_at) VALUES (?, ?, ?, ?, ?)",
                     ["script.example.org", "ns1.example.org", "hostmaster.example.org", 1, 1]),
                ],
                commit=True,
            )  # fmt: skip

        with pytest.raises(Exception) as raised:
            writer.run(failing)
        assert db.is_integrity_error(raised.value)
        assert zones.get(db, "script.example.org").refresh == 1234
        # The connection is usable afterwards, inside a transaction and without one.
        assert writer.run(lambda tx: tx.scalar("SELECT refresh FROM zones WHERE id = ?", (zone.id,))) == 1234
        assert writer.query(lambda tx: tx.scalar("SELECT COUNT(*) FROM zones WHERE id = ?", (zone.id,))) == 1
    finally:
        if writer is not db:
            writer.close_all()


def test_a_database_let_go_of_closes_its_connection(db, db_url):
    """A Database nobody holds any more closes the connections it opened, even the main thread's (which lives
    as long as the process): an admin command or a test that opens one per call must not run the server out
    of connections."""
    import gc

    other = Database(db_url)
    assert other.read(lambda tx: tx.scalar("SELECT 1")) == 1
    conn = other._local.conn
    del other
    gc.collect()
    if db.dialect == "mysql":
        assert not conn.open
    else:
        with pytest.raises(Exception, match="closed"):
            conn.execute("SELECT 1")


@pytest.mark.mysql
@pytest.mark.parametrize("dialect", ["mysql"])
def test_causal_reads_only_on_galera_unless_asked(db, db_url):
    """``[database] causal_reads``: auto leaves a server that is not a Galera node alone (the Galera test
    checks that a node gets ``wsrep_sync_wait = 1``); yes sets it on any MariaDB; no never."""
    from ddserver.db import Database

    def sync_wait(database: Database) -> int:
        return int(database.read(lambda tx: tx.scalar("SELECT @@session.wsrep_sync_wait")))

    assert sync_wait(db) == 0
    assert sync_wait(Database(db_url, causal_reads="yes")) == 1
    assert sync_wait(Database(db_url, causal_reads="no")) == 0
