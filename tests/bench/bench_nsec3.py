"""The NSEC3 chain of a zone signed for secondaries, at scale: time and memory to build it for N hosts, and
the cost of adding hosts one by one afterwards (each keeps the chain in order).

    .venv/bin/python -m tests.bench.bench_nsec3 --names 1000000

Prints the build time, the process's peak resident memory before and after the build, and the time per
added host. Not a timed test: the figures go to docs/dnssec.md.
"""

from __future__ import annotations

import argparse
import resource
import time

from ddserver.dns import zoneindex
from ddserver.store.dnsdata import ZoneRow

ZONE = "dyn.example.org"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=100_000)
    parser.add_argument("--adds", type=int, default=1000)
    args = parser.parse_args()
    row = ZoneRow(
        3, ZONE, ("ns1.example.org",), "hostmaster.example.org", 1, 3600, 600, 604800, 60, 3600, None,
        dnssec=True, keys=((1, 257, True, True, "sealed"),), also_notify=("192.0.2.53",),
    )  # fmt: skip
    hosts = ((f"host{i}.{ZONE}", 3, "192.0.2.1", None, None, 0) for i in range(args.names))
    index = zoneindex.build([row], hosts, [])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    index.sync_chains()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.names:,} hosts: chain built in {seconds:.2f} s; peak RSS {before:.0f} MB before, {after:.0f} MB after"
    )
    started = time.perf_counter()
    for i in range(args.adds):
        name = f"new{i}.{ZONE}"
        index.set_host(name, "192.0.2.1", None, None, False)
        index.sync_chains([name])
    each = (time.perf_counter() - started) / args.adds * 1000
    print(f"{args.adds:,} hosts added one by one: {each:.2f} ms each")


if __name__ == "__main__":
    main()
