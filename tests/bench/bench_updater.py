"""Updater benchmark: changing updates/s and nochg/s on MariaDB with 100k hosts (10k updating), 8 and 32
concurrent clients (wrk with a Lua script), p50/p99, and the same requests with a slow hash check per request.

Run it by hand (not collected by pytest)::

    .venv/bin/python -m tests.bench.bench_updater [--hosts 100000] [--updating 10000] [--duration 10] \
        [--warmup 10] [--servers waitress:1x16 gunicorn:3x8 granian:2x8,batch=1,cache=0,history=0 ...] [--skip-slow]

It makes its own database on the MariaDB of DDSERVER_TEST_MYSQL_URL (default 127.0.0.1:3306 root) and drops it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from ddserver import passwords, secrets
from ddserver.db import Database
from tests import support
from tests.updater_support import write_updater_config

ZONE = "bench.example.org"
SLOW_SECRET = "bench-slow-secret"

LUA = r"""
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  mode, hosts, nthreads, slow, run = args[1], tonumber(args[2]), tonumber(args[3]), args[4] == "slow", tonumber(args[5])
  slice = math.floor(hosts / nthreads)
  n, good, nochg, other = 0, 0, 0, 0
end
function request()
  local i = tid + nthreads * (n % slice)
  n = n + 1
  local ip
  if mode == "change" then
    ip = string.format("10.%d.%d.%d", 100 + run * 4 + tid, math.floor(n / 250) % 250, n % 250 + 1)
  else
    ip = string.format("10.200.%d.%d", math.floor(i / 250) % 250, i % 250 + 1)
  end
  local secret = slow and "SLOW" or string.format("bench%017d", i)
  local name = string.format("h%d.ZONE", i)
  return wrk.format("GET", string.format("/nic/update?hostname=%s&myip=%s&username=%s&password=%s",
    name, ip, name, secret))
end
function response(status, headers, body)
  if body:sub(1, 4) == "good" then good = good + 1
  elseif body:sub(1, 5) == "nochg" then nochg = nochg + 1
  else other = other + 1 end
end
function done(summary, latency, requests)
  local g, c, o = 0, 0, 0
  for _, t in ipairs(threads) do g = g + t:get("good"); c = c + t:get("nochg"); o = o + t:get("other") end
  local e = summary.errors
  io.write(string.format(
    "RESULT good=%d nochg=%d other=%d requests=%d seconds=%.3f p50=%.2f p99=%.2f p999=%.2f max=%.2f errors=%d\n",
    g, c, o, summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000, e.connect + e.read + e.write + e.status + e.timeout))
