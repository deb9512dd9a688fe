"""The zone index: answers, case, wildcards, nested zones, TTLs, TXT quoting, changes applied in place."""

from __future__ import annotations

import pytest

from ddserver.dns import zoneindex
from ddserver.recursor.follower import replace_hosts
from ddserver.store.dnsdata import ZoneRow


def zone_row(zone_id: int, name: str, ttl: int | None = None, serial: int = 7) -> ZoneRow:
    return ZoneRow(zone_id, name, ("ns1.example.org", "ns2.example.org"), "hostmaster.example.org",
                   serial, 3600, 600, 604800, 60, 3600, ttl)  # fmt: skip


@pytest.fixture
def index() -> zoneindex.ZoneIndex:
    hosts = [
        ("home.dyn.example.org", 1, "192.0.2.1", "2001:db8::1", None, 0),
        ("v4.dyn.example.org", 1, "192.0.2.2", None, None, 0),
        ("wild.dyn.example.org", 1, "192.0.2.3", None, 120, 1),
        ("bare.dyn.example.org", 1, None, None, None, 0),
        ("www.example.org", 2, "198.51.100.1", None, None, 0),
    ]
    records = [
        ("v4.dyn.example.org", "v4.dyn.example.org", "TXT", 'say "hi"', None),
        ("v4.dyn.example.org", "_acme-challenge.v4.dyn.example.org", "TXT", "tok", 5),
    ]
    return zoneindex.build([zone_row(1, "dyn.example.org"), zone_row(2, "example.org", ttl=300)], hosts, records, 60)


def test_host_records_and_types(index: zoneindex.ZoneIndex) -> None:
    zone, records = index.lookup("home.dyn.example.org", "ANY")
    assert zone is not None and zone.name == "dyn.example.org"
    assert records == [("A", 60, "192.0.2.1"), ("AAAA", 60, "2001:db8::1")]
    assert index.lookup("home.dyn.example.org", "AAAA")[1] == [("AAAA", 60, "2001:db8::1")]
    assert index.lookup("v4.dyn.example.org", "AAAA") == (zone, [])  # NODATA
    assert index.lookup("nope.dyn.example.org", "A") == (zone, [])  # NXDOMAIN: PowerDNS decides
    assert index.exists("bare.dyn.example.org") and not index.exists("nope.dyn.example.org")
    assert index.lookup("www.example.com", "A") == (None, [])


def test_apex_soa_and_ns(index: zoneindex.ZoneIndex) -> None:
    _, records = index.lookup("dyn.example.org", "ANY")
    assert records[0] == ("SOA", 3600, "ns1.example.org hostmaster.example.org 7 3600 600 604800 60")
    assert records[1:] == [("NS", 3600, "ns1.example.org"), ("NS", 3600, "ns2.example.org")]
    assert [r[0] for r in index.lookup("dyn.example.org", "SOA")[1]] == ["SOA"]


def test_nested_zones_and_ttls(index: zoneindex.ZoneIndex) -> None:
    zone, records = index.lookup("www.example.org", "A")
    assert zone is not None and zone.name == "example.org" and records == [("A", 300, "198.51.100.1")]
    assert index.zone_of("x.dyn.example.org").name == "dyn.example.org"  # type: ignore[union-attr]
    assert index.lookup("wild.dyn.example.org", "A")[1] == [("A", 120, "192.0.2.3")]


def test_wildcard_answers_only_the_literal_star_name(index: zoneindex.ZoneIndex) -> None:
    assert index.lookup("*.wild.dyn.example.org", "A")[1] == [("A", 120, "192.0.2.3")]
    assert index.lookup("a.wild.dyn.example.org", "A")[1] == []  # PowerDNS expands *.wild itself
    assert index.lookup("*.home.dyn.example.org", "A")[1] == []


def test_txt_quoted_and_below_the_host(index: zoneindex.ZoneIndex) -> None:
    assert index.lookup("v4.dyn.example.org", "TXT")[1] == [("TXT", 60, '"say \\"hi\\""')]
    assert index.lookup("_acme-challenge.v4.dyn.example.org", "ANY")[1] == [("TXT", 5, '"tok"')]
    assert zoneindex.quote_txt("a\\b\x01é") == '"a\\\\b\\001\\195\\169"'


def test_list_zone_is_the_axfr(index: zoneindex.ZoneIndex) -> None:
    zone = index.zones["dyn.example.org"]
    owners = sorted({owner for owner, _ in index.list_zone(zone)})
    assert owners == sorted(
        ["dyn.example.org", "home.dyn.example.org", "v4.dyn.example.org", "wild.dyn.example.org",
         "*.wild.dyn.example.org", "_acme-challenge.v4.dyn.example.org"]
    )  # fmt: skip
    assert next(iter(index.list_zone(zone)))[1][0] == "SOA"
    assert all(owner != "www.example.org" for owner, _ in index.list_zone(zone))


def test_replace_hosts_changes_deletes_and_moves_records(index: zoneindex.ZoneIndex) -> None:
    # v4 changes address and loses its TXT below; home is deleted; a new host appears.
    replace_hosts(
        index,
        {"v4.dyn.example.org", "home.dyn.example.org", "new.dyn.example.org"},
        [
            ("v4.dyn.example.org", 1, "203.0.113.1", None, None, 0),
            ("new.dyn.example.org", 1, None, "2001:db8::9", 30, 0),
        ],
        [("v4.dyn.example.org", "v4.dyn.example.org", "TXT", "x", None)],
    )
    assert index.lookup("v4.dyn.example.org", "ANY")[1] == [("A", 60, "203.0.113.1"), ("TXT", 60, '"x"')]
    assert index.lookup("_acme-challenge.v4.dyn.example.org", "ANY")[1] == []
    assert "_acme-challenge.v4.dyn.example.org" not in index.extra
    assert not index.exists("home.dyn.example.org")
    assert index.lookup("new.dyn.example.org", "ANY")[1] == [("AAAA", 30, "2001:db8::9")]


def test_zone_ttl_and_drop(index: zoneindex.ZoneIndex) -> None:
    index.set_zone(zone_row(1, "dyn.example.org", ttl=42, serial=8))
    assert index.lookup("v4.dyn.example.org", "A")[1] == [("A", 42, "192.0.2.2")]
    assert index.lookup("dyn.example.org", "SOA")[1][0][2].split()[2] == "8"
    index.drop_zone("dyn.example.org")
    zone, records = index.lookup("home.dyn.example.org", "A")
    assert zone is not None and zone.name == "example.org" and records == []  # the parent has no such host
    assert "v4.dyn.example.org" not in index.owners and not index.extra
    assert index.lookup("www.example.org", "A")[1] == [("A", 300, "198.51.100.1")]
