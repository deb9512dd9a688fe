"""``start_private_pdns``: the PowerDNS that ``ddserver run`` serves DNS through."""

from __future__ import annotations

from pathlib import Path

import dns.message
import dns.query

from ddserver.recursor.private_pdns import start_private_pdns
from ddserver.store import hosts
from tests import support
from tests.integration.test_recursor import ZONE, populate
from tests.pdns import pdns_binary, require_backend


def _a(port: int, name: str) -> list[str]:
    answer = dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=5)
    return sorted(r.to_text() for rrset in answer.answer for r in rrset)


def test_private_pdns_serves_and_stops(tmp_path: Path) -> None:
    pdns_binary()
    require_backend("remote")
    url = support.new_database_url("sqlite", tmp_path)
    db = support.create_database(url)
    data = populate(db)
    config_file = support.write_config_file(tmp_path / "ddserver.conf", url)
    config = support.make_config(url, tmp_path)
    port = support.free_dns_port()
    handle = start_private_pdns(config, config_file, port, tmp_path / "data")
    try:
        assert handle.alive()
        assert _a(port, f"home.{ZONE}") == ["192.0.2.1"]
        assert _a(port, f"home.{ZONE}") == ["192.0.2.1"]  # now in PowerDNS's cache (20 s)
        hosts.set_addresses(db, data["home"].id, ipv4="203.0.113.8")
        support.wait_until(lambda: _a(port, f"home.{ZONE}") == ["203.0.113.8"], 10, what="the purge")
    finally:
        handle.stop()
    assert not handle.alive() and handle.pdns.poll() is not None and handle.recursor.poll() is not None
    handle.stop()  # twice is fine
