"""What entering the update history costs the group commit: ``store.updates.apply_many`` on MariaDB with and
without it, batches of several sizes alternated, medians (the ratio says more than the times on a busy box).

Run it by hand (not collected by pytest)::

    .venv/bin/python -m tests.bench.bench_history [--rounds 60] [--sizes 1 10 50 100]

It makes its own database on the MariaDB of DDSERVER_TEST_MYSQL_URL (default 127.0.0.1:3306 root) and drops it.
"""

from __future__ import annotations

import argparse

from ddserver.store import updates
from tests.bench.group_commit import alternate, bench


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50, 100])
    parser.add_argument("--hosts", type=int, default=400)
    args = parser.parse_args()
    with bench("history") as b:
        names = sorted(b.add_host(f"h{n}").name for n in range(args.hosts))

        def batch(size: int, record: bool) -> float:
            def update(state: updates.HostState) -> updates.Update:
                return updates.Update(state, b.ipv4(), None, True, False, client="192.0.2.1", tls=True, history=record)

            return b.time_batch(names, size, update)

        alternate(
            args.rounds,
            args.sizes,
            lambda size: batch(size, False),
            lambda size: batch(size, True),
            lambda off, on: f"{off:6.2f} ms without history, {on:6.2f} ms with",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
