"""ddserver-updater as the benchmark runs it; ``--no-rehash`` keeps legacy (slow) secret hashes in place, so every
request pays for a slow hash check as ddserver 0.2 did."""

from __future__ import annotations

import sys

from ddserver.store import updates
from ddserver.updater import main as updater_main


def run(argv: list[str]) -> int:
    if "--no-rehash" in argv:
        argv = [a for a in argv if a != "--no-rehash"]
        updates.rehash_secret = lambda *args, **kwargs: None  # type: ignore[assignment]
    return updater_main.main(argv)


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
