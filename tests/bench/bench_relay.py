"""What the relays' outbox costs the group commit: ``store.updates.apply_many`` on MariaDB with and without the
statement that marks the changed hosts' relays pending (a tenth of the hosts have a relay), batches of several
sizes alternated, medians.

Run it by hand (not collected by pytest)::

    .venv/bin/python -m tests.bench.bench_relay [--rounds 60] [--sizes 1 10 50 100]

It makes its own database on the MariaDB of DDSERVER_TEST_MYSQL_URL (default 127.0.0.1:3306 root) and drops it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from ddserver.store import relays, updates
from tests.bench.group_commit import alternate, bench


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50, 100])
    parser.add_argument("--hosts", type=int, default=400)
    args = parser.parse_args()
    original = relays.changed_statements

    def nothing(host_ids: Sequence[int]) -> list[tuple[str, list[Any]]]:
        return []

    try:
        with bench("relay") as b:
            added = [b.add_host(f"h{n}") for n in range(args.hosts)]
            for host in added[::10]:
                relays.add(
                    b.db, host.id, url="https://third.example/nic/update", remote_name="h.third.example",
                    username="u", sealed_secret="sealed1:x:y", family="both", limit=3,
                )  # fmt: skip
            names = sorted(host.name for host in added)

            def batch(size: int, outbox: bool) -> float:
                relays.changed_statements = original if outbox else nothing  # type: ignore[assignment]
                return b.time_batch(
                    names,
                    size,
                    lambda state: updates.Update(state, b.ipv4(), None, True, False, client="192.0.2.1", tls=True),
                )

            alternate(
                args.rounds,
                args.sizes,
                lambda size: batch(size, False),
                lambda size: batch(size, True),
                lambda off, on: f"{off:6.2f} ms without outbox, {on:6.2f} ms with",
            )
    finally:
        relays.changed_statements = original  # type: ignore[assignment]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
