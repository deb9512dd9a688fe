"""The NSEC3 chain of a zone signed for secondaries: hashes and their order checked against dnspython, empty
non-terminals and wildcard names kept as names come and go, the neighbours the remote backend gives
PowerDNS, and the metadata that tells PowerDNS which NSEC3 mode a zone has."""

from __future__ import annotations

import json
import random
import time
import warnings

import dns.name

from ddserver.dns import nsec3, remote, zoneindex
from ddserver.store.dnsdata import ZoneRow

with warnings.catch_warnings():  # dnspython's DSA support, deprecated by cryptography
    warnings.simplefilter("ignore")
    import dns.dnssec

ZONE = "dyn.example.org"
KEYS = ((7, 257, True, True, "sealed"),)
CHAINED = ZoneRow(
    3, ZONE, ("ns1.example.org",), "hostmaster.example.org", 5, 3600, 600, 86400, 60, 3600, None,
    dnssec=True, keys=KEYS, transfer_keys=(("xfr.dyn.example.org", "hmac-sha256", "sealed"),),
)  # fmt: skip


def dnspython_hash(name: str, salt: str | None = None, iterations: int = 0) -> str:
    return dns.dnssec.nsec3_hash(dns.name.from_text(name), salt, iterations, 1).lower()


def test_hashes_match_dnspython_and_sort_as_their_labels() -> None:
    names = [ZONE, f"home.{ZONE}", f"*.home.{ZONE}", f"_acme-challenge.x.{ZONE}", "xn--bcher-kva.example"]
    for name in names:
        assert nsec3.to_label(nsec3.digest(name)) == dnspython_hash(name)
        assert nsec3.from_label(dnspython_hash(name).upper()) == nsec3.digest(name)
    assert nsec3.to_label(nsec3.digest(ZONE, bytes.fromhex("aabb"), 3)) == dnspython_hash(ZONE, "aabb", 3)
    assert nsec3.parse_param("1 0 0 -") == (b"", 0) and nsec3.parse_param("1 0 5 aabb") == (b"\xaa\xbb", 5)
    chain = nsec3.build(ZONE, [f"h{i}.{ZONE}" for i in range(200)])
    labels = [dnspython_hash(n) for n in chain.names()]
    assert labels == sorted(labels) and len(labels) == 201  # base32hex keeps the digests' order
    assert nsec3.from_label("not-a-hash") is None and nsec3.from_label("z" * 32) is None


def test_neighbours_wrap_around_and_match_exact_hashes() -> None:
    chain = nsec3.build(ZONE, [f"a.{ZONE}", f"b.{ZONE}"])
    ordered = sorted((nsec3.digest(n), n) for n in (ZONE, f"a.{ZONE}", f"b.{ZONE}"))
    (h0, _), (h1, n1), (h2, n2) = ordered
    assert chain.neighbours(h1) == (h1, n1, h2)  # a name of the zone: its own NSEC3
    assert chain.neighbours(h2) == (h2, n2, h0)  # the last wraps to the first
    assert chain.neighbours(b"\0" * 20) == (h2, n2, h0)  # before the first: covered by the last
    assert chain.neighbours(b"\xff" * 20) == (h2, n2, h0)
    between = bytes([h1[0]]) + b"\xff" * 19 if h1[0] < h2[0] else h1[:-1] + bytes([min(h1[-1] + 1, 255)])
    if h1 < between < h2:
        assert chain.neighbours(between) == (h1, n1, h2)  # covered


def test_empty_non_terminals_and_wildcards_follow_the_index() -> None:
    index = zoneindex.build(
        [CHAINED],
        [(f"a.b.c.{ZONE}", 3, "192.0.2.1", None, None, 0), (f"w.{ZONE}", 3, None, None, None, 1)],
        [(f"w.{ZONE}", f"_acme-challenge.w.{ZONE}", "TXT", "t", None)],
    )
    assert index.sync_chains() == set()
    chain = index.chains[3]
    expected = {ZONE, f"a.b.c.{ZONE}", f"b.c.{ZONE}", f"c.{ZONE}", f"w.{ZONE}", f"*.w.{ZONE}"}
    assert set(chain.names()) == expected | {f"_acme-challenge.w.{ZONE}"}
    assert chain.ents == {f"b.c.{ZONE}", f"c.{ZONE}"}
    # A host at an empty non-terminal: it has records of its own now; then the one below goes.
    index.set_host(f"c.{ZONE}", "192.0.2.3", None, None, False)
    assert index.sync_chains([f"c.{ZONE}"]) == {ZONE}
    assert chain.ents == {f"b.c.{ZONE}"} and chain.is_real(f"c.{ZONE}")
    index.drop_host(f"a.b.c.{ZONE}")
    assert index.sync_chains([f"a.b.c.{ZONE}"]) == {ZONE}
    assert chain.ents == set() and not chain.contains(f"b.c.{ZONE}") and chain.contains(f"c.{ZONE}")
    # Wildcard off: *.w goes; nothing changes for a name whose existence did not change.
    index.set_host(f"w.{ZONE}", None, None, None, False)
    assert index.sync_chains([f"w.{ZONE}"]) == {ZONE} and not chain.contains(f"*.w.{ZONE}")
    index.set_host(f"w.{ZONE}", "192.0.2.9", None, None, False)
    assert index.sync_chains([f"w.{ZONE}"]) == set()
    fresh = nsec3.build(ZONE, index.zone_names(index.zones[ZONE]))
    assert fresh.names() == chain.names() and fresh.ents == chain.ents
    # Incremental changes give the same chain as a build from scratch, in any order.
    rng = random.Random(5)
    names = [f"{rng.choice('abc')}.{rng.choice('xyz')}.{ZONE}" for _ in range(60)] + [f"n{i}.{ZONE}" for i in range(30)]
    for name in names:
        if rng.random() < 0.6:
            index.set_host(name, "192.0.2.1", None, None, rng.random() < 0.3)
        else:
            index.drop_host(name)
        index.sync_chains([name])
    fresh = nsec3.build(ZONE, index.zone_names(index.zones[ZONE]))
    assert fresh.names() == chain.names() and fresh.ents == chain.ents


