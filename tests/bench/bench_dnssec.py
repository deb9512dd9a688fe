"""Signed against unsigned: the same zone served by PowerDNS through the recursor (remote socket,
``remote-dnssec=yes``), once signed (ECDSA P-256, NSEC3 narrow) and once not, with PowerDNS's caches off and on,
measured with dnsperf in the same run; then the time from an update to the signed new answer.

    .venv/bin/python -m tests.bench.bench_dnssec --hosts 10000 --seconds 10 --runs 2 --updates 200

Two databases hold the same hosts; in one the zone is signed. Four PowerDNS servers (signed or not, caches off
or at 60 s) each with its own recursor; each round runs dnsperf against all four in turn, with the DO bit set
(as a validating resolver asks), 95 % existing names (A, some AAAA) and 5 % missing ones (each NXDOMAIN needs
its own NSEC3 proof, signed at once: narrow mode). Prints the median qps of each and the signed/unsigned
ratio. The update phase commits new addresses (each at a random point of the poll interval) to each zone and
asks (DO bit, caches on) every 2 ms until the new address comes back, with its RRSIG in the signed zone:
p50, p99, max of each.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype

from ddserver import signing
from ddserver.store import hosts
from tests import support
from tests.bench import recursor_data
from tests.bench.bench_recursor import dnsperf
from tests.pdns import PdnsServer, start_pdns

POLL = 0.2
DATA_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


def signed_answer(pdns: PdnsServer, name: str) -> tuple[list[str], bool]:
    """The A records of ``name`` asked with the DO bit, and whether an RRSIG covers them."""
    request = dns.message.make_query(name, "A", want_dnssec=True)
    answer = dns.query.udp(request, pdns.host, port=pdns.port, timeout=5)
    found = [r.to_text() for rrset in answer.answer if rrset.rdtype == dns.rdatatype.A for r in rrset]
    signed = any(rrset.rdtype == dns.rdatatype.RRSIG for rrset in answer.answer)
    return sorted(found), signed


def visibility(pdns: PdnsServer, db, count: int, hosts_count: int, signed: bool) -> list[float]:  # type: ignore[no-untyped-def]
    """Seconds from each commit (at a random point of the poll interval) to the new answer, signed or not."""
    ids = dict(db.read(lambda tx: tx.tuples("SELECT name, id FROM hosts")))
    rng = random.Random(1)
    delays = []
    for n in range(count):
        name = recursor_data.host_name(n % hosts_count)
        new = f"172.{16 + n // 65536 % 16}.{n // 256 % 256}.{n % 256}"
        signed_answer(pdns, name)  # the old answer is now cached
        time.sleep(rng.uniform(0, POLL))
        hosts.set_addresses(db, ids[name], ipv4=new)
        committed = time.monotonic()
        while signed_answer(pdns, name) != ([new], signed):
            time.sleep(0.002)
            if time.monotonic() - committed > 30:
                raise RuntimeError(f"{name}: no signed {new} 30 s after the commit")
        delays.append(time.monotonic() - committed)
    return sorted(delays)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--algorithm", default="ecdsa256", choices=("ecdsa256", "ed25519"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-dnssec-") as tmp:
        folder = Path(tmp)
        configs = {}
        dbs = {}
        for kind in ("unsigned", "signed"):
            url = support.new_database_url("sqlite", folder)
            dbs[kind] = support.create_database(url)
            recursor_data.seed_ddserver(dbs[kind], args.hosts)
            configs[kind] = support.write_config_file(
                folder / f"{kind}.conf", url, f"data_key = {DATA_KEY}\n[recursor]\npoll_interval = {POLL}\n"
            )
        config = support.make_config(f"sqlite:///{dbs['signed'].url.path}", folder, auth={"data_key": DATA_KEY})
        signing.enable(dbs["signed"], config, recursor_data.ZONE, signing.algorithm_of(args.algorithm))
        queries = recursor_data.query_file(folder / "queries.txt", args.hosts)
        servers: dict[str, PdnsServer] = {}
        try:
            for kind in ("unsigned", "signed"):
                for cache in (False, True):
                    name = f"{kind}, caches {'on' if cache else 'off'}"
                    servers[name] = start_pdns(
                        folder / name.replace(", ", "-").replace(" ", "-"), configs[kind], "remote-socket",
                        cache=cache, cache_ttl=60, extra="remote-dnssec=yes\ndistributor-threads=8\n", timeout=120,
                    )  # fmt: skip
            assert signed_answer(servers["signed, caches off"], recursor_data.host_name(1))[1]
            assert not signed_answer(servers["unsigned, caches off"], recursor_data.host_name(1))[1]
            for pdns in servers.values():  # warm up: the recursor, PowerDNS's key and signature caches
                dnsperf_do(pdns.port, queries, 3, args.clients)
            results: dict[str, list[float]] = {name: [] for name in servers}
            for run in range(args.runs):
                for name, pdns in servers.items():
                    load = os.getloadavg()[0]
                    r = dnsperf_do(pdns.port, queries, args.seconds, args.clients)
                    results[name].append(r["qps"])
                    print(f"round {run + 1} {name:22} {r['qps']:9.0f} qps  lost {r['lost']:.0f}  "
                          f"latency {r['latency_ms']:.2f} ms  load {load:.2f}  {r['codes']}", flush=True)  # fmt: skip
            print(f"\n{args.hosts} hosts, {args.algorithm}, NSEC3 narrow, dnsperf -D, median of {args.runs} runs:")
            for cache in ("off", "on"):
                plain = statistics.median(results[f"unsigned, caches {cache}"])
                signed = statistics.median(results[f"signed, caches {cache}"])
                print(f"caches {cache:3}: unsigned {plain:9.0f} qps, signed {signed:9.0f} qps, "
                      f"signed/unsigned {signed / plain:.2f}")  # fmt: skip
            for kind in ("unsigned", "signed"):
                load = os.getloadavg()[0]
                delays = visibility(
                    servers[f"{kind}, caches on"], dbs[kind], args.updates, args.hosts, kind == "signed"
                )
                p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
                print(f"update to {kind} answer (caches 60 s, poll {POLL} s, commits at random): {len(delays)} "
                      f"updates, p50 {statistics.median(delays) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
                      f"max {delays[-1] * 1000:.0f} ms, load {load:.2f}", flush=True)  # fmt: skip
        finally:
            for pdns in servers.values():
                pdns.stop()
    return 0


def dnsperf_do(port: int, queries: Path, seconds: int, clients: int) -> dict[str, float]:
    """dnsperf with the DO bit (``-D``), as validating resolvers ask."""
    return dnsperf(port, queries, seconds, clients, extra=["-D"])


if __name__ == "__main__":
    sys.exit(main())