end
""".replace("SLOW", SLOW_SECRET).replace("ZONE", ZONE)


def host_secret(i: int) -> str:
    return f"bench{i:017d}"


def load(db: Database, total: int, updating: int) -> None:
    """One zone, one user, ``total`` hosts; the first ``updating`` have known secrets and a current address."""
    stamp = int(time.time())

    def setup(tx) -> None:  # type: ignore[no-untyped-def]
        tx.execute(
            "INSERT INTO zones (name, nameservers, hostmaster, serial, created_at) VALUES (?, ?, ?, ?, ?)",
            (ZONE, "ns1.example.org", "hostmaster.example.org", 2026010101, stamp),
        )
        tx.execute(
            "INSERT INTO users (username, email, is_active, is_approved, created_at) VALUES (?, ?, 1, 1, ?)",
            ("bench", "bench@example.org", stamp),
        )

    db.run(setup)
    zone_id = db.read(lambda tx: tx.scalar("SELECT id FROM zones WHERE name = ?", (ZONE,)))
    user_id = db.read(lambda tx: tx.scalar("SELECT id FROM users WHERE username = 'bench'"))
    other = secrets.hash_host_secret(secrets.new_host_secret())
    for start in range(0, total, 5000):
        rows = []
        for i in range(start, min(start + 5000, total)):
            known = i < updating
            rows.append(
                (
                    f"h{i}.{ZONE}",
                    zone_id,
                    user_id,
                    f"10.200.{(i // 250) % 250}.{i % 250 + 1}" if known else None,
                    secrets.hash_host_secret(host_secret(i)) if known else other,
                    stamp,
                    stamp if known else None,
                )
            )
        db.run(
            lambda tx, rows=rows: tx.executemany(
                "INSERT INTO hosts (name, zone_id, user_id, ipv4, secret_hash, created_at, last_update_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        )


def wrk(port: int, script: Path, mode: str, clients: int, duration: int, updating: int, slow: bool, run: int) -> dict:
    threads = 2
    argv = [
        support.require_binary("wrk"),
        f"-t{threads}",
        f"-c{clients}",
        f"-d{duration}s",
        "--timeout",
        "60s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}",
        "--",
        mode,
        str(updating),
        str(threads),
        "slow" if slow else "fast",
        str(run),
    ]
    before = cpu_times()
    output = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 120).stdout
    # Time the hypervisor gave to other machines while this one wanted it: a run with much of it is slower.
    steal = cpu_share(before, STEAL)
    match = re.search(r"RESULT (.*)", output)
    if not match:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    values = dict(part.split("=") for part in match.group(1).split())
    result = {k: float(v) for k, v in values.items()}
    result["steal"] = steal
    result["rate"] = (result["good"] if mode == "change" else result["nochg"]) / result["seconds"]
    return result


@dataclass(frozen=True)
class Server:
    """One way to serve the updater: ``waitress:1x16``, ``gunicorn:3x8``, ``granian:2x8,batch=1,cache=0``;
    ``history=N`` sets ``history_kept`` and ``auth_trail_kept`` (0: nothing recorded)."""

    kind: str
    workers: int
    threads: int
    batch_max: int = 200
    host_cache: int = 50000
    history: int = 20

    @classmethod
    def parse(cls, spec: str) -> Server:
        kind, _, rest = spec.partition(":")
        shape, *options = rest.split(",")
        workers, _, threads = shape.partition("x")
        values = dict(option.split("=") for option in options)
        return cls(
            kind,
            int(workers),
            int(threads),
            int(values.get("batch", 200)),
            int(values.get("cache", 50000)),
            int(values.get("history", 20)),
        )

    @property
    def label(self) -> str:
        batch = "" if self.batch_max == 200 else f",batch={self.batch_max}"
        cache = "" if self.host_cache == 50000 else f",cache={self.host_cache}"
        history = "" if self.history == 20 else f",history={self.history}"
        return f"{self.kind} {self.workers}x{self.threads}{batch}{cache}{history}"

    def config(self) -> str:
        return (
            f"server = {self.kind}\nworkers = {self.workers}\nbatch_max = {self.batch_max}\n"
            f"host_cache = {self.host_cache}\nhistory_kept = {self.history}\nauth_trail_kept = {self.history}\n"
        )


def start(argv: list[str], folder: Path, port: int, name: str) -> support.Process:
    process = support.Process(argv, log=folder / f"{name}.log", cwd=Path(__file__).resolve().parents[2])
    process.wait_port("127.0.0.1", port)
    # gunicorn and granian listen before their workers have loaded the app: wait for an answer.
    support.wait_until(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).status == 200)
    return process


def cpu_times() -> list[int]:
    """The machine's CPU time so far by kind (user, nice, system, idle, iowait, irq, softirq, steal, ...)."""
    with open("/proc/stat") as stat:
        return [int(value) for value in stat.readline().split()[1:]]


def cpu_share(before: list[int], kind: int) -> float:
    """The share of the CPU time since ``before`` that went to ``kind`` (an index into ``cpu_times``)."""
    spent = [b - a for a, b in zip(before, cpu_times(), strict=True)]
    return spent[kind] / max(sum(spent), 1)


IDLE, STEAL = 3, 7


