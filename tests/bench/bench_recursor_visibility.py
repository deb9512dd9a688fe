"""Update visibility through PowerDNS with caches on: time from the database commit to a DNS answer
with the new address, over many updates (p50, p99, max).

    .venv/bin/python -m tests.bench.bench_recursor_visibility --updates 1000 --mode remote-socket
    .venv/bin/python -m tests.bench.bench_recursor_visibility --updates 1000 --mode pipe --dialect mysql

Each round asks once (so the old answer sits in PowerDNS's 60 s caches), commits a new address, then
asks every 2 ms until the new address comes back. ``--phase random`` (the default) waits a random part of
the poll interval before each commit, as updates arrive at any time; ``--phase after-poll`` commits as soon
as the previous update showed, that is just after a poll, so every update waits almost a whole interval
(the worst case).
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

from ddserver.store import hosts
from tests import support
from tests.bench import recursor_data
from tests.pdns import start_pdns


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument(
        "--mode", default="remote-socket", choices=("pipe", "remote-pipe", "remote-socket", "pipe-socket")
    )
    parser.add_argument("--dialect", default="sqlite", choices=("sqlite", "mysql"))
    parser.add_argument("--poll-interval", type=float, default=0.2)
    parser.add_argument("--phase", default="random", choices=("random", "after-poll"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-visibility-") as tmp:
        folder = Path(tmp)
        url = support.new_database_url(args.dialect, folder)
        db = support.create_database(url)
        try:
            recursor_data.seed_ddserver(db, args.hosts)
            ids = dict(db.read(lambda tx: tx.tuples("SELECT name, id FROM hosts")))
            config = support.write_config_file(
                folder / "ddserver.conf", url, f"[recursor]\npoll_interval = {args.poll_interval}\n"
            )
            delays: list[float] = []
            rng = random.Random(1)
            with start_pdns(folder / "pdns", config, args.mode, cache=True, cache_ttl=60, timeout=120) as pdns:
                print(f"load average before the updates: {os.getloadavg()[0]:.2f}", flush=True)
                for n in range(args.updates):
                    i = n % args.hosts
                    name = recursor_data.host_name(i)
                    new = f"172.{16 + n // 65536 % 16}.{n // 256 % 256}.{n % 256}"
                    pdns.records(name, "A")  # the old answer is now cached
                    if args.phase == "random":
                        time.sleep(rng.uniform(0, args.poll_interval))
                    hosts.set_addresses(db, ids[name], ipv4=new)
                    committed = time.monotonic()
                    while (seen := pdns.records(name, "A")) != [new]:
                        time.sleep(0.002)
                        if time.monotonic() - committed > 30:
                            lines = [line for line in pdns.log().splitlines() if name in line or "WARN" in line]
                            raise RuntimeError(
                                f"{name} still answers {seen}, not {new}, 30 s after the commit; its log lines:\n"
                                + "\n".join(lines[-40:])
                            )
                    delays.append(time.monotonic() - committed)
            delays.sort()
            p50 = statistics.median(delays) * 1000
            p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))] * 1000
            print(
                f"{args.mode} ({args.dialect}, poll {args.poll_interval} s, caches 60 s, commits {args.phase}): "
                f"{len(delays)} updates, "
                f"commit to answer p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {delays[-1] * 1000:.0f} ms"
            )
        finally:
            if args.dialect == "mysql":
                db.drop_database()
    return 0


if __name__ == "__main__":
    sys.exit(main())
