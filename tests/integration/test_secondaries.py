"""A real BIND secondary of a zone served by PowerDNS through the recursor: it transfers the zone with the
zone's TSIG key, PowerDNS (primary=yes) notifies it of every new serial, unsigned transfers are refused
once the zone has a key, and an IXFR request gets the whole zone."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from ddserver import sealing
from ddserver.config import load_config
from ddserver.db import Database
from ddserver.dns import remote
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

            # IXFR is not implemented: PowerDNS answers an IXFR from an older serial with the whole zone.
            ixfr = dig(primary, "-y", f"hmac-sha256:{KEY}:{secret}", ZONE, f"IXFR={old_serial}")
            answer = soa_lines(ixfr)
            assert len(answer) == 2 and "203.0.113.9" in ixfr and "192.0.2.1" not in ixfr
