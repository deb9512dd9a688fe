"""What related names cost the group commit: ``store.updates.apply_many`` on MariaDB for hosts without related
names and for hosts with some, each update a new IPv6 address (so every related name moves), batches
alternated, medians (the ratio says more than the times on a busy box).

Run it by hand (not collected by pytest)::

    .venv/bin/python -m tests.bench.bench_related [--rounds 40] [--sizes 1 32] [--related 2]

It makes its own database on the MariaDB of DDSERVER_TEST_MYSQL_URL (default 127.0.0.1:3306 root) and drops it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid

from ddserver import secrets
from ddserver.store import hosts, related, updates, users, zones
from tests import support

ZONE = "dyn.example.org"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--hosts", type=int, default=200, help="hosts of each kind")
    parser.add_argument("--related", type=int, default=2, help="related names of each host of the second kind")
    args = parser.parse_args()
    db = support.create_database(f"{support.mysql_base()}ddbench_related_{os.getpid()}_{uuid.uuid4().hex[:6]}")
    try:
        zones.add(db, ZONE, ["ns1.example.org"], "hostmaster.example.org")
        user = users.add(db, "alice", "alice@example.org")
        secret_hash = secrets.hash_host_secret(secrets.new_host_secret())
        plain, with_related = [], []
        for n in range(args.hosts):
            plain.append(hosts.add(db, user.id, f"p{n}.{ZONE}", secret_hash, default_limit=-1).name)
            host = hosts.add(db, user.id, f"r{n}.{ZONE}", secret_hash, default_limit=-1)
            for k in range(args.related):
                related.add(db, host.id, f"m{k}.{host.name}", f"::{k + 1}", limit=-1)
            with_related.append(host.name)
        # The committer's kind of connection: the writes and the commit in one round trip.
        committer = db.with_multi_statements()
        batches = 0

        def batch(names: list[str], size: int) -> float:
            nonlocal batches
            batches += 1
            chunk = [names[(batches * size + i) % len(names)] for i in range(size)]
            state = updates.read_hosts(db, chunk)
            address = f"2001:db8:{batches // 65536 % 65536:x}:{batches % 65536:x}::1"
            work = [updates.Update(state[n], None, address, False, True, client="192.0.2.1") for n in chunk]
            started = time.perf_counter()
            updates.apply_many(committer, work)
            return time.perf_counter() - started

        print(f"apply_many on MariaDB, {args.rounds} rounds alternated, load average {os.getloadavg()[0]:.2f}")
        for size in args.sizes:
            without, following = [], []
            for _ in range(args.rounds):
                without.append(batch(plain, size))
                following.append(batch(with_related, size))
            off, on = statistics.median(without) * 1000, statistics.median(following) * 1000
            print(
                f"batch {size:4}: {off:6.2f} ms without related names, {on:6.2f} ms with {args.related} each: "
                f"ratio {on / off:.3f}",
                flush=True,
            )
        committer.close_all()
    finally:
        db.drop_database()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
