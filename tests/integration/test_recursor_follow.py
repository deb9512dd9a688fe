"""Following the change feed under the hard cases: a lower change id that commits after a higher one
(concurrent writers on MariaDB), a feed pruned past the recursor's position, and a recursor that has not
read the feed for longer than its retention."""

from __future__ import annotations

import copy
import json
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ddserver.db import Database, Transaction
from ddserver.errors import DatabaseUnavailable
from ddserver.recursor import follower as follower_module
from ddserver.recursor.follower import Follower, PurgeList
from ddserver.store import changes, hosts
from tests import support
from tests.integration.test_recursor import PARENT, ZONE, populate


def start_recursor(tmp_path: Path, url: str) -> tuple[support.Process, Path]:
    config = support.write_config_file(
        tmp_path / "ddserver.conf", url, "[recursor]\npoll_interval = 0.1\npurge = none\n"
    )
    path = tmp_path / "r.sock"
    recursor = support.Process(
        [support.console_script("ddserver-recursor"), "--config", str(config), "--remote-socket", str(path)],
        log=tmp_path / "recursor.log",
    )
    recursor.wait_for(path.exists, 60, "the recursor's socket")
    return recursor, path


def addresses(path: Path, name: str) -> list[str]:
    """The A records the recursor answers for ``name``, asked over its socket as PowerDNS does."""
    request = {"method": "lookup", "parameters": {"qname": name + ".", "qtype": "A", "zone-id": -1}}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            assert chunk, "the recursor closed the connection"
            data += chunk
    result = json.loads(data)["result"]
    return sorted(r["content"] for r in result) if result else []


def test_lower_change_id_committed_after_a_higher_one_is_applied(tmp_path: Path) -> None:
    """Two writers on MariaDB: the first takes change id N and commits late, the second takes N+1 and
    commits at once. The recursor applies N+1 first and must not skip N when it becomes visible."""
    url = support.new_database_url("mysql", tmp_path)
    db = support.create_database(url)
    try:
        data = populate(db)
        home, www = data["home"], data["www"]
        recursor, path = start_recursor(tmp_path, url)
        try:
            inserted, release = threading.Event(), threading.Event()
            taken: list[int] = []

            def late_writer(tx: Transaction) -> None:
                tx.execute("UPDATE hosts SET ipv4 = ? WHERE id = ?", ("203.0.113.50", home.id))
                taken.append(changes.record(tx, home.zone_id, ZONE, home.name))
                inserted.set()
                assert release.wait(60), "the test never released the late writer"

            writer = threading.Thread(target=db.run, args=(late_writer,))
            writer.start()
            try:
                assert inserted.wait(30)
                # Another zone, so the late writer's lock on its zone's serial does not hold this one back.
                hosts.set_addresses(db, www.id, ipv4="198.51.100.60")
                assert changes.last_id(db) == taken[0] + 1  # the higher id is visible, the lower one is not
                support.wait_until(lambda: addresses(path, www.name) == ["198.51.100.60"], 10, what="change N+1")
                time.sleep(0.5)  # a few more polls while id N is still missing
                assert addresses(path, home.name) == ["192.0.2.1"]
            finally:
                release.set()
                writer.join(30)
            support.wait_until(lambda: addresses(path, home.name) == ["203.0.113.50"], 10, what="the late change N")
            assert addresses(path, f"www.{PARENT}") == ["198.51.100.60"]
        finally:
            recursor.stop()
    finally:
        db.drop_database()


def test_feed_pruned_past_the_position_reloads_in_full(db: Database, db_url: str, tmp_path: Path) -> None:
    """The recursor is frozen while changes happen and the feed is pruned past its position: when it runs
    again it cannot follow the gap, so it reloads everything and answers the current data."""
    data = populate(db)
    recursor, path = start_recursor(tmp_path, db_url)
    try:
        assert addresses(path, f"home.{ZONE}") == ["192.0.2.1"]
        recursor.signal(signal.SIGSTOP)
        try:
            hosts.set_addresses(db, data["home"].id, ipv4="203.0.113.61")
            hosts.add(db, data["home"].user_id, f"new.{ZONE}", "h", default_limit=100, ipv4="192.0.2.62")
            hosts.delete(db, data["v4"].id)
            assert changes.prune(db, 0) >= 2  # everything but the newest change is gone
        finally:
            recursor.signal(signal.SIGCONT)
        support.wait_until(lambda: addresses(path, f"home.{ZONE}") == ["203.0.113.61"], 15, what="the reload")
        assert addresses(path, f"new.{ZONE}") == ["192.0.2.62"]
        assert addresses(path, f"v4.{ZONE}") == []
        log = recursor.log()
        assert "pruned past change" in log and log.count("loaded 2 zones") == 2
    finally:
        recursor.stop()


