"""A real BIND secondary of a zone served by PowerDNS through the recursor: it transfers the zone with the
zone's TSIG key, PowerDNS (primary=yes) notifies it of every new serial, unsigned transfers are refused
once the zone has a key, and an IXFR request gets the whole zone."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ddserver import sealing
from ddserver.config import load_config
from ddserver.db import Database
from ddserver.dns import remote
from ddserver.recursor import snapshot
from ddserver.store import hosts, users, zones
from tests import support
from tests.named import SecondaryServer, make_secret, started
from tests.pdns import start_pdns

ZONE = "dyn.example.org"
KEY = "xfr.dyn.example.org"
#: PowerDNS as the primary: it asks the backend for changed zones every second (xfr-cycle-interval), decides
#: transfers per zone (allow-axfr-ips empty), and notifies only the zone's also-notify addresses here (its
#: nameservers' names do not resolve in the tests).
PRIMARY = "primary=yes\nremote-dnssec=yes\nxfr-cycle-interval=1\nallow-axfr-ips=\nonly-notify=\n"


def dig(server: str, *args: str) -> str:
    host, port = server.rsplit(":", 1)
    argv = [support.require_binary("dig"), f"@{host}", "-p", port, "+time=5", "+tries=1", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False).stdout


def soa_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "\tSOA\t" in line and not line.startswith(";")]


def test_bind_secondary_transfers_with_tsig_and_follows_notify(
    db: Database, db_url: str, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    data_key = sealing.new_key()
    config = support.write_config_file(
        tmp_path / "ddserver.conf", db_url, f"data_key = {data_key}\n[recursor]\npoll_interval = 0.1\n"
    )
    zone = zones.add(db, ZONE, ["ns1.example.org"], "hostmaster.example.org")
    user = users.add(db, "alice", "alice@example.org", password_hash="x", is_admin=True)
    host = hosts.add(db, user.id, f"home.{ZONE}", "h", default_limit=10, ipv4="192.0.2.1")
    secret = make_secret("transfer key")
    secondary = SecondaryServer(tmp_path / "named", (ZONE,), key_name=KEY, secret=secret)
    with start_pdns(tmp_path / "pdns", config, "remote-socket", cache=True, extra=PRIMARY) as pdns:
        primary = f"127.0.0.1:{pdns.port}"
        # No key yet: the zone goes unsigned to [recursor] allow_axfr_from (127.0.0.0/8 by default).
        assert len(soa_lines(dig(primary, ZONE, "AXFR"))) == 2
        # The key and the secondary's address, set while the recursor runs: they reach it through the feed.
        sealer = sealing.load(load_config(str(config)))
        zones.add_transfer_key(db, zone.id, KEY, "hmac-sha256", sealer.seal(secret, remote.transfer_key_context(KEY)))
        zones.update(db, zone.id, also_notify=[f"127.0.0.1:{secondary.port}"])
        support.wait_until(
            lambda: "Transfer failed" in dig(primary, ZONE, "AXFR"), 15, what="unsigned transfers refused"
        )
        signed = dig(primary, "-y", f"hmac-sha256:{KEY}:{secret}", ZONE, "AXFR")
        assert len(soa_lines(signed)) == 2 and "192.0.2.1" in signed
        wrong = dig(primary, "-y", f"hmac-sha256:{KEY}:{make_secret('another')}", ZONE, "AXFR")
        assert len(soa_lines(wrong)) < 2

        secondary.primary = primary
        with started(secondary):
            assert secondary.query(f"home.{ZONE}") == ["192.0.2.1"]  # loaded by the signed AXFR
            old_serial = secondary.soa(ZONE)

            # An update: PowerDNS notifies the secondary, which transfers the new serial.
            started_at = time.monotonic()
            hosts.set_addresses(db, host.id, ipv4="203.0.113.9")
            support.wait_until(
                lambda: secondary.query(f"home.{ZONE}") == ["203.0.113.9"], 60, 0.02, "the secondary's new answer"
            )
            seconds = time.monotonic() - started_at
            record_property("figure", f"update to the answer on a BIND secondary (NOTIFY, AXFR): {seconds:.2f} s")
            assert secondary.soa(ZONE) > old_serial
            assert "notify from 127.0.0.1" in secondary.log()

            # A NOTIFY asked for by hand (getDomainInfo): queued for the zone's secondaries.
            assert "Added to queue" in pdns.control(f"notify {ZONE}")

            # IXFR is not implemented: PowerDNS answers an IXFR from an older serial with the whole zone.
            ixfr = dig(primary, "-y", f"hmac-sha256:{KEY}:{secret}", ZONE, f"IXFR={old_serial}")
            answer = soa_lines(ixfr)
            assert len(answer) == 2 and "203.0.113.9" in ixfr and "192.0.2.1" not in ixfr
            # From the current serial: the SOA alone (nothing to transfer).
            current = dig(primary, "-y", f"hmac-sha256:{KEY}:{secret}", ZONE, f"IXFR={secondary.soa(ZONE)}")
            assert len(soa_lines(current)) == 1 and "203.0.113.9" not in current


def test_an_address_notified_by_ns_record_gets_no_unsigned_transfer(tmp_path: Path) -> None:
    """PowerDNS lets an address it has just notified transfer a zone unsigned ("recently notified
    secondary"); 4.7 keeps that address with its port, so the rule never matches and a zone with a transfer
    key stays closed to unsigned requests from its nameservers' addresses too."""
    url = support.new_database_url("sqlite", tmp_path)
    db = support.create_database(url)
    data_key = sealing.new_key()
    config = support.write_config_file(tmp_path / "ddserver.conf", url, f"data_key = {data_key}\n")
    zone = zones.add(db, ZONE, [f"ns.{ZONE}"], "hostmaster.example.org")
    user = users.add(db, "alice", "alice@example.org", password_hash="x")
    hosts.add(db, user.id, f"ns.{ZONE}", "h", default_limit=10, ipv4="127.0.0.2")
    sealer = sealing.load(load_config(str(config)))
    secret = make_secret("ns")
    zones.add_transfer_key(db, zone.id, KEY, "hmac-sha256", sealer.seal(secret, remote.transfer_key_context(KEY)))
    extra = PRIMARY.replace("only-notify=\n", "")  # the nameservers' addresses are notified
    with start_pdns(tmp_path / "pdns", config, "remote-socket", extra=extra) as pdns:
        queued = f"Queued notification of domain '{ZONE}' to 127.0.0.2"
        support.wait_until(lambda: queued in pdns.log(), 30, what="the NOTIFY to the nameserver's address")
        # The next cycle has begun: the NOTIFY queued in the one before was sent (and its address noted).
        later = "no primary or producer domains need notifications"
        support.wait_until(lambda: later in pdns.log().split(queued, 1)[1], 30, what="PowerDNS's next cycle")
        primary = f"127.0.0.1:{pdns.port}"
        assert "Transfer failed" in dig(primary, "-b", "127.0.0.2", ZONE, "AXFR")
        assert len(soa_lines(dig(primary, "-b", "127.0.0.2", "-y", f"hmac-sha256:{KEY}:{secret}", ZONE, "AXFR"))) == 2


def test_a_recursor_started_from_its_snapshot_without_the_database_serves_the_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The also-notify addresses and transfer keys are in the daemon's snapshot: a recursor that starts while
    its database is unreachable still gives PowerDNS the metadata and the key's secret."""
    from tests.integration.test_recursor_process import _ask
    from tests.integration.test_recursor_snapshot import start_socket_recursor

    url = support.new_database_url("sqlite", tmp_path)
    db = support.create_database(url)
    monkeypatch.setenv("DDSERVER_AUTH_DATA_KEY", sealing.new_key())  # for this test and the recursors
    monkeypatch.setenv("DDSERVER_DATABASE_CONNECT_TIMEOUT", "1")
    zone = zones.add(db, ZONE, ["ns1.example.org"], "hostmaster.example.org", also_notify=["192.0.2.53:5300"])
    secret = make_secret("snapshot")
    sealed = sealing.load(load_config(str(support.write_config_file(tmp_path / "c.conf", url)))).seal(
        secret, remote.transfer_key_context(KEY)
    )
    zones.add_transfer_key(db, zone.id, KEY, "hmac-sha512", sealed)
    recursor, _ = start_socket_recursor(tmp_path, url, "first")
    recursor.stop()  # it wrote its snapshot once loaded, and again when it stopped
    # The same snapshot, for a database that does not answer (the file is named after the database's URL).
    gone = "mysql://ddserver@127.0.0.1:1/ddserver"
    folder = tmp_path / "snapshots"
    (first,) = folder.glob("*.snapshot")
    first.rename(snapshot.snapshot_path(folder, gone))
    recursor, path = start_socket_recursor(tmp_path, gone, "again")
    try:
        assert "serving STALE data from the snapshot" in recursor.log()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(path))
            ask = lambda method, **p: _ask(sock, json.dumps({"method": method, "parameters": p}).encode())  # noqa: E731
            assert ask("getAllDomainMetadata", name=f"{ZONE}.")["result"] == {
                "ALSO-NOTIFY": ["192.0.2.53:5300"], "TSIG-ALLOW-AXFR": [KEY]
            }  # fmt: skip
            assert ask("getTSIGKey", name=f"{KEY}.")["result"] == {"algorithm": "hmac-sha512", "content": secret}
    finally:
        recursor.stop()
