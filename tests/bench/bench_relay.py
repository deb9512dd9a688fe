"""What the relays' outbox costs the group commit: ``store.updates.apply_many`` on MariaDB with and without the
statement that marks the changed hosts' relays pending (a tenth of the hosts have a relay), batches of several
sizes alternated, medians.

Run it by hand (not collected by pytest)::

    .venv/bin/python -m tests.bench.bench_relay [--rounds 60] [--sizes 1 10 50 100]

It makes its own database on the MariaDB of DDSERVER_TEST_MYSQL_URL (default 127.0.0.1:3306 root) and drops it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Sequence
from typing import Any

from ddserver import secrets
from ddserver.store import hosts, relays, updates, users, zones
from tests import support

ZONE = "dyn.example.org"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50, 100])
    parser.add_argument("--hosts", type=int, default=400)
    args = parser.parse_args()
    db = support.create_database(f"{support.mysql_base()}ddbench_relay_{os.getpid()}_{uuid.uuid4().hex[:6]}")
    original = relays.changed_statements
    try:
        zones.add(db, ZONE, ["ns1.example.org"], "hostmaster.example.org")
        user = users.add(db, "alice", "alice@example.org")
        secret_hash = secrets.hash_host_secret(secrets.new_host_secret())
        added = [hosts.add(db, user.id, f"h{n}.{ZONE}", secret_hash, default_limit=-1) for n in range(args.hosts)]
        for host in added[::10]:
            relays.add(
                db, host.id, url="https://third.example/nic/update", remote_name="h.third.example",
                username="u", sealed_secret="sealed1:x:y", family="both", limit=3,
            )  # fmt: skip
        names = sorted(host.name for host in added)
        committer = db.with_multi_statements()
        batches = 0

        def nothing(host_ids: Sequence[int]) -> list[tuple[str, list[Any]]]:
            return []

        def batch(size: int, outbox: bool) -> float:
            nonlocal batches
            batches += 1
            relays.changed_statements = original if outbox else nothing  # type: ignore[assignment]
            chunk = [names[(batches * size + i) % len(names)] for i in range(size)]
            state = updates.read_hosts(db, chunk)
            address = f"10.{batches // 62500 % 256}.{batches // 250 % 250}.{batches % 250}"
            work = [updates.Update(state[n], address, None, True, False, client="192.0.2.1", tls=True) for n in chunk]
            started = time.perf_counter()
            updates.apply_many(committer, work)
            return time.perf_counter() - started

        print(f"apply_many on MariaDB, {args.rounds} rounds alternated, load average {os.getloadavg()[0]:.2f}")
        for size in args.sizes:
            without, with_outbox = [], []
            for _ in range(args.rounds):
                without.append(batch(size, False))
                with_outbox.append(batch(size, True))
            off, on = statistics.median(without) * 1000, statistics.median(with_outbox) * 1000
            print(f"batch {size:4}: {off:6.2f} ms without outbox, {on:6.2f} ms with: ratio {on / off:.3f}", flush=True)
        committer.close_all()
    finally:
        relays.changed_statements = original  # type: ignore[assignment]
        db.drop_database()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
