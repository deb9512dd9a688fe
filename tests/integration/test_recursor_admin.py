"""The admin command's DNS-affecting actions as a real PowerDNS answers them: a blocked host, a disabled owner's
hosts and a host flagged for abuse leave DNS and come back; a deleted zone goes with its hosts."""

from __future__ import annotations

from pathlib import Path

from ddserver import cli, secrets
from ddserver.db import Database
from ddserver.store import hosts, records, updates, users, zones
from tests import support
from tests.pdns import start_pdns

ZONE = "dyn.example.org"
HOME = f"home.{ZONE}"
ACME = f"_acme-challenge.home.{ZONE}"
OTHER = f"other.{ZONE}"


def test_admin_actions_leave_dns_and_come_back(db: Database, db_url: str, tmp_path: Path) -> None:
    zones.add(db, ZONE, ["ns1.example.org"], "hostmaster.example.org")
    alice = users.add(db, "alice", "alice@example.org", password_hash="x")
    bob = users.add(db, "bob", "bob@example.org", password_hash="x")
    home = hosts.add(db, alice.id, HOME, secrets.hash_host_secret("s"), default_limit=5, ipv4="192.0.2.1")
    records.add(db, home.id, ACME, "TXT", "token-1")
    hosts.add(db, bob.id, OTHER, secrets.hash_host_secret("s"), default_limit=5, ipv4="192.0.2.2")
    config = support.write_config_file(tmp_path / "ddserver.conf", db_url, "[recursor]\npoll_interval = 0.1\n")

    def ddserver(*args: str) -> None:
        assert cli.main(["--config", str(config), *args]) == 0

    with start_pdns(tmp_path / "pdns", config, "remote-socket", cache=False) as pdns:

        def gone() -> bool:
            return pdns.rcode(HOME) == "NXDOMAIN" and pdns.rcode(ACME, "TXT") == "NXDOMAIN"

        def back() -> bool:
            return pdns.records(HOME) == ["192.0.2.1"] and pdns.records(ACME, "TXT") == ['"token-1"']

        def serial_served() -> bool:
            return pdns.records(ZONE, "SOA")[0].split()[2] == str(zones.get(db, ZONE).serial)

        assert back() and pdns.records(OTHER) == ["192.0.2.2"]
        ddserver("host", "block", HOME, "--reason", "phishing")
        support.wait_until(gone, 10, what="the blocked host to leave DNS")
        support.wait_until(serial_served, 10, what="the serial of the block")
        assert pdns.records(OTHER) == ["192.0.2.2"]
        ddserver("host", "unblock", HOME)
        support.wait_until(back, 10, what="the unblocked host")
        support.wait_until(serial_served, 10, what="the serial of the unblock")

        ddserver("user", "disable", "alice")
        support.wait_until(gone, 10, what="the disabled owner's host to leave DNS")
        ddserver("user", "enable", "alice")
        support.wait_until(back, 10, what="the enabled owner's host")

        state = updates.read_hosts(db, [HOME])[HOME]
        assert updates.add_fault(db, state, limit=1, window=3600, reason="badauth", client="192.0.2.9")
        support.wait_until(gone, 10, what="the host flagged for abuse to leave DNS")
        ddserver("host", "clear", HOME)
        support.wait_until(back, 10, what="the cleared host")

        ddserver("user", "delete", "bob", "--yes")
        support.wait_until(lambda: pdns.rcode(OTHER) == "NXDOMAIN", 10, what="the deleted user's host to go")
        ddserver("zone", "delete", ZONE, "--with-hosts", "--yes")
        support.wait_until(lambda: pdns.rcode(HOME) == "REFUSED", 10, what="the deleted zone to go")
        assert pdns.rcode(ZONE, "SOA") == "REFUSED"
