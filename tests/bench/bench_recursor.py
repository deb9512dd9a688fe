"""Recursor throughput against PowerDNS's own gmysql backend, same data, same run, PowerDNS caches off.

    .venv/bin/python -m tests.bench.bench_recursor --hosts 100000 --seconds 15 --runs 5

Every server starts once with the same pdns.conf (caches off, 3 distributor threads unless a mode is named
with another count, ``remote-socket@8``; only the backend lines and that count differ) and is warmed up;
then each round runs dnsperf against every mode in turn, so a change in the machine's load hits all of
them alike. Before each run it prints the load average and the machine's busy
CPU share over 3 s, which, with this benchmark's servers idle, is what the rest of the machine uses
(``--max-load`` and ``--max-busy`` wait for a quieter machine first). For each run: queries per second,
PowerDNS's backend queries per question, and the CPU milliseconds per 1,000 questions of pdns_server, of
the backend (ddserver-recursor and its coprocesses, or mariadbd, which other clients may share) and of
dnsperf. At the end: the median of the runs for each mode and its ratio to gmysql's median, then each
round's ratios.

Needs pdns_server with the gmysql, pipe and remote backends, dnsperf, and MariaDB on 127.0.0.1:3306.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ddserver.db import Database
from tests import support
from tests.bench import recursor_data
from tests.pdns import launch_pdns, start_pdns

TICK = os.sysconf("SC_CLK_TCK")


def load_average() -> float:
    return os.getloadavg()[0]


def busy_percent(seconds: float = 3.0) -> float:
    """The share of all CPUs in use over the next ``seconds`` (from /proc/stat). Taken between runs, while
    this benchmark's own servers are idle, it is what the rest of the machine uses."""

    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 100.0 * (1 - (idle1 - idle0) / max(total1 - total0, 1))


def wait_for_quiet(max_load: float, max_busy: float, patience: float) -> tuple[float, float]:
    """Wait (up to ``patience`` seconds) until the 1-minute load average is below ``max_load`` and the
    machine's busy share below ``max_busy`` % (0: no condition); returns both as found at the end."""
    deadline = time.monotonic() + patience
    while True:
        load, busy = load_average(), busy_percent()
        quiet = (max_load <= 0 or load < max_load) and (max_busy <= 0 or busy < max_busy)
        if quiet or time.monotonic() > deadline:
            return load, busy
        time.sleep(5)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) so far; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def children(pid: int) -> list[int]:
    """Direct children of a process (pipe and remote-pipe coprocesses of pdns_server)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found.extend(int(c) for c in (task / "children").read_text().split())
    return found


def pids_named(name: str) -> list[int]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if (proc / "comm").read_text().strip() == name:
                found.append(int(proc.name))
    return found


def control(socket_dir: Path, command: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(socket_dir / "pdns.controlsocket"))
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks).decode()


def backend_queries(socket_dir: Path) -> int:
    return int(control(socket_dir, "show backend-queries").strip() or 0)


class Target:
    """One PowerDNS under test: its port, control socket folder and the processes whose CPU is counted."""

    def __init__(self, name: str, port: int, socket_dir: Path, pdns_pid: int, backend: str) -> None:
        self.name = name
        self.port = port
        self.socket_dir = socket_dir
        self.pdns_pid = pdns_pid
        #: "recursor:PID", "children" (coprocesses) or "mariadbd".
        self.backend = backend

    def backend_pids(self) -> list[int]:
        if self.backend == "children":
            return children(self.pdns_pid)
        if self.backend == "mariadbd":
            return pids_named("mariadbd") or pids_named("mysqld")
        return [int(self.backend.split(":")[1])]

    def snapshot(self) -> dict[str, float]:
        pids = self.backend_pids()
        try:
            lookups = backend_queries(self.socket_dir)
        except OSError as exc:
            log = (self.socket_dir / "pdns.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name}: pdns_server does not answer ({exc}); its log ends:\n{log}") from None
        return {
            "pdns": cpu_seconds(self.pdns_pid),
            "backend": sum(cpu_seconds(p) for p in pids),
            "backend_pids": float(len(pids)),
            "lookups": float(lookups),
        }


def dnsperf(port: int, queries: Path, seconds: int, clients: int, extra: list[str] | None = None) -> dict[str, float]:
    """Run dnsperf once: qps, questions completed, lost, average latency (ms), its own CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-l", str(seconds),
         "-c", str(clients), "-q", "100", "-t", "5", *(extra or [])],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)

    def number(pattern: str) -> float:
        return float(re.search(pattern, out).group(1))  # type: ignore[union-attr]

    codes = re.search(r"Response codes:\s+(.*)", out)
    return {
        "qps": number(r"Queries per second:\s+([\d.]+)"),
        "completed": number(r"Queries completed:\s+(\d+)"),
        "lost": number(r"Queries lost:\s+(\d+)"),
        "latency_ms": number(r"Average Latency \(s\):\s+([\d.]+)") * 1000,
        "dnsperf_cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "codes": codes.group(1) if codes else "",  # type: ignore[dict-item]
    }