def reference_ms() -> float:
    """How long this machine takes for a fixed piece of pure Python work just now (the best of three): the
    speed of a shared or throttled machine drifts, and this tells a slower run from a slower updater."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(300_000):
            total += i % 7
        best = min(best, time.perf_counter() - started)
    return best * 1000


def round_trip_us(count: int = 5000) -> float:
    """Microseconds for one byte to go to a child process over a pipe and back (the best of three): the
    cost of the task switches every request is made of, which drifts on a virtual machine independently
    of ``reference_ms``."""
    best = float("inf")
    for _ in range(3):
        there_r, there_w = os.pipe()
        back_r, back_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            for _ in range(count):
                os.read(there_r, 1)
                os.write(back_w, b"x")
            os._exit(0)
        started = time.perf_counter()
        for _ in range(count):
            os.write(there_w, b"x")
            os.read(back_r, 1)
        best = min(best, time.perf_counter() - started)
        os.waitpid(pid, 0)
        for fd in (there_r, there_w, back_r, back_w):
            os.close(fd)
    return best / count * 1e6


def cpu_idle(seconds: float = 2.0) -> float:
    """The share of CPU time the whole machine left idle over ``seconds`` (other work on it shows here)."""
    before = cpu_times()
    time.sleep(seconds)
    return cpu_share(before, IDLE)


def wait_quiet(minimum: float, patience: float) -> float:
    """Wait until the machine is at least ``minimum`` idle (other work on a shared box), for ``patience`` seconds
    at most; return the idle share last seen."""
    deadline = time.monotonic() + patience
    while True:
        idle = cpu_idle(3.0)
        if idle >= minimum or time.monotonic() > deadline:
            return idle
        time.sleep(5)


def reset(db: Database, secret_hash: str | None = None) -> None:
    """Put every updating host back on the address the nochg runs send, with a fresh status."""
    index = "CAST(SUBSTRING_INDEX(SUBSTRING(name, 2), '.', 1) AS UNSIGNED)"
    assignments = f"ipv4 = CONCAT('10.200.', FLOOR({index} / 250) % 250, '.', {index} % 250 + 1), last_update_at = ?"
    params: list[object] = [int(time.time())]
    if secret_hash is not None:
        assignments += ", secret_hash = ?"
        params.append(secret_hash)
    db.run(lambda tx: tx.execute(f"UPDATE hosts SET {assignments} WHERE last_update_at IS NOT NULL", params))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100_000)
    parser.add_argument("--updating", type=int, default=10_000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--slow-duration", type=int, default=30)
    parser.add_argument(
        "--warmup",
        type=int,
        default=10,
        help="seconds of unmeasured nochg requests first (32 clients): every thread connected, and each worker "
        "process's host cache holding the updating hosts, as in an updater that has been running a while",
    )
    parser.add_argument(
        "--servers",
        nargs="+",
        default=["granian:2x16"],
        metavar="KIND:WORKERSxTHREADS[,batch=N][,cache=N][,history=N]",
        help="servers to measure, each in turn (the first also serves the slow-hash runs)",
    )
    parser.add_argument("--skip-slow", action="store_true", help="leave out the slow-hash runs (no ratio)")
    parser.add_argument(
        "--min-idle",
        type=float,
        default=0.0,
        help="before each measurement, wait until the machine is this idle (0.9: 90%%), for a shared box",
    )
    parser.add_argument("--patience", type=float, default=600, help="seconds to wait for --min-idle at most")
    args = parser.parse_args()
    servers = [Server.parse(spec) for spec in args.servers]
    folder = Path(tempfile.mkdtemp(prefix="ddserver-bench-"))
    url = f"{support.mysql_base()}ddbench_updater_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    db = support.create_database(url)
    results: list[tuple[str, dict]] = []
    loads = [os.getloadavg()[0]]
    idle: list[float] = []
    run = 0
    try:
        started = time.perf_counter()
        load(db, args.hosts, args.updating)
        print(f"loaded {args.hosts} hosts ({args.updating} updating) in {time.perf_counter() - started:.1f} s")
        script = folder / "update.lua"
        script.write_text(LUA)
        for server in servers:
            reset(db)
            port = support.free_port()
            config = write_updater_config(folder / "ddserver.conf", url, port, server.config(), threads=server.threads)
            process = start([support.console_script("ddserver-updater"), "--config", str(config)], folder, port, "fast")
            try:
                # Warm up, unmeasured, with the most clients: every thread started and connected to the database,
                # and the host caches filled.
                wrk(port, script, "nochg", 32, args.warmup, args.updating, False, 0)
                # nochg first: the changing runs move the addresses away from the ones the nochg runs send.
                for mode in ("nochg", "change"):
                    for clients in (8, 32):
                        run += 1
                        # How idle the machine is with the updater started and no requests: what others use.
                        idle.append(wait_quiet(args.min_idle, args.patience))
                        loads.append(os.getloadavg()[0])
                        reference, switch = reference_ms(), round_trip_us()
                        result = wrk(port, script, mode, clients, args.duration, args.updating, False, run)
                        result["idle"], result["reference"], result["switch"] = idle[-1], reference, switch
                        results.append((f"{server.label:22} {mode:6} c={clients:<2} sha256", result))
                        print(f"{results[-1][0]}: {result['rate']:.1f}/s p99 {result['p99']:.1f} ms", flush=True)
            finally:
                process.stop()
        if not args.skip_slow:
            # The same requests where each one checks a slow SHA-512-crypt hash (passlib's default rounds), as
            # ddserver 0.2 did: every updating host gets the same legacy hash (one slow hash to make, not 10k).
            reset(db, passwords._context().handler("sha512_crypt").hash(SLOW_SECRET))
            server = servers[0]
            port = support.free_port()
            config = write_updater_config(folder / "ddserver.conf", url, port, server.config(), threads=server.threads)
            argv = [support.python_bin(), "-m", "tests.bench.updater_server", "--no-rehash", "--config", str(config)]
            slow = start(argv, folder, port, "slow")
            try:
                for mode in ("nochg", "change"):
                    run += 1
                    idle.append(wait_quiet(args.min_idle, args.patience))
                    loads.append(os.getloadavg()[0])
                    reference, switch = reference_ms(), round_trip_us()
                    result = wrk(port, script, mode, 8, args.slow_duration, args.updating, True, run)
                    result["idle"], result["reference"], result["switch"] = idle[-1], reference, switch
                    results.append((f"{server.label:22} {mode:6} c=8  slow hash", result))
            finally:
                slow.stop()
    finally:
        db.drop_database()
        shutil.rmtree(folder, ignore_errors=True)
    print(
        f"\nupdater on MariaDB, {args.hosts} hosts, {args.updating} updating, {args.warmup} s of warm-up, "
        f"{os.cpu_count()} CPUs (shared with the "
        f"database and wrk); 1-minute load average before the run {loads[0]:.2f}, before each measurement "
        f"{min(loads[1:], default=0):.2f} to {max(loads[1:], default=0):.2f}, after {os.getloadavg()[0]:.2f}; "
        f"CPU idle before each measurement (updater started, no requests): {min(idle):.0%} to {max(idle):.0%}; "
        "ref ms: a fixed pure-Python loop timed before each measurement, rt us: a byte to a child process and "
        "back over pipes (lower is a faster machine)"
    )
    print(
        f"{'run':48} {'answers/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'p99.9':>8} {'max ms':>8} {'good':>7} {'nochg':>7} "
        f"{'other':>6} {'errors':>6} "
        f"{'idle before':>11} {'steal':>6} {'ref ms':>6} {'rt us':>6}"
    )
    for label, r in results:
        print(
            f"{label:48} {r['rate']:10.1f} {r['p50']:8.2f} {r['p99']:8.2f} {r['p999']:8.2f} {r['max']:8.2f} "
            f"{r['good']:7.0f} {r['nochg']:7.0f} "
            f"{r['other']:6.0f} {r['errors']:6.0f} {r['idle']:11.0%} {r['steal']:6.1%} {r['reference']:6.1f} {r['switch']:6.1f}"
        )
    if not args.skip_slow:
        by = dict(results)
        label = servers[0].label
        for mode in ("change", "nochg"):
            fast_rate = by[f"{label:22} {mode:6} c=8  sha256"]["rate"]
            slow_rate = by[f"{label:22} {mode:6} c=8  slow hash"]["rate"]
            ratio = fast_rate / max(slow_rate, 1e-9)
            print(f"ratio {mode}, {label}, c=8: sha256 secret / slow hash per request = {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
