"""What the group-commit benchmarks share: a throwaway MariaDB database with hosts, timed
``store.updates.apply_many`` batches, and two kinds of batch alternated, with their medians and ratio."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ddserver import secrets
from ddserver.db import Database
from ddserver.store import hosts, updates, users, zones
from tests import support

ZONE = "dyn.example.org"


@dataclass
class Bench:
    db: Database
    user_id: int
    secret_hash: str
    #: The committer's kind of connection: the writes and the commit in one round trip.
    committer: Database
    batches: int = 0

    def add_host(self, label: str) -> hosts.Host:
        return hosts.add(self.db, self.user_id, f"{label}.{ZONE}", self.secret_hash, default_limit=-1)

    def ipv4(self) -> str:
        """An address no batch used before."""
        n = self.batches
        return f"10.{n // 62500 % 256}.{n // 250 % 250}.{n % 250}"

    def ipv6(self) -> str:
        """An address no batch used before."""
        n = self.batches
        return f"2001:db8:{n // 65536 % 65536:x}:{n % 65536:x}::1"

    def time_batch(self, names: list[str], size: int, update: Callable[[updates.HostState], updates.Update]) -> float:
        """Seconds ``apply_many`` takes for the next ``size`` of ``names``, each made an update by ``update``."""
        self.batches += 1
        chunk = [names[(self.batches * size + i) % len(names)] for i in range(size)]
        state = updates.read_hosts(self.db, chunk)
        work = [update(state[n]) for n in chunk]
        started = time.perf_counter()
        updates.apply_many(self.committer, work)
        return time.perf_counter() - started


@contextlib.contextmanager
def bench(label: str) -> Iterator[Bench]:
    """A database of its own on the MariaDB of DDSERVER_TEST_MYSQL_URL, with the zone and a user; dropped after."""
    db = support.create_database(f"{support.mysql_base()}ddbench_{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}")
    try:
        zones.add(db, ZONE, ["ns1.example.org"], "hostmaster.example.org")
        user = users.add(db, "alice", "alice@example.org")
        secret_hash = secrets.hash_host_secret(secrets.new_host_secret())
        committer = db.with_multi_statements()
        yield Bench(db, user.id, secret_hash, committer)
        committer.close_all()
    finally:
        db.drop_database()


def alternate(
    rounds: int,
    sizes: list[int],
    first: Callable[[int], float],
    second: Callable[[int], float],
    describe: Callable[[float, float], str],
) -> None:
    """Time ``first(size)`` and ``second(size)`` in turn, ``rounds`` times per size, and print the medians (in
    ms, through ``describe``) and their ratio: on a busy machine the ratio says more than the times."""
    print(f"apply_many on MariaDB, {rounds} rounds alternated, load average {os.getloadavg()[0]:.2f}")
    for size in sizes:
        one, two = [], []
        for _ in range(rounds):
            one.append(first(size))
            two.append(second(size))
        off, on = statistics.median(one) * 1000, statistics.median(two) * 1000
        print(f"batch {size:4}: {describe(off, on)}: ratio {on / off:.3f}", flush=True)
