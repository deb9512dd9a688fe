"""The socket daemon's snapshot: a recursor (re)started while its database is unreachable answers the last data
it had, says it is stale, and follows the feed once the database returns; a snapshot of another feed is not
followed."""

from __future__ import annotations

import marshal
import os
import signal
import subprocess
import uuid
from pathlib import Path

import dns.rcode
import pytest

from ddserver.db import Database
from ddserver.recursor import snapshot
from ddserver.recursor.follower import Follower
from ddserver.store import changes, hosts
from tests import support
from tests.integration.test_recursor import ZONE, populate
from tests.integration.test_recursor_follow import addresses
from tests.pdns import start_pdns


def snapshot_high(folder: Path) -> int:
    """The feed position of the snapshot in ``folder`` (0: none yet)."""
    found = list(folder.glob("*.snapshot"))
    snap = snapshot.read(found[0], 60) if found else None
    return snap.high if snap is not None else 0


def test_restarted_while_the_database_is_down_serves_the_snapshot(private_mariadb, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Load, update, stop mariadbd, kill -9 the recursor and start it again: PowerDNS answers the last data;
    then mariadbd returns, an update is made, and PowerDNS answers it."""
    url = private_mariadb.url("ddserver")
    db = support.create_database(url)
    home = populate(db)["home"]
    config = support.write_config_file(
        tmp_path / "ddserver.conf", url, "[recursor]\npoll_interval = 0.1\nsnapshot_interval = 0.2\n"
    )
    env = {"DDSERVER_DATABASE_CONNECT_TIMEOUT": "1"}
    folder = tmp_path / "pdns"
    with start_pdns(folder, config, "remote-socket", env=env) as pdns:
        assert pdns.addresses(f"home.{ZONE}") == ["192.0.2.1", "2001:db8::1"]
        hosts.set_addresses(db, home.id, ipv4="203.0.113.7")
        newest = changes.last_id(db)
        support.wait_until(lambda: snapshot_high(folder / "snapshots") >= newest, 20, what="the snapshot")
        db.close_all()
        private_mariadb.stop()
        assert pdns.recursor is not None
        pdns.recursor.signal(signal.SIGKILL)
        pdns.recursor.stop()
        pdns.recursor = restarted = support.Process(
            pdns.recursor.argv,
            log=folder / "recursor-again.log",
            env=dict(
                os.environ,
                DDSERVER_RECURSOR_PURGE="socket",
                DDSERVER_RECURSOR_CONTROL_SOCKET=str(pdns.control_socket),
                DDSERVER_RECURSOR_SNAPSHOT_DIR=str(folder / "snapshots"),
                **env,
            ),
        )
        restarted.wait_for(lambda: "serving the remote backend" in restarted.log(), 30, "the socket")
        # PowerDNS reconnects to the new socket: each of its threads on its first question after the loss,
        # which gets SERVFAIL (PowerDNS's doing, 3 threads here). Every other answer is the last data the
        # recursor had.
        servfails = 0
        for _ in range(10):
            for name, expected in (("home", ["203.0.113.7"]), ("v4", ["192.0.2.2"]), ("blocked", None)):
                answer = pdns.query(f"{name}.{ZONE}")
                rcode = dns.rcode.to_text(answer.rcode())
                if rcode == "SERVFAIL":
                    servfails += 1
                    continue
                found = sorted(r.to_text() for rrset in answer.answer for r in rrset)
                assert (rcode, found) == (("NOERROR", expected) if expected else ("NXDOMAIN", [])), name
        assert servfails <= 3
        log = restarted.log()
        assert log.count("serving STALE data from the snapshot") == 1, log
        private_mariadb.start()
        hosts.set_addresses(db, home.id, ipv4="203.0.113.8")
        support.wait_until(lambda: pdns.records(f"home.{ZONE}") == ["203.0.113.8"], 30, what="following again")
        log = restarted.log()
        assert "database is reachable again" in log
        assert "loaded" not in log  # caught up from the snapshot's position, no full load
    db.close_all()


def start_socket_recursor(tmp_path: Path, url: str, name: str, extra: str = "") -> tuple[support.Process, Path]:
    config = support.write_config_file(
        tmp_path / f"{name}.conf", url, "[recursor]\npoll_interval = 0.1\npurge = none\n" + extra
    )
    path = tmp_path / f"{name}.sock"
    recursor = support.Process(
        [support.console_script("ddserver-recursor"), "--config", str(config), "--remote-socket", str(path)],
        log=tmp_path / f"{name}.log",
        env=dict(os.environ, DDSERVER_RECURSOR_SNAPSHOT_DIR=str(tmp_path / "snapshots")),
    )
    recursor.wait_for(lambda: "serving the remote backend" in recursor.log(), 60, "the recursor's socket")
    return recursor, path


def test_restart_starts_from_the_snapshot_and_catches_up(db: Database, db_url: str, tmp_path: Path) -> None:
    """A clean stop writes the snapshot; the next start reads it and applies the changes made meanwhile
    from the feed, without loading in full."""
    data = populate(db)
    recursor, path = start_socket_recursor(tmp_path, db_url, "first")
    assert addresses(path, f"home.{ZONE}") == ["192.0.2.1"]
    recursor.stop()
    hosts.set_addresses(db, data["home"].id, ipv4="203.0.113.21")
    hosts.delete(db, data["v4"].id)
    recursor, path = start_socket_recursor(tmp_path, db_url, "second")
    try:
        assert addresses(path, f"home.{ZONE}") == ["203.0.113.21"]
        assert addresses(path, f"v4.{ZONE}") == []
        log = recursor.log()
        assert "started from the snapshot" in log and "loaded" not in log, log
    finally:
        recursor.stop()


def test_a_snapshot_of_another_feed_is_not_followed(tmp_path: Path) -> None:
    """The database is dropped and made again under the same URL (its change ids start over): the snapshot's
    position names a change the new feed does not hold, so the recursor loads in full rather than skip the
    new feed's first changes."""
    url = support.new_database_url("mysql", tmp_path)
    db = support.create_database(url)
    try:
        data = populate(db)
        for n in range(5):
            hosts.set_addresses(db, data["home"].id, ipv4=f"203.0.113.{30 + n}")
        recursor, path = start_socket_recursor(tmp_path, url, "first")
        assert addresses(path, f"home.{ZONE}") == ["203.0.113.34"]
        recursor.stop()
        db.drop_database()
        db = support.create_database(url)
        data = populate(db)  # fewer changes than before: ids below the snapshot's position
        hosts.set_addresses(db, data["home"].id, ipv4="203.0.113.40")
        recursor, path = start_socket_recursor(tmp_path, url, "second")
        try:
            assert addresses(path, f"home.{ZONE}") == ["203.0.113.40"]
            log = recursor.log()
            assert "no longer holds change" in log and "loaded" in log, log
        finally:
            recursor.stop()
    finally:
        db.drop_database()


@pytest.mark.parametrize("mode", ["remote-socket", "pipe"])
def test_a_select_only_user_is_enough(mode: str, tmp_path: Path) -> None:
    """A recursor reading from a replica whose user may only SELECT: it loads (and builds the pipe
    coprocesses' snapshot), follows the feed and answers through PowerDNS, writing nothing."""
    url = support.new_database_url("mysql", tmp_path)
    db = support.create_database(url)
    user, password = f"ro{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    name = db.url.database
    try:
        db.run(lambda tx: tx.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"))
        db.run(lambda tx: tx.execute(f"GRANT SELECT ON `{name}`.* TO '{user}'@'%'"))
        data = populate(db)
        reader = url.replace("mysql://root@", f"mysql://{user}:{password}@", 1)
        assert reader != url
        config = support.write_config_file(tmp_path / "ddserver.conf", reader, "[recursor]\npoll_interval = 0.1\n")
        with start_pdns(tmp_path / "pdns", config, mode) as pdns:
            assert pdns.addresses(f"home.{ZONE}") == ["192.0.2.1", "2001:db8::1"]
            hosts.set_addresses(db, data["home"].id, ipv4="203.0.113.50")
            support.wait_until(lambda: pdns.records(f"home.{ZONE}") == ["203.0.113.50"], 20, what="the change")
            log = pdns.log()
        assert "denied" not in log.lower(), log
    finally:
        db.run(lambda tx: tx.execute(f"DROP USER IF EXISTS '{user}'@'%'"))
        db.drop_database()


def test_a_pipe_coprocess_serves_an_old_snapshot_while_the_database_is_down(tmp_path: Path) -> None:
    """A snapshot older than the feed's retention is not caught up but rebuilt; while the database is
    unreachable it is served all the same, stale, rather than nothing."""
    (tmp_path / "db").mkdir()
    url = support.new_database_url("sqlite", tmp_path / "db")
    db = support.create_database(url)
    populate(db)
    follower = Follower(db)
    follower.load()
    folder = tmp_path / "snapshots"
    folder.mkdir(mode=0o700)
    path = snapshot.snapshot_path(folder, url)
    assert follower.index is not None
    snapshot.write(path, follower.index, follower.cursor)
    data = list(marshal.loads(path.read_bytes()))
    data[8] -= 3 * 86400  # written three days ago: older than the feed's retention
    path.write_bytes(marshal.dumps(tuple(data)))
    db.close_all()
    (tmp_path / "db").rename(tmp_path / "gone")
    config = support.write_config_file(tmp_path / "ddserver.conf", url, "[recursor]\npurge = none\n")
    result = subprocess.run(
        [support.console_script("ddserver-recursor"), "--config", str(config), "--pipe"],
        input=b"HELO\t1\nQ\thome.dyn.example.org\tIN\tA\t-1\t127.0.0.1\n",
        capture_output=True,
        timeout=60,
        env=dict(os.environ, DDSERVER_RECURSOR_SNAPSHOT_DIR=str(folder)),
    )
    lines = result.stdout.decode().splitlines()
    assert lines[1:] == ["DATA\thome.dyn.example.org\tIN\tA\t60\t1\t192.0.2.1", "END"], result.stderr.decode()
    assert "serving STALE data from the snapshot" in result.stderr.decode()


def test_a_snapshot_behind_a_pruned_feed_loads_in_full(db: Database, db_url: str, tmp_path: Path) -> None:
    """Changes made while the recursor was stopped were pruned from the feed: its snapshot's position can no
    longer be caught up with, so it loads in full (and answers the current data)."""
    data = populate(db)
    recursor, path = start_socket_recursor(tmp_path, db_url, "first")
    recursor.stop()
    hosts.set_addresses(db, data["home"].id, ipv4="203.0.113.71")
    hosts.set_addresses(db, data["www"].id, ipv4="198.51.100.71")
    assert changes.prune(db, 0) >= 1  # everything but the newest change
    recursor, path = start_socket_recursor(tmp_path, db_url, "second")
    try:
        assert addresses(path, f"home.{ZONE}") == ["203.0.113.71"]
        log = recursor.log()
        assert "pruned past change" in log and "loaded" in log, log
    finally:
        recursor.stop()
