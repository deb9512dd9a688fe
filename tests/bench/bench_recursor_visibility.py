"""Update visibility through PowerDNS with caches on: time from the database commit to a DNS answer
with the new address, over many updates (p50, p99, max).

    .venv/bin/python -m tests.bench.bench_recursor_visibility --updates 1000 --mode remote-socket
    .venv/bin/python -m tests.bench.bench_recursor_visibility --updates 1000 --mode pipe --dialect mysql

Each round asks once (so the old answer sits in PowerDNS's 60 s caches), commits a new address, then
asks every 2 ms until the new address comes back. ``--phase random`` (the default) waits a random part of
the poll interval before each commit, as updates arrive at any time; ``--phase after-poll`` commits as soon
as the previous update showed, that is just after a poll, so every update waits almost a whole interval
(the worst case).

``--write-load N`` runs ``mariadb-slap`` with N writing clients against a scratch schema of the shared
MariaDB meanwhile (dropped afterwards): the recursor's reads and PowerDNS's answers then come late, which
is when an answer computed before a change can reach PowerDNS's caches after the purge.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ddserver.store import hosts
from tests import support
from tests.bench import recursor_data
from tests.pdns import start_pdns

SLAP_SCHEMA = "ddserver_bench_slap"


@contextlib.contextmanager
def write_load(clients: int):
    """``mariadb-slap`` writing with ``clients`` connections until the block ends, then its schema dropped."""
    if clients <= 0:
        yield
        return
    slap = shutil.which("mariadb-slap")
    client = shutil.which("mariadb")
    if slap is None or client is None:
        raise SystemExit("--write-load needs mariadb-slap and mariadb (Debian's mariadb-client)")
    base = ["-h127.0.0.1", "-P3306", "-uroot"]
    proc = subprocess.Popen(
        [
            "bash",
            "-c",
            f"while :; do {slap} {' '.join(base)} --concurrency={clients} --iterations=1000 "
            f"--number-of-queries=20000 --auto-generate-sql --auto-generate-sql-load-type=write "
            f"--create-schema={SLAP_SCHEMA}; done",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield
    finally:
        os.killpg(proc.pid, 15)
        proc.wait()
        subprocess.run([client, *base, "-e", f"DROP DATABASE IF EXISTS {SLAP_SCHEMA}"], check=False)


def measure(pdns, db, ids: dict[str, int], args: argparse.Namespace) -> list[float]:
    """Seconds from each commit to the first answer with the new address."""
    delays: list[float] = []
    rng = random.Random(1)
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
                    f"update {n}: {name} still answers {seen}, not {new}, 30 s after the commit; "
                    "its log lines:\n" + "\n".join(lines[-40:])
                )
        delays.append(time.monotonic() - committed)
    return delays


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
    parser.add_argument("--write-load", type=int, default=0, metavar="N", help="mariadb-slap clients beside")
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
            with start_pdns(folder / "pdns", config, args.mode, cache=True, cache_ttl=60, timeout=120) as pdns:
                print(f"load average before the updates: {os.getloadavg()[0]:.2f}", flush=True)
                with write_load(args.write_load):
                    delays = measure(pdns, db, ids, args)
            delays.sort()
            p50 = statistics.median(delays) * 1000
            p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))] * 1000
            print(
                f"{args.mode} ({args.dialect}, poll {args.poll_interval} s, caches 60 s, commits {args.phase}, "
                f"write load {args.write_load}): "
                f"{len(delays)} updates, "
                f"commit to answer p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {delays[-1] * 1000:.0f} ms"
            )
        finally:
            if args.dialect == "mysql":
                db.drop_database()
    return 0


if __name__ == "__main__":
    sys.exit(main())