def test_not_read_for_longer_than_the_retention_reloads_in_full(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    data = populate(db)
    purged: list[PurgeList] = []
    follower = Follower(db, retention=1, purge=lambda stale: purged.append(copy.deepcopy(stale)), repurge_after=0)
    follower.load()
    hosts.set_addresses(db, data["home"].id, ipv4="203.0.113.70")
    time.sleep(1.2)  # longer than the retention: changes may have been pruned unseen
    with caplog.at_level(logging.WARNING, logger="ddserver.recursor.follower"):
        assert follower.poll() == 0  # a reload, not a batch of changes
    assert "longer than its retention: reloading in full" in caplog.text
    assert follower.stats.reloads == 2
    # Anything may have changed: every zone is purged from PowerDNS's caches with all its names.
    assert purged == [PurgeList(subtree={ZONE, PARENT}, zones_changed=True)]
    assert follower.index is not None
    assert follower.index.lookup(f"home.{ZONE}", "A")[1] == [("A", 60, "203.0.113.70")]
    # Following goes on from the reloaded position.
    hosts.set_addresses(db, data["home"].id, ipv4="203.0.113.71")
    assert follower.poll() == 1
    assert follower.index.lookup(f"home.{ZONE}", "A")[1] == [("A", 60, "203.0.113.71")]


def test_batch_read_again_when_the_database_fails_while_applying_it(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The feed was read, then the database went away before the changed names were: the next poll applies
    the same changes instead of skipping them."""
    data = populate(db)
    follower = Follower(db)
    follower.load()
    hosts.set_addresses(db, data["home"].id, ipv4="203.0.113.80")
    real = follower_module.store.host_rows
    broken = [True]

    def host_rows(tx, names):  # type: ignore[no-untyped-def]
        if broken[0]:
            raise DatabaseUnavailable("database: gone (injected)")
        return real(tx, names)

    monkeypatch.setattr(follower_module.store, "host_rows", host_rows)
    with pytest.raises(DatabaseUnavailable):
        follower.poll()  # the feed was read, the changed names were not
    assert follower.index is not None
    assert follower.index.lookup(f"home.{ZONE}", "A")[1] == [("A", 60, "192.0.2.1")]
    broken[0] = False
    assert follower.poll() == 1
    assert follower.index.lookup(f"home.{ZONE}", "A")[1] == [("A", 60, "203.0.113.80")]


def purges_answering(answers: list[bool]) -> tuple[list[PurgeList], Callable[[PurgeList], bool]]:
    """A purge hook that records what it was given and answers ``answers`` in turn (True: PowerDNS told)."""
    seen: list[PurgeList] = []

    def purge(stale: PurgeList) -> bool:
        seen.append(copy.deepcopy(stale))
        return answers.pop(0)

    return seen, purge


def test_failed_purge_is_retried_until_powerdns_is_told(db: Database) -> None:
    data = populate(db)
    seen, purge = purges_answering([False, False, True])
    follower = Follower(db, purge=purge, repurge_after=0)
    follower.load()
    hosts.set_addresses(db, data["home"].id, ipv4="203.0.113.81")
    assert follower.poll() == 1  # applied; PowerDNS could not be told
    hosts.set_addresses(db, data["www"].id, ipv4="198.51.100.81")
    assert follower.poll() == 1  # still not: both names wait
    assert follower.poll() == 0  # no new change, but the purge is tried again and works
    assert seen[0].subtree == {f"home.{ZONE}"}
    assert seen[2].subtree == {f"home.{ZONE}", f"www.{PARENT}"} and seen[2].exact == {ZONE, PARENT}
    assert follower.poll() == 0 and len(seen) == 3  # nothing left to purge


def test_purged_names_are_purged_once_more_after_a_while(db: Database) -> None:
    """An answer computed before a change and still on its way to PowerDNS when the purge ran would be
    cached for a whole TTL: the names are purged again, once, a moment later."""
    data = populate(db)
    seen, purge = purges_answering([True, False, True, True])
    follower = Follower(db, purge=purge, repurge_after=0.2)
    follower.load()
    hosts.set_addresses(db, data["home"].id, ipv4="203.0.113.82")
    assert follower.poll() == 1 and len(seen) == 1
    assert follower.poll() == 0 and len(seen) == 1  # not due yet
    time.sleep(0.25)
    hosts.set_addresses(db, data["www"].id, ipv4="198.51.100.82")
    assert follower.poll() == 1  # the new name and the one due again, in one purge that fails
    assert seen[1].subtree == {f"home.{ZONE}", f"www.{PARENT}"}
    assert follower.poll() == 0  # tried again: it works
    assert seen[2] == seen[1]
    assert follower.poll() == 0 and len(seen) == 3
    time.sleep(0.25)
    assert follower.poll() == 0  # both purged once more, and that is the end of it
    assert seen[3] == seen[1]
    time.sleep(0.25)
    assert follower.poll() == 0 and len(seen) == 4
