"""The database stops and starts again while PowerDNS keeps asking: known names never turn into SERVFAIL,
the outage is logged once, and the recursor catches up when the database is back."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from ddserver.store import hosts
from tests import support
from tests.integration.test_recursor import ZONE, populate
from tests.pdns import start_pdns


@pytest.mark.parametrize("mode", ["remote-socket", "pipe"])
def test_database_outage_while_queries_continue(mode: str, private_mariadb, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = private_mariadb.url("ddserver")
    db = support.create_database(url)
    data = populate(db)
    config = support.write_config_file(tmp_path / "ddserver.conf", url, "[recursor]\npoll_interval = 0.1\n")
    with start_pdns(tmp_path / "pdns", config, mode, env={"DDSERVER_DATABASE_CONNECT_TIMEOUT": "1"}) as pdns:
        seen: list[str] = []
        stop = threading.Event()

        def ask() -> None:
            while not stop.is_set():
                try:
                    answer = pdns.query(f"home.{ZONE}", "A", timeout=3)
                    seen.append("+".join(r.to_text() for rrset in answer.answer for r in rrset) or "empty")
                except Exception as exc:  # noqa: BLE001 - recorded and asserted on below
                    seen.append(f"error {exc!r}")
                time.sleep(0.02)

        asker = threading.Thread(target=ask)
        asker.start()
        try:
            support.wait_until(lambda: len(seen) > 10, 20)
            private_mariadb.stop()
            during = len(seen)
            support.wait_until(lambda: len(seen) > during + 50, 30, what="queries during the outage")
            private_mariadb.start()
            hosts.set_addresses(db, data["home"].id, ipv4="203.0.113.44")
            support.wait_until(lambda: seen[-1] == "203.0.113.44", 30, what="catching up after the outage")
            # Every answer during the outage came from memory (PowerDNS's SERVFAIL arrives as an exception).
            assert all(s in ("192.0.2.1", "203.0.113.44") for s in seen), sorted(set(seen))
            assert seen.index("203.0.113.44") > during + 50
        finally:
            stop.set()
            asker.join(10)
        log = pdns.log()
        assert "database unreachable" in log and "database is reachable again" in log
        if mode == "remote-socket":
            assert log.count("database unreachable") == 1  # once per state change, not per retry