def call(handler: remote.RemoteHandler, method: str, **params: object) -> object:
    return json.loads(handler.handle(json.dumps({"method": method, "parameters": params})))["result"]


def test_remote_backend_gives_neighbours_and_chain_metadata() -> None:
    narrow = ZoneRow(4, "narrow.example.org", (), "h.example.org", 1, 1, 1, 1, 1, 1, None, dnssec=True, keys=KEYS)
    index = zoneindex.build([CHAINED, narrow], [(f"x.y.{ZONE}", 3, "192.0.2.1", None, None, 0)], [])
    index.sync_chains()
    handler = remote.RemoteHandler(lambda: index)
    assert call(handler, "getAllDomainMetadata", name=f"{ZONE}.") == {
        "NSEC3PARAM": ["1 0 0 -"], "TSIG-ALLOW-AXFR": ["xfr.dyn.example.org"]
    }  # fmt: skip
    assert call(handler, "getAllDomainMetadata", name="narrow.example.org.")["NSEC3NARROW"] == ["1"]  # type: ignore[index]
    target = dnspython_hash(f"x.y.{ZONE}")
    answer = call(handler, "getBeforeAndAfterNamesAbsolute", id=3, qname=target.upper() + ".")
    assert answer["before"] == target and answer["unhashed"] == f"x.y.{ZONE}."  # type: ignore[index]
    assert answer["after"] in {dnspython_hash(ZONE), dnspython_hash(f"y.{ZONE}")}  # type: ignore[index]
    assert call(handler, "getBeforeAndAfterNamesAbsolute", id=4, qname=target) is False  # narrow
    assert call(handler, "getBeforeAndAfterNamesAbsolute", id=3, qname="nonsense.") is False
    # The empty non-terminal exists (NODATA), a missing name does not.
    assert call(handler, "lookup", qname=f"Y.{ZONE}.", qtype="ANY")[0]["qtype"] == "ENT"  # type: ignore[index]
    assert call(handler, "lookup", qname=f"z.{ZONE}.", qtype="ANY") == []


def test_a_chain_of_100k_names_builds_in_seconds() -> None:
    names = [f"host{i}.{ZONE}" for i in range(100_000)]
    started = time.perf_counter()
    chain = nsec3.build(ZONE, names)
    seconds = time.perf_counter() - started
    print(f"figures: NSEC3 chain of 100,000 names built in {seconds:.2f} s")
    assert len(chain) == 100_001
    started = time.perf_counter()
    for i in range(1000):
        chain.neighbours(nsec3.digest(f"missing{i}.{ZONE}"))
    print(f"figures: 1,000 neighbour lookups in {time.perf_counter() - started:.3f} s")


def test_a_zone_signed_for_secondaries_serves_a_serial_that_grows_each_week() -> None:
    """Secondaries keep PowerDNS's signatures until the next transfer: the served serial grows by one each
    week (PowerDNS's signing weeks), so the zone is notified and transferred with fresh signatures."""
    index = zoneindex.build([CHAINED], [], [])
    zone = index.zones[ZONE]
    week = 2900
    assert zone.current(week * zoneindex.WEEK + 5).serial == 5 + week
    assert zone.soa[2].split()[2] == str(5 + week)
    assert zone.current((week + 1) * zoneindex.WEEK - 1).serial == 5 + week
    assert zone.current((week + 1) * zoneindex.WEEK).serial == 5 + week + 1
    handler = remote.RemoteHandler(lambda: index)
    served = call(handler, "getDomainInfo", name=f"{ZONE}.")["serial"]  # type: ignore[index]
    assert served == 5 + int(time.time() // zoneindex.WEEK)
    soa = call(handler, "lookup", qname=f"{ZONE}.", qtype="SOA")[0]["content"]  # type: ignore[index]
    assert soa.split()[2] == str(served)
    # Narrow (no secondaries) or unsigned: the stored serial.
    narrow = ZoneRow(4, "narrow.example.org", (), "h.example.org", 9, 1, 1, 1, 1, 1, None, dnssec=True, keys=KEYS)
    assert zoneindex.build([narrow], [], []).zones["narrow.example.org"].current().serial == 9
