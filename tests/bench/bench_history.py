"""What entering the update history costs the group commit: ``store.updates.apply_many`` on MariaDB with and
without it, batches of several sizes alternated, medians (the ratio says more than the times on a busy box).

Run it by hand (not collected by pytest)::

    .venv/bin/python -m tests.bench.bench_history [--rounds 60] [--sizes 1 10 50 100]

It makes its own database on the MariaDB of DDSERVER_TEST_MYSQL_URL (default 127.0.0.1:3306 root) and drops it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid

from ddserver import secrets
from ddserver.store import hosts, updates, users, zones
from tests import support

ZONE = "dyn.example.org"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50, 100])
    parser.add_argument("--hosts", type=int, default=400)
    args = parser.parse_args()
    db = support.create_database(f"{support.mysql_base()}ddbench_history_{os.getpid()}_{uuid.uuid4().hex[:6]}")
    try:
        zones.add(db, ZONE, ["ns1.example.org"], "hostmaster.example.org")
        user = users.add(db, "alice", "alice@example.org")
        secret_hash = secrets.hash_host_secret(secrets.new_host_secret())
        names = sorted(
            hosts.add(db, user.id, f"h{n}.{ZONE}", secret_hash, default_limit=-1).name for n in range(args.hosts)
        )
        # The committer's kind of connection: the writes and the commit in one round trip.
        committer = db.with_multi_statements()
        batches = 0

        def batch(size: int, record: bool) -> float:
            nonlocal batches
            batches += 1
            chunk = [names[(batches * size + i) % len(names)] for i in range(size)]
            state = updates.read_hosts(db, chunk)
            address = f"10.{batches // 62500 % 256}.{batches // 250 % 250}.{batches % 250}"
            work = [
                updates.Update(state[n], address, None, True, False, client="192.0.2.1", tls=True, history=record)
                for n in chunk
            ]
            started = time.perf_counter()
            updates.apply_many(committer, work)
            return time.perf_counter() - started

        print(f"apply_many on MariaDB, {args.rounds} rounds alternated, load average {os.getloadavg()[0]:.2f}")
        for size in args.sizes:
            without, with_history = [], []
            for _ in range(args.rounds):
                without.append(batch(size, False))
                with_history.append(batch(size, True))
            off, on = statistics.median(without) * 1000, statistics.median(with_history) * 1000
            print(f"batch {size:4}: {off:6.2f} ms without history, {on:6.2f} ms with: ratio {on / off:.3f}", flush=True)
        committer.close_all()
    finally:
        db.drop_database()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
