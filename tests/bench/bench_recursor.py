"""Recursor throughput against PowerDNS's own gmysql backend, same data, same run, PowerDNS caches off.

    .venv/bin/python -m tests.bench.bench_recursor --hosts 100000 --seconds 15

Prints queries per second for gmysql, pipe, remote-pipe and remote-socket, and each one's ratio to gmysql.
Needs pdns_server with the gmysql, pipe and remote backends, dnsperf, and MariaDB on 127.0.0.1:3306.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ddserver.db import Database
from tests import support
from tests.bench import recursor_data
from tests.pdns import pdns_binary, pdns_conf, start_pdns


def dnsperf(port: int, queries: Path, seconds: int, clients: int) -> dict[str, float]:
    """Run dnsperf once; returns qps, lost and the latency average in ms."""
    out = subprocess.run(
        ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-l", str(seconds),
         "-c", str(clients), "-q", "100", "-t", "5"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lost = float(re.search(r"Queries lost:\s+(\d+)", out).group(1))  # type: ignore[union-attr]
    latency = float(re.search(r"Average Latency \(s\):\s+([\d.]+)", out).group(1)) * 1000  # type: ignore[union-attr]
    codes = re.search(r"Response codes:\s+(.*)", out)
    return {"qps": qps, "lost": lost, "latency_ms": latency, "codes": codes.group(1) if codes else ""}  # type: ignore[dict-item]


def start_gmysql(folder: Path, db: Database) -> tuple[support.Process, int]:
    folder.mkdir(parents=True, exist_ok=True)
    port = support.free_dns_port()
    u = db.url
    backend = (
        f"launch=gmysql\ngmysql-host={u.host}\ngmysql-port={u.port}\ngmysql-user={u.user}\n"
        f"gmysql-password={u.password}\ngmysql-dbname={u.database}\ngmysql-dnssec=no\n"
    )
    (folder / "pdns.conf").write_text(pdns_conf(folder, port, backend, cache=False))
    process = support.Process([pdns_binary(), f"--config-dir={folder}"], log=folder / "pdns.log")
    process.wait_port("127.0.0.1", port)
    return process, port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--modes", default="gmysql,pipe,remote-pipe,remote-socket")
    parser.add_argument("--dialect", default="mysql", choices=("mysql", "sqlite"), help="ddserver's database")
    args = parser.parse_args()
    modes = args.modes.split(",")

    with tempfile.TemporaryDirectory(prefix="bench-recursor-") as tmp:
        folder = Path(tmp)
        url = support.new_database_url(args.dialect, folder)
        ddb = support.create_database(url)
        gdb = None
        if "gmysql" in modes:
            gdb = Database(support.new_database_url("mysql", folder))
            gdb.create_database()
        try:
            started = time.monotonic()
            recursor_data.seed_ddserver(ddb, args.hosts)
            if gdb is not None:
                recursor_data.seed_gmysql(gdb, args.hosts)
            print(f"seeded {args.hosts} hosts in {time.monotonic() - started:.1f} s ({args.dialect} for ddserver)")
            queries = recursor_data.query_file(folder / "queries.txt", args.hosts)
            config = support.write_config_file(folder / "ddserver.conf", url, "[recursor]\npurge = none\n")
            results: dict[str, dict[str, float]] = {}
            for mode in modes:
                if mode == "gmysql":
                    assert gdb is not None
                    process, port = start_gmysql(folder / "gmysql", gdb)
                    try:
                        dnsperf(port, queries, 2, args.clients)  # warm up
                        results[mode] = dnsperf(port, queries, args.seconds, args.clients)
                    finally:
                        process.stop()
                else:
                    with start_pdns(folder / mode, config, mode, cache=False, timeout=120) as pdns:
                        dnsperf(pdns.port, queries, 2, args.clients)  # starts every backend instance
                        results[mode] = dnsperf(pdns.port, queries, args.seconds, args.clients)
                r = results[mode]
                print(
                    f"{mode:14s} {r['qps']:9.0f} qps  avg {r['latency_ms']:6.2f} ms  lost {r['lost']:.0f}  {r['codes']}"
                )
                sys.stdout.flush()
            base = results.get("gmysql", {}).get("qps")
            if base:
                print("ratio to gmysql: " + ", ".join(f"{m} {results[m]['qps'] / base:.2f}x" for m in results))
        finally:
            ddb.drop_database() if args.dialect == "mysql" else None
            if gdb is not None:
                gdb.drop_database()
    return 0


if __name__ == "__main__":
    sys.exit(main())
