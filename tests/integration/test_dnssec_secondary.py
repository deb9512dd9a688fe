"""A signed zone with a BIND secondary: once the zone has a transfer key and an also-notify address it is
signed with a full NSEC3 chain (the recursor gives PowerDNS the neighbours of each hash), PowerDNS transfers
it with TSIG, and delv validates the answers of the secondary (a host, NXDOMAIN, NODATA, an empty
non-terminal, the new address after an update) as well as PowerDNS's own."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype

from ddserver import sealing
from ddserver.config import load_config
from ddserver.db import Database
from ddserver.dns import remote
from ddserver.store import hosts, records, users, zones
from tests import support
from tests.integration.test_dnssec import DATA_KEY, _anchors, ddserver
from tests.integration.test_secondaries import PRIMARY, dig, soa_lines
from tests.named import SecondaryServer, make_secret, started
from tests.pdns import start_pdns

ZONE = "signed.example.org"
KEY = "xfr.signed.example.org"


def delv(host: str, port: int, anchors: Path, name: str, rdtype: str) -> str:
    binary = support.require_binary("delv", "/usr/bin/delv")
    result = subprocess.run(
        [binary, f"@{host}", "-p", str(port), "-a", str(anchors), f"+root={ZONE}", "+nocrypto", name, rdtype],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return result.stdout + result.stderr


def signed_address(host: str, port: int, name: str) -> list[str]:
    """The A records of ``name`` as the server answers with the DO bit, if they come with an RRSIG."""
    query = dns.message.make_query(name, "A", want_dnssec=True)
    try:
        response = dns.query.udp(query, host, port=port, timeout=2)
    except (dns.exception.Timeout, OSError):
        return []
    types = {rrset.rdtype for rrset in response.answer}
    if dns.rdatatype.RRSIG not in types:
        return []
    return sorted(r.to_text() for rrset in response.answer if rrset.rdtype == dns.rdatatype.A for r in rrset)


def test_signed_zone_goes_to_a_bind_secondary_and_validates_there(
    db: Database, db_url: str, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    config = support.write_config_file(
        tmp_path / "ddserver.conf", db_url, f"data_key = {DATA_KEY}\n[recursor]\npoll_interval = 0.1\n"
    )
    zone = zones.add(db, ZONE, ["ns1.example.org"], "hostmaster.example.org")
    alice = users.add(db, "alice", "alice@example.org", password_hash="x")
    home = hosts.add(db, alice.id, f"home.{ZONE}", "h", default_limit=10, ipv4="192.0.2.1")
    v4 = hosts.add(db, alice.id, f"v4.{ZONE}", "h", default_limit=10, ipv4="192.0.2.2")
    hosts.add(db, alice.id, f"wild.{ZONE}", "h", default_limit=10, ipv4="192.0.2.5", wildcard=True)
    # sub.home: an empty non-terminal, above a record's owner name
    records.add(db, home.id, f"_acme-challenge.sub.home.{ZONE}", "TXT", "token")
    code, output = ddserver(config, "zone", "dnssec", ZONE, "on")
    assert code == 0 and "DNSSEC on, NSEC3 narrow;" in output, output
    anchors = _anchors(db, tmp_path)
    secret = make_secret("signed transfer")
    secondary = SecondaryServer(tmp_path / "named", (ZONE,), key_name=KEY, secret=secret)
    with start_pdns(tmp_path / "pdns", config, "remote-socket", cache=True, extra=PRIMARY) as pdns:
        primary = f"127.0.0.1:{pdns.port}"
        tsig = ("-y", f"hmac-sha256:{KEY}:{secret}")
        # Narrow while the zone has no secondaries: no transfer.
        assert "Transfer failed" in dig(primary, ZONE, "AXFR")
        # A transfer key and the secondary's address, set while it runs: the zone gets an NSEC3 chain.
        sealer = sealing.load(load_config(str(config)))
        zones.add_transfer_key(db, zone.id, KEY, "hmac-sha256", sealer.seal(secret, remote.transfer_key_context(KEY)))
        zones.update(db, zone.id, also_notify=[f"127.0.0.1:{secondary.port}"])
        support.wait_until(
            lambda: len(soa_lines(dig(primary, *tsig, ZONE, "AXFR"))) == 2, 15, what="the signed zone transferred"
        )
        assert "NSEC3 with a chain (the zone has secondaries)" in ddserver(config, "zone", "key", "list", ZONE)[1]
        transfer = dig(primary, *tsig, ZONE, "AXFR")
        assert "IN NSEC3 1 0 0 - " in transfer and "IN\tNSEC3PARAM 1 0 0 -" in transfer and "RRSIG" in transfer
        # PowerDNS's own answers, with the chain, validate too.
        for name, rdtype, expect in [
            (f"home.{ZONE}", "A", "192.0.2.1"),
            (f"missing.{ZONE}", "A", "NXDOMAIN"),
            (f"v4.{ZONE}", "AAAA", "NXRRSET"),
            (f"sub.home.{ZONE}", "A", "NXRRSET"),  # the empty non-terminal exists
            (f"x.sub.home.{ZONE}", "A", "NXDOMAIN"),
            (f"any.wild.{ZONE}", "A", "192.0.2.5"),  # a wildcard answer, with the proof of no closer name
            (f"any.wild.{ZONE}", "AAAA", "NXRRSET"),  # wildcard NODATA
        ]:
            text = delv(pdns.host, pdns.port, anchors, name, rdtype)
            assert "fully validated" in text and expect in text, f"{name} {rdtype}: {text}\n{pdns.log()[-3000:]}"

        secondary.primary = primary
        with started(secondary):
            assert signed_address(secondary.host, secondary.port, f"home.{ZONE}") == ["192.0.2.1"]
            for name, rdtype, expect in [
                (f"home.{ZONE}", "A", "192.0.2.1"),
                (f"missing.{ZONE}", "A", "NXDOMAIN"),
                (f"v4.{ZONE}", "AAAA", "NXRRSET"),
                (f"sub.home.{ZONE}", "A", "NXRRSET"),
                (f"x.sub.home.{ZONE}", "A", "NXDOMAIN"),
                (ZONE, "SOA", "hostmaster.example.org"),
            ]:
                text = delv(secondary.host, secondary.port, anchors, name, rdtype)
                assert "fully validated" in text and expect in text, f"secondary {name} {rdtype}: {text}"

            # An update: NOTIFY, transfer, and the secondary answers the new address signed.
            started_at = time.monotonic()
            hosts.set_addresses(db, home.id, ipv4="203.0.113.9")
            support.wait_until(
                lambda: signed_address(secondary.host, secondary.port, f"home.{ZONE}") == ["203.0.113.9"],
                60, 0.02, "the secondary's new signed answer",
            )  # fmt: skip
            seconds = time.monotonic() - started_at
            record_property(
                "figure", f"update to the SIGNED answer on a BIND secondary (NOTIFY, AXFR): {seconds:.2f} s"
            )
            text = delv(secondary.host, secondary.port, anchors, f"home.{ZONE}", "A")
            assert "fully validated" in text and "203.0.113.9" in text, text

            # A new host changes the chain: both servers still prove what does not exist.
            hosts.add(db, alice.id, f"new.{ZONE}", "h", default_limit=10, ipv4="192.0.2.4")
            support.wait_until(
                lambda: signed_address(secondary.host, secondary.port, f"new.{ZONE}") == ["192.0.2.4"],
                60, 0.05, "the new host on the secondary",
            )  # fmt: skip
            for host, port in [(pdns.host, pdns.port), (secondary.host, secondary.port)]:
                text = delv(host, port, anchors, f"gone.{ZONE}", "A")
                assert "fully validated" in text and "NXDOMAIN" in text, text
            # A host deleted: the chain shrinks, its name is proved missing on both.
            hosts.delete(db, v4.id)
            support.wait_until(
                lambda: "NXDOMAIN" in dig(f"{secondary.host}:{secondary.port}", f"v4.{ZONE}", "A"), 60, 0.05,
                "the deleted host gone from the secondary",
            )  # fmt: skip
            for host, port in [(pdns.host, pdns.port), (secondary.host, secondary.port)]:
                text = delv(host, port, anchors, f"v4.{ZONE}", "A")
                assert "fully validated" in text and "NXDOMAIN" in text, text

        # No secondaries any more: narrow again, no transfer, answers still validate.
        zones.remove_transfer_key(db, zone.id, KEY)
        zones.update(db, zone.id, also_notify=[])
        support.wait_until(
            lambda: "NSEC3 narrow" in ddserver(config, "zone", "key", "list", ZONE)[1], 5, what="narrow again"
        )
        support.wait_until(lambda: "Transfer failed" in dig(primary, ZONE, "AXFR"), 15, what="transfers refused")
        for name, rdtype, expect in [(f"missing.{ZONE}", "A", "NXDOMAIN"), (f"home.{ZONE}", "AAAA", "NXRRSET")]:
            text = delv(pdns.host, pdns.port, anchors, name, rdtype)
            assert "fully validated" in text and expect in text, text