def measure(target: Target, queries: Path, seconds: int, clients: int) -> dict[str, float]:
    before = target.snapshot()
    result = dnsperf(target.port, queries, seconds, clients)
    after = target.snapshot()
    per_k = 1000 / max(result["completed"], 1)
    result["pdns_ms"] = (after["pdns"] - before["pdns"]) * 1000 * per_k
    result["backend_ms"] = (after["backend"] - before["backend"]) * 1000 * per_k
    result["dnsperf_ms"] = result["dnsperf_cpu"] * 1000 * per_k
    result["lookups"] = (after["lookups"] - before["lookups"]) / max(result["completed"], 1)
    return result


def start_gmysql(
    folder: Path, db: Database, unix_socket: str = "", *, zone_cache: bool = True, threads: int = 3
) -> tuple[support.Process, int]:
    """PowerDNS with its gmysql backend, over TCP to the database's host and port, or over ``unix_socket``;
    without ``zone_cache`` in the configuration the pipe backend needs (PowerDNS then finds the zone by asking
    SOA up the tree, as it does the pipe backend)."""
    folder.mkdir(parents=True, exist_ok=True)
    u = db.url
    where = f"gmysql-socket={unix_socket}\n" if unix_socket else f"gmysql-host={u.host}\ngmysql-port={u.port}\n"
    backend = (
        f"launch=gmysql\n{where}gmysql-user={u.user}\n"
        f"gmysql-password={u.password}\ngmysql-dbname={u.database}\ngmysql-dnssec=no\n"
    )
    if not zone_cache:
        backend += "zone-cache-refresh-interval=0\n"
    server = launch_pdns(folder, backend, distributor_threads=threads)
    return server.process, server.port


def split_mode(name: str, threads: int) -> tuple[str, int]:
    """A mode as --modes names it (``remote-socket@8``: with 8 distributor threads) and its thread count."""
    mode, _, count = name.partition("@")
    return mode, int(count) if count else threads


@contextlib.contextmanager
def targets(
    names: list[str], folder: Path, config: Path, gdb: Database | None, mysql_socket: str, threads: int
) -> Iterator[list[Target]]:
    """Start every mode's PowerDNS (and recursor); stop them all at the end, whatever happens."""
    with contextlib.ExitStack() as stack:
        started = []
        for name in names:
            mode, count = split_mode(name, threads)
            if mode.startswith("gmysql"):
                assert gdb is not None
                process, port = start_gmysql(
                    folder / name,
                    gdb,
                    mysql_socket if mode == "gmysql-socket" else "",
                    zone_cache=mode != "gmysql-nozc",
                    threads=count,
                )
                stack.callback(process.stop)
                started.append(Target(name, port, folder / name, process.pid, "mariadbd"))
            else:
                pdns = stack.enter_context(
                    start_pdns(folder / name, config, mode, cache=False, timeout=180, distributor_threads=count)
                )
                backend = f"recursor:{pdns.recursor.pid}" if pdns.recursor is not None else "children"
                started.append(Target(name, pdns.port, pdns.folder, pdns.process.pid, backend))
        yield started


