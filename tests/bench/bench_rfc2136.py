"""RFC 2136 benchmark against a real BIND 9 ``named``: commit-to-answer latency and changes/s with a backlog.

    .venv/bin/python -m tests.bench.bench_rfc2136 [--db mysql|sqlite] [--changes 1000] [--rate 50] [--poll 0.2]

1. Latency: the worker follows the feed (as the daemon does); changes are committed at ``--rate`` per second,
   each to another host, and each one's time from the database commit to named answering the new address
   is measured by querying named every few milliseconds. Prints p50, p90, p99 and max.
2. Backlog: ``--changes`` changes are committed with the worker stopped, then the worker catches up.
   Prints changes/s, and the ratio to the peer: the same changes sent by dnspython as one signed UPDATE
   each (what a per-change pusher does), same named, same run.

Not a test: run it by hand. It makes its own database (SQLite in a temp folder, or on the MariaDB of
DDSERVER_TEST_MYSQL_URL) and drops it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import dns.message
import dns.query
import dns.update

from ddserver.db import Database
from ddserver.rfc2136.worker import Worker
from ddserver.store import changes, hosts, users, zones
from tests import support
from tests.named import NamedServer

ZONE = "dyn.example.org"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def answer(server: NamedServer, name: str) -> str | None:
    response = dns.query.udp(dns.message.make_query(name, "A"), server.host, timeout=1, port=server.port)
    for rrset in response.answer:
        return rrset[0].to_text()
    return None


def setup(db: Database, server: NamedServer, count: int) -> list[hosts.Host]:
    zones.add(
        db,
        ZONE,
        [f"ns1.{ZONE}"],
        "hostmaster.example.org",
        rfc2136_server=server.server,
        tsig_name=server.key_name,
        tsig_algorithm=server.key_algorithm,
        tsig_secret=server.secret,
    )
    owner = users.add(db, "bench", "bench@example.org", password_hash="x")
    made = []
    for i in range(count):
        made.append(hosts.add(db, owner.id, f"h{i}.{ZONE}", "x", default_limit=-1, ipv4=f"10.0.{i // 250}.{i % 250}"))
    return made


def latency(db: Database, config_file: Path, server: NamedServer, made: list[hosts.Host], rate: float) -> list[float]:
    """The daemon in its own process, as deployed; this process commits changes and watches named."""
    daemon = support.Process(
        [support.console_script("ddserver-rfc2136"), "--config", str(config_file)],
        log=config_file.parent / "rfc2136.log",
    )
    last = made[-1]
    daemon.wait_for(lambda: answer(server, last.name) == last.ipv4, timeout=60, what="the initial push")
    pending: dict[str, tuple[str, float]] = {}
    lock = threading.Lock()
    results: list[float] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set() or pending:
            with lock:
                items = list(pending.items())
            for name, (address, committed) in items:
                if answer(server, name) == address:
                    results.append(time.monotonic() - committed)
                    with lock:
                        del pending[name]
            time.sleep(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    start = time.monotonic()
    try:
        for i, host in enumerate(made):
            due = start + i / rate
            time.sleep(max(0.0, due - time.monotonic()))
            address = f"10.1.{i // 250}.{i % 250}"
            hosts.set_addresses(db, host.id, ipv4=address)
            committed = time.monotonic()  # set_addresses returns after the commit
            with lock:
                pending[host.name] = (address, committed)
        done.set()
        watcher.join(60)
    finally:
        daemon.stop()
    return results


def backlog(db: Database, config: object, server: NamedServer, made: list[hosts.Host]) -> float:
    for i, host in enumerate(made):
        hosts.set_addresses(db, host.id, ipv4=f"10.2.{i // 250}.{i % 250}")
    worker = Worker(db, config)  # type: ignore[arg-type]
    last = changes.last_id(db)
    start = time.monotonic()
    while zones.get(db, ZONE).rfc2136_position < last:
        worker.run_pass(force=True)
    elapsed = time.monotonic() - start
    worker.release_all()
    assert answer(server, made[-1].name) == f"10.2.{(len(made) - 1) // 250}.{(len(made) - 1) % 250}"
    return len(made) / elapsed


def peer(server: NamedServer, made: list[hosts.Host]) -> float:
    """One signed UPDATE per change over TCP, with dnspython and nothing else."""
    key = server.key()
    start = time.monotonic()
    for i, host in enumerate(made):
        update = dns.update.UpdateMessage(ZONE, keyring=key)
        update.replace(host.name + ".", 60, "A", f"10.3.{i // 250}.{i % 250}")
        response = dns.query.tcp(update, server.host, timeout=5, port=server.port)
        assert response.rcode() == 0
    return len(made) / (time.monotonic() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("mysql", "sqlite"), default="mysql")
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="changes per second in the latency run")
    parser.add_argument("--poll", type=float, default=0.2, help="[rfc2136] poll_interval")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ddserver-bench-rfc2136-") as tmp:
        folder = Path(tmp)
        url = support.new_database_url(args.db, folder)
        db = support.create_database(url)
        server = NamedServer(folder / "named")
        server.start()
        try:
            config = support.make_config(url, folder, rfc2136={"poll_interval": args.poll})
            config_file = support.write_config_file(
                folder / "ddserver.conf", url, f"[rfc2136]\npoll_interval = {args.poll}\n[logging]\nlevel = warning\n"
            )
            made = setup(db, server, args.changes)
            print(f"named {server.server}, {args.db} database, {args.changes} hosts, poll {args.poll} s")
            times = latency(db, config_file, server, made, args.rate)
            ms = [t * 1000 for t in times]
            print(
                f"latency commit -> named answers, {len(ms)} changes at {args.rate:g}/s: "
                f"p50 {percentile(ms, 50):.1f} ms, p90 {percentile(ms, 90):.1f} ms, "
                f"p99 {percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms, mean {statistics.mean(ms):.1f} ms"
            )
            rate = backlog(db, config, server, made)
            naive = peer(server, made)
            print(f"backlog of {args.changes} pending changes: {rate:.0f} changes/s pushed by ddserver-rfc2136")
            print(f"peer, one signed UPDATE per change (dnspython over TCP): {naive:.0f} changes/s")
            print(f"ratio ddserver-rfc2136 / peer: {rate / naive:.1f}x")
        finally:
            server.stop()
            if args.db == "mysql":
                db.drop_database()
    return 0


if __name__ == "__main__":
    sys.exit(main())
