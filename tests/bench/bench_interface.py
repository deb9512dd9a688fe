"""Server time of the interface's heaviest pages: a user's list of 1,000 hosts, and the admin's user list
over 100,000 users (first page, a later page, a search). Prints per-request milliseconds and the ratio
against the login page (the lightest page) measured in the same run.

Run: .venv/bin/python -m tests.bench.bench_interface [--dialect sqlite|mysql] [--users 100000] [--hosts 1000]
     [--profile]   (then also: where the host list's time goes, by cProfile, cumulative)
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import tempfile
import time
from pathlib import Path

import webtest

from ddserver import secrets
from ddserver.db import Database
from ddserver.interface.app import create_app
from ddserver.store import hosts, sessions, users
from ddserver.store.common import now
from tests import support
from tests.integration.interface.conftest import add_zone, log_in_as


def seed(db: Database, user_count: int, host_count: int) -> tuple[users.User, users.User]:
    admin = users.add(db, "admin", "admin@example.org", is_admin=True)
    owner = users.add(db, "owner", "owner@example.org", max_hosts=-1)
    stamp = now()
    # Bulk rows for the benchmark only: inserting 100k users one transaction at a time would take minutes.
    rows = [(f"user{i:06d}", f"user{i:06d}@example.org", stamp) for i in range(user_count)]
    for start in range(0, len(rows), 10000):
        chunk = rows[start : start + 10000]
        db.run(
            lambda tx, chunk=chunk: tx.executemany(
                "INSERT INTO users (username, email, is_active, is_approved, created_at) VALUES (?, ?, 1, 1, ?)", chunk
            )
        )
    zone = add_zone(db)
    digest = secrets.hash_host_secret(secrets.new_host_secret())
    host_rows = [
        (f"h{i:04d}.{zone.name}", zone.id, owner.id, f"192.0.2.{i % 250}", digest, stamp) for i in range(host_count)
    ]
    db.run(
        lambda tx: tx.executemany(
            "INSERT INTO hosts (name, zone_id, user_id, ipv4, secret_hash, created_at, last_update_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(*row, stamp) for row in host_rows],
        )
    )
    assert hosts.count_for_user(db, owner.id) == host_count
    return admin, owner


def measure(app: webtest.TestApp, url: str, rounds: int) -> list[float]:
    app.get(url)  # warm: templates compiled, connection open
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        answer = app.get(url)
        times.append((time.perf_counter() - start) * 1000)
        assert answer.status_int == 200, answer.status
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dialect", choices=("sqlite", "mysql"), default="sqlite")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--hosts", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--profile", action="store_true", help="profile the host list after measuring")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = support.new_database_url(args.dialect, Path(folder))
        db = support.create_database(url)
        try:
            t0 = time.perf_counter()
            admin, owner = seed(db, args.users, args.hosts)
            print(
                f"{args.dialect}: seeded {args.users} users and {args.hosts} hosts in {time.perf_counter() - t0:.1f} s"
            )
            config = support.make_config(url, Path(folder))
            app = webtest.TestApp(create_app(config, db), extra_environ={"REMOTE_ADDR": "192.0.2.1"})
            peer = measure(app, "/login", args.rounds)
            log_in_as(app, owner)
            cases = {"/hosts (1,000 hosts)": measure(app, "/hosts", args.rounds)}
            if args.profile:
                profile = cProfile.Profile()
                profile.runcall(measure, app, "/hosts", args.rounds)
                text = io.StringIO()
                pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(
                    r"ddserver|jinja2|pymysql|sqlite", 25
                )
                print(text.getvalue())
            app.reset()
            log_in_as(app, admin)
            cases[f"/admin/users ({args.users} users)"] = measure(app, "/admin/users", args.rounds)
            cases["/admin/users?page=1000"] = measure(app, "/admin/users?page=1000", args.rounds)
            cases["/admin/users?q=user0999"] = measure(app, "/admin/users?q=user0999", args.rounds)
            base = statistics.median(peer)
            print(f"{'page':34} {'median ms':>10} {'p95 ms':>8} {'x login':>8}")
            print(f"{'/login (peer)':34} {base:10.1f} {sorted(peer)[int(len(peer) * 0.95) - 1]:8.1f} {1:8.1f}")
            for name, times in cases.items():
                median = statistics.median(times)
                p95 = sorted(times)[int(len(times) * 0.95) - 1]
                print(f"{name:34} {median:10.1f} {p95:8.1f} {median / base:8.1f}")
        finally:
            sessions.prune(db)
            if args.dialect == "mysql":
                db.drop_database()
            db.close_all()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
