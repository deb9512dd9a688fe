"""What related names cost the group commit: ``store.updates.apply_many`` on MariaDB for hosts without related
names and for hosts with some, each update a new IPv6 address (so every related name moves), batches
alternated, medians (the ratio says more than the times on a busy box).

Run it by hand (not collected by pytest)::

    .venv/bin/python -m tests.bench.bench_related [--rounds 40] [--sizes 1 32] [--related 2]

It makes its own database on the MariaDB of DDSERVER_TEST_MYSQL_URL (default 127.0.0.1:3306 root) and drops it.
"""

from __future__ import annotations

import argparse

from ddserver.store import related, updates
from tests.bench.group_commit import alternate, bench


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--hosts", type=int, default=200, help="hosts of each kind")
    parser.add_argument("--related", type=int, default=2, help="related names of each host of the second kind")
    args = parser.parse_args()
    with bench("related") as b:
        plain, with_related = [], []
        for n in range(args.hosts):
            plain.append(b.add_host(f"p{n}").name)
            host = b.add_host(f"r{n}")
            for k in range(args.related):
                related.add(b.db, host.id, f"m{k}.{host.name}", f"::{k + 1}", limit=-1)
            with_related.append(host.name)

        def batch(names: list[str], size: int) -> float:
            # A new IPv6 address each time, so that every related name moves.
            return b.time_batch(
                names, size, lambda state: updates.Update(state, None, b.ipv6(), False, True, client="192.0.2.1")
            )

        alternate(
            args.rounds,
            args.sizes,
            lambda size: batch(plain, size),
            lambda size: batch(with_related, size),
            lambda off, on: f"{off:6.2f} ms without related names, {on:6.2f} ms with {args.related} each",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