def lost_log(path: Path, limit: int = 20) -> str:
    """PowerDNS's warnings, for a run that lost queries (a backend too slow, a coprocess killed)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"    (no log: {exc})"
    notable = [
        line for line in lines if any(w in line.lower() for w in ("timeout", "kill", "error", "fail", "exception"))
    ]
    return "\n".join(f"    {line}" for line in notable[-limit:]) or "    (nothing notable in PowerDNS's log)"


def row(name: str, r: dict[str, float], load: float) -> str:
    return (
        f"{name:14s} {r['qps']:8.0f} qps  load {load:5.2f} busy {r['busy']:3.0f}%  lookups/q {r['lookups']:4.2f}  "
        f"CPU ms/1k q: pdns {r['pdns_ms']:5.0f} backend {r['backend_ms']:5.0f} dnsperf {r['dnsperf_ms']:4.0f}  "
        f"avg {r['latency_ms']:6.2f} ms  lost {r['lost']:.0f}  {r['codes']}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=3, help="rounds over every mode; the median is reported")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of dnsperf before the first round")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument(
        "--modes",
        default="gmysql,pipe,remote-pipe,remote-socket",
        help="of gmysql (over TCP), gmysql-socket (over --mysql-socket), gmysql-nozc (over TCP, zone cache off as "
        "the pipe backend needs it), pipe, remote-pipe, remote-socket, pipe-socket; MODE@N runs MODE with N "
        "distributor threads (a mode may be named twice with different N)",
    )
    parser.add_argument(
        "--distributor-threads",
        type=int,
        default=3,
        help="PowerDNS's distributor-threads for every mode without @N (default 3)",
    )
    parser.add_argument("--mysql-socket", default="/run/mysqld/mysqld.sock", help="MariaDB's socket for gmysql-socket")
    parser.add_argument("--dialect", default="mysql", choices=("mysql", "sqlite"), help="ddserver's database")
    parser.add_argument("--max-load", type=float, default=0, help="before each run, wait for a lower load average")
    parser.add_argument(
        "--max-busy",
        type=float,
        default=0,
        help="before each run, wait until the machine uses less "
        "than this %% of its CPUs (over 3 s, this benchmark's servers idle)",
    )
    parser.add_argument("--patience", type=float, default=600, help="longest wait for --max-load, in seconds")
    args = parser.parse_args()
    modes = args.modes.split(",")

    with tempfile.TemporaryDirectory(prefix="bench-recursor-") as tmp:
        folder = Path(tmp)
        url = support.new_database_url(args.dialect, folder)
        ddb = support.create_database(url)
        gdb = None
        if any(mode.startswith("gmysql") for mode in modes):  # MODE@N too
            gdb = Database(support.new_database_url("mysql", folder))
            gdb.create_database()
        try:
            started = time.monotonic()
            recursor_data.seed_ddserver(ddb, args.hosts)
            if gdb is not None:
                recursor_data.seed_gmysql(gdb, args.hosts)
            print(f"seeded {args.hosts} hosts in {time.monotonic() - started:.1f} s ({args.dialect} for ddserver)")
            queries = recursor_data.query_file(folder / "queries.txt", args.hosts)
            # No changes happen here, so the followers of the recursors not under test poll rarely: twelve of
            # them polling MariaDB five times a second would load the machine during every other run.
            config = support.write_config_file(
                folder / "ddserver.conf", url, "[recursor]\npurge = none\npoll_interval = 5\n"
            )
            results: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
            with targets(modes, folder, config, gdb, args.mysql_socket, args.distributor_threads) as running:
                for target in running:  # starts every backend instance, fills the OS and database caches
                    dnsperf(target.port, queries, args.warmup, args.clients)
                for run in range(1, args.runs + 1):
                    print(f"run {run}:")
                    for target in running:
                        load, busy = wait_for_quiet(args.max_load, args.max_busy, args.patience)
                        r = measure(target, queries, args.seconds, args.clients)
                        r["load"], r["busy"] = load, busy
                        results[target.name].append(r)
                        print("  " + row(target.name, r, load), flush=True)
                        if r["lost"]:
                            print(lost_log(target.socket_dir / "pdns.log"), flush=True)
            print(f"median of {args.runs} runs ({args.hosts} hosts, {args.seconds} s, {args.clients} clients):")
            medians = {}
            for mode, runs in results.items():
                med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "codes"}
                medians[mode] = med
                print("  " + row(mode, {**med, "codes": ""}, med["load"]))
            for peer in [m for m in medians if m.startswith("gmysql")]:
                base = medians[peer]["qps"]
                if base:
                    print(f"ratio to {peer}: " + ", ".join(f"{m} {medians[m]['qps'] / base:.2f}x" for m in medians))
                    # Each round's own ratios: the modes of one round ran minutes apart, under the same drift.
                    per_round = [
                        ", ".join(f"{m} {results[m][i]['qps'] / results[peer][i]['qps']:.2f}x" for m in results)
                        for i in range(args.runs)
                    ]
                    print(f"ratio to {peer} by round: " + "; ".join(per_round))
        finally:
            if args.dialect == "mysql":
                ddb.drop_database()
            if gdb is not None:
                gdb.drop_database()
    return 0


if __name__ == "__main__":
    sys.exit(main())
